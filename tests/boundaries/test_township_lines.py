"""Township lines derived from the generated city's township tiling (the city loader derives
them), consistent with the tiling and with the county lines they lie on."""
from sqlalchemy import text

from loaders.city import load_city
from registry.boundaries import derive_boundary_lines


def test_should_derive_both_levels_and_the_markers_when_the_city_is_loaded(city):
    derived = next(r.derived for r in city.loaded if r.derived is not None)
    assert derived["county"]["added"] == 12
    assert derived["township"]["added"] > 150
    assert derived["markers"]["markers"] > 500


def test_should_bound_every_township_by_its_own_lines_summing_to_its_perimeter(city_conn):
    rows = city_conn.execute(text("""
        SELECT d.name, ST_Length(ST_Boundary(d.geom)::geography) AS perimeter,
               (SELECT sum(l.length_m) FROM boundary_lines l WHERE l.status = 'active' AND l.level = 'township'
                  AND d.id IN (l.left_division_id, l.right_division_id)) AS lines
        FROM divisions d WHERE d.level = 'township' AND d.status = 'active'""")).all()
    assert len(rows) == 72
    for r in rows:
        assert r.lines is not None and abs(r.lines - r.perimeter) / r.perimeter < 0.005, r.name


def test_should_have_one_line_for_each_pair_of_townships_sharing_an_edge_and_none_overlapping(city_conn):
    pairs = city_conn.execute(text("""
        SELECT count(*) FROM divisions a JOIN divisions b ON a.id < b.id AND a.level = 'township' AND b.level = 'township'
        WHERE ST_Intersects(a.geom, b.geom)
          AND ST_Length(ST_CollectionExtract(ST_Intersection(a.geom, b.geom), 2)::geography) > 1""")).scalar()
    lines = city_conn.execute(text("""SELECT count(*) FROM boundary_lines
                                      WHERE level = 'township' AND status = 'active' AND right_division_id IS NOT NULL""")
                              ).scalar()
    assert lines == pairs
    overlap = city_conn.execute(text("""
        SELECT count(*) FROM boundary_lines a JOIN boundary_lines b ON a.id < b.id
        WHERE a.level = 'township' AND b.level = 'township' AND a.status = 'active' AND b.status = 'active'
          AND ST_Length(ST_CollectionExtract(ST_Intersection(a.geom, b.geom), 2)::geography) > 1""")).scalar()
    assert overlap == 0


def test_should_code_township_lines_by_both_nine_digit_codes_smaller_first(city_conn):
    rows = city_conn.execute(text("""
        SELECT l.code, l.name, a.name AS a, b.name AS b, coalesce(a.mca_code, a.nbs_code) AS ac,
               coalesce(b.mca_code, b.nbs_code) AS bc
        FROM boundary_lines l JOIN divisions a ON a.id = l.left_division_id
        LEFT JOIN divisions b ON b.id = l.right_division_id
        WHERE l.level = 'township' AND l.status = 'active'""")).all()
    for r in rows:
        assert len(r.code) == 18
        if r.b:
            assert r.code == r.ac + r.bc and r.ac < r.bc and r.name == f"{r.a}—{r.b}线"
        else:
            assert r.code == r.ac + "000000000" and r.name == f"{r.a}—市界线"


def test_should_point_a_township_line_on_the_county_boundary_at_that_county_line(city_conn):
    rows = city_conn.execute(text("""
        SELECT l.code, l.county_line_id, c.level AS c_level, ta.parent_id AS pa, tb.parent_id AS pb,
               c.left_division_id AS cl, c.right_division_id AS cr
        FROM boundary_lines l JOIN divisions ta ON ta.id = l.left_division_id
        LEFT JOIN divisions tb ON tb.id = l.right_division_id
        LEFT JOIN boundary_lines c ON c.id = l.county_line_id
        WHERE l.level = 'township' AND l.status = 'active'""")).all()
    for r in rows:
        if r.pb == r.pa:
            assert r.county_line_id is None, r.code  # inside one county
        else:
            assert r.c_level == "county" and {r.cl, r.cr} == {r.pa, r.pb}, r.code
    # and together they cover each county line: same length within 1 %
    cover = city_conn.execute(text("""
        SELECT c.code, c.length_m, sum(l.length_m) AS parts FROM boundary_lines c
        JOIN boundary_lines l ON l.county_line_id = c.id AND l.status = 'active'
        WHERE c.level = 'county' AND c.status = 'active' GROUP BY c.code, c.length_m""")).all()
    assert len(cover) == 12
    for r in cover:
        assert abs(r.parts - r.length_m) / r.length_m < 0.01, r.code


