"""Migrations bring an empty database to the schema, and the history trigger keeps its promises."""
import pytest
from sqlalchemy import create_engine, insert, inspect, select, text, update
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from registry.db.migrate import current_revision, downgrade, upgrade
from registry.db.tables import VERSIONED_TABLES, change_sets, metadata, place_names


@pytest.fixture()
def empty_database_url(database_url):
    url = make_url(database_url)
    name = url.database + "_empty"
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        c.exec_driver_sql(f"CREATE DATABASE \"{name}\" TEMPLATE template0 ENCODING 'UTF8' LOCALE 'C.UTF-8'")
    yield url.set(database=name).render_as_string(hide_password=False)
    with admin.connect() as c:
        c.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.dispose()


def test_should_create_every_table_on_an_empty_database(empty_database_url):
    upgrade(empty_database_url)
    eng = create_engine(empty_database_url)
    try:
        tables = set(inspect(eng).get_table_names())
        assert set(metadata.tables) <= tables
        assert {f"{t}_history" for t in VERSIONED_TABLES} <= tables
        with eng.connect() as c:
            assert c.execute(text("SELECT extname FROM pg_extension WHERE extname='postgis'")).scalar() == "postgis"
    finally:
        eng.dispose()
    assert current_revision(empty_database_url) is not None


def test_should_downgrade_and_upgrade_again(empty_database_url):
    upgrade(empty_database_url)
    downgrade(empty_database_url, "base")
    assert current_revision(empty_database_url) is None
    upgrade(empty_database_url)
    assert current_revision(empty_database_url) is not None


def test_should_use_a_utf8_character_type_so_trigrams_see_chinese(conn):
    ctype = conn.execute(text("SELECT datctype FROM pg_database WHERE datname = current_database()")).scalar()
    assert "UTF-8" in ctype.upper() or "UTF8" in ctype.upper()
    assert conn.execute(text("SELECT similarity('爱山街道', '艾山街道')")).scalar() > 0


def _place(conn, name="测试路"):
    county = conn.execute(text("SELECT id FROM divisions WHERE level='county' ORDER BY id LIMIT 1")).scalar()
    return conn.execute(
        insert(place_names).values(category="road", name=name, division_id=county, county_id=county)
        .returning(place_names.c.id)
    ).scalar_one()


def test_should_keep_the_old_version_in_history_on_update(conn):
    pid = _place(conn)
    conn.execute(update(place_names).where(place_names.c.id == pid).values(name="新测试路"))
    current = conn.execute(select(place_names.c.name, place_names.c.version).where(place_names.c.id == pid)).one()
    assert tuple(current) == ("新测试路", 2)
    old = conn.execute(text("SELECT name, version, valid_to FROM place_names_history WHERE id=:i"), {"i": pid}).one()
    assert old.name == "测试路" and old.version == 1 and old.valid_to is not None


def test_should_not_write_a_version_for_a_no_op_update(conn):
    pid = _place(conn)
    conn.execute(update(place_names).where(place_names.c.id == pid).values(name="测试路"))
    assert conn.execute(text("SELECT count(*) FROM place_names_history WHERE id=:i"), {"i": pid}).scalar() == 0


def test_should_refuse_to_delete_a_versioned_row(conn):
    pid = _place(conn)
    with pytest.raises(DBAPIError, match="never deleted"):
        with conn.begin_nested():
            conn.execute(text("DELETE FROM place_names WHERE id=:i"), {"i": pid})


def test_should_refuse_to_change_an_identifier(conn):
    pid = _place(conn)
    with pytest.raises(DBAPIError, match="never changes"):
        with conn.begin_nested():
            conn.execute(text("UPDATE place_names SET id = id + 100000 WHERE id=:i"), {"i": pid})


def test_should_refuse_an_unknown_change_set_status(conn):
    with pytest.raises(DBAPIError):
        with conn.begin_nested():
            conn.execute(insert(change_sets).values(kind="edit", author="t", status="done"))
