"""Vector tiles: what a map client reads from /tiles (layers, zoom ranges, errors, TileJSON, cache)."""
from __future__ import annotations

import math

import mapbox_vector_tile
import pytest
from sqlalchemy import text

from registry.changes import apply_change_set, open_change_set

MVT = "application/vnd.mapbox-vector-tile"


def _decode(body: bytes) -> dict:
    return mapbox_vector_tile.decode(body) if body else {}


def _tile(client, layer: str, zxy: tuple[int, int, int]):
    z, x, y = zxy
    return client.get(f"/tiles/{layer}/{z}/{x}/{y}.mvt")


def test_should_serve_the_doors_of_a_z14_tile_as_an_address_layer(client, doors):
    r = _tile(client, "addresses", doors.tile(14))
    assert r.status_code == 200
    assert r.headers["content-type"] == MVT
    layer = _decode(r.content)["addresses"]
    assert layer["extent"] == 4096
    ids = {f["id"] for f in layer["features"]}
    assert set(doors.ids) <= ids
    one = next(f for f in layer["features"] if f["id"] == doors.ids[0])
    assert one["properties"]["number"] == "1号"
    assert one["geometry"]["type"] == "Point"
    x, y = one["geometry"]["coordinates"]
    assert 0 <= x <= 4096 and 0 <= y <= 4096
    # public, small properties only: no version, source, change set, full text
    assert set(one["properties"]) <= {"number", "building", "code"}


def test_should_place_a_door_where_web_mercator_puts_it(client, doors, conn):
    """Stored in CGCS2000 degrees, drawn in EPSG:3857: the door's grid position is its Mercator one."""
    lon, lat = conn.execute(text("SELECT ST_X(geom), ST_Y(geom) FROM addresses WHERE id = :i"),
                            {"i": doors.ids[0]}).one()
    z, x, y = doors.tile(14)
    half = 20037508.342789244
    size = 2 * half / (1 << z)
    mx, my = lon * half / 180, math.log(math.tan(math.radians(90 + lat) / 2)) * 6378137
    want = ((mx - (-half + x * size)) / size * 4096, ((half - y * size) - my) / size * 4096)
    body = _tile(client, "addresses", (z, x, y)).content
    feats = mapbox_vector_tile.decode(body, default_options={"y_coord_down": True})["addresses"]["features"]
    got = next(f for f in feats if f["id"] == doors.ids[0])["geometry"]["coordinates"]
    assert abs(got[0] - want[0]) <= 1 and abs(got[1] - want[1]) <= 1


def test_should_serve_facilities_and_streets_at_z14(client, doors):
    fac = _decode(_tile(client, "facilities", doors.tile(14)).content)["facilities"]["features"]
    assert any(f["id"] == doors.facility and f["properties"]["name"] == "瓦片路幸福邻里中心" for f in fac)
    streets = _decode(_tile(client, "places", doors.tile(14)).content)["places"]["features"]
    road = next(f for f in streets if f["id"] == doors.street)
    assert road["properties"] == {"name": "瓦片路", "category": "road"}
    assert road["geometry"]["type"] == "LineString"


def test_should_leave_out_retired_doors(client, conn, doors):
    conn.execute(text("UPDATE addresses SET status = 'retired' WHERE id = :i"), {"i": doors.ids[0]})
    ids = {f["id"] for f in _decode(_tile(client, "addresses", doors.tile(14)).content)["addresses"]["features"]}
    assert doors.ids[0] not in ids and doors.ids[1] in ids


def test_should_answer_no_content_outside_a_layers_zoom_range(client, doors):
    r = _tile(client, "addresses", doors.tile(12))  # addresses start at z14
    assert r.status_code == 204 and r.content == b""
    r = _tile(client, "markers", doors.tile(8))
    assert r.status_code == 204


