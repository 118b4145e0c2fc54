"""A few doors, a facility and a street around one point, in the test's transaction, and the
z/x/y of the tiles that cover them."""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import pytest
from sqlalchemy import Connection, text

POINT = (120.0885, 30.8725)  # 爱山街道, 吴兴区


def tile_of(lon: float, lat: float, z: int) -> tuple[int, int, int]:
    n = 1 << z
    x = int((lon + 180.0) / 360.0 * n)
    y = int((1.0 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2.0 * n)
    return z, x, y


@dataclass
class Doors:
    ids: list[int] = field(default_factory=list)
    facility: int = 0
    street: int = 0
    village_code: str = ""

    def tile(self, z: int) -> tuple[int, int, int]:
        return tile_of(*POINT, z)


def add_doors(conn: Connection, count: int = 12) -> Doors:
    v = conn.execute(text("""
        SELECT v.id, v.nbs_code, t.id AS township_id, t.parent_id AS county_id FROM divisions v
        JOIN divisions t ON t.id = v.parent_id
        WHERE t.nbs_code = '330502001' AND v.level = 'village' ORDER BY v.nbs_code LIMIT 1""")).mappings().one()
    street = conn.execute(text("""
        INSERT INTO place_names (category, name, division_id, county_id, geom)
        VALUES ('road', '瓦片路', :t, :c, ST_SetSRID(ST_MakeLine(ST_MakePoint(:x0, :y), ST_MakePoint(:x1, :y)), 4490))
        RETURNING id"""), {"t": v["township_id"], "c": v["county_id"], "x0": POINT[0] - 0.002, "x1": POINT[0] + 0.003,
                           "y": POINT[1]}).scalar_one()
    doors = Doors(street=street, village_code=v["nbs_code"])
    for n in range(1, count + 1):
        doors.ids.append(conn.execute(text("""
            INSERT INTO addresses (division_id, street_id, number, number_main, full_text, code, local_seq, status, geom)
            VALUES (:d, :s, :num, :n, :full, :code, :seq, 'active', ST_SetSRID(ST_MakePoint(:lon, :lat), 4490))
            RETURNING id"""), {"d": v["id"], "s": street, "num": f"{n}号", "n": n,
                               "full": f"浙江省湖州市吴兴区爱山街道瓦片路{n}号", "code": f"{v['nbs_code']}{90000 + n:08d}",
                               "seq": 90000 + n, "lon": POINT[0] + n * 0.0002, "lat": POINT[1] + 0.0001}).scalar_one())
    doors.facility = conn.execute(text("""
        INSERT INTO facilities (category, name, division_id, geom)
        VALUES ('幸福邻里中心', '瓦片路幸福邻里中心', :d, ST_SetSRID(ST_MakePoint(:lon, :lat), 4490)) RETURNING id"""),
        {"d": v["id"], "lon": POINT[0] + 0.001, "lat": POINT[1] - 0.0002}).scalar_one()
    return doors


@pytest.fixture(name="tile_of")
def tile_of_fixture():
    return tile_of


@pytest.fixture()
def doors(conn: Connection) -> Doors:
    return add_doors(conn)