def test_should_write_nothing_when_the_township_lines_are_derived_again(city_conn):
    counts = derive_boundary_lines(city_conn, level="township", actor="tests")
    assert counts["changed"] == 0 and counts["change_set_id"] is None and counts["unchanged"] > 150


def test_should_load_the_same_city_again_without_writing_lines_or_markers(city):
    with city.engine.connect() as c:
        before = c.execute(text("SELECT count(*) FROM change_sets")).scalar()
    results = load_city(city.engine, city.directory, actor="tests")
    derived = next(r.derived for r in results if r.derived is not None)
    assert derived["county"]["changed"] == 0 and derived["township"]["changed"] == 0
    assert derived["markers"]["markers"] == 0 and derived["markers"]["change_set_id"] is None
    with city.engine.connect() as c:
        assert c.execute(text("SELECT count(*) FROM change_sets")).scalar() == before


def _two_neighbour_townships(conn):
    return conn.execute(text("""
        SELECT l.id AS line_id, l.left_division_id AS a, l.right_division_id AS b FROM boundary_lines l
        JOIN divisions ta ON ta.id = l.left_division_id JOIN divisions tb ON tb.id = l.right_division_id
        WHERE l.level = 'township' AND l.status = 'active' AND ta.parent_id = tb.parent_id
          AND EXISTS (SELECT 1 FROM boundary_markers m WHERE m.boundary_line_id = l.id)
        ORDER BY l.code LIMIT 1""")).one()


def test_should_retire_the_line_and_its_markers_when_two_townships_merge(city_conn):
    t = _two_neighbour_townships(city_conn)
    city_conn.execute(text("""
        UPDATE divisions SET geom = ST_Multi(ST_Union(geom, (SELECT geom FROM divisions WHERE id = :b))) WHERE id = :a
    """), {"a": t.a, "b": t.b})
    city_conn.execute(text("UPDATE divisions SET status = 'abolished' WHERE id = :b"), {"b": t.b})
    counts = derive_boundary_lines(city_conn, level="township", actor="tests")
    assert counts["retired"] >= 1 and counts["markers_retired"] >= 1
    gone = city_conn.execute(text("SELECT status FROM boundary_lines WHERE id = :i"), {"i": t.line_id}).scalar()
    assert gone == "retired"
    assert city_conn.execute(text("""SELECT count(*) FROM boundary_markers
                                     WHERE boundary_line_id = :i AND status = 'active'"""), {"i": t.line_id}).scalar() == 0
    assert city_conn.execute(text("""SELECT count(*) FROM boundary_lines WHERE status = 'active'
                                     AND :b IN (left_division_id, right_division_id)"""), {"b": t.b}).scalar() == 0


def test_should_keep_the_line_ids_and_change_their_codes_when_a_township_is_recoded(city_conn):
    t = _two_neighbour_townships(city_conn)
    before = dict(city_conn.execute(text("""SELECT id, code FROM boundary_lines WHERE status = 'active'
                                            AND :a IN (left_division_id, right_division_id)"""), {"a": t.a}).all())
    old = city_conn.execute(text("SELECT coalesce(mca_code, nbs_code) FROM divisions WHERE id = :a"), {"a": t.a}).scalar()
    new = old[:6] + "398"
    city_conn.execute(text("UPDATE divisions SET mca_code = :c WHERE id = :a"), {"c": new, "a": t.a})
    counts = derive_boundary_lines(city_conn, level="township", actor="tests")
    assert counts["added"] == counts["retired"] == 0 and counts["updated"] == len(before)
    after = dict(city_conn.execute(text("""SELECT id, code FROM boundary_lines WHERE status = 'active'
                                           AND :a IN (left_division_id, right_division_id)"""), {"a": t.a}).all())
    assert set(after) == set(before)
    assert all(new in code and old not in code for code in after.values())
