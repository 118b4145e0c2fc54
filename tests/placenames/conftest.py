"""Builders for the place-name tests: names inserted on the real reference divisions."""
from __future__ import annotations

import pytest
from sqlalchemy import Connection, text

WUXING, AISHAN, NANXUN_TOWN = "330502", "330502003", "330503100"


def add_place(conn: Connection, name: str, township_code: str = AISHAN, category: str = "road",
              lon: float = 120.09, lat: float = 30.87) -> int:
    d = conn.execute(text("SELECT id, parent_id FROM divisions WHERE nbs_code = :c"), {"c": township_code}).one()
    return conn.execute(text("""
        INSERT INTO place_names (category, name, division_id, county_id, geom)
        VALUES (:cat, :n, :d, :c, ST_SetSRID(ST_MakePoint(:lon, :lat), 4490)) RETURNING id"""),
        {"cat": category, "n": name, "d": d.id, "c": d.parent_id, "lon": lon, "lat": lat}).scalar_one()


@pytest.fixture()
def place(conn):
    def _make(name: str, township_code: str = AISHAN, category: str = "road", **kw) -> int:
        return add_place(conn, name, township_code, category, **kw)
    return _make


@pytest.fixture()
def editor(conn):
    from registry.keys import create_key
    return {"X-API-Key": create_key(conn, agency="湖州市民政局", scopes=["editor"]).secret}
