"""Fixtures for the loader tests: a small hand-made geography on the real divisions, file
writers for every input format, and a separate committed database for the CLI subprocess tests.

The geography (inside the test's rolled-back transaction): two communities of 爱山街道 (吴兴区)
get square polygons side by side; a road 人民路 (former name 解放路), a compound 凤凰小区 in
VILLAGE_A and a natural village 钱家浜 in VILLAGE_B are registered through the loaders.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest
from sqlalchemy import Connection, create_engine, text
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).parent))

from loader_helpers import (BOX_A, BOX_B, COUNTY, TOWNSHIP, VILLAGE_A, VILLAGE_B, box, load_kind, write_csv,
                            write_gis)


@dataclass
class World:
    road_id: int
    compound_id: int
    natural_id: int
    village_a: int
    village_b: int


@pytest.fixture()
def world(conn: Connection, tmp_path: Path) -> World:
    polygons = write_gis(tmp_path / "villages.geojson", [{"code": VILLAGE_A, "name": "龙庭社区"},
                                                         {"code": VILLAGE_B, "name": "衣裳街社区"}],
                         driver="GeoJSON", crs="EPSG:4326", geometry=[box(BOX_A), box(BOX_B)])
    r = load_kind(conn, "divisions", polygons)
    assert r.updated == 2, r.issues
    places = write_csv(tmp_path / "places.csv", [
        {"name": "人民路", "category": "road", "county_code": COUNTY, "township_code": TOWNSHIP,
         "former_name": "解放路", "former_until": "1981-06-30",
         "wkt": "LINESTRING(120.021 30.850, 120.039 30.850)"},
        {"name": "凤凰小区", "category": "compound", "county_code": COUNTY, "village_code": VILLAGE_A,
         "wkt": "POINT(120.026 30.850)"},
        {"name": "钱家浜", "category": "natural_village", "county_code": COUNTY, "village_code": VILLAGE_B,
         "wkt": "POINT(120.036 30.851)"},
    ], header=["name", "category", "county_code", "township_code", "village_code", "former_name", "former_until",
               "wkt"])
    r = load_kind(conn, "place-names", places)
    assert r.inserted == 3, r.issues
    ids = dict(conn.execute(text("SELECT name, id FROM place_names WHERE name IN ('人民路', '凤凰小区', '钱家浜')")).all())
    div = dict(conn.execute(text("SELECT nbs_code, id FROM divisions WHERE nbs_code IN (:a, :b)"),
                            {"a": VILLAGE_A, "b": VILLAGE_B}).all())
    return World(ids["人民路"], ids["凤凰小区"], ids["钱家浜"], div[VILLAGE_A], div[VILLAGE_B])


# --- a committed database for the tests that run the CLI in a subprocess ----------------------
@pytest.fixture(scope="session")
def committed_url(database_url: str) -> Iterator[str]:
    """A database of its own (migrated, reference loaded), dropped at the end: the subprocess
    tests commit, and the session database must keep only the reference divisions."""
    from loaders.reference import load_reference
    from registry.db.migrate import upgrade

    base = make_url(database_url)
    name = f"{base.database}_loaders"
    admin = create_engine(base.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        c.exec_driver_sql(f"CREATE DATABASE \"{name}\" TEMPLATE template0 ENCODING 'UTF8' LOCALE 'C.UTF-8'")
    url = base.set(database=name).render_as_string(hide_password=False)
    upgrade(url)
    eng = create_engine(url)
    with eng.begin() as conn:
        load_reference(conn, actor="tests")
    eng.dispose()
    yield url
    with admin.connect() as c:
        c.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.dispose()


@pytest.fixture()
def committed(committed_url: str) -> Iterator:
    eng = create_engine(committed_url)
    yield eng
    eng.dispose()


