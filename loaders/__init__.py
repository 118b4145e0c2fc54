"""Loaders: files in real formats -> validated change sets in the registry, and the CLI."""
