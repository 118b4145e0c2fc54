"""County boundary lines derived from the real county polygons."""
import pytest
from sqlalchemy import text

from registry.boundaries import derive_boundary_lines
from registry.errors import Conflict


def test_should_derive_one_line_per_pair_of_neighbouring_counties(conn):
    counts = derive_boundary_lines(conn, level="county", actor="tests")
    names = set(conn.execute(text("SELECT name FROM boundary_lines WHERE right_division_id IS NOT NULL")).scalars())
    assert "吴兴区—南浔区线" in names or "南浔区—吴兴区线" in names
    assert counts["shared"] == len(names) >= 5
    assert counts["outer"] == 5  # every county reaches the city's edge


def test_should_cover_the_city_outline_with_shared_and_outer_lines(conn):
    derive_boundary_lines(conn, level="county", actor="tests")
    row = conn.execute(text("""
        SELECT sum(ST_Length(b.geom::geography)) FILTER (WHERE right_division_id IS NULL) AS outer_len,
               (SELECT ST_Length(ST_Boundary(geom)::geography) FROM divisions WHERE level = 'city') AS city_len
        FROM boundary_lines b
    """)).one()
    assert abs(row.outer_len - row.city_len) / row.city_len < 1e-3


def test_should_refuse_to_derive_the_same_level_twice(conn):
    derive_boundary_lines(conn, level="county", actor="tests")
    with pytest.raises(Conflict):
        derive_boundary_lines(conn, level="county", actor="tests")
