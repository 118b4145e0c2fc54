"""The real Huzhou divisions: counts per level, both code authorities, county polygons."""
import csv
from pathlib import Path

from sqlalchemy import func, select, text

from registry.db.tables import division_codes, divisions
from registry.divisions import count_by_level, get_division

REF = Path(__file__).resolve().parents[1] / "data" / "reference"


def test_should_hold_the_real_counts_per_level(conn):
    assert count_by_level(conn) == {"province": 1, "city": 1, "county": 5, "township": 72, "village": 1301}


def test_should_resolve_a_township_under_either_authority(conn):
    by_nbs = get_division(conn, "330502007", authority="nbs2023")
    by_mca = get_division(conn, "330502010", authority="mca2025")
    assert by_nbs.id == by_mca.id
    assert by_nbs.name == "康山街道"
    assert (by_nbs.nbs_code, by_nbs.mca_code) == ("330502007", "330502010")


def test_should_match_the_crosswalk_for_all_72_townships(conn):
    with open(REF / "township_code_crosswalk.csv", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 72
    differing = 0
    for row in rows:
        stored = conn.execute(
            select(divisions.c.name, divisions.c.mca_code).where(divisions.c.nbs_code == row["nbs2023_code"])
        ).one()
        assert stored.name == row["name"]
        assert stored.mca_code == row["mca2025_code"]
        differing += row["nbs2023_code"] != row["mca2025_code"]
    assert differing == 24


def test_should_record_which_authority_each_code_comes_from(conn):
    authorities = dict(conn.execute(
        select(division_codes.c.authority, func.count()).group_by(division_codes.c.authority)
    ).all())
    assert authorities["nbs2023"] == 1 + 5 + 72 + 1301
    assert authorities["mca2025"] == 1 + 5 + 72


def test_should_store_the_short_village_name_people_write(conn):
    village = conn.execute(
        select(divisions.c.name, divisions.c.full_name).where(divisions.c.full_name.like("%社区居委会")).limit(1)
    ).one()
    assert village.name == village.full_name.removesuffix("居委会")
    village = conn.execute(
        select(divisions.c.name, divisions.c.full_name).where(divisions.c.full_name.like("%村委会")).limit(1)
    ).one()
    assert village.name == village.full_name.removesuffix("委会")


def test_should_store_county_polygons_that_tile_the_city(conn):
    row = conn.execute(text("""
        SELECT ST_Area(ST_Union(c.geom)::geography) AS counties,
               ST_Area(city.geom::geography) AS city,
               bool_and(ST_IsValid(c.geom)) AS valid,
               bool_and(ST_SRID(c.geom) = 4490) AS cgcs2000
        FROM divisions c, divisions city
        WHERE c.level = 'county' AND city.level = 'city'
        GROUP BY city.geom
    """)).one()
    assert row.valid and row.cgcs2000
    assert abs(row.counties - row.city) / row.city < 1e-6
    assert 5.5e9 < row.city < 6.2e9  # Huzhou is about 5,820 km²
