"""Fixtures for the OGC API tests: a small generated city (data/generate) loaded by the city loader
into a database of its own, committed (session scope, dropped at the end) so that a real server
process (uvicorn, for GDAL's OAPIF driver) can read it too; `ogc_conn` is a connection to it in a
transaction rolled back per test, `ogc_client` the API on that connection."""
from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Connection

from city_databases import CommittedCity as City
from city_databases import client_on, committed_city, rolled_back

CITY_SEED = 7


@pytest.fixture(scope="session")
def ogc_city(database_url: str, tmp_path_factory) -> Iterator[City]:
    from data.generate.addresses import MIN_ADDRESSES

    with committed_city(database_url, tmp_path_factory, suffix="ogc", seed=CITY_SEED,
                        addresses=MIN_ADDRESSES) as built:
        yield built


@pytest.fixture()
def ogc_conn(ogc_city: City) -> Iterator[Connection]:
    with rolled_back(ogc_city.engine) as connection:
        yield connection


@pytest.fixture()
def ogc_client(ogc_conn: Connection, ogc_city: City, app_settings):
    with client_on(ogc_city.engine, ogc_conn, app_settings) as c:
        yield c
