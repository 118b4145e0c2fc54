"""Backup and restore of the whole registry database, verified.

A backup is one tar file holding
  - `registry.dump`: `pg_dump --format=custom` of the database, and
  - `manifest.json`: the schema version (the alembic revision), the dump's SHA-256, and per table
    its row count and checksum (md5 over the sorted md5s of its rows' text form).

The manifest and the dump are taken from one snapshot: a REPEATABLE READ transaction exports its
snapshot, computes the manifest and holds the snapshot while `pg_dump --snapshot` reads it, so a
write committed meanwhile is in neither.

A restore refuses a file that is not such a tar, a dump whose SHA-256 differs (truncated,
corrupted), a schema version this code does not know; it restores into a database that does not
exist yet (created here), then recomputes the manifest there and compares every table — a
mismatch is an error naming the table, and the half-restored database is dropped.

The binaries are the managed cluster's (`registry.db.cluster.find_bin_dir`), also for a server
given by REGISTRY_DATABASE_URL: pg_dump must be at least the server's major version.
"""
from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import psycopg
from sqlalchemy.engine import make_url

from registry.db.engine import libpq_url
from registry.errors import Conflict, InvalidQuery, RegistryError

log = logging.getLogger(__name__)

FORMAT = "huzhou-registry-backup/1"
DUMP_NAME = "registry.dump"
MANIFEST_NAME = "manifest.json"
# PostGIS's own table: its rows come with the extension, not from the dump.
SKIP_TABLES = frozenset({"spatial_ref_sys"})


class BackupError(RegistryError):
    """A backup file that cannot be restored as it is (not a backup, truncated, corrupted, of an
    unknown schema version) or a restore whose result differs from the manifest."""

    code = "backup-error"


@dataclass(frozen=True)
class TableSum:
    rows: int
    checksum: str


def _tables(cur) -> list[str]:
    cur.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename")
    return [r[0] for r in cur.fetchall() if r[0] not in SKIP_TABLES]


def table_sums(cur) -> dict[str, TableSum]:
    """Row count and checksum of every table of the public schema, read in the cursor's transaction.
    Rows hash by their text form (geometries as hex EWKB, timestamps in UTC); the per-row md5s are
    sorted so that the physical order, which a restore changes, does not matter."""
    cur.execute("SET LOCAL TimeZone = 'UTC'")
    cur.execute("SET LOCAL extra_float_digits = 1")
    sums = {}
    for name in _tables(cur):
        ident = '"' + name.replace('"', '""') + '"'
        cur.execute(f"SELECT count(*), md5(coalesce(string_agg(h, '' ORDER BY h), '')) "
                    f"FROM (SELECT md5(t::text) AS h FROM {ident} t) s")
        rows, checksum = cur.fetchone()
        sums[name] = TableSum(int(rows), checksum)
    return sums


def _schema_version(cur) -> str | None:
    cur.execute("SELECT to_regclass('public.alembic_version') IS NOT NULL")
    if not cur.fetchone()[0]:
        return None
    cur.execute("SELECT version_num FROM alembic_version")
    row = cur.fetchone()
    return row[0] if row else None


def known_revisions() -> set[str]:
    from alembic.script import ScriptDirectory

    from registry.db.migrate import MIGRATIONS

    return {s.revision for s in ScriptDirectory(str(MIGRATIONS)).walk_revisions()}


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _run(cmd: list[str], what: str) -> None:
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        tail = (res.stderr or res.stdout).strip().splitlines()[-3:]
        raise BackupError(f"{what} 失败 / {what} failed: " + " | ".join(tail))


def backup(url: str, out: Path, bin_dir: Path) -> dict:
    """Write the backup of the database at `url` to `out` (a tar); the manifest is returned."""
    out = Path(out)
    conninfo = libpq_url(url)
    with tempfile.TemporaryDirectory(prefix="backup-", dir=out.parent if out.parent.exists() else None) as tmp:
        dump = Path(tmp) / DUMP_NAME
        with psycopg.connect(conninfo) as conn:
            conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            with conn.cursor() as cur:
                snapshot = cur.execute("SELECT pg_export_snapshot()").fetchone()[0]
                version = _schema_version(cur)
                if version is None:
                    raise BackupError("数据库没有迁移版本（alembic_version）/ the database has no schema version "
                                      "(alembic_version): run registry db migrate first")
                sums = table_sums(cur)
                # pg_dump reads the same snapshot while this transaction holds it
                _run([str(bin_dir / "pg_dump"), "--format=custom", f"--snapshot={snapshot}", "--no-owner",
                      "--file", str(dump), "--dbname", conninfo], "pg_dump")
            conn.rollback()
        manifest = {
            "format": FORMAT,
            "schema_version": version,
            "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "database": make_url(url).database,
            "dump": {"name": DUMP_NAME, "bytes": dump.stat().st_size, "sha256": _sha256(dump)},
            "tables": {name: {"rows": s.rows, "checksum": s.checksum} for name, s in sums.items()},
        }
        partial = out.with_name(out.name + ".partial")
        with tarfile.open(partial, "w") as tar:
            data = json.dumps(manifest, ensure_ascii=False, indent=2).encode()
            info = tarfile.TarInfo(MANIFEST_NAME)
            info.size = len(data)
            info.mtime = int(datetime.now(timezone.utc).timestamp())
            tar.addfile(info, io.BytesIO(data))
            tar.add(dump, arcname=DUMP_NAME)
        os.replace(partial, out)  # a backup file is whole or absent
    log.info("backup of %s written to %s (%d tables)", manifest["database"], out, len(sums))
    return manifest


