"""File-level errors: the file as a whole cannot be loaded (nothing is written).

`FileError` is declared with the other typed errors in registry/errors.py (the domain's readers of
field packages and CRS labels raise it too); the loaders import it from here as before.
"""
from registry.errors import FileError

__all__ = ["FileError"]
