"""Fixtures for the OGC API tests: a small generated city (data/generate) loaded by the city loader
into a database of its own, committed (session scope, dropped at the end) so that a real server
process (uvicorn, for GDAL's OAPIF driver) can read it too; `ogc_conn` is a connection to it in a
transaction rolled back per test, `ogc_client` the API on that connection."""
from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from sqlalchemy import Connection, Engine, create_engine
from sqlalchemy.engine import make_url

CITY_SEED = 7


@dataclass
class City:
    url: str
    engine: Engine
    loaded: list


@pytest.fixture(scope="session")
def ogc_city(database_url: str, tmp_path_factory) -> Iterator[City]:
    from data.generate import generate_city
    from data.generate.addresses import MIN_ADDRESSES
    from loaders.city import load_city
    from loaders.reference import load_reference
    from registry.db.migrate import upgrade

    base = make_url(database_url)
    name = f"registry_test_{os.getpid()}_ogc"
    admin = create_engine(base.set(database="postgres").render_as_string(hide_password=False),
                          isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        c.exec_driver_sql(f"CREATE DATABASE \"{name}\" TEMPLATE template0 ENCODING 'UTF8' LOCALE 'C.UTF-8'")
    url = base.set(database=name).render_as_string(hide_password=False)
    try:
        upgrade(url)
        eng = create_engine(url, pool_size=3)
        with eng.begin() as conn:
            load_reference(conn, actor="tests")
        directory = tmp_path_factory.mktemp("ogc_city")
        generate_city(directory, addresses=MIN_ADDRESSES, seed=CITY_SEED)
        loaded = load_city(eng, directory, actor="tests")
        yield City(url, eng, loaded)
        eng.dispose()
    finally:
        with admin.connect() as c:
            c.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@pytest.fixture()
def ogc_conn(ogc_city: City) -> Iterator[Connection]:
    connection = ogc_city.engine.connect()
    trans = connection.begin()
    try:
        yield connection
    finally:
        trans.rollback()
        connection.close()


@pytest.fixture()
def ogc_client(ogc_conn: Connection, ogc_city: City, app_settings):
    from fastapi.testclient import TestClient

    from api.app import create_app
    from api.deps import get_conn

    app = create_app(app_settings, engine=ogc_city.engine)

    def _conn():
        yield ogc_conn

    app.dependency_overrides[get_conn] = _conn
    with TestClient(app) as c:
        yield c
