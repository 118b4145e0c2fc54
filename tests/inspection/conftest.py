"""Fixtures for the inspection tests: a small generated city (township and village polygons,
addresses) with its boundary lines and markers derived by the loader (loaders/city.py calls
registry.boundaries and data.generate.markers), committed in a database of its own once per
session; each test works in a transaction on it that is rolled back.
"""
from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Connection, text

from city_databases import CommittedCity as City
from city_databases import client_on, committed_city, rolled_back

CITY_ADDRESSES = 2000
ROUND = 4


def _open_round(conn: Connection) -> None:
    from registry.inspection import create_round

    create_round(conn, ROUND, year=2024, year_to=2026, scope="湖州市全域", actor="tests")


@pytest.fixture(scope="session")
def inspection_city(database_url: str, tmp_path_factory) -> Iterator[City]:
    with committed_city(database_url, tmp_path_factory, suffix="insp", seed=5, addresses=CITY_ADDRESSES,
                        pool_size=4, prepare=_open_round) as built:
        yield built


@pytest.fixture()
def cconn(inspection_city: City) -> Iterator[Connection]:
    """A connection to the inspection city inside a transaction rolled back after the test."""
    with rolled_back(inspection_city.engine) as connection:
        yield connection


@pytest.fixture()
def cclient(cconn: Connection, inspection_city: City, app_settings):
    with client_on(inspection_city.engine, cconn, app_settings) as c:
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
