"""Test fixtures: one migrated database per test session on a real PostgreSQL + PostGIS, a
transaction rolled back per test, and builders with defaults.

The database is the managed cluster (started on demand) unless REGISTRY_DATABASE_URL points at
another server; each session uses its own database `registry_test_<pid>`, dropped at the end.
"""
from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from sqlalchemy import Connection, Engine, create_engine
from sqlalchemy.engine import make_url

from registry.db.cluster import ManagedCluster
from registry.db.migrate import upgrade
from registry.settings import Settings

# The search gazetteer's shared generations (REGISTRY_GAZETTEER_DIR) of this session go to a
# folder of its own, removed at the end, not to var/ (servers started by the tests inherit it).
_GAZETTEER_DIR = None
if "REGISTRY_GAZETTEER_DIR" not in os.environ:
    import tempfile

    _GAZETTEER_DIR = tempfile.mkdtemp(prefix="registry-test-gazetteer-")
    os.environ["REGISTRY_GAZETTEER_DIR"] = _GAZETTEER_DIR


@pytest.fixture(scope="session", autouse=True)
def _gazetteer_dir() -> Iterator[None]:
    yield
    if _GAZETTEER_DIR is not None:
        import shutil

        shutil.rmtree(_GAZETTEER_DIR, ignore_errors=True)


def _admin_and_test_url(settings: Settings, name: str) -> tuple[str, str]:
    if settings.database_url:
        base = make_url(settings.database_url)
        return (base.set(database="postgres").render_as_string(hide_password=False),
                base.set(database=name).render_as_string(hide_password=False))
    cluster = ManagedCluster(settings)
    cluster.start()
    return cluster.url("postgres"), cluster.url(name)


@pytest.fixture(scope="session")
def settings() -> Settings:
    return Settings()


@pytest.fixture(scope="session")
def database_url(settings: Settings) -> Iterator[str]:
    name = f"registry_test_{os.getpid()}"
    admin_url, url = _admin_and_test_url(settings, name)
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        c.exec_driver_sql(f"CREATE DATABASE \"{name}\" TEMPLATE template0 ENCODING 'UTF8' LOCALE 'C.UTF-8'")
    upgrade(url)
    yield url
    with admin.connect() as c:
        c.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.dispose()


@pytest.fixture(scope="session")
def engine(database_url: str) -> Iterator[Engine]:
    eng = create_engine(database_url, pool_size=5)
    yield eng
    eng.dispose()


@pytest.fixture(scope="session")
def reference(engine: Engine) -> dict[str, int]:
    """The real divisions and county polygons, loaded once for the session (committed)."""
    from loaders.reference import load_reference

    with engine.begin() as conn:
        return load_reference(conn, actor="tests")


@pytest.fixture()
def conn(engine: Engine, reference) -> Iterator[Connection]:
    """A connection inside a transaction that is rolled back after the test."""
    connection = engine.connect()
    trans = connection.begin()
    try:
        yield connection
    finally:
        trans.rollback()
        connection.close()


@pytest.fixture()
def app_settings(settings: Settings) -> Settings:
    # anonymous rate limits off: every test's TestClient is the same client address (tests/api/test_rate_limits.py)
    return settings.model_copy(update={"key_cache_seconds": 0.0, "rate_limit_public_per_minute": 0,
                                       "rate_limit_report_per_minute": 0})


@pytest.fixture()
def client(conn: Connection, engine: Engine, app_settings: Settings):
    """A TestClient whose requests run inside the test's rolled-back transaction."""
    from city_databases import client_on

    with client_on(engine, conn, app_settings) as c:
        yield c


def insert_township_address(conn: Connection, township_nbs: str, number: int, street: str = "人民路") -> int:
    """Insert an active address ({street}{number}号) in the first village of the township whose NBS
    code is given — the registry's village and address codes are NBS-based — and return its id."""
    from sqlalchemy import text

    from registry.text import compose_address

    v = conn.execute(text("""
        SELECT v.id, v.nbs_code, v.name, t.id AS township_id, t.name AS township, c.id AS county_id, c.name AS county
        FROM divisions v JOIN divisions t ON t.id = v.parent_id JOIN divisions c ON c.id = t.parent_id
        WHERE t.nbs_code = :t AND v.level = 'village' AND v.status = 'active' ORDER BY v.nbs_code LIMIT 1
    """), {"t": township_nbs}).mappings().one()
    street_id = conn.execute(text(
        "SELECT id FROM place_names WHERE category = 'road' AND name = :n AND division_id = :d ORDER BY id LIMIT 1"),
        {"n": street, "d": v["township_id"]}).scalar_one_or_none()
    if street_id is None:
        street_id = conn.execute(text("""
            INSERT INTO place_names (category, name, division_id, county_id) VALUES ('road', :n, :d, :c)
            RETURNING id"""), {"n": street, "d": v["township_id"], "c": v["county_id"]}).scalar_one()
    seq = conn.execute(text("SELECT coalesce(max(local_seq), 0) + 1 FROM addresses WHERE division_id = :d"),
                       {"d": v["id"]}).scalar_one()
    full = compose_address(county=v["county"], township=v["township"], village=v["name"], street=street,
                           number=f"{number}号")
    return conn.execute(text("""
        INSERT INTO addresses (division_id, street_id, number, number_main, full_text, code, local_seq, status, geom)
        VALUES (:d, :s, :num, :main, :full, :code, :seq, 'active', ST_SetSRID(ST_MakePoint(120.09, 30.87), 4490))
        RETURNING id
    """), {"d": v["id"], "s": street_id, "num": f"{number}号", "main": number, "full": full,
           "code": f"{v['nbs_code']}{seq:08d}", "seq": seq}).scalar_one()


@pytest.fixture(scope="session")
def township_address_builder():
    """`insert_township_address` for fixtures with a connection of their own (module scope)."""
    return insert_township_address


@pytest.fixture()
def township_address(conn: Connection):
    """`insert_township_address` in the test's transaction, numbering the doors 1号, 2号 … unless told.
    For the tests of the township codes the two authorities gave to different townships."""
    import itertools

    numbers = itertools.count(1)

    def _make(township_nbs: str, number: int | None = None, street: str = "人民路") -> int:
        return insert_township_address(conn, township_nbs, number if number is not None else next(numbers), street)

    return _make
