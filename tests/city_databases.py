"""Shared builders for the test folders that need a generated city committed in a database of its
own (so that a real server process or several connections can read it): the database made, migrated,
loaded with the reference divisions and the city, and dropped at the end; a connection in a
transaction rolled back per test; and the API on that connection."""
from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Connection, Engine, create_engine
from sqlalchemy.engine import make_url


@dataclass
class CommittedCity:
    url: str
    engine: Engine
    directory: Path
    loaded: list


@contextmanager
def scratch_database(database_url: str, suffix: str) -> Iterator[str]:
    """The URL of a new, migrated database `<test database>_<suffix>` on the same server, dropped afterwards."""
    from registry.db.migrate import upgrade

    base = make_url(database_url)
    name = f"{base.database}_{suffix}"
    admin = create_engine(base.set(database="postgres").render_as_string(hide_password=False),
                          isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        c.exec_driver_sql(f"CREATE DATABASE \"{name}\" TEMPLATE template0 ENCODING 'UTF8' LOCALE 'C.UTF-8'")
    url = base.set(database=name).render_as_string(hide_password=False)
    try:
        upgrade(url)
        yield url
    finally:
        with admin.connect() as c:
            c.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@contextmanager
def reference_database(database_url: str, suffix: str, *, adjust: bool = True) -> Iterator[Engine]:
    """An engine on a new database `<test database>_<suffix>` holding the reference divisions
    (`adjust=False`: as they were before the real township adjustments), dropped afterwards."""
    from loaders.reference import load_reference

    with scratch_database(database_url, suffix) as url:
        eng = create_engine(url)
        try:
            with eng.begin() as conn:
                load_reference(conn, actor="tests", adjust=adjust)
            yield eng
        finally:
            eng.dispose()


@contextmanager
def committed_city(database_url: str, tmp_path_factory, *, suffix: str, seed: int, addresses: int,
                   pool_size: int = 3, prepare: Callable[[Connection], None] | None = None) -> Iterator[CommittedCity]:
    """A database `<test database>_<suffix>` holding the reference divisions and a generated city."""
    from data.generate import generate_city
    from loaders.city import load_city
    from loaders.reference import load_reference

    with scratch_database(database_url, suffix) as url:
        eng = create_engine(url, pool_size=pool_size)
        try:
            with eng.begin() as conn:
                load_reference(conn, actor="tests")
            directory = tmp_path_factory.mktemp(f"{suffix}_city")
            generate_city(directory, addresses=addresses, seed=seed)
            loaded = load_city(eng, directory, actor="tests")
            if prepare is not None:
                with eng.begin() as conn:
                    prepare(conn)
            yield CommittedCity(url, eng, directory, loaded)
        finally:
            eng.dispose()


@contextmanager
def rolled_back(engine: Engine) -> Iterator[Connection]:
    """A connection inside a transaction that is rolled back afterwards."""
    connection = engine.connect()
    trans = connection.begin()
    try:
        yield connection
    finally:
        trans.rollback()
        connection.close()


@contextmanager
def client_on(engine: Engine, conn: Connection, settings):
    """A TestClient of the API whose requests run on `conn`."""
    from fastapi.testclient import TestClient

    from api.app import create_app
    from api.deps import get_conn

    app = create_app(settings, engine=engine)

    def _conn():
        yield conn

    app.dependency_overrides[get_conn] = _conn
    with TestClient(app) as c:
        yield c
