"""What the `registry` commands share: the engine of the configured database and the one-line
failure (exit 1)."""
from __future__ import annotations

import typer


def engine():
    """An engine on the configured database (the managed cluster, started on demand, by default)."""
    from registry.db.engine import make_engine
    from registry.settings import get_settings

    return make_engine(get_settings(), pool_size=2)


def fail(exc: Exception) -> None:
    typer.secho(f"错误 / error: {exc}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code=1)
