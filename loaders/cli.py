"""The `registry` command line: database, reference data, generation, loading, keys, serving.

Run `registry --help` or `registry COMMAND --help`. With no REGISTRY_DATABASE_URL the commands
use (and start on demand) the managed PostgreSQL cluster under var/pgdata.
"""
from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from registry.errors import RegistryError
from registry.settings import get_settings

app = typer.Typer(help="湖州市地名地址库 — the Huzhou place-name and address registry.", no_args_is_help=True,
                  pretty_exceptions_enable=False)
db_app = typer.Typer(help="The database: the managed cluster and migrations.", no_args_is_help=True)
keys_app = typer.Typer(help="API keys for agencies.", no_args_is_help=True)
load_app = typer.Typer(help="Load data into the registry (each load is one change set).", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(keys_app, name="keys")
app.add_typer(load_app, name="load")


def _setup_logging(verbose: bool = False) -> None:
    level = logging.DEBUG if verbose else getattr(logging, get_settings().log_level)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)


def _fail(exc: Exception) -> None:
    typer.secho(f"错误 / error: {exc}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code=1)


@app.callback()
def main(verbose: Annotated[bool, typer.Option("--verbose", "-v", help="debug logging")] = False) -> None:
    _setup_logging(verbose)


def engine():
    from registry.db.engine import make_engine

    return make_engine(get_settings(), pool_size=2)


# --- db -------------------------------------------------------------------------------------
@db_app.command("start")
def db_start() -> None:
    """Initialise (first time) and start the managed PostgreSQL + PostGIS cluster."""
    from registry.db.cluster import ManagedCluster

    settings = get_settings()
    if not settings.managed:
        typer.echo("REGISTRY_DATABASE_URL is set: the managed cluster is not used.")
        return
    try:
        cluster = ManagedCluster(settings)
        cluster.start()
    except RegistryError as exc:
        _fail(exc)
    typer.echo(f"running: {cluster.url()}")


@db_app.command("stop")
def db_stop() -> None:
    """Stop the managed cluster (fast shutdown)."""
    from registry.db.cluster import ManagedCluster

    ManagedCluster(get_settings()).stop()
    typer.echo("stopped")


@db_app.command("status")
def db_status() -> None:
    """Say whether the managed cluster is initialised and running; exit 3 when it is not running."""
    from registry.db.cluster import ManagedCluster

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

    typer.echo(resolve_database_url(get_settings(), start=False))


@db_app.command("migrate")
def db_migrate(revision: Annotated[str, typer.Argument(help="target revision")] = "head") -> None:
    """Bring the database to the current schema (Alembic), starting the managed cluster if needed."""
    from registry.db.engine import resolve_database_url
    from registry.db.migrate import upgrade

    try:
        upgrade(resolve_database_url(get_settings()), revision)
    except RegistryError as exc:
        _fail(exc)
    typer.echo(f"database at revision {revision}")


# --- load -----------------------------------------------------------------------------------
@load_app.command("reference")
def load_reference_cmd(
    actor: Annotated[str, typer.Option(help="who is loading (recorded in the change set)")] = "registry",
    skip_if_loaded: Annotated[bool, typer.Option("--skip-if-loaded", help="exit quietly when already loaded")] = False,
) -> None:
    """Load the real divisions (NBS 2023 + MCA 2025 codes) and county polygons from data/reference."""
    from loaders.reference import load_reference, reference_loaded

    try:
        if skip_if_loaded:
            with engine().connect() as conn:
                if reference_loaded(conn):
                    typer.echo("reference divisions already loaded")
                    return
        with engine().begin() as conn:
            counts = load_reference(conn, actor=actor)
    except RegistryError as exc:
        _fail(exc)
    typer.echo("loaded: " + ", ".join(f"{k} {v}" for k, v in counts.items()))


# --- generate ---------------------------------------------------------------------------------
@app.command("generate")
def generate(
    out: Annotated[Path, typer.Option("--out", "-o", help="output folder")],
    addresses: Annotated[int, typer.Option(help="number of addresses (1,600,000 = the whole city)", min=1,
                                           max=5_000_000)] = 50_000,
    seed: Annotated[int, typer.Option(help="random seed: the same seed gives the same files")] = 1,
) -> None:
    """Generate the synthetic city (townships, villages, streets, addresses, facilities, heritage)."""
    from data.generate import generate_city
    from loaders.progress import stage_progress

    with stage_progress() as progress:
        result = generate_city(out, addresses=addresses, seed=seed, progress=progress)
    typer.echo(f"written to {out}: {result.counts}")


# --- keys -----------------------------------------------------------------------------------
@keys_app.command("create")
def keys_create(
    agency: Annotated[str, typer.Option(help="agency name, e.g. 湖州市公安局")],
    scope: Annotated[list[str], typer.Option(help="public, agency, editor or admin (repeatable)")],
    rate_limit: Annotated[int, typer.Option(help="requests per minute")] = 600,
    note: Annotated[Optional[str], typer.Option(help="free note")] = None,
) -> None:
    """Create a key. The secret is printed once and only its hash is stored."""
    from registry.keys import create_key

    try:
        with engine().begin() as conn:
            new = create_key(conn, agency=agency, scopes=scope, rate_limit_per_minute=rate_limit, note=note)
    except RegistryError as exc:
        _fail(exc)
    typer.echo(f"key for {new.key.agency} (scopes: {', '.join(new.key.scopes)}; prefix {new.key.prefix}):")
    typer.echo(new.secret)
    typer.secho("store it now: it cannot be shown again.", fg=typer.colors.YELLOW, err=True)


@keys_app.command("list")
def keys_list() -> None:
    """List keys (prefix, agency, scopes, created, revoked) — never the secrets."""
    from registry.keys import list_keys

    with engine().connect() as conn:
        for k in list_keys(conn):
            state = f"revoked {k.revoked_at:%Y-%m-%d}" if k.revoked_at else "active"
            typer.echo(f"{k.prefix}\t{k.agency}\t{','.join(k.scopes)}\t{k.created_at:%Y-%m-%d}\t{state}")


@keys_app.command("revoke")
def keys_revoke(prefix: Annotated[str, typer.Argument(help="the key's prefix (see `keys list`)")]) -> None:
    """Revoke a key: requests carrying it get 401 from then on."""
    from registry.keys import revoke_key

    try:
        with engine().begin() as conn:
            revoke_key(conn, prefix)
    except RegistryError as exc:
        _fail(exc)
    typer.echo(f"revoked {prefix}")


# --- serve ----------------------------------------------------------------------------------
@app.command("serve")
def serve(
    host: Annotated[str, typer.Option(help="interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port")] = 8000,
    workers: Annotated[int, typer.Option(help="worker processes")] = 1,
) -> None:
    """Serve the HTTP API with uvicorn."""
    import uvicorn

    from registry.db.engine import resolve_database_url

    resolve_database_url(get_settings())  # start the managed cluster before the workers fork
    uvicorn.run("api.main:app", host=host, port=port, workers=workers, log_level="info")


if __name__ == "__main__":  # pragma: no cover
    app()
