"""`registry backup` / `registry restore`: a backup of a database with reference data and a few
addresses restores into a fresh database equal table by table (the manifest and a direct count),
and a damaged, foreign or unknown-version file is refused with a clear error."""
from __future__ import annotations

import io
import json
import os
import tarfile
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from registry.backup import BackupError, libpq_url, read_manifest, restore, backup, table_sums
from registry.db.cluster import find_bin_dir
from registry.db.migrate import upgrade
from registry.errors import Conflict
from registry.settings import get_settings

SOURCE = f"registry_bk_{os.getpid()}"


def _url(database_url: str, name: str) -> str:
    return make_url(database_url).set(database=name).render_as_string(hide_password=False)


def _admin(database_url: str) -> str:
    return _url(database_url, "postgres")


def _drop(database_url: str, name: str) -> None:
    with psycopg.connect(libpq_url(_admin(database_url)), autocommit=True) as c:
        c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _exists(database_url: str, name: str) -> bool:
    with psycopg.connect(libpq_url(_admin(database_url)), autocommit=True) as c:
        return c.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is not None


def _counts(url: str) -> dict[str, int]:
    with psycopg.connect(libpq_url(url)) as c:
        names = [r[0] for r in c.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
                                         "AND tablename <> 'spatial_ref_sys'")]
        return {n: c.execute(f'SELECT count(*) FROM "{n}"').fetchone()[0] for n in names}


def _sums(url: str):
    with psycopg.connect(libpq_url(url)) as c:
        with c.cursor() as cur:
            return table_sums(cur)


@pytest.fixture(scope="module")
def bin_dir(settings):
    return find_bin_dir(settings)


@pytest.fixture(scope="module")
def source(database_url, township_address_builder):
    """A database of its own (committed rows must not leak into the session's): migrated, the
    reference divisions, five addresses."""
    from loaders.reference import load_reference

    _drop(database_url, SOURCE)
    with psycopg.connect(libpq_url(_admin(database_url)), autocommit=True) as c:
        c.execute(f"CREATE DATABASE \"{SOURCE}\" TEMPLATE template0 ENCODING 'UTF8' LOCALE 'C.UTF-8'")
    url = _url(database_url, SOURCE)
    upgrade(url)
    eng = create_engine(url)
    with eng.begin() as conn:
        load_reference(conn, actor="tests")
        for n in range(1, 6):
            township_address_builder(conn, "330503100", n, "𬇙塘路")
    eng.dispose()
    yield url
    _drop(database_url, SOURCE)


