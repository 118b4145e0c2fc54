"""The `registry` command line: database, reference data, generation, loading, keys, serving.

Run `registry --help` or `registry COMMAND --help`. With no REGISTRY_DATABASE_URL the commands
use (and start on demand) the managed PostgreSQL cluster under var/pgdata.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated, Optional

import typer
from typer.core import TyperGroup

from loaders.adjust_cli import adjust_app
from loaders.backup_cli import backup_command, restore_command
from loaders.changes_cli import changes_app
from loaders.cli_support import engine, fail
from loaders.db_cli import db_app
from loaders.demo_cli import demo_app
from loaders.derive_cli import derive_app
from loaders.export_cli import export as export_command
from loaders.feed_cli import feed as feed_command
from loaders.heritage_cli import heritage_app
from loaders.inspection_cli import inspection_app
from loaders.keys_cli import keys_app
from loaders.load_cli import load_app
from loaders.placenames_cli import placenames_app
from loaders.plates_cli import plates_app
from loaders.replica_cli import replica_app
from registry.errors import RegistryError, SettingsError


class _RegistryGroup(TyperGroup):
    """The root command: bad settings end in one line per variable and exit 2; any other
    RegistryError that a command did not catch (a missing database, say) in one line, exit 1."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except SettingsError as exc:
            for line in exc.lines:
                typer.secho(line, fg=typer.colors.RED, err=True)
            raise typer.Exit(code=2) from None
        except RegistryError as exc:
            typer.secho(f"错误 / error: {exc}", fg=typer.colors.RED, err=True)
            raise typer.Exit(code=1) from None


app = typer.Typer(help="湖州市地名地址库 — the Huzhou place-name and address registry.", no_args_is_help=True,
                  pretty_exceptions_enable=False, cls=_RegistryGroup)
# The command groups and commands, each group in a module of its own; `registry --help` lists them
# in this order. Every module imports what its commands need inside them (nothing heavy at start-up).
app.add_typer(db_app, name="db")
app.add_typer(keys_app, name="keys")
app.add_typer(load_app, name="load")
app.add_typer(plates_app, name="plates")
app.add_typer(inspection_app, name="inspection")
app.add_typer(changes_app, name="changes")
app.add_typer(adjust_app, name="adjust")
app.add_typer(placenames_app, name="placenames")
app.add_typer(heritage_app, name="heritage")
app.command("export")(export_command)
changes_app.command("feed")(feed_command)  # registry changes feed …
app.command("backup")(backup_command)
app.command("restore")(restore_command)
app.add_typer(demo_app, name="demo")  # registry demo urls: where to look after make demo
db_app.add_typer(replica_app, name="replica")  # registry db replica …: read replicas
app.add_typer(derive_app, name="derive")


def _setup_logging(verbose: bool = False) -> None:
    from registry.log_setup import configure as configure_logging
    from registry.settings import get_settings

    level = logging.DEBUG if verbose else getattr(logging, get_settings().log_level)
    configure_logging(level)
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)


@app.callback()
def main(verbose: Annotated[bool, typer.Option("--verbose", "-v", help="debug logging")] = False) -> None:
    _setup_logging(verbose)


# --- generate ---------------------------------------------------------------------------------
@app.command("generate")
def generate(
    out: Annotated[Path, typer.Option("--out", "-o", help="output folder")],
    addresses: Annotated[int, typer.Option(help="number of addresses (1,600,000 = the whole city)", min=300,
                                           max=5_000_000)] = 50_000,
    seed: Annotated[int, typer.Option(help="random seed: the same seed gives the same files")] = 1,
) -> None:
    """Generate the synthetic city (townships, villages, streets, addresses, facilities, heritage)."""
    from data.generate import generate_city
    from loaders.progress import stage_progress

    with stage_progress() as progress:
        result = generate_city(out, addresses=addresses, seed=seed, progress=progress)
    typer.echo(f"written to {out}: {result.counts}")


# --- match (batch address matching; owned by the search engine) -------------------------------
@app.command("match")
def match_cmd(
    infile: Annotated[Path, typer.Argument(help="CSV with a header row (UTF-8, with or without BOM, or GB18030/GBK)")],
    column: Annotated[str, typer.Option("--column", "-c", help="the column holding the address")] = "地址",
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="output CSV (default: IN.matched.csv)")] = None,
    encoding: Annotated[str, typer.Option(help="input encoding: auto, utf-8, gb18030 or gbk")] = "auto",
    output_encoding: Annotated[str, typer.Option(
        help="output encoding: utf-8-sig (UTF-8 with BOM, for Excel), utf-8 or gb18030")] = "utf-8-sig",
    no_bom: Annotated[bool, typer.Option("--no-bom", help="plain UTF-8 output (same as --output-encoding utf-8)")] = False,
) -> None:
    """Match free-form addresses to standard ones: input columns + id, address, code, confidence, levels, status
    (matched, partial, ambiguous, low_confidence, unmatched), reason. Bad input: one line, exit 2."""
    from loaders.progress import stage_progress
    from registry.errors import InvalidQuery
    from registry.search.cli import match_file

    if no_bom and output_encoding == "utf-8-sig":
        output_encoding = "utf-8"
    try:
        with stage_progress() as progress:
            summary = match_file(engine, infile, column, out, progress, encoding=encoding,
                                 output_encoding=output_encoding)
    except InvalidQuery as exc:
        typer.secho(f"错误 / error: {exc}", fg=typer.colors.RED, err=True)
        raise typer.Exit(code=2)
    except RegistryError as exc:
        fail(exc)
    typer.echo(summary)


# --- serve ----------------------------------------------------------------------------------
# uvicorn's options for the API (bench/bench_serving.py serves its trivial baseline with the same).
# loop/http "auto" pick uvloop and httptools (installed with uvicorn[standard]). uvicorn's access log
# has the client address and the query string: registry.access logs instead. A worker that does
# not answer the supervisor's ping in `timeout_worker_healthcheck` seconds is killed and replaced:
# uvicorn's 5 s killed workers in a loop while a busy machine built their state at start-up.
SERVE_OPTIONS = {"log_level": "info", "access_log": False, "timeout_worker_healthcheck": 60}


@app.command("serve")
def serve(
    host: Annotated[str, typer.Option(help="interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port")] = 8000,
    workers: Annotated[int, typer.Option(help="worker processes")] = 1,
) -> None:
    """Serve the HTTP API with uvicorn."""
    import uvicorn

    from registry.db.engine import require_database, resolve_database_url
    from registry.settings import get_settings, local_url_reason

    settings = get_settings()
    require_database(settings, resolve_database_url(settings))  # start the managed cluster before the workers fork
    if reason := local_url_reason(settings.public_base_url):
        zh, _, en = reason.partition(" / ")
        typer.secho(f"警告 / warning: REGISTRY_PUBLIC_BASE_URL={settings.public_base_url} 不是公网地址（{zh}），"
                    f"二维码图片将被拒绝（409） / is not public ({en}): QR images for printing are refused (409)",
                    fg=typer.colors.YELLOW, err=True)
    uvicorn.run("api.main:app", host=host, port=port, workers=workers, **SERVE_OPTIONS)


if __name__ == "__main__":  # pragma: no cover
    app()