def read_manifest(path: Path) -> dict:
    """The manifest of a backup file; BackupError when it is not one (or cut short)."""
    path = Path(path)
    if not path.is_file():
        raise BackupError(f"备份文件不存在 / no backup file {path}", parameter="FILE")
    try:
        with tarfile.open(path, "r:") as tar:
            member = tar.getmember(MANIFEST_NAME)
            manifest = json.loads(tar.extractfile(member).read())
            tar.getmember(DUMP_NAME)
    except (tarfile.TarError, KeyError, OSError, ValueError, EOFError) as exc:
        raise BackupError(f"不是完整的备份文件 / {path} is not a whole registry backup ({type(exc).__name__}: {exc})",
                          parameter="FILE") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BackupError(f"不是本系统的备份文件 / {path} is not a registry backup (format "
                          f"{manifest.get('format') if isinstance(manifest, dict) else None!r})", parameter="FILE")
    return manifest


def compare(expected: dict, actual: dict[str, TableSum]) -> list[tuple[str, str]]:
    """(table, line) per table whose count or checksum differs (or that is missing / extra)."""
    problems = []
    for name, want in sorted(expected.items()):
        got = actual.get(name)
        if got is None:
            problems.append((name, f"表 {name} 缺失 / table {name} is missing"))
        elif got.rows != want["rows"]:
            problems.append((name, f"表 {name} 行数 {got.rows}，应为 {want['rows']} / table {name} has {got.rows} "
                                   f"rows, the backup {want['rows']}"))
        elif got.checksum != want["checksum"]:
            problems.append((name, f"表 {name} 校验和不符 / table {name}: checksum differs from the backup's"))
    for name in sorted(set(actual) - set(expected)):
        problems.append((name, f"表 {name} 不在备份中 / table {name} is not in the backup"))
    return problems


def restore(path: Path, admin_url: str, database: str, bin_dir: Path) -> dict:
    """Restore the backup at `path` into the new database `database` (on the server of
    `admin_url`, a connection to its maintenance database) and verify it. Returns the manifest."""
    from registry.settings import DATABASE_NAME

    if not DATABASE_NAME.match(database):
        raise InvalidQuery(f"数据库名无效 / invalid database name {database!r}", parameter="--into")
    manifest = read_manifest(path)
    version = manifest.get("schema_version")
    if version not in known_revisions():
        raise BackupError(f"备份的数据库版本 {version!r} 不为本程序所知 / the backup's schema version {version!r} "
                          "is unknown to this code (a newer registry made it?)", parameter="schema_version")
    admin = libpq_url(admin_url)
    target = make_url(admin_url).set(database=database)
    with psycopg.connect(admin, autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,)).fetchone():
            raise Conflict(f"数据库 {database} 已存在：只恢复到新数据库 / database {database} exists: a backup is "
                           "restored into a new database only (--into NAME)", parameter="--into")
    with tempfile.TemporaryDirectory(prefix="restore-") as tmp:
        dump = Path(tmp) / DUMP_NAME
        try:
            with tarfile.open(path, "r:") as tar:
                src = tar.extractfile(DUMP_NAME)
                with open(dump, "wb") as f:
                    for block in iter(lambda: src.read(1 << 20), b""):
                        f.write(block)
        except (tarfile.TarError, KeyError, OSError, EOFError) as exc:
            raise BackupError(f"备份文件不完整 / the backup file is cut short ({exc})", parameter="FILE") from None
        if _sha256(dump) != manifest["dump"]["sha256"]:
            raise BackupError(f"备份的转储已损坏（SHA-256 不符）/ the backup's dump is corrupted or truncated "
                              f"(SHA-256 differs from its manifest): {path}", parameter="FILE")
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE \"{database}\" TEMPLATE template0 ENCODING 'UTF8' LOCALE 'C.UTF-8'")
        try:
            _run([str(bin_dir / "pg_restore"), "--exit-on-error", "--no-owner", "--single-transaction",
                  "--dbname", libpq_url(target),
                  str(dump)], "pg_restore")
            with psycopg.connect(libpq_url(target)) as conn:
                with conn.cursor() as cur:
                    got_version = _schema_version(cur)
                    actual = table_sums(cur)
                conn.rollback()
            problems = compare(manifest["tables"], actual)
            if got_version != version:
                problems.insert(0, ("alembic_version", f"迁移版本 {got_version!r}，应为 {version!r} / schema version "
                                                       f"{got_version!r}, the backup {version!r}"))
            if problems:
                raise BackupError("恢复结果与备份清单不符 / the restored database differs from the backup's manifest: "
                                  + "; ".join(line for _, line in problems), tables=[name for name, _ in problems])
        except BaseException:
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
            raise
    log.info("backup %s restored into %s and verified (%d tables)", path, database, len(manifest["tables"]))
    return manifest
