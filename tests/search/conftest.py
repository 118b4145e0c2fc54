"""Fixtures for the search tests.

`town`: a small hand-built city on the real reference divisions — streets, a compound, natural
villages, rural doors, facilities, heritage items, former names — inserted with SQL once per
module in a transaction that is rolled back at the end, with the gazetteer loaded from it.
`town_client`: the API bound to that transaction and that gazetteer.
`city` (session): the generated city (data/generate) loaded through the loader, committed in
the session database, when both have landed; tests that need it skip otherwise.
"""
from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from sqlalchemy import Connection, Engine, text

from city_databases import CommittedCity, committed_city
from registry.addresses import address_code
from registry.search.loading import load_gazetteer
from registry.text import compose_address, parse_house_number

_seq = itertools.count(1)


@dataclass
class Builder:
    conn: Connection
    ids: dict[str, int] = field(default_factory=dict)  # label -> id of what was built
    _local: dict[int, int] = field(default_factory=dict)

    def division(self, code: str) -> dict:
        row = self.conn.execute(text("""
            SELECT v.id, v.level, v.name, v.full_name, v.nbs_code, v.parent_id FROM divisions v
            WHERE v.nbs_code = :c OR v.mca_code = :c ORDER BY v.status LIMIT 1
        """), {"c": code}).mappings().one()
        return dict(row)

    def chain(self, division_id: int) -> dict[str, dict]:
        out: dict[str, dict] = {}
        cur = division_id
        while cur is not None:
            row = self.conn.execute(text("SELECT id, level, name, parent_id, nbs_code FROM divisions WHERE id = :i"),
                                    {"i": cur}).mappings().one()
            out[row["level"]] = dict(row)
            cur = row["parent_id"]
        return out

    def place(self, name: str, division_code: str, category: str = "road", *, lon: float = 120.09,
              lat: float = 30.87, aliases: tuple[tuple[str, str], ...] = (), label: str | None = None) -> int:
        d = self.division(division_code)
        chain = self.chain(d["id"])
        pid = self.conn.execute(text("""
            INSERT INTO place_names (category, name, division_id, county_id, geom)
            VALUES (:cat, :name, :div, :county, ST_SetSRID(ST_MakePoint(:lon, :lat), 4490)) RETURNING id
        """), {"cat": category, "name": name, "div": d["id"], "county": chain["county"]["id"],
               "lon": lon, "lat": lat}).scalar_one()
        for alias, kind in aliases:
            self.conn.execute(text("""
                INSERT INTO place_name_aliases (place_name_id, name, kind, used_from, used_until)
                VALUES (:p, :n, :k, '1966-08-01', '1981-05-01')
            """), {"p": pid, "n": alias, "k": kind})
        self.ids[label or f"{category}:{name}@{division_code}"] = pid
        return pid

    def address(self, village_code: str, *, street: int | None = None, compound: int | None = None,
                group: int | None = None, number: str = "", building: str = "", unit: str = "",
                room: str = "", lon: float = 120.09, lat: float = 30.87, status: str = "active") -> int:
        v = self.division(village_code)
        chain = self.chain(v["id"])
        names = {}
        for pid, key in ((street, "street"), (compound, "compound")):
            if pid:
                row = self.conn.execute(text("SELECT name, category FROM place_names WHERE id = :i"),
                                        {"i": pid}).one()
                names[key] = row
        std_number = parse_house_number(number).standard if number else ""
        main = parse_house_number(number).main if number else None
        compound_name = names["compound"].name if "compound" in names else None
        natural = compound_name if "compound" in names and names["compound"].category == "natural_village" else None
        full = compose_address(
            county=chain["county"]["name"], township=chain["township"]["name"], village=v["name"],
            street=names["street"].name if "street" in names else None,
            compound=None if natural else compound_name, natural_village=natural,
            group=group, number=std_number or None, building=building or None, unit=unit or None,
            room=room or None)
        seq = self._local.get(v["id"], 0) + 1
        self._local[v["id"]] = seq
        return self.conn.execute(text("""
            INSERT INTO addresses (division_id, street_id, compound_id, group_no, number, number_main, building,
                                   unit, room, full_text, code, local_seq, status, geom)
            VALUES (:div, :street, :compound, :grp, :number, :main, :bld, :unit, :room, :full, :code, :seq,
                    :status, ST_SetSRID(ST_MakePoint(:lon, :lat), 4490)) RETURNING id
        """), {"div": v["id"], "street": street, "compound": compound, "grp": f"{group}组" if group else "",
               "number": std_number, "main": main, "bld": f"{building}幢" if building and not building.endswith("幢") else building,
               "unit": f"{unit}单元" if unit and not unit.endswith("单元") else unit,
               "room": f"{room}室" if room and not room.endswith("室") else room,
               "full": full, "code": address_code(v["nbs_code"], 90000000 + next(_seq)), "seq": seq,
               "status": status, "lon": lon, "lat": lat}).scalar_one()

    def facility(self, name: str, village_code: str, category: str = "幸福邻里中心", lon=120.1, lat=30.8) -> int:
        v = self.division(village_code)
        return self.conn.execute(text("""
            INSERT INTO facilities (category, name, division_id, address_text, geom)
            VALUES (:c, :n, :d, NULL, ST_SetSRID(ST_MakePoint(:lon, :lat), 4490)) RETURNING id
        """), {"c": category, "n": name, "d": v["id"], "lon": lon, "lat": lat}).scalar_one()

    def heritage(self, name: str, division_code: str, category: str, level: str = "city",
                 former: tuple[str, ...] = (), lon=120.2, lat=30.8) -> int:
        d = self.division(division_code)
        return self.conn.execute(text("""
            INSERT INTO heritage_items (name, level, category, division_id, former_names, geom)
            VALUES (:n, :l, :c, :d, :f, ST_SetSRID(ST_MakePoint(:lon, :lat), 4490)) RETURNING id
        """), {"n": name, "l": level, "c": category, "d": d["id"], "f": list(former), "lon": lon,
               "lat": lat}).scalar_one()

    def village_square(self, code: str, lon: float, lat: float, half: float = 0.01) -> None:
        """Give a division (and its township) a square polygon for point-in-polygon tests."""
        self.conn.execute(text("""
            UPDATE divisions SET geom = ST_Multi(ST_MakeEnvelope(:x0, :y0, :x1, :y1, 4490))
            WHERE nbs_code = :c
        """), {"x0": lon - half, "y0": lat - half, "x1": lon + half, "y1": lat + half, "c": code})


