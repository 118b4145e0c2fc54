"""`registry inspection …`: Boundary joint inspections (界线联合检查): rounds, field packages out and back, reports.

Mounted on the `registry` command by loaders/cli.py.
"""
from __future__ import annotations

import typer

inspection_app = typer.Typer(help="Boundary joint inspections (界线联合检查): rounds, field packages out and back, reports.", no_args_is_help=True)
