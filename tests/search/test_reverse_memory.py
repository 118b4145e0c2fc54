"""Reverse geocoding from memory answers what PostGIS answers: the nearest address of the grid over
the gazetteer's columns is PostGIS's KNN answer on many random points, and the async runner's whole
answer is the SQLAlchemy runner's."""
import asyncio
import random
import time

import numpy as np
import pytest

from registry.search.loading import load_gazetteer
from registry.search.nearest import NearestIndex
from registry.search.reverse import reverse, reverse_async
from registry.serving import ReadPool

RADII = (30.0, 200.0, 1000.0, 5000.0)


@pytest.fixture(scope="module")
def city_gazetteer(city):
    """The city's gazetteer as the database holds it now (other tests commit to it)."""
    with city.engine.connect() as conn:
        gaz = load_gazetteer(conn)
        conn.rollback()
    return gaz


@pytest.fixture(scope="module")
def city_now(city_gazetteer):
    """The city's address store and points around it."""
    store = city_gazetteer.addresses
    ok = np.isfinite(store.lon)
    box = (float(store.lon[ok].min()), float(store.lat[ok].min()), float(store.lon[ok].max()),
           float(store.lat[ok].max()))
    rng = random.Random(11)
    points = []
    for i in range(300):
        if i % 3 == 0:  # next to a door
            j = rng.randrange(len(store.ids))
            if not ok[j]:
                continue
            points.append((float(store.lon[j]) + rng.uniform(-0.002, 0.002),
                           float(store.lat[j]) + rng.uniform(-0.002, 0.002), rng.choice(RADII)))
        else:  # anywhere around the city, fields and lakes included
            points.append((rng.uniform(box[0] - 0.05, box[2] + 0.05), rng.uniform(box[1] - 0.05, box[3] + 0.05),
                           rng.choice(RADII)))
    return store, points


def _location(conn, address_id: int):
    from sqlalchemy import text

    return conn.execute(text("SELECT ST_X(geom), ST_Y(geom) FROM addresses WHERE id = :a"), {"a": address_id}).one()


def test_should_find_in_memory_the_address_postgis_finds(city, city_now):
    store, points = city_now
    index = NearestIndex()
    index.prepare(store)
    answered = 0
    with city.engine.connect() as conn:
        for lon, lat, radius in points:
            memory = index.nearest(store, lon, lat, radius)
            if memory is None:
                continue  # memory says it cannot be exact here
            answered += 1
            found = reverse(conn, lon, lat, radius)["address"]
            assert (memory == 0) == (found is None), (lon, lat, radius)
            if memory != found["id"] if found else False:  # doors at one point (flats): either is the answer
                assert _location(conn, memory) == _location(conn, found["id"]), (lon, lat, radius)
    assert answered >= 0.9 * len(points)


def test_should_answer_reverse_on_the_async_pool_as_on_a_connection(city, city_now):
    store, points = city_now
    index = NearestIndex()
    index.prepare(store)

    async def run():
        async with ReadPool([city.url], min_size=1, max_size=2) as pool:
            out = []
            for lon, lat, radius in points[:120]:
                memory = await reverse_async(pool, lon, lat, radius,
                                             nearest=lambda x, y, r: index.nearest(store, x, y, r))
                out.append((memory, await reverse_async(pool, lon, lat, radius)))
            return out

    answers = asyncio.run(run())
    with city.engine.connect() as conn:
        for (lon, lat, radius), (memory, knn) in zip(points, answers):
            expected = reverse(conn, lon, lat, radius)
            assert knn == expected
            if memory["address"] and memory["address"]["id"] != expected["address"]["id"]:  # co-located doors
                for k in ("address", "code"):
                    memory["address"].pop(k), expected["address"].pop(k)
                memory["address"]["id"] = expected["address"]["id"]
            assert memory == expected


# --- the whole answer from memory (registry.serving.reverse.ReverseMemory) ------------------------------
from contextlib import asynccontextmanager  # noqa: E402

import shapely  # noqa: E402
from sqlalchemy import text  # noqa: E402

from registry.search.freshness import StaticSource, apply_changes  # noqa: E402
from registry.serving.reverse import reverse_answer  # noqa: E402


def _same(memory: dict, expected: dict) -> bool:
    """Equal answers; two doors at one point (flats) are either of them, as in PostGIS."""
    if memory == expected:
        return True
    if memory["address"] and expected["address"]:
        def strip(d):
            return {**d, "address": {k: v for k, v in d["address"].items() if k not in ("id", "address", "code")}}
        return strip(memory) == strip(expected)
    return False


@asynccontextmanager
async def _read_path(settings, city, store):
    """The API's read path on the city, its reverse memory loaded (polygons, grid) and listening."""
    from registry.serving import ReadPath

    path = await ReadPath(settings, city.url).ensure()
    search = StaticSource(store)
    try:
        await _until(lambda: path.reverse_memory.areas is not None and path.nearest.ready_for(store.addresses),
                     path, search)
        yield path, search
    finally:
        await path.close()


