"""Fixtures for the boundary tests: a small generated city (data/generate) loaded by the city
loader — which derives the county and township lines and the synthetic markers — committed in a
database of its own (session scope, dropped at the end); `city_conn` is a connection to it in a
transaction rolled back per test, `city_client` the API on that connection."""
from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Connection

from city_databases import CommittedCity as City
from city_databases import client_on, committed_city, rolled_back

CITY_SEED = 5


@pytest.fixture(scope="session")
def city(database_url: str, tmp_path_factory) -> Iterator[City]:
    from data.generate.addresses import MIN_ADDRESSES

    with committed_city(database_url, tmp_path_factory, suffix="bounds", seed=CITY_SEED,
                        addresses=MIN_ADDRESSES) as built:
        yield built


@pytest.fixture()
def city_conn(city: City) -> Iterator[Connection]:
    with rolled_back(city.engine) as connection:
        yield connection


@pytest.fixture()
def city_client(city_conn: Connection, city: City, app_settings):
    with client_on(city.engine, city_conn, app_settings) as c:
        yield c
