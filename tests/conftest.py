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
    return settings.model_copy(update={"key_cache_seconds": 0.0})


@pytest.fixture()
def client(conn: Connection, engine: Engine, app_settings: Settings):
    """A TestClient whose requests run inside the test's rolled-back transaction."""
    from fastapi.testclient import TestClient

    from api.app import create_app
    from api.deps import get_conn

    app = create_app(app_settings, engine=engine)

    def _conn():
        yield conn

    app.dependency_overrides[get_conn] = _conn
    with TestClient(app) as c:
        yield c