# Codes of the real divisions the town is built on.
WUXING_AISHAN = "330502003"
LONGTING = "330502003003"  # 龙庭社区 (爱山街道)
YISHANGJIE = "330502003006"  # 衣裳街社区 (爱山街道)
NANXUN_TOWN = "330503100"
ZHULIANG = "330503002200"  # 祝良村 (旧馆街道, 南浔区)
DIGANG = "330503106202"  # 荻港村 (和孚镇, 南浔区)
ZHICHENG = "330522001"  # 雉城街道 (长兴县)
DEQING_WUKANG = "330521001"


def _first_village(conn: Connection, township_code: str) -> str:
    return conn.execute(text("""
        SELECT v.nbs_code FROM divisions v JOIN divisions t ON t.id = v.parent_id
        WHERE t.nbs_code = :c AND v.level = 'village' ORDER BY v.nbs_code LIMIT 1
    """), {"c": township_code}).scalar_one()


def build_town(conn: Connection) -> Builder:
    b = Builder(conn)
    # 吴兴区 爱山街道: 人民路 1–40号, 123号, 12-1号; 解放路 (former name 东方红路); 凤凰小区.
    renmin = b.place("人民路", WUXING_AISHAN, lon=120.088, lat=30.872, label="renmin_wx")
    for n in list(range(1, 41)) + [123, 125]:
        b.address(LONGTING, street=renmin, number=f"{n}号", lon=120.080 + n * 0.0002, lat=30.872)
    b.address(LONGTING, street=renmin, number="12-1号", lon=120.0824, lat=30.8722)
    b.ids["renmin_wx_123"] = b.conn.execute(text(
        "SELECT id FROM addresses WHERE street_id = :s AND number = '123号'"), {"s": renmin}).scalar_one()
    b.ids["renmin_wx_12_1"] = b.conn.execute(text(
        "SELECT id FROM addresses WHERE street_id = :s AND number = '12-1号'"), {"s": renmin}).scalar_one()
    jiefang = b.place("解放路", WUXING_AISHAN, aliases=(("东方红路", "former"),), label="jiefang")
    for n in range(1, 21):
        b.address(YISHANGJIE, street=jiefang, number=f"{n}号", lon=120.09, lat=30.875 + n * 0.0002)
    b.ids["jiefang_8"] = conn.execute(text("SELECT id FROM addresses WHERE street_id = :s AND number = '8号'"),
                                      {"s": jiefang}).scalar_one()
    renhuang = b.place("仁皇山路", WUXING_AISHAN, label="renhuang")
    for n in range(1, 11):
        b.address(YISHANGJIE, street=renhuang, number=f"{n}号", lon=120.095, lat=30.88)
    fenghuang = b.place("凤凰小区", WUXING_AISHAN, "compound", label="fenghuang")
    for bld in range(1, 7):
        for unit in (1, 2):
            for floor in (1, 2, 3):
                for r in (1, 2):
                    b.address(YISHANGJIE, compound=fenghuang, building=str(bld), unit=str(unit),
                              room=f"{floor}0{r}", lon=120.085 + bld * 0.0001, lat=30.868)
    b.ids["fenghuang_5_2_301"] = conn.execute(text(
        "SELECT id FROM addresses WHERE compound_id = :c AND building = '5幢' AND unit = '2单元' AND room = '301室'"),
        {"c": fenghuang}).scalar_one()
    # 人民路123号 also in 南浔区 and 长兴县.
    for code, label, lon, lat in ((NANXUN_TOWN, "nx", 120.42, 30.872), (ZHICHENG, "cx", 119.905, 31.01)):
        v = _first_village(conn, code)
        sid = b.place("人民路", code, lon=lon, lat=lat, label=f"renmin_{label}")
        for n in (1, 2, 3, 123):
            aid = b.address(v, street=sid, number=f"{n}号", lon=lon + n * 0.0001, lat=lat)
            if n == 123:
                b.ids[f"renmin_{label}_123"] = aid
    # Rural doors: 荻港村 natural villages with groups; 祝良村 doors without natural village.
    qjb = b.place("钱家浜", DIGANG, "natural_village", lon=120.21, lat=30.76, label="qianjiabang")
    for n in range(1, 16):
        aid = b.address(DIGANG, compound=qjb, group=3, number=f"{n}号", lon=120.21 + n * 0.0001, lat=30.76)
        if n == 12:
            b.ids["qjb_12"] = aid
    dg = b.place("荻港", DIGANG, "natural_village", lon=120.215, lat=30.765, label="digang_nv")
    for n in range(1, 11):
        aid = b.address(DIGANG, compound=dg, group=5, number=f"{n}号", lon=120.215, lat=30.765 + n * 0.0001)
        if n == 7:
            b.ids["dg_7"] = aid
    for n in range(1, 11):
        aid = b.address(ZHULIANG, group=2, number=f"{n}号", lon=120.3, lat=30.85 + n * 0.0001)
        if n == 8:
            b.ids["zl_8"] = aid
    # Other streets in other counties, for initials and pinyin ambiguity.
    b.place("英溪路", DEQING_WUKANG, label="yingxi")
    b.ids["facility_digang"] = b.facility("荻港村幸福邻里中心", DIGANG)
    b.ids["facility_aishan"] = b.facility("爱山街道居家养老服务照料中心", LONGTING, "居家养老服务照料中心")
    b.ids["heritage_digang"] = b.heritage("荻港村", DIGANG, "千年古村落", "province", former=("荻溪村",))
    b.ids["heritage_nanxun"] = b.heritage("南浔古镇", NANXUN_TOWN, "千年古镇", "province")
    b.ids["heritage_bridge"] = b.heritage("潘公桥", WUXING_AISHAN, "古桥", "city")
    return b


