"""Markers (界桩) of the generated city: numbered by the national rule, with their reference
objects, deterministic from the seed."""
from collections import defaultdict

from sqlalchemy import text

from data.generate.markers import derive_markers, plan_markers
from registry.markers import CONDITIONS, marker_number, parse_marker_number, planning_inputs

from .conftest import CITY_SEED


def _markers(conn):
    return conn.execute(text("""
        SELECT m.*, l.code AS line_code, l.level, l.left_division_id AS line_left, l.right_division_id AS line_right,
               ST_X(m.geom) AS lon, ST_Y(m.geom) AS lat
        FROM boundary_markers m JOIN boundary_lines l ON l.id = m.boundary_line_id
        WHERE m.status = 'active'""")).mappings().all()


def test_should_put_markers_on_every_line_that_carries_them_and_none_on_township_lines_on_a_county_line(city_conn):
    rows = city_conn.execute(text("""
        SELECT l.code, l.level, l.county_line_id, count(m.id) AS n FROM boundary_lines l
        LEFT JOIN boundary_markers m ON m.boundary_line_id = l.id AND m.status = 'active'
        WHERE l.status = 'active' GROUP BY l.id""")).all()
    for r in rows:
        if r.level == "township" and r.county_line_id is not None:
            assert r.n == 0, r.code
        else:
            assert r.n >= 1, r.code


def test_should_number_each_line_on_its_own_from_001_with_its_own_code(city_conn):
    serials = defaultdict(set)
    for m in _markers(city_conn):
        parsed = parse_marker_number(m["number"])
        assert parsed.line_code == m["line_code"]  # the number's line code is its own line's
        assert (parsed.serial, parsed.letter) == (m["serial"], m["type_letter"])
        assert m["number"] == marker_number(m["line_code"], m["serial"], m["type_letter"])
        serials[m["line_code"]].add(m["serial"])
    for code, s in serials.items():
        assert s == set(range(1, len(s) + 1)), code


def test_should_set_a_pair_as_A_and_B_with_A_on_the_smaller_code_s_side(city_conn):
    groups = defaultdict(dict)
    for m in _markers(city_conn):
        groups[(m["line_code"], m["serial"])][m["type_letter"]] = m
    pairs = [g for g in groups.values() if "A" in g or "B" in g]
    assert len(pairs) >= 10
    for g in pairs:
        assert set(g) == {"A", "B"}
        a = g["A"]
        inside = city_conn.execute(text("""
            SELECT ST_Contains(d.geom, ST_SetSRID(ST_MakePoint(:lon, :lat), 4490)) FROM divisions d WHERE d.id = :d"""),
            {"lon": a["lon"], "lat": a["lat"], "d": a["line_left"]}).scalar()
        assert inside, a["number"]  # the line's left division is the one with the smaller code
        assert g["B"]["kind"] == a["kind"] == "同号双立"


def test_should_set_a_triple_C_D_E_where_three_divisions_meet(city_conn):
    groups = defaultdict(dict)
    for m in _markers(city_conn):
        groups[(m["line_code"], m["serial"])][m["type_letter"]] = m
    triples = [g for g in groups.values() if set(g) & {"C", "D", "E"}]
    assert all(set(g) == {"C", "D", "E"} for g in triples)
    sides = []
    for g in triples:
        divs = {d for m in g.values() for d in (m["left_division_id"], m["right_division_id"] or 0)}
        assert len(divs) >= 3  # three divisions (the outside of the city counting as one)
        far = city_conn.execute(text("""
            SELECT max(ST_Distance(a.geom::geography, b.geom::geography)) FROM boundary_markers a, boundary_markers b
            WHERE a.id = ANY(:ids) AND b.id = ANY(:ids)"""), {"ids": [m["id"] for m in g.values()]}).scalar()
        assert far < 45  # all three stand close to the meeting point
        sides.append(divs)
    names = dict(city_conn.execute(text("SELECT id, name FROM divisions WHERE level = 'county'")).all())
    county_triples = [{names.get(d) for d in s} for s in sides if s <= set(names) | {0}]
    assert {"吴兴区", "南浔区", "德清县"} in county_triples  # where the three meet


def test_should_space_county_line_markers_a_few_kilometres_apart(city_conn):
    rows = city_conn.execute(text("""
        SELECT l.code, l.length_m, count(DISTINCT m.serial) AS n FROM boundary_lines l
        JOIN boundary_markers m ON m.boundary_line_id = l.id WHERE l.level = 'county' GROUP BY l.id""")).all()
    for r in rows:
        assert r.length_m / 5500 - 2 <= r.n <= r.length_m / 400 + 2, r.code


