"""Place names, facilities, heritage items and division polygons through the same machinery."""
from __future__ import annotations

import shapely
from sqlalchemy import text

from loader_helpers import (BOX_A, COUNTY, IN_A, TOWNSHIP, VILLAGE_A, VILLAGE_B, box, load_kind, registry_state,
                            write_csv, write_gis)

PLACE_HEADER = ["name", "category", "county_code", "township_code", "village_code", "former_name", "former_until",
                "origin", "wkt"]


def test_should_register_place_names_with_pinyin_and_former_names(conn, world, tmp_path):
    rows = [{"name": "凤凰路", "category": "road", "county_code": COUNTY, "township_code": TOWNSHIP,
             "former_name": "东风路", "former_until": "1982-05-01", "origin": "因凤凰山得名",
             "wkt": "LINESTRING(120.021 30.852, 120.029 30.852)"},
            {"name": "骆驼桥", "category": "bridge", "county_code": COUNTY, "village_code": VILLAGE_A,
             "wkt": "POINT(120.022 30.851)"}]
    report = load_kind(conn, "place-names", write_csv(tmp_path / "p.csv", rows, header=PLACE_HEADER))
    assert report.inserted == 2 and report.aliases_added == 1
    road = conn.execute(text("SELECT * FROM place_names WHERE name = '凤凰路'")).mappings().one()
    assert road["pinyin"] == "Fenghuang Lu" and road["origin"] == "因凤凰山得名" and road["status"] == "active"
    alias = conn.execute(text("SELECT name, kind, used_until FROM place_name_aliases WHERE place_name_id = :id"),
                         {"id": road["id"]}).one()
    assert alias.name == "东风路" and alias.kind == "former" and str(alias.used_until) == "1982-05-01"
    again = load_kind(conn, "place-names", write_csv(tmp_path / "p2.csv", rows, header=PLACE_HEADER))
    assert again.unchanged == 2 and again.aliases_added == 0 and again.change_set_id is None


def test_should_keep_a_renamed_places_old_name_as_a_former_name(conn, world, tmp_path):
    rows = [{"id": world.road_id, "name": "人民大道", "category": "road", "county_code": COUNTY,
             "township_code": TOWNSHIP, "wkt": "LINESTRING(120.021 30.850, 120.039 30.850)"}]
    report = load_kind(conn, "place-names", write_csv(tmp_path / "p.csv", rows, header=["id"] + PLACE_HEADER))
    assert report.updated == 1, report.issues
    place = conn.execute(text("SELECT name, version FROM place_names WHERE id = :id"), {"id": world.road_id}).one()
    assert place.name == "人民大道" and place.version == 2
    former = {r[0] for r in conn.execute(text("SELECT name FROM place_name_aliases WHERE place_name_id = :id"),
                                         {"id": world.road_id})}
    assert former == {"解放路", "人民路"}


def test_should_refuse_a_place_in_an_unknown_division_and_a_bad_date(conn, world, tmp_path):
    rows = [{"name": "甲路", "category": "road", "county_code": COUNTY, "township_code": "330502999"},
            {"name": "乙路", "category": "road", "county_code": COUNTY, "township_code": TOWNSHIP,
             "former_name": "丙路", "former_until": "去年"},
            {"name": "丁路", "category": "Road Way", "county_code": COUNTY, "township_code": TOWNSHIP}]
    report = load_kind(conn, "place-names", write_csv(tmp_path / "p.csv", rows, header=PLACE_HEADER))
    assert [i.code for i in report.issues] == ["unknown_division", "bad_value", "bad_value"]
    assert "ISO" in report.issues[1].message_en


FAC_HEADER = ["category", "name", "county_code", "township_code", "village_code", "address", "phone", "lon", "lat"]


def test_should_load_facilities_and_check_their_division(conn, world, tmp_path):
    rows = [{"category": "居家养老服务照料中心", "name": "龙庭社区居家养老服务照料中心", "county_code": COUNTY,
             "township_code": TOWNSHIP, "village_code": VILLAGE_A, "address": "人民路12号", "phone": "0572-1234567",
             "lon": IN_A[0], "lat": IN_A[1]},
            {"category": "儿童之家", "name": "错位儿童之家", "county_code": COUNTY, "township_code": "330502001",
             "village_code": VILLAGE_A, "lon": IN_A[0], "lat": IN_A[1]},
            {"category": "儿童之家", "name": "远处儿童之家", "village_code": VILLAGE_A, "lon": BOX_A[2] + 0.003,
             "lat": IN_A[1]}]
    report = load_kind(conn, "facilities", write_csv(tmp_path / "f.csv", rows, header=FAC_HEADER))
    assert report.inserted == 1
    assert [i.code for i in report.issues] == ["wrong_parent", "outside_division"]
    f = conn.execute(text("SELECT address_text, phone, status FROM facilities")).one()
    assert f.address_text == "人民路12号" and f.status == "active"