@dataclass
class Town:
    conn: Connection
    builder: Builder
    gaz: object

    @property
    def ids(self) -> dict[str, int]:
        return self.builder.ids


@pytest.fixture(scope="module")
def town(engine: Engine, reference) -> Iterator[Town]:
    conn = engine.connect()
    trans = conn.begin()
    try:
        b = build_town(conn)
        gaz = load_gazetteer(conn)
        yield Town(conn, b, gaz)
    finally:
        trans.rollback()
        conn.close()


@pytest.fixture()
def gaz(town: Town):
    return town.gaz


@pytest.fixture()
def town_client(town: Town, engine: Engine, app_settings):
    from fastapi.testclient import TestClient

    from api.app import create_app
    from api.deps import get_conn
    from api.routes.search import get_gazetteer
    from registry.search import StaticSource

    app = create_app(app_settings, engine=engine)

    def _conn():
        yield town.conn

    app.dependency_overrides[get_conn] = _conn
    app.dependency_overrides[get_gazetteer] = lambda: StaticSource(town.gaz)
    with TestClient(app) as c:
        yield c


# --- the generated city, in a database of its own ----------------------------------------------
CITY_ADDRESSES = 3000


@pytest.fixture(scope="session")
def city(database_url: str, tmp_path_factory) -> Iterator[CommittedCity]:
    """A small generated city (data/generate) loaded by the loader (loaders/city.py), committed in
    a database of its own so that what the freshness tests commit stays out of the session
    database; dropped at the end."""
    with committed_city(database_url, tmp_path_factory, suffix="city", seed=3, addresses=CITY_ADDRESSES,
                        pool_size=4) as built:
        yield built


@pytest.fixture(scope="session")
def city_gaz(city: CommittedCity):
    with city.engine.connect() as conn:
        gaz = load_gazetteer(conn)
        conn.rollback()
    return gaz
