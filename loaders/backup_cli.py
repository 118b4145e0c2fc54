"""`registry backup -o FILE` and `registry restore FILE [--into NAME]` (see registry/backup.py)."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer


def _bin_dir(settings):
    from registry.db.cluster import find_bin_dir

    return find_bin_dir(settings)


def backup_command(
    out: Annotated[Path, typer.Option("--output", "-o", help="the backup file to write (a tar: dump + manifest)")],
) -> None:
    """Back up the registry database: pg_dump custom format, its schema version and a manifest of
    row counts and checksums per table, in one file."""
    from registry.backup import backup
    from registry.db.engine import require_database, resolve_database_url
    from registry.settings import get_settings

    settings = get_settings()
    url = resolve_database_url(settings)
    require_database(settings, url)
    manifest = backup(url, out, _bin_dir(settings))
    rows = sum(t["rows"] for t in manifest["tables"].values())
    typer.echo(f"已备份 / backed up {manifest['database']} (schema {manifest['schema_version']}, "
               f"{len(manifest['tables'])} tables, {rows:,} rows, {manifest['dump']['bytes']:,} bytes) to {out}")


def restore_command(
    file: Annotated[Path, typer.Argument(help="a file written by registry backup")],
    into: Annotated[Optional[str], typer.Option("--into", help="the new database to restore into "
                                                "(default: the configured one, which must not exist yet)")] = None,
) -> None:
    """Restore a backup into a new database on the configured server and verify every table
    against the backup's manifest (row counts and checksums)."""
    from sqlalchemy.engine import make_url

    from registry.backup import restore
    from registry.db.engine import resolve_database_url
    from registry.settings import get_settings

    settings = get_settings()
    url = resolve_database_url(settings)
    target = into or make_url(url).database
    admin = make_url(url).set(database="postgres").render_as_string(hide_password=False)
    manifest = restore(file, admin, target, _bin_dir(settings))
    typer.echo(f"已恢复并核对 / restored into {target} and verified: schema {manifest['schema_version']}, "
               f"{len(manifest['tables'])} tables equal to the manifest")