def test_should_give_every_marker_three_or_more_reference_objects_whose_bearing_and_distance_fit_their_points(
        city_conn):
    rows = city_conn.execute(text("""
        SELECT m.number, count(o.id) AS n,
               max(abs(o.distance_m - ST_Distance(m.geom::geography, o.geom::geography))) AS derr,
               max(least(abs(o.bearing_deg - degrees(ST_Azimuth(m.geom::geography, o.geom::geography))),
                         360 - abs(o.bearing_deg - degrees(ST_Azimuth(m.geom::geography, o.geom::geography))))) AS berr,
               min(o.bearing_deg) AS bmin, max(o.bearing_deg) AS bmax
        FROM boundary_markers m JOIN marker_reference_objects o ON o.marker_id = m.id AND o.status = 'active'
        GROUP BY m.id""")).all()
    assert rows and len(rows) == city_conn.execute(text("SELECT count(*) FROM boundary_markers")).scalar()
    for r in rows:
        assert r.n >= 3 and r.derr < 0.5 and r.berr < 0.5 and 0 <= r.bmin and r.bmax < 360, r.number


def test_should_record_type_material_date_condition_elevation_and_photos(city_conn):
    for m in _markers(city_conn):
        assert m["condition"] in CONDITIONS and m["material"] and m["installed_on"]
        assert m["photos"] == [f"photos/{m['number']}_1.jpg", f"photos/{m['number']}_2.jpg"]
        assert -5 < m["elevation_m"] < 1600
        assert {m["left_division_id"], m["right_division_id"]} - {None} <= {m["line_left"], m["line_right"]} \
            or m["type_letter"] in "CDE"
    elevations = city_conn.execute(text("""
        SELECT max(elevation_m) FILTER (WHERE ST_X(geom) > 120.3), max(elevation_m) FILTER (WHERE ST_X(geom) < 119.6)
        FROM boundary_markers""")).one()
    assert elevations[0] < 20 < 100 < elevations[1]  # the eastern plain, the western hills


def test_should_plan_the_same_markers_from_the_same_seed_and_others_from_another(city_conn):
    inputs = planning_inputs(city_conn)
    first, again, other = plan_markers(inputs, CITY_SEED), plan_markers(inputs, CITY_SEED), plan_markers(inputs, 99)
    key = lambda ms: [(m.number, m.lon, m.lat, m.condition, [(r.name, r.lon, r.lat) for r in m.references])
                      for m in ms]
    assert key(first) == key(again)
    assert key(first) != key(other)
    stored = {r.number: (r.lon, r.lat) for r in city_conn.execute(text(
        "SELECT number, ST_X(geom) AS lon, ST_Y(geom) AS lat FROM boundary_markers"))}
    assert stored == {m.number: (m.lon, m.lat) for m in first}  # what the loader stored is this plan


def test_should_write_no_markers_when_derived_again(city_conn):
    before = city_conn.execute(text("SELECT count(*) FROM boundary_markers")).scalar()
    counts = derive_markers(city_conn, seed=CITY_SEED, actor="tests")
    assert counts["markers"] == 0 and counts["change_set_id"] is None and counts["unchanged_lines"] > 100
    assert city_conn.execute(text("SELECT count(*) FROM boundary_markers")).scalar() == before


def test_should_keep_a_marker_s_earlier_version_when_its_condition_changes(city_conn):
    m = _markers(city_conn)[0]
    new = "damaged" if m["condition"] != "damaged" else "worn"
    city_conn.execute(text("UPDATE boundary_markers SET condition = :c WHERE id = :i"), {"c": new, "i": m["id"]})
    old = city_conn.execute(text("SELECT condition, version FROM boundary_markers_history WHERE id = :i"),
                            {"i": m["id"]}).one()
    assert old.condition == m["condition"] and old.version == 1


def test_should_set_a_pair_where_a_river_crosses_a_line(city_conn):
    near = city_conn.execute(text("""
        WITH x AS (
            SELECT l.id AS line_id, (ST_Dump(ST_Intersection(l.geom, p.geom))).geom AS pt
            FROM boundary_lines l JOIN place_names p ON p.category = 'river' AND ST_Intersects(l.geom, p.geom)
            WHERE l.status = 'active' AND (l.level = 'county' OR l.county_line_id IS NULL))
        SELECT count(*) AS crossings,
               count(*) FILTER (WHERE EXISTS (
                   SELECT 1 FROM boundary_markers m WHERE m.boundary_line_id = x.line_id AND m.type_letter = 'A'
                     AND ST_DWithin(m.geom::geography, x.pt::geography, 20))) AS with_pair
        FROM x WHERE GeometryType(x.pt) = 'POINT'""")).one()
    assert near.crossings > 0 and near.with_pair >= near.crossings / 2