def test_should_draw_huzhou_s_counties_at_z6_and_its_county_lines(client, tile_of):
    tile = _decode(_tile(client, "counties", tile_of(120.09, 30.87, 6)).content)
    names = {f["properties"]["name"] for f in tile["counties"]["features"]}
    assert {"吴兴区", "南浔区", "德清县", "长兴县", "安吉县"} <= names
    one = next(f for f in tile["counties"]["features"] if f["properties"]["name"] == "吴兴区")
    assert one["properties"]["level"] == "county" and one["properties"]["nbs_code"] == "330502"
    assert one["geometry"]["type"] in ("Polygon", "MultiPolygon")


@pytest.mark.parametrize("path, parameter", [
    ("/tiles/addresses/23/0/0.mvt", "z"),
    ("/tiles/addresses/14/16384/0.mvt", "x"),
    ("/tiles/addresses/14/0/-1.mvt", "y"),
    ("/tiles/addresses/abc/0/0.mvt", "z"),
    ("/tiles/addresses/3/8/1.mvt", "x"),
])
def test_should_refuse_a_tile_off_the_grid_with_a_problem(client, path, parameter):
    r = client.get(path)
    assert r.status_code == 400
    assert r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert body["parameter"] == parameter and "/" in body["detail"]


def test_should_answer_404_for_an_unknown_layer(client):
    for path in ("/tiles/roads/14/0/0.mvt", "/tiles/roads.json"):
        r = client.get(path)
        assert r.status_code == 404
        assert r.headers["content-type"].startswith("application/problem+json")
        assert r.json()["parameter"] == "layer" and "addresses" in r.json()["detail"]


def test_should_describe_each_layer_in_tilejson_3(client):
    listed = client.get("/tiles").json()["layers"]
    assert [lay["id"] for lay in listed] == ["counties", "townships", "villages", "boundary_lines", "markers",
                                              "addresses", "facilities", "places"]
    zooms = {}
    for lay in listed:
        tj = client.get(f"/tiles/{lay['id']}.json").json()
        assert tj["tilejson"] == "3.0.0"
        assert tj["tiles"] == [f"http://testserver/tiles/{lay['id']}/{{z}}/{{x}}/{{y}}.mvt"]
        assert tj["minzoom"] < tj["maxzoom"] == 16
        west, south, east, north = tj["bounds"]
        assert west < 120.09 < east and south < 30.87 < north
        (vl,) = tj["vector_layers"]
        assert vl["id"] == lay["id"] and vl["minzoom"] == tj["minzoom"] and "id" not in vl["fields"]
        zooms[lay["id"]] = tj["minzoom"]
    assert zooms == {"counties": 6, "townships": 9, "villages": 11, "boundary_lines": 6, "markers": 10,
                     "addresses": 14, "facilities": 12, "places": 12}
    assert client.get("/tiles/addresses.json").json()["vector_layers"][0]["fields"] == {
        "number": "String", "building": "String", "code": "String"}


def test_should_answer_the_same_bytes_from_the_cache_and_304_on_its_etag(client, doors):
    first = _tile(client, "addresses", doors.tile(14))
    cache = client.app.state.tile_cache
    misses = cache.misses
    again = _tile(client, "addresses", doors.tile(14))
    assert again.content == first.content and again.headers["etag"] == first.headers["etag"]
    assert cache.misses == misses and cache.hits >= 1
    assert "max-age" in again.headers["cache-control"]
    z, x, y = doors.tile(14)
    r = client.get(f"/tiles/addresses/{z}/{x}/{y}.mvt", headers={"If-None-Match": first.headers["etag"]})
    assert r.status_code == 304 and r.content == b""


