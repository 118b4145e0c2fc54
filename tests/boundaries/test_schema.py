"""Migration 0006: the boundary columns exist on the tables and their history, in the same order,
and the reference objects are versioned like every entity."""
import pytest
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from registry.db.migrate import downgrade, upgrade
from registry.db.tables import boundary_lines, boundary_markers, marker_reference_objects


@pytest.mark.parametrize("table", [boundary_lines, boundary_markers, marker_reference_objects])
def test_should_give_the_history_table_the_same_columns_in_the_same_order(engine, table):
    cols = [c["name"] for c in inspect(engine).get_columns(table.name)]
    hist = [c["name"] for c in inspect(engine).get_columns(f"{table.name}_history")]
    assert cols == hist == [c.name for c in table.columns]


def test_should_refuse_an_unknown_marker_condition(conn):
    with pytest.raises(DBAPIError, match="ck_boundary_markers_condition"):
        with conn.begin_nested():
            conn.execute(text("INSERT INTO boundary_markers (number, condition) VALUES ('x', 'lost')"))


def test_should_downgrade_0006_and_upgrade_again(database_url):
    url = make_url(database_url)
    name = url.database + "_b0006"
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        c.exec_driver_sql(f"CREATE DATABASE \"{name}\" TEMPLATE template0 ENCODING 'UTF8' LOCALE 'C.UTF-8'")
    try:
        target = url.set(database=name).render_as_string(hide_password=False)
        upgrade(target)
        downgrade(target, "0005")
        upgrade(target)
    finally:
        with admin.connect() as c:
            c.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()
