"""Fixtures for the inspection tests: a small generated city (township and village polygons,
addresses) with its boundary lines and markers derived by the loader (loaders/city.py calls
registry.boundaries and data.generate.markers), committed in a database of its own once per
session; each test works in a transaction on it that is rolled back.
"""
from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from sqlalchemy import Connection, Engine, create_engine, text
from sqlalchemy.engine import make_url

CITY_ADDRESSES = 2000
ROUND = 4


@dataclass
class City:
    url: str
    engine: Engine


@pytest.fixture(scope="session")
def inspection_city(database_url: str, tmp_path_factory) -> Iterator[City]:
    from data.generate import generate_city
    from loaders.city import load_city
    from loaders.reference import load_reference
    from registry.db.migrate import upgrade

    base = make_url(database_url)
    name = f"registry_test_{os.getpid()}_insp"
    admin = create_engine(base.set(database="postgres").render_as_string(hide_password=False),
                          isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        c.exec_driver_sql(f"CREATE DATABASE \"{name}\" TEMPLATE template0 ENCODING 'UTF8' LOCALE 'C.UTF-8'")
    url = base.set(database=name).render_as_string(hide_password=False)
    try:
        upgrade(url)
        eng = create_engine(url, pool_size=4)
        with eng.begin() as conn:
            load_reference(conn, actor="tests")
        directory = tmp_path_factory.mktemp("insp_city")
        generate_city(directory, addresses=CITY_ADDRESSES, seed=5)
        load_city(eng, directory, actor="tests")
        with eng.begin() as conn:
            from registry.inspection import create_round

            create_round(conn, ROUND, year=2024, year_to=2026, scope="湖州市全域", actor="tests")
        yield City(url, eng)
        eng.dispose()
    finally:
        with admin.connect() as c:
            c.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@pytest.fixture()
def cconn(inspection_city: City) -> Iterator[Connection]:
    """A connection to the inspection city inside a transaction rolled back after the test."""
    connection = inspection_city.engine.connect()
    trans = connection.begin()
    try:
        yield connection
    finally:
        trans.rollback()
        connection.close()


@pytest.fixture()
def cclient(cconn: Connection, inspection_city: City, app_settings):
    from fastapi.testclient import TestClient

    from api.app import create_app
    from api.deps import get_conn

    app = create_app(app_settings, engine=inspection_city.engine)

    def _conn():
        yield cconn

    app.dependency_overrides[get_conn] = _conn
    with TestClient(app) as c:
        yield c


@pytest.fixture()
def editor_key(cconn: Connection) -> str:
    from registry.keys import create_key

    return create_key(cconn, agency="界线科", scopes=["editor"]).secret


@pytest.fixture()
def agency_key(cconn: Connection) -> str:
    from registry.keys import create_key

    return create_key(cconn, agency="公安局", scopes=["agency"]).secret


def township_line(conn: Connection) -> dict:
    """A township line inside one county (no county line under it) with markers and addresses
    near it on both sides, the one the tests re-survey."""
    row = conn.execute(text("""
        SELECT l.id, l.code, l.left_division_id, l.right_division_id, l.length_m
        FROM boundary_lines l
        WHERE l.level = 'township' AND l.status = 'active' AND l.right_division_id IS NOT NULL
          AND l.county_line_id IS NULL
          AND (SELECT count(*) FROM boundary_markers m WHERE m.boundary_line_id = l.id AND m.status = 'active') >= 3
          AND ST_NumGeometries(l.geom) = 1 AND ST_NPoints(l.geom) >= 6
        ORDER BY l.length_m DESC LIMIT 1
    """)).mappings().first()
    assert row is not None, "the generated city has no township line with markers"
    return dict(row)
