"""`registry adjust …`: Division adjustments (区划调整): merge, split, rename, recode, transfer.

Mounted on the `registry` command by loaders/cli.py.
"""
from __future__ import annotations

import typer

adjust_app = typer.Typer(help="Division adjustments (区划调整): merge, split, rename, recode, transfer.", no_args_is_help=True)