@pytest.fixture(scope="module")
def backup_file(source, bin_dir, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("bk") / "registry.backup"
    backup(source, out, bin_dir)
    return out


@pytest.fixture()
def target(database_url):
    name = f"registry_rs_{os.getpid()}"
    _drop(database_url, name)
    yield name
    _drop(database_url, name)


def test_should_restore_a_backup_into_a_fresh_database_equal_table_by_table(database_url, source, backup_file,
                                                                          bin_dir, target):
    manifest = read_manifest(backup_file)
    assert manifest["tables"]["addresses"]["rows"] == 5
    assert manifest["tables"]["divisions"]["rows"] > 1000
    restore(backup_file, _admin(database_url), target, bin_dir)
    restored = _url(database_url, target)
    direct_source, direct_restored = _counts(source), _counts(restored)
    assert direct_restored == direct_source
    assert {n: t["rows"] for n, t in manifest["tables"].items()} == direct_restored
    assert _sums(restored) == _sums(source)
    with psycopg.connect(libpq_url(restored)) as c:  # the sequences come back too: no id is reused
        c.execute("SELECT nextval(pg_get_serial_sequence('addresses', 'id'))")


def test_should_refuse_to_restore_over_an_existing_database(database_url, source, backup_file, bin_dir):
    with pytest.raises(Conflict, match=SOURCE):
        restore(backup_file, _admin(database_url), SOURCE, bin_dir)
    assert _counts(source)["addresses"] == 5


def _rewrite(src: Path, dst: Path, *, manifest=None, dump=None) -> None:
    with tarfile.open(src) as tin, tarfile.open(dst, "w") as tout:
        for m in tin.getmembers():
            data = tin.extractfile(m).read()
            if m.name == "manifest.json" and manifest is not None:
                data = json.dumps(manifest(json.loads(data))).encode()
            if m.name == "registry.dump" and dump is not None:
                data = dump(data)
            m.size = len(data)
            tout.addfile(m, io.BytesIO(data))


def test_should_refuse_a_truncated_file_clearly(database_url, backup_file, bin_dir, target, tmp_path):
    cut = tmp_path / "cut.backup"
    data = backup_file.read_bytes()
    for size in (len(data) // 2, 300, 0):
        cut.write_bytes(data[:size])
        with pytest.raises(BackupError, match="cut short|not a whole|corrupted"):
            restore(cut, _admin(database_url), target, bin_dir)
        assert not _exists(database_url, target)


def test_should_refuse_a_corrupted_dump_by_its_checksum(database_url, backup_file, bin_dir, target, tmp_path):
    bad = tmp_path / "bad.backup"

    def flip(data: bytes) -> bytes:
        k = len(data) // 2
        return data[:k] + bytes([data[k] ^ 0xFF]) + data[k + 1:]

    _rewrite(backup_file, bad, dump=flip)
    with pytest.raises(BackupError, match="SHA-256"):
        restore(bad, _admin(database_url), target, bin_dir)
    assert not _exists(database_url, target)


def test_should_refuse_a_schema_version_this_code_does_not_know(database_url, backup_file, bin_dir, target,
                                                               tmp_path):
    future = tmp_path / "future.backup"
    _rewrite(backup_file, future, manifest=lambda m: {**m, "schema_version": "9999_from_the_future"})
    with pytest.raises(BackupError, match="9999_from_the_future") as info:
        restore(future, _admin(database_url), target, bin_dir)
    assert info.value.parameter == "schema_version"
    assert not _exists(database_url, target)


def test_should_name_the_table_whose_restored_rows_differ_from_the_manifest(database_url, backup_file, bin_dir,
                                                                            target, tmp_path):
    lying = tmp_path / "lying.backup"

    def more_addresses(m):
        m["tables"]["addresses"]["rows"] += 1
        return m

    _rewrite(backup_file, lying, manifest=more_addresses)
    with pytest.raises(BackupError, match="addresses") as info:
        restore(lying, _admin(database_url), target, bin_dir)
    assert info.value.details["tables"] == ["addresses"]
    assert not _exists(database_url, target)  # the half-checked copy is not left behind


def test_should_refuse_a_file_that_is_not_a_backup(database_url, bin_dir, target, tmp_path):
    other = tmp_path / "notes.txt"
    other.write_text("地址\n")
    with pytest.raises(BackupError, match="not a whole registry backup"):
        restore(other, _admin(database_url), target, bin_dir)


def test_cli_should_back_up_and_restore_with_a_one_line_answer(database_url, source, target, tmp_path,
                                                               monkeypatch):
    from loaders.cli import app

    monkeypatch.setenv("REGISTRY_DATABASE_URL", source)
    get_settings.cache_clear()
    try:
        out = tmp_path / "cli.backup"
        res = CliRunner().invoke(app, ["backup", "-o", str(out)])
        assert res.exit_code == 0, res.output
        assert "addresses" not in res.output and "tables" in res.output
        res = CliRunner().invoke(app, ["restore", str(out), "--into", target])
        assert res.exit_code == 0, res.output
        assert _counts(_url(database_url, target)) == _counts(source)
        res = CliRunner().invoke(app, ["restore", str(tmp_path / "missing.backup"), "--into", target + "x"])
        assert res.exit_code == 1 and "no backup file" in res.output
    finally:
        get_settings.cache_clear()


# --- into a fresh cluster -------------------------------------------------------------------------
FRESH_PORTS = range(55450, 55460)  # this test's ports (the managed cluster is on 55432)
FRESH_CONF = {"shared_buffers": "128MB", "max_connections": "20", "max_wal_size": "1GB"}


def _free_port() -> int:
    import socket

    for port in FRESH_PORTS:
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    pytest.skip(f"no free port in {FRESH_PORTS.start}–{FRESH_PORTS.stop - 1} for a fresh cluster")


@pytest.fixture()
def fresh_cluster(settings):
    """A new PostgreSQL + PostGIS cluster (initdb) in a folder of its own, stopped and removed afterwards
    even when the test fails. Under root the cluster runs as `pg_os_user`: the folder is under /var/tmp."""
    import shutil
    import tempfile

    from registry.db.cluster import ManagedCluster

    folder = Path(tempfile.mkdtemp(prefix="registry-fresh-", dir="/var/tmp"))
    folder.chmod(0o755)
    cluster = ManagedCluster(settings.model_copy(update={"data_dir": folder / "pgdata", "pg_port": _free_port(),
                                                         "database_url": None}))
    try:
        cluster.init()
        with open(cluster.data_dir / "postgresql.auto.conf", "a", encoding="utf-8") as conf:
            conf.write("".join(f"{k} = {v}\n" for k, v in FRESH_CONF.items()))  # a small test server
        cluster.start()
        yield cluster
    finally:
        try:
            cluster.stop()
        finally:
            shutil.rmtree(folder, ignore_errors=True)


def _rows_md5(url: str) -> dict[str, tuple[int, str]]:
    """Independently of the manifest's checksums: per table, the row count and the md5 of all its rows'
    text, ordered by that text (timestamps in UTC)."""
    with psycopg.connect(libpq_url(url)) as c:
        c.execute("SET TimeZone = 'UTC'")
        c.execute("SET extra_float_digits = 1")
        names = [r[0] for r in c.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
                                         "AND tablename <> 'spatial_ref_sys' ORDER BY 1")]
        return {n: tuple(c.execute(f"""SELECT count(*), md5(coalesce(string_agg(r, E'\\n' ORDER BY r), ''))
                                       FROM (SELECT t::text AS r FROM "{n}" t) s""").fetchone()) for n in names}


def _schema(url: str, bin_dir: Path) -> list[str]:
    """The schema as pg_dump writes it (tables, indexes, constraints, triggers, functions, extensions)."""
    import subprocess

    out = subprocess.run([str(bin_dir / "pg_dump"), "--schema-only", "--no-owner", "--dbname", libpq_url(url)],
                         capture_output=True, text=True, check=True).stdout
    return [line for line in out.splitlines() if not line.startswith(("--", "\\restrict", "\\unrestrict"))]


def _sequences(url: str) -> dict[str, int]:
    with psycopg.connect(libpq_url(url)) as c:
        return dict(c.execute("SELECT sequencename, coalesce(last_value, 0) FROM pg_sequences ORDER BY 1").fetchall())


def test_should_restore_into_a_fresh_cluster_equal_table_by_table_and_refuse_damaged_files_there(
        source, backup_file, bin_dir, fresh_cluster, tmp_path, monkeypatch):
    from loaders.cli import app

    monkeypatch.setenv("REGISTRY_DATABASE_URL", fresh_cluster.url("registry"))
    get_settings.cache_clear()
    try:
        res = CliRunner().invoke(app, ["restore", str(backup_file)])
        assert res.exit_code == 0, res.output
        assert "verified" in res.output
        restored = fresh_cluster.url("registry")
        manifest = read_manifest(backup_file)
        sums = _sums(restored)
        assert {n: (t["rows"], t["checksum"]) for n, t in manifest["tables"].items()} == \
               {n: (s.rows, s.checksum) for n, s in sums.items()}
        assert _rows_md5(restored) == _rows_md5(source)
        assert _schema(restored, bin_dir) == _schema(source, bin_dir)
        assert _sequences(restored) == _sequences(source)
        with psycopg.connect(libpq_url(restored)) as c:
            assert c.execute("SELECT postgis_lib_version() IS NOT NULL").fetchone()[0]
            assert c.execute("SELECT version_num FROM alembic_version").fetchone()[0] == manifest["schema_version"]

        def databases() -> list[str]:
            with psycopg.connect(libpq_url(fresh_cluster.url("postgres"))) as c:
                return [r[0] for r in c.execute("SELECT datname FROM pg_database ORDER BY 1")]

        untouched = (databases(), _rows_md5(restored))
        future, bad = tmp_path / "future.backup", tmp_path / "bad.backup"
        _rewrite(backup_file, future, manifest=lambda m: {**m, "schema_version": "9999_from_the_future"})
        _rewrite(backup_file, bad, dump=lambda d: d[:len(d) // 2] + bytes([d[len(d) // 2] ^ 0xFF]) + d[len(d) // 2 + 1:])
        for damaged, says in ((future, "9999_from_the_future"), (bad, "SHA-256")):
            for into in ("registry_copy", "registry"):  # a new database, and over the restored one
                res = CliRunner().invoke(app, ["restore", str(damaged), "--into", into])
                assert res.exit_code == 1, res.output
                assert (says in res.output or into == "registry" and "exists" in res.output), res.output
                assert "Traceback" not in res.output
                assert (databases(), _rows_md5(restored)) == untouched
        res = CliRunner().invoke(app, ["restore", str(backup_file)])  # over the restored database: refused
        assert res.exit_code == 1 and "exists" in res.output
        assert (databases(), _rows_md5(restored)) == untouched
    finally:
        get_settings.cache_clear()
