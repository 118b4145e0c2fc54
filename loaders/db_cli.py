"""`registry db …`: the managed PostgreSQL cluster and migrations (`registry db replica …` is
loaders/replica_cli.py)."""
from __future__ import annotations

from typing import Annotated

import typer

from loaders.cli_support import fail
from registry.errors import RegistryError

db_app = typer.Typer(help="The database: the managed cluster and migrations.", no_args_is_help=True)


@db_app.command("start")
def db_start() -> None:
    """Initialise (first time) and start the managed PostgreSQL + PostGIS cluster."""
    from registry.db.cluster import ManagedCluster
    from registry.settings import get_settings

    settings = get_settings()
    if not settings.managed:
        typer.echo("REGISTRY_DATABASE_URL is set: the managed cluster is not used.")
        return
    try:
        cluster = ManagedCluster(settings)
        cluster.start()
        if cluster.ensure_database(settings.database_name):  # with `db migrate`, the only commands that create it
            typer.echo(f"created database {settings.database_name}")
    except RegistryError as exc:
        fail(exc)
    typer.echo(f"running: {cluster.url()}")


@db_app.command("stop")
def db_stop() -> None:
    """Stop the managed cluster (fast shutdown)."""
    from registry.db.cluster import ManagedCluster
    from registry.settings import get_settings

    ManagedCluster(get_settings()).stop()
    typer.echo("stopped")


@db_app.command("status")
def db_status() -> None:
    """Say whether the managed cluster is initialised and running; exit 3 when it is not running."""
    from registry.db.cluster import ManagedCluster
    from registry.settings import get_settings

    settings = get_settings()
    if not settings.managed:
        typer.echo(f"external database: {settings.database_url}")
        return
    st = ManagedCluster(settings).status()
    typer.echo(f"data folder: {st.data_dir}\ninitialised: {st.initialised}\nrunning: {st.running}\nurl: {st.url}")
    if not st.running:
        raise typer.Exit(code=3)


@db_app.command("url")
def db_url() -> None:
    """Print the SQLAlchemy URL of the database in use."""
    from registry.db.engine import resolve_database_url
    from registry.settings import get_settings

    typer.echo(resolve_database_url(get_settings(), start=False))


@db_app.command("migrate")
def db_migrate(revision: Annotated[str, typer.Argument(help="target revision")] = "head") -> None:
    """Bring the database to the current schema (Alembic), starting the managed cluster and creating
    its database if needed. An unknown revision: one line, exit 2."""
    from registry.db.engine import create_database
    from registry.db.migrate import check_revision, upgrade
    from registry.errors import InvalidQuery
    from registry.settings import get_settings

    try:
        check_revision(revision)  # before anything is started or created
        upgrade(create_database(get_settings()), revision)
    except InvalidQuery as exc:
        typer.secho(f"错误 / error: {exc}", fg=typer.colors.RED, err=True)
        raise typer.Exit(code=2) from None
    except RegistryError as exc:
        fail(exc)
    typer.echo(f"database at revision {revision}")
