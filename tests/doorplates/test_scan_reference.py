"""The scan's reference data held in process (registry/serving/reference.py): its nearest facilities
are PostGIS's, its rows are SCAN_SQL's, it follows the notifications (a facility committed elsewhere
shows at a later scan) and a lost listener drops it (scans still right, from the full statement)."""
import asyncio
import random

import pytest
from sqlalchemy import text

from registry.doorplates.view import NEAREST_FACILITIES, SCAN_SQL, SLIM_SQL, nearest_services
from registry.doorplates.view import scan_row as full_row
from registry.serving.reference import FACILITIES_SQL, FacilityGrid, Reference

from waiting import eventually

JSON = {"Accept": "application/json"}
KNN = f"""SELECT json_agg(json_build_array(f.category, f.name, f.address_text, f.phone, ST_X(f.geom), ST_Y(f.geom)))
FROM (SELECT f.* FROM facilities f WHERE f.status = 'active' AND f.geom IS NOT NULL
      ORDER BY f.geom <-> ST_SetSRID(ST_MakePoint(:x, :y), 4490) LIMIT {NEAREST_FACILITIES}) f"""


CATEGORIES = (("居家养老服务照料中心",) * 12 + ("幸福邻里中心", "儿童之家") * 3
              + ("社会工作站", "集中治丧点", "婚姻登记处", "救助站"))


def _same_nearest(memory, postgis, lon, lat) -> bool:
    """The same 12 (in any order among equal distances): the services shown are then the same."""
    key = lambda c: (c[4], c[5], c[0], c[1])  # noqa: E731
    return sorted(memory, key=key) == sorted(postgis, key=key) and \
        nearest_services(lon, lat, memory) == nearest_services(lon, lat, postgis)


def test_should_take_the_nearest_facilities_postgis_takes(conn, place):
    """A city's worth of facilities spread as the generator spreads them (towns, the countryside, a
    few in one building), in the test's transaction, against PostGIS's KNN at a few hundred addresses."""
    rng = random.Random(11)
    towns = [(rng.uniform(119.3, 120.5), rng.uniform(30.4, 31.1), rng.uniform(0.005, 0.04)) for _ in range(40)]
    spots: list[tuple[float, float]] = []
    for i in range(1500):
        x, y, spread = towns[i % len(towns)]
        spot = ((rng.gauss(x, spread), rng.gauss(y, spread)) if i % 5
                else (rng.uniform(119.3, 120.5), rng.uniform(30.4, 31.1)))
        spots.append(spots[rng.randrange(len(spots))] if spots and rng.random() < 0.06 else spot)  # co-located
    conn.execute(text("UPDATE facilities SET status = 'closed'"))  # the other tests' committed ones
    conn.execute(text("""
        INSERT INTO facilities (category, name, division_id, address_text, phone, geom)
        SELECT c, '设施' || n, :d, CASE WHEN n % 3 = 0 THEN NULL ELSE '地址' || n END, NULL,
               ST_SetSRID(ST_MakePoint(x, y), 4490)
        FROM unnest(CAST(:c AS text[]), CAST(:x AS float8[]), CAST(:y AS float8[]))
             WITH ORDINALITY AS t(c, x, y, n)"""),
                 {"c": [rng.choice(CATEGORIES) for _ in spots], "x": [p[0] for p in spots], "y": [p[1] for p in spots],
                  "d": place.village_id})
    grid = FacilityGrid(conn.exec_driver_sql(FACILITIES_SQL).all())
    assert len(grid) == len(spots)
    addresses = []
    for _ in range(300):  # where people live: around the towns, and anywhere
        x, y, spread = rng.choice(towns)
        addresses.append((rng.gauss(x, spread * 2), rng.gauss(y, spread * 2)))
    addresses += [(rng.uniform(119.0, 121.0), rng.uniform(30.0, 31.5)) for _ in range(100)]
    addresses += rng.sample(spots, 50)  # on a facility: ties at the 12-cut
    undetermined = 0
    for lon, lat in addresses:
        determined, memory = grid.nearest(lon, lat)
        postgis = conn.execute(text(KNN), {"x": lon, "y": lat}).scalar_one()
        if not determined:
            undetermined += 1  # left to PostGIS: its 12th and 13th are as near
            continue
        assert _same_nearest(memory, postgis, lon, lat), (lon, lat)
    assert 0 < undetermined < len(addresses) // 10  # ties happen here (6 % in one building), rarely


def test_should_tie_the_12th_and_13th_to_postgis():
    # 13 facilities at the same distance of the point: which 12 PostGIS takes is its own choice
    rows = [(i, "儿童之家", f"f{i}", None, None, 120.0 + (0.01 if i % 2 else -0.01), 30.0) for i in range(14)]
    rows.append((99, "婚姻登记处", "far", None, None, 121.0, 31.0))
    assert FacilityGrid(rows).nearest(120.0, 30.0) == (False, None)
    assert FacilityGrid(rows[:12] + rows[-1:]).nearest(120.0, 30.0)[0]


