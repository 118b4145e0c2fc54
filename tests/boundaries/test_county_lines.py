"""County boundary lines derived from the real county polygons (the `reference` fixture)."""
import json

import shapely
from shapely.geometry import shape
from sqlalchemy import text

from loaders.reference import COUNTIES_FILE, REFERENCE_DIR
from registry.boundaries import derive_boundary_lines

REAL_NEIGHBOURS = {  # checked with shapely on the reference polygons: these pairs share an edge
    frozenset(p) for p in (("吴兴区", "南浔区"), ("吴兴区", "德清县"), ("吴兴区", "长兴县"), ("吴兴区", "安吉县"),
                           ("南浔区", "德清县"), ("德清县", "安吉县"), ("长兴县", "安吉县"))
}


def _lines(conn):
    return conn.execute(text("""
        SELECT l.*, a.name AS left_name, b.name AS right_name, a.mca_code AS left_code, b.mca_code AS right_code
        FROM boundary_lines l JOIN divisions a ON a.id = l.left_division_id
        LEFT JOIN divisions b ON b.id = l.right_division_id
        WHERE l.level = 'county' AND l.status = 'active'""")).mappings().all()


def test_should_find_exactly_the_pairs_of_counties_whose_polygons_share_an_edge(conn):
    derive_boundary_lines(conn, level="county", actor="tests")
    features = json.loads((REFERENCE_DIR / COUNTIES_FILE).read_text(encoding="utf-8"))["features"]
    counties = [(f["properties"]["name"], shape(f["geometry"])) for f in features if f["properties"]["level"] == "county"]
    touching = {frozenset((a, b)) for i, (a, g) in enumerate(counties) for b, h in counties[i + 1:]
                if shapely.get_dimensions(g.intersection(h)) == 1}
    assert touching == REAL_NEIGHBOURS
    derived = {frozenset((r["left_name"], r["right_name"])) for r in _lines(conn) if r["right_name"]}
    assert derived == REAL_NEIGHBOURS


def test_should_code_and_name_each_line_by_its_two_counties_smaller_code_first(conn):
    derive_boundary_lines(conn, level="county", actor="tests")
    by_code = {r["code"]: r for r in _lines(conn)}
    assert by_code["330502330503"]["name"] == "吴兴区—南浔区线"
    assert by_code["330502330503"]["left_name"] == "吴兴区"
    for r in by_code.values():
        if r["right_code"]:
            assert r["code"] == r["left_code"] + r["right_code"] and r["left_code"] < r["right_code"]


def test_should_keep_every_county_s_stretch_of_the_city_edge_as_a_line_to_the_city_boundary(conn):
    derive_boundary_lines(conn, level="county", actor="tests")
    outer = {r["left_name"]: r for r in _lines(conn) if r["right_division_id"] is None}
    assert set(outer) == {"吴兴区", "南浔区", "德清县", "长兴县", "安吉县"}
    assert outer["长兴县"]["name"] == "长兴县—市界线" and outer["长兴县"]["code"] == "330522000000"
    assert {r["neighbour_name"] for r in outer.values()} == {"市界"}
    row = conn.execute(text("""
        SELECT sum(length_m) FILTER (WHERE right_division_id IS NULL) AS outer_len,
               (SELECT ST_Length(ST_Boundary(geom)::geography) FROM divisions WHERE level = 'city') AS city_len
        FROM boundary_lines WHERE level = 'county' AND status = 'active'""")).one()
    assert abs(row.outer_len - row.city_len) / row.city_len < 1e-3


def test_should_sum_a_county_s_lines_to_its_perimeter_within_one_percent(conn):
    derive_boundary_lines(conn, level="county", actor="tests")
    rows = conn.execute(text("""
        SELECT d.name, ST_Length(ST_Boundary(d.geom)::geography) AS perimeter,
               (SELECT sum(l.length_m) FROM boundary_lines l WHERE l.status = 'active' AND l.level = 'county'
                  AND d.id IN (l.left_division_id, l.right_division_id)) AS lines
        FROM divisions d WHERE d.level = 'county'""")).all()
    assert len(rows) == 5
    for r in rows:
        assert abs(r.lines - r.perimeter) / r.perimeter < 0.01, r.name


def test_should_store_the_geodesic_length_of_each_line(conn):
    derive_boundary_lines(conn, level="county", actor="tests")
    row = conn.execute(text("""SELECT max(abs(length_m - ST_Length(geom::geography))) AS err, min(length_m) AS shortest
                               FROM boundary_lines""")).one()
    assert row.err < 0.01 and row.shortest > 1000  # 吴兴区—安吉县, the shortest, is ~4 km


def test_should_write_nothing_when_derived_again_with_nothing_changed(conn):
    first = derive_boundary_lines(conn, level="county", actor="tests")
    assert first["added"] == 12 and first["change_set_id"]
    sets_before = conn.execute(text("SELECT count(*) FROM change_sets")).scalar()
    again = derive_boundary_lines(conn, level="county", actor="tests")
    assert again == {"added": 0, "updated": 0, "retired": 0, "unchanged": 12, "changed": 0, "change_set_id": None}
    assert conn.execute(text("SELECT count(*) FROM change_sets")).scalar() == sets_before
    assert conn.execute(text("SELECT count(*) FROM boundary_lines_history")).scalar() == 0


def test_should_keep_the_line_id_and_write_history_when_a_polygon_changes(conn):
    derive_boundary_lines(conn, level="county", actor="tests")
    line = conn.execute(text("SELECT id, length_m FROM boundary_lines WHERE code = '330502330503'")).one()
    # move 南浔区's shared edge a little: 吴兴区 takes a small square from 南浔区
    conn.execute(text("""
        WITH sq AS (SELECT ST_Buffer(ST_PointOnSurface(ST_Intersection(a.geom, b.geom)), 0.003, 'quad_segs=1') AS g
                    FROM divisions a, divisions b WHERE a.mca_code = '330502' AND b.mca_code = '330503')
        UPDATE divisions d SET geom = ST_Multi(CASE WHEN d.mca_code = '330502' THEN ST_Union(d.geom, sq.g)
                                                    ELSE ST_Difference(d.geom, sq.g) END)
        FROM sq WHERE d.mca_code IN ('330502', '330503') AND d.level = 'county'"""))
    counts = derive_boundary_lines(conn, level="county", actor="tests")
    assert counts["updated"] >= 1 and counts["added"] == 0
    after = conn.execute(text("SELECT id, length_m, version FROM boundary_lines WHERE code = '330502330503' "
                              "AND status = 'active'")).one()
    assert after.id == line.id and after.version == 2 and after.length_m != line.length_m
    old = conn.execute(text("SELECT version, length_m FROM boundary_lines_history WHERE id = :i"), {"i": line.id}).one()
    assert old.version == 1 and old.length_m == line.length_m
