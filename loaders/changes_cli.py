"""`registry changes …`: Change sets: list, show (with the diff), approve, reject, apply.

Mounted on the `registry` command by loaders/cli.py.
"""
from __future__ import annotations

import typer

changes_app = typer.Typer(help="Change sets: list, show (with the diff), approve, reject, apply.", no_args_is_help=True)