async def _until(condition, path, search, seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "not within the time"
        await reverse_answer(path, search, 120.1, 30.87, 200.0)  # starts what memory needs
        await asyncio.sleep(0.05)


def _boundary_points(city, n: int, rng) -> list[tuple[float, float, float]]:
    """Points on and next to village boundaries (shared edges, vertices), and a few outside the city."""
    with city.engine.connect() as conn:
        wkbs = conn.execute(text("SELECT ST_AsBinary(geom) FROM divisions WHERE level = 'village' "
                                 "AND status = 'active' AND geom IS NOT NULL ORDER BY id")).scalars().all()
    lines = shapely.boundary(shapely.from_wkb([bytes(w) for w in wkbs]))
    out = []
    for i in range(n):
        line = lines[rng.randrange(len(lines))]
        p = shapely.line_interpolate_point(line, rng.random(), normalized=True)
        if i % 5 == 0:  # a vertex, exactly
            xy = shapely.get_coordinates(line)
            x, y = xy[rng.randrange(len(xy))]
        else:
            off = 10.0 ** rng.uniform(-9, -3.5)
            x, y = p.x + rng.uniform(-off, off), p.y + rng.uniform(-off, off)
        out.append((float(x), float(y), rng.choice(RADII)))
    out += [(118.0, 29.0, 5000.0), (122.5, 32.0, 200.0), (119.9, 28.1, 1000.0)]  # outside every division
    return out


def test_should_answer_from_memory_exactly_what_the_statements_answer(city, city_now, city_gazetteer, settings):
    _, points = city_now
    rng = random.Random(4490)
    points = points + _boundary_points(city, 150, rng)

    async def run():
        async with _read_path(settings, city, city_gazetteer) as (path, search):
            memory = path.reverse_memory
            assert memory.distance_exact  # PostGIS's distance reproduced on this server
            out = []
            for lon, lat, radius in points:
                before = memory.answered
                answer = await reverse_answer(path, search, lon, lat, radius)
                out.append((answer, memory.answered > before))
            return out

    answers = asyncio.run(run())
    with city.engine.connect() as conn:
        for (lon, lat, radius), (answer, from_memory) in zip(points, answers):
            expected = reverse(conn, lon, lat, radius)
            assert _same(answer, expected), (lon, lat, radius, from_memory)
    from_memory = sum(m for _, m in answers)
    assert from_memory >= 0.6 * len(points), from_memory
    assert not all(m for _, m in answers[-153:]), "memory should leave some boundary points to PostGIS"


def _village_point(path, search, store):
    """A door's point answered from memory, with its village (the last of the chain)."""
    memory = path.reverse_memory
    for j in range(0, len(store.ids), 97):
        lon, lat = float(store.lon[j]), float(store.lat[j])
        if memory.areas.village_at(lon, lat) is not None:
            return lon, lat
    raise AssertionError("no door inside a village cell")


def test_should_show_a_division_polygon_change_committed_elsewhere_at_a_later_reverse(city, city_gazetteer, settings):
    store = city_gazetteer.addresses

    async def run():
        async with _read_path(settings, city, city_gazetteer) as (path, search):
            memory = path.reverse_memory
            lon, lat = _village_point(path, search, store)
            first = await reverse_answer(path, search, lon, lat, 200.0)
            village = memory.areas.covering(lon, lat)[0][0]
            with city.engine.begin() as conn:  # elsewhere: a hole in the village around the point
                old = conn.execute(text("SELECT ST_AsEWKB(geom) FROM divisions WHERE id = :v"), {"v": village}).scalar()
                conn.execute(text("UPDATE divisions SET geom = ST_Multi(ST_Difference(geom, ST_Buffer("
                                  "ST_SetSRID(ST_MakePoint(:x, :y), 4490), 0.002))) WHERE id = :v"),
                             {"x": lon, "y": lat, "v": village})
            try:
                await _until(lambda: memory.areas is None, path, search, 5.0)  # the notification came
                await _until(lambda: memory.areas is not None, path, search)
                before = memory.answered
                later = await reverse_answer(path, search, lon, lat, 200.0)
                assert memory.answered == before + 1  # from memory, with the new polygon
            finally:
                with city.engine.begin() as conn:
                    conn.execute(text("UPDATE divisions SET geom = CAST(:g AS geometry) WHERE id = :v"),
                                 {"g": old, "v": village})
            return lon, lat, first, later

    lon, lat, first, later = asyncio.run(run())
    assert first["divisions"] != later["divisions"]
    assert later["divisions"][-1]["level"] != "village"
    with city.engine.connect() as conn:
        assert first == reverse(conn, lon, lat, 200.0)  # restored


def test_should_answer_with_the_statements_while_its_listener_is_lost_and_stay_right(city, city_gazetteer, settings):
    store = city_gazetteer.addresses

    async def run():
        async with _read_path(settings, city, city_gazetteer) as (path, search):
            memory = path.reverse_memory
            lon, lat = _village_point(path, search, store)
            village = memory.areas.covering(lon, lat)[0][0]
            connections = path.listener.connections
            with city.engine.begin() as conn:
                conn.execute(text("SELECT pg_terminate_backend(:p)"), {"p": path.listener.backend_pid})
            await _until(lambda: not memory.listening or path.listener.connections > connections, path, search, 5.0)
            with city.engine.begin() as conn:  # committed while the notifications may be missed
                old = conn.execute(text("SELECT ST_AsEWKB(geom) FROM divisions WHERE id = :v"), {"v": village}).scalar()
                conn.execute(text("UPDATE divisions SET geom = ST_Multi(ST_Difference(geom, ST_Buffer("
                                  "ST_SetSRID(ST_MakePoint(:x, :y), 4490), 0.002))) WHERE id = :v"),
                             {"x": lon, "y": lat, "v": village})
            try:
                seen = []
                deadline = time.monotonic() + 20
                while True:  # every answer right, memory's again once it listens and has read the polygons
                    before = memory.answered
                    seen.append(await reverse_answer(path, search, lon, lat, 200.0))
                    if memory.answered > before:
                        break
                    assert time.monotonic() < deadline
                    await asyncio.sleep(0.05)
                with city.engine.connect() as conn:
                    expected = reverse(conn, lon, lat, 200.0)
            finally:
                with city.engine.begin() as conn:
                    conn.execute(text("UPDATE divisions SET geom = CAST(:g AS geometry) WHERE id = :v"),
                                 {"g": old, "v": village})
            return seen, expected

    seen, expected = asyncio.run(run())
    assert len(seen) > 1  # the statements answered while it did not listen
    assert all(a == expected for a in seen)


def test_should_never_answer_an_address_retired_elsewhere_once_notified(city, city_gazetteer, settings):
    store = city_gazetteer.addresses  # a gazetteer that never applies the change: memory must not answer

    async def run():
        async with _read_path(settings, city, city_gazetteer) as (path, search):
            memory = path.reverse_memory
            lon, lat = _village_point(path, search, store)
            first = await reverse_answer(path, search, lon, lat, 30.0)
            door = first["address"]["id"]
            with city.engine.begin() as conn:
                status = conn.execute(text("SELECT status FROM addresses WHERE id = :a"), {"a": door}).scalar()
                conn.execute(text("UPDATE addresses SET status = 'retired' WHERE id = :a"), {"a": door})
            try:
                await _until(lambda: door in memory._pending, path, search, 5.0)
                before = memory.answered
                later = [await reverse_answer(path, search, lon, lat, 30.0) for _ in range(3)]
                with city.engine.connect() as conn:
                    expected = reverse(conn, lon, lat, 30.0)
                assert memory.answered == before  # the gazetteer does not hold the change: the statements answer
                with city.engine.connect() as conn:  # what the search service's thread does on the notification
                    apply_changes(city_gazetteer, conn, {"addresses": {door}})
                    conn.rollback()
                held = await reverse_answer(path, search, lon, lat, 30.0)
                assert memory.answered == before + 1  # it holds the change now: memory answers again
            finally:
                with city.engine.begin() as conn:
                    conn.execute(text("UPDATE addresses SET status = :s WHERE id = :a"), {"s": status, "a": door})
                with city.engine.connect() as conn:
                    apply_changes(city_gazetteer, conn, {"addresses": {door}})
                    conn.rollback()
            return door, later + [held], expected

    door, later, expected = asyncio.run(run())
    assert all(_same(a, expected) for a in later)
    assert all((a["address"] or {}).get("id") != door for a in later)


def test_should_work_out_again_only_the_cells_changed_villages_touch_and_keep_the_same_cells(city):
    from registry.search.areas import LOAD_SQL, Areas

    with city.engine.connect() as conn:
        rows = [tuple(r) for r in conn.exec_driver_sql(LOAD_SQL).all()]
    before = Areas(rows)
    villages = [i for i, r in enumerate(rows) if r[1] == "village" and r[6] is not None]
    changed = list(rows)
    for n, i in enumerate((villages[3], villages[len(villages) // 2])):
        g = shapely.from_wkb(bytes(rows[i][6]))
        g = (shapely.difference(g, shapely.buffer(shapely.point_on_surface(g), 0.003)) if n == 0
             else shapely.transform(g, lambda xy: xy + np.array([0.0007, 0.0003])))
        changed[i] = rows[i][:6] + (shapely.to_wkb(shapely.multipolygons(shapely.get_parts(g))),)
    kept = Areas(changed, before)
    full = Areas(changed)
    assert np.array_equal(kept.inside, full.inside)
    assert not np.array_equal(kept.inside, before.inside)
    assert Areas(rows, before).inside is before.inside  # nothing changed: nothing worked out