def test_should_drop_a_retired_door_from_the_cached_tile_once_its_change_set_is_applied(client, conn, doors):
    before = _decode(_tile(client, "addresses", doors.tile(14)).content)["addresses"]["features"]
    assert doors.ids[0] in {f["id"] for f in before}
    counties = _tile(client, "counties", doors.tile(6))
    cache = client.app.state.tile_cache

    cs = open_change_set(conn, kind="load_addresses", author="tests", source="retire one door")
    conn.execute(text("UPDATE addresses SET status = 'retired', change_set_id = :cs WHERE id = :i"),
                 {"cs": cs, "i": doors.ids[0]})
    still = _decode(_tile(client, "addresses", doors.tile(14)).content)["addresses"]["features"]
    assert doors.ids[0] in {f["id"] for f in still}  # not applied yet: the cached tile stands
    apply_change_set(conn, cs, actor="tests")

    after = _decode(_tile(client, "addresses", doors.tile(14)).content)["addresses"]["features"]
    assert doors.ids[0] not in {f["id"] for f in after} and doors.ids[1] in {f["id"] for f in after}
    # an address change set leaves the other layers' cached tiles alone
    hits = cache.hits
    assert _tile(client, "counties", doors.tile(6)).content == counties.content
    assert cache.hits == hits + 1


def test_should_see_a_change_set_applied_after_later_ones(client, conn, doors):
    """A reviewed change set proposed before others and applied after them still invalidates."""
    cs = open_change_set(conn, kind="inspection", author="tests", source="an inspection")
    later = open_change_set(conn, kind="doorplates", author="tests", source="plates")
    apply_change_set(conn, later, actor="tests")
    _tile(client, "addresses", doors.tile(14))
    cache = client.app.state.tile_cache
    markers_before = cache._versions["boundary_markers"]
    conn.execute(text("UPDATE change_sets SET status = 'applied' WHERE id = :i"), {"i": cs})
    _tile(client, "addresses", doors.tile(14))
    assert cache._versions["boundary_markers"] > markers_before


def test_should_draw_flats_from_z16_and_their_building_door_below(client, conn, doors):
    flat = conn.execute(text("""
        INSERT INTO addresses (division_id, street_id, number, number_main, room, full_text, code, local_seq, status, geom)
        SELECT division_id, street_id, number, number_main, '301室', full_text || '301室', code || '9', local_seq + 500,
               'active', geom FROM addresses WHERE id = :i RETURNING id"""), {"i": doors.ids[0]}).scalar_one()
    z14 = {f["id"] for f in _decode(_tile(client, "addresses", doors.tile(14)).content)["addresses"]["features"]}
    z16 = {f["id"] for f in _decode(_tile(client, "addresses", doors.tile(16)).content)["addresses"]["features"]}
    assert doors.ids[0] in z14 and flat not in z14
    assert {doors.ids[0], flat} <= z16


def test_should_follow_applied_change_sets_by_notify_and_answer_from_memory(engine, reference):
    """A served worker's cache: LISTEN keeps its versions current, cached tiles need no database."""
    import time

    from registry.tiles import LAYERS, TileCache

    cache = TileCache()
    cache.follow(engine)
    try:
        for _ in range(100):
            if cache.following:
                break
            time.sleep(0.05)
        assert cache.following
        lay = LAYERS["counties"]
        with engine.connect() as conn:
            first = cache.get(conn, lay, 6, 53, 26)
        assert cache.peek(lay, 6, 53, 26) == first  # memory only
        before = cache.version(lay)
        with engine.begin() as conn:  # committed: the NOTIFY goes out at commit
            cs = open_change_set(conn, kind="load_reference", author="tests", source="tile cache notify")
            apply_change_set(conn, cs, actor="tests")
        try:
            for _ in range(100):
                if cache.version(lay) != before:
                    break
                time.sleep(0.05)
            assert cache.version(lay) != before and cache.peek(lay, 6, 53, 26) is None
        finally:
            with engine.begin() as conn:
                conn.execute(text("DELETE FROM audit_log WHERE change_set_id = :c"), {"c": cs})
                conn.execute(text("DELETE FROM change_sets WHERE id = :c"), {"c": cs})
    finally:
        cache.stop()
    assert not cache.following