def test_should_complete_the_slim_row_as_the_full_statement_reads_it(conn, place, make_address, make_facility,
                                                                     plate_for):
    """Every kind of address and plate: SCAN_SQL's row and the slim row completed from memory."""
    from registry.doorplates import replace_plate, revoke_plate

    make_facility("婚姻登记处", "登记处", 120.09, 30.894, phone="0572-1")
    hamlet = conn.execute(text("INSERT INTO place_names (category, name, division_id, county_id) "
                               "VALUES ('natural_village', '钱家浜', :v, :c) RETURNING id"),
                          {"v": place.village_id, "c": place.county_id}).scalar_one()
    compound = conn.execute(text("INSERT INTO place_names (category, name, pinyin, division_id, county_id) "
                                 "VALUES ('compound', '凤凰小区', 'Fenghuang Xiaoqu', :v, :c) RETURNING id"),
                            {"v": place.village_id, "c": place.county_id}).scalar_one()
    ids = [plate_for(make_address(number="41号"))[0],
           plate_for(make_address(street=None, compound_id=hamlet, group_no="3组", number="12号"))[0],
           plate_for(make_address(street=None, compound_id=compound, number="", building="5幢", unit="2单元",
                                  room="301室"))[0],
           plate_for(make_address(street="东街", compound_id=compound, number="7号", building="1幢"), "building")[0]]
    moved = make_address(number="42号")
    ids.append(plate_for(moved)[0])
    conn.execute(text("UPDATE addresses SET number = '43号', full_text = full_text || '改' WHERE id = :a"), {"a": moved})
    nowhere = make_address(number="44号")
    ids.append(plate_for(nowhere)[0])
    conn.execute(text("UPDATE addresses SET geom = NULL WHERE id = :a"), {"a": nowhere})
    replaced = plate_for(make_address(number="45号"))[0]
    replace_plate(conn, replaced, reason="损坏 damaged", actor="tests")
    revoked = plate_for(make_address(number="46号"))[0]
    revoke_plate(conn, revoked, reason="被盗 stolen", actor="tests")
    ids += [replaced, revoked]

    async def fetch(sql, params):
        return conn.exec_driver_sql(sql, params).all()

    async def rows():
        ref = Reference(fetch)
        ref.listening = True
        ref.load()
        while not ref.ready:
            await asyncio.sleep(0.001)
        return [(full_row(conn.exec_driver_sql(SCAN_SQL, (pid,)).one()),
                 ref.row(conn.exec_driver_sql(SLIM_SQL, (pid,)).one()[0])) for pid in ids]

    for full, mine in asyncio.run(rows()):
        if full["versions"] and len(full["versions"]) < 2:
            full["versions"] = None  # one version: the slim row reads none (printed_among: no printed text)
        assert mine == full


@pytest.fixture()
def conn(committed_conn):
    """The plate database: the builders write there (rolled back unless the test commits)."""
    return committed_conn



def _ready(client, token) -> None:
    """Scan until the reference data is loaded (it loads in the background on the first scans)."""
    reference = client.app_state.read_path.reference
    assert eventually(lambda: client.get(f"/p/{token}?warm", headers=JSON) and reference.ready), "never loaded"


def test_should_show_a_facility_committed_elsewhere_at_a_later_scan(conn, fast, make_address, plate_for,
                                                                    committed_engine):
    _, token, _ = plate_for(make_address(number="31号", lon=120.5, lat=30.5))
    conn.commit()
    _ready(fast, token)
    reference = fast.app_state.read_path.reference
    loads = reference.loads
    before = fast.get(f"/p/{token}", headers=JSON).json()["services"]
    assert "新开婚姻登记处" not in str(before)
    with committed_engine.begin() as other:
        other.execute(text("""
            INSERT INTO facilities (category, name, division_id, geom)
            SELECT '婚姻登记处', '新开婚姻登记处', division_id,
                   ST_SetSRID(ST_MakePoint(120.5001, 30.5001), 4490)
            FROM addresses LIMIT 1"""))
    assert eventually(lambda: "新开婚姻登记处" in str(fast.get(f"/p/{token}", headers=JSON).json()["services"]))
    assert eventually(lambda: reference.ready and reference.loads > loads)  # loaded again, and used:
    fallbacks = reference.fallbacks
    fast.app_state.read_path.cache.clear()  # a miss again
    assert "新开婚姻登记处" in str(fast.get(f"/p/{token}", headers=JSON).json()["services"])
    assert reference.fallbacks == fallbacks


def test_should_drop_the_reference_data_when_the_listener_loses_its_connection(conn, fast, make_address, plate_for,
                                                                              committed_engine):
    address = make_address(street="紫金路", number="32号")
    _, token, _ = plate_for(address)
    conn.commit()
    _ready(fast, token)
    reference = fast.app_state.read_path.reference
    listener = fast.app_state.read_path.listener
    street_id = conn.execute(text("SELECT street_id FROM addresses WHERE id = :a"), {"a": address}).scalar_one()
    assert reference.places[street_id][0] == "紫金路"
    with committed_engine.begin() as other:  # a change whose notification is lost
        other.execute(text("ALTER TABLE place_names DISABLE TRIGGER search_notify_update"))
        other.execute(text("UPDATE place_names SET name = '紫荆路' WHERE id = :s"), {"s": street_id})
        other.execute(text("ALTER TABLE place_names ENABLE TRIGGER search_notify_update"))
    with committed_engine.begin() as other:
        other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": listener.backend_pid})
    assert eventually(lambda: reference.places is None, 5)
    fast.app_state.read_path.cache.clear()
    # from the full statement until loaded again, then from the data loaded after the reset
    assert "紫荆路" in fast.get(f"/p/{token}", headers=JSON).json()["address"]["text"]
    _ready(fast, token)
    assert reference.places[street_id][0] == "紫荆路"
    fast.app_state.read_path.cache.clear()
    fallbacks = reference.fallbacks
    assert "紫荆路" in fast.get(f"/p/{token}", headers=JSON).json()["address"]["text"]
    assert reference.fallbacks == fallbacks
