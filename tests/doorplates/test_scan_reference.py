"""The scan's reference data held in process (registry/serving/reference.py): its nearest facilities
are PostGIS's, its rows are SCAN_SQL's, it follows the notifications (a facility committed elsewhere
shows at a later scan) and a lost listener drops it (scans still right, from the full statement)."""
import asyncio
import random
import time

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from registry.doorplates.view import NEAREST_FACILITIES, SCAN_SQL, SLIM_SQL, nearest_services
from registry.doorplates.view import scan_row as full_row
from registry.serving.reference import FACILITIES_SQL, FacilityGrid, Reference

JSON = {"Accept": "application/json"}
KNN = f"""SELECT json_agg(json_build_array(f.category, f.name, f.address_text, f.phone, ST_X(f.geom), ST_Y(f.geom)))
FROM (SELECT f.* FROM facilities f WHERE f.status = 'active' AND f.geom IS NOT NULL
      ORDER BY f.geom <-> ST_SetSRID(ST_MakePoint(:x, :y), 4490) LIMIT {NEAREST_FACILITIES}) f"""


@pytest.fixture(scope="module")
def city(database_url, tmp_path_factory):
    """A small generated city (its facilities are the generator's: every village and township has some)."""
    from city_databases import committed_city

    with committed_city(database_url, tmp_path_factory, suffix="scanref", seed=11, addresses=400) as built:
        yield built


def _same_nearest(memory, postgis, lon, lat) -> bool:
    """The same 12 (in any order among equal distances): the services shown are then the same."""
    key = lambda c: (c[4], c[5], c[0], c[1])  # noqa: E731
    return sorted(memory, key=key) == sorted(postgis, key=key) and \
        nearest_services(lon, lat, memory) == nearest_services(lon, lat, postgis)


def test_should_take_the_nearest_facilities_postgis_takes(city):
    with city.engine.connect() as conn:
        grid = FacilityGrid(conn.exec_driver_sql(FACILITIES_SQL).all())
        points = conn.execute(text("SELECT ST_X(geom), ST_Y(geom) FROM addresses WHERE geom IS NOT NULL "
                                   "ORDER BY random() LIMIT 300")).all()
        rng = random.Random(7)
        xs, ys = [it[4] for it in grid.items], [it[5] for it in grid.items]
        # and points anywhere in the city's box, and right on facilities (ties at the 12-cut)
        points += [(rng.uniform(min(xs), max(xs)), rng.uniform(min(ys), max(ys))) for _ in range(200)]
        points += [(xs[i], ys[i]) for i in rng.sample(range(len(xs)), 50)]
        undetermined = 0
        for lon, lat in points:
            determined, memory = grid.nearest(lon, lat)
            postgis = conn.execute(text(KNN), {"x": lon, "y": lat}).scalar_one()
            if not determined:
                undetermined += 1  # left to PostGIS: its 12th and 13th are as near
                continue
            assert _same_nearest(memory, postgis, lon, lat), (lon, lat)
    assert len(grid) > NEAREST_FACILITIES and undetermined < len(points) // 10


def test_should_tie_the_12th_and_13th_to_postgis():
    # 13 facilities at the same distance of the point: which 12 PostGIS takes is its own choice
    rows = [(i, "儿童之家", f"f{i}", None, None, 120.0 + (0.01 if i % 2 else -0.01), 30.0) for i in range(14)]
    rows.append((99, "婚姻登记处", "far", None, None, 121.0, 31.0))
    assert FacilityGrid(rows).nearest(120.0, 30.0) == (False, None)
    assert FacilityGrid(rows[:12] + rows[-1:]).nearest(120.0, 30.0)[0]


async def _rows(url: str, plate_ids: list[int]):
    """(SCAN_SQL's row, the reference data's row) per plate, on one connection."""
    import psycopg

    from registry.serving.pool import TIME_ZONE

    async with await psycopg.AsyncConnection.connect(url, autocommit=True, options=f"-c TimeZone={TIME_ZONE}") as conn:
        async def fetch(sql, params):
            return await (await conn.execute(sql, params)).fetchall()

        ref = Reference(fetch)
        ref.listening = True
        ref.load()
        while not ref.ready:
            await asyncio.sleep(0.01)
        out = []
        for pid in plate_ids:
            full = full_row(await (await conn.execute(SCAN_SQL, (pid,))).fetchone())
            slim = (await (await conn.execute(SLIM_SQL, (pid,))).fetchone())[0]
            out.append((full, ref.row(slim)))
        return out


def test_should_complete_the_slim_row_as_the_full_statement_reads_it(city):
    from registry.serving.pool import libpq_url

    from registry.doorplates import issue_plates

    with city.engine.begin() as conn:
        if not conn.execute(text("SELECT count(*) FROM doorplates")).scalar_one():
            city_code = conn.execute(text("SELECT coalesce(mca_code, nbs_code) FROM divisions "
                                          "WHERE level = 'city'")).scalar_one()
            issue_plates(conn, actor="tests", division=city_code)
            conn.execute(text("UPDATE addresses SET street_id = NULL WHERE id IN "  # and a few with history
                              "(SELECT id FROM addresses WHERE street_id IS NOT NULL ORDER BY id LIMIT 5)"))
        plates = conn.execute(text("SELECT id FROM doorplates ORDER BY id")).scalars().all()
    compared = 0
    for full, mine in asyncio.run(_rows(libpq_url(city.url), plates)):
        if mine is None:
            continue  # left to the full statement (a tie at the 12-cut)
        if full["versions"] and len(full["versions"]) < 2:
            full["versions"] = None  # one version: the slim row reads none (printed_among: no printed text)
        assert mine == full
        compared += 1
    assert compared > len(plates) * 0.9


@pytest.fixture()
def conn(committed_engine):
    """The builders write to the committed plate database and the test commits: the pool's connections see it."""
    with committed_engine.connect() as c:
        yield c


@pytest.fixture()
def fast(committed_engine, app_settings):
    from api.app import create_app

    app = create_app(app_settings, engine=committed_engine)
    with TestClient(app) as client:
        client.app_state = app.state
        yield client


def _eventually(check, seconds: float = 10.0):
    deadline = time.monotonic() + seconds
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(0.05)


def _ready(client, token) -> None:
    """Scan until the reference data is loaded (it loads in the background on the first scans)."""
    reference = client.app_state.read_path.reference
    assert _eventually(lambda: client.get(f"/p/{token}?warm", headers=JSON) and reference.ready), "never loaded"


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
            SELECT '婚姻登记处', '新开婚姻登记处', division_id, ST_SetSRID(ST_MakePoint(120.5001, 30.5001), 4490)
            FROM addresses LIMIT 1"""))
    assert _eventually(lambda: "新开婚姻登记处" in str(fast.get(f"/p/{token}", headers=JSON).json()["services"]))
    assert _eventually(lambda: reference.ready and reference.loads > loads)  # loaded again, and used:
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
    assert _eventually(lambda: reference.places is None, 5)
    fast.app_state.read_path.cache.clear()
    # from the full statement until loaded again, then from the data loaded after the reset
    assert "紫荆路" in fast.get(f"/p/{token}", headers=JSON).json()["address"]["text"]
    _ready(fast, token)
    assert reference.places[street_id][0] == "紫荆路"
    fast.app_state.read_path.cache.clear()
    fallbacks = reference.fallbacks
    assert "紫荆路" in fast.get(f"/p/{token}", headers=JSON).json()["address"]["text"]
    assert reference.fallbacks == fallbacks