def test_should_close_facilities_missing_from_a_full_list(conn, world, tmp_path):
    rows = [{"category": "儿童之家", "name": n, "village_code": VILLAGE_A, "lon": IN_A[0], "lat": IN_A[1]}
            for n in ("甲儿童之家", "乙儿童之家")]
    load_kind(conn, "facilities", write_csv(tmp_path / "a.csv", rows, header=FAC_HEADER))
    report = load_kind(conn, "facilities", write_csv(tmp_path / "b.csv", rows[:1], header=FAC_HEADER),
                       retire_missing=True)
    assert report.retired == 1
    assert conn.execute(text("SELECT status FROM facilities WHERE name = '乙儿童之家'")).scalar_one() == "closed"


def test_should_settle_a_township_code_the_two_authorities_share(conn, world, tmp_path):
    # 330502007 is 康山街道 under NBS 2023 but 湖东街道 under MCA 2025.
    row = {"category": "幸福邻里中心", "name": "某中心", "county_code": COUNTY, "township_code": "330502007",
           "lon": 120.13, "lat": 30.85}
    path = write_csv(tmp_path / "f.csv", [row], header=FAC_HEADER)
    report = load_kind(conn, "facilities", path, tolerance_m=100_000)
    assert [i.code for i in report.issues] == ["ambiguous_division"]
    assert "康山街道" in report.issues[0].message_zh and "湖东街道" in report.issues[0].message_zh
    for authority, name in (("nbs2023", "康山街道"), ("mca2025", "湖东街道")):
        r = load_kind(conn, "facilities", path, tolerance_m=100_000, code_authority=authority, dry_run=True)
        assert r.inserted == 1, r.issues
    load_kind(conn, "facilities", path, tolerance_m=100_000, code_authority="nbs2023")
    assert conn.execute(text("SELECT d.name FROM facilities f JOIN divisions d ON d.id = f.division_id")).scalar_one() == "康山街道"


HER_HEADER = ["name", "level", "category", "county_code", "township_code", "village_code", "pinyin_name", "origin",
              "meaning", "history", "former_names", "listed_year", "lon", "lat"]


def test_should_load_heritage_items_with_former_names_and_a_link_to_their_place(conn, world, tmp_path):
    rows = [{"name": "人民路", "level": "市级", "category": "古街巷", "county_code": COUNTY, "township_code": TOWNSHIP,
             "village_code": VILLAGE_A, "origin": "民国时期辟筑", "meaning": "人民之路", "history": "原为护城河畔小路",
             "former_names": "解放路；中山路", "listed_year": "2019", "lon": IN_A[0], "lat": IN_A[1]},
            {"name": "某古桥", "level": "world", "category": "古桥", "village_code": VILLAGE_A, "lon": IN_A[0],
             "lat": IN_A[1]}]
    report = load_kind(conn, "heritage", write_csv(tmp_path / "h.csv", rows, header=HER_HEADER))
    assert report.inserted == 1 and [i.code for i in report.issues] == ["bad_value"]
    item = conn.execute(text("SELECT * FROM heritage_items")).mappings().one()
    assert item["level"] == "city" and item["former_names"] == ["解放路", "中山路"] and item["listed_year"] == 2019
    assert item["pinyin"] == "Renmin Lu" and item["place_name_id"] == world.road_id and item["status"] == "listed"


def test_should_update_division_polygons_with_history(conn, world, tmp_path):
    bigger = shapely.box(BOX_A[0] - 0.001, BOX_A[1], BOX_A[2], BOX_A[3])
    path = write_gis(tmp_path / "v.gpkg", [{"code": VILLAGE_A, "name": "龙庭社区"}, {"code": VILLAGE_B, "name": "别名"}],
                     driver="GPKG", geometry=[bigger, box(BOX_A)])
    report = load_kind(conn, "divisions", path)
    assert report.updated == 2 and report.warnings == 1 and report.issues[0].code == "name_differs"
    version, area = conn.execute(text("SELECT version, ST_Area(geom) FROM divisions WHERE nbs_code = :c"),
                                 {"c": VILLAGE_A}).one()
    assert version == 3 and area > 0.0001  # reference load, fixture polygons, this file
    assert conn.execute(text("SELECT count(*) FROM divisions_history d JOIN divisions c USING (id) "
                             "WHERE c.nbs_code = :c"), {"c": VILLAGE_A}).scalar_one() == 2
    assert conn.execute(text("SELECT ST_GeometryType(geom) FROM divisions WHERE nbs_code = :c"),
                        {"c": VILLAGE_A}).scalar_one() == "ST_MultiPolygon"


def test_should_refuse_bad_division_polygons(conn, world, tmp_path):
    bowtie = shapely.Polygon([(120.02, 30.84), (120.03, 30.85), (120.03, 30.84), (120.02, 30.85)])
    rows = [{"code": "330502003999"}, {"code": VILLAGE_A}, {"code": VILLAGE_B}]
    geoms = [box(BOX_A), bowtie, shapely.Point(120.03, 30.85)]
    before = registry_state(conn)
    report = load_kind(conn, "divisions", write_gis(tmp_path / "v.geojson", rows, driver="GeoJSON", geometry=geoms,
                                                    crs="EPSG:4326"))
    assert [i.code for i in report.issues] == ["unknown_division", "bad_geometry", "bad_geometry"]
    assert "Self-intersection" in report.issues[1].message_zh
    assert report.change_set_id is None and registry_state(conn) == before
