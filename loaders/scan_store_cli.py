"""`registry plates scan-store …`: build and inspect the scan store (every live plate's public answer,
composed ahead; registry/serving/store.py, api/scan_store.py). Mounted on `registry plates`.

The answers are the API's own (its composer and page template), so this command imports the API's
scan composer; the API serves a stored answer only while it is made of the row it reads.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Annotated, Optional

import typer

scan_store_app = typer.Typer(
    help="Every live plate's public answer composed ahead, served by the API while still today's "
         "(REGISTRY_SCAN_STORE_DIR).", no_args_is_help=True)

Directory = Annotated[Optional[Path], typer.Option(
    "--dir", file_okay=False, help="the store directory (default: REGISTRY_SCAN_STORE_DIR)")]


def _directory(directory: Path | None) -> Path:
    from registry.settings import get_settings

    directory = directory or get_settings().scan_store_dir
    if directory is None:
        typer.secho("错误 / error: 未指定目录 / no store directory: pass --dir or set REGISTRY_SCAN_STORE_DIR",
                    fg=typer.colors.RED, err=True)
        raise typer.Exit(code=2)
    return directory


@scan_store_app.command("build")
def build(directory: Directory = None,
          processes: Annotated[Optional[int], typer.Option(min=1, help="build processes (default: one per core)")] = None,
          ) -> None:
    """Compose every live plate's JSON answer and page and publish them as the store's new generation.

    Run it after issuing plates and again after large changes (a division adjustment, new facilities,
    a key rotation): until then the plates whose rows changed are composed at each scan, as without
    a store. The API's workers open the new generation within 10 s; the one before is kept for them.
    """
    from api.scan_store import build as build_store
    from registry.db.engine import resolve_database_url
    from registry.settings import get_settings

    settings = get_settings()
    root = _directory(directory)
    last = [0.0]

    def progress(done: int, total: int) -> None:
        now = time.monotonic()
        if now - last[0] >= 5 or done >= total:
            last[0] = now
            print(f"\r{done:,} / {total:,} plates", end="", file=sys.stderr, flush=True)

    try:
        report = build_store(resolve_database_url(settings), root, base_url=settings.public_base_url,
                             processes=processes, progress=progress)
    except OSError as exc:
        typer.secho(f"\n错误 / error: {exc}", fg=typer.colors.RED, err=True)
        raise typer.Exit(code=1)
    print(file=sys.stderr)
    typer.echo(f"scan store {report.path}: {report.plates:,} plates stored, {report.left_out:,} composed at each "
               f"scan (not a plain answer), {report.answer_bytes / 2**20:,.1f} MiB of answers, "
               f"{report.seconds:,.0f} s; base URL {settings.public_base_url}")


@scan_store_app.command("status")
def status(directory: Directory = None) -> None:
    """The store's current generation: when built, for which base URL, and whether this code serves it."""
    from api.scan_store import composer_digest
    from registry.serving.store import StoreError, unserved_reason
    from registry.serving.store import status as store_status
    from registry.settings import get_settings

    settings = get_settings()
    try:
        meta = store_status(_directory(directory))
    except StoreError as exc:
        typer.secho(f"错误 / error: {exc}", fg=typer.colors.RED, err=True)
        raise typer.Exit(code=1)
    if meta is None:
        typer.echo("no scan store built yet (registry plates scan-store build)")
        raise typer.Exit(code=1)
    reason = unserved_reason(meta, base_url=settings.public_base_url, composer=composer_digest())
    typer.echo(f"{meta['path']}\nbuilt {meta.get('built_at')} from {meta.get('database')}\n"
               f"{meta.get('plates', 0):,} plates, {meta.get('answer_bytes', 0) / 2**20:,.1f} MiB of answers\n"
               f"base URL {meta.get('base_url')}\n"
               + ("served by this API" if reason is None else f"NOT served by this API (it {reason}): rebuild it"))
    if reason is not None:
        raise typer.Exit(code=1)
