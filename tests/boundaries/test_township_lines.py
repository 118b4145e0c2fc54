"""Township lines derived from the generated city's township tiling (the city loader derives
them), consistent with the tiling and with the county lines they lie on."""
from sqlalchemy import text

from loaders.city import load_city
from registry.boundaries import derive_boundary_lines


def test_should_derive_both_levels_and_the_markers_when_the_city_is_loaded(city):
    derived = city.loaded[-1].derived
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
    derived = results[-1].derived
    assert derived["county"]["changed"] == 0 and derived["township"]["changed"] == 0
    assert derived["markers"]["markers"] == 0 and derived["markers"]["change_set_id"] is None
    with city.engine.connect() as c:
        assert c.execute(text("SELECT count(*) FROM change_sets")).scalar() == before
