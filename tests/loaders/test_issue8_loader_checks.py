"""Loader checks of issue 8: the same door in two villages of one township is a warning naming both;
place-name categories come from one table (道路 is road, `raod` is refused with the valid list);
a name registered under another kind is named as such instead of suggesting --create-places."""
import csv

from sqlalchemy import text

from loader_helpers import (COUNTY, IN_A, IN_B, TOWNSHIP, VILLAGE_A, VILLAGE_B, addr, load, load_kind,
                            registry_state, write_csv)

from registry.placename_categories import CATEGORIES, category_code

PLACE_HEADER = ["name", "category", "county_code", "township_code", "village_code", "wkt"]


def _rows(path):
    with open(path, encoding="utf-8-sig", newline="") as f:
        return list(csv.DictReader(f))


# --- the same door in two villages of one township ------------------------------------------------
def test_should_warn_about_the_same_road_and_number_in_two_villages_of_one_township(conn, world, tmp_path):
    rows = [addr(number="12号"), addr(number="14号"),
            addr(division_code=VILLAGE_B, number="12号", lon=IN_B[0], lat=IN_B[1])]
    report = load(conn, write_csv(tmp_path / "in.csv", rows), reject_file=tmp_path / "r.csv")

    # both doors are kept (the loader cannot tell which is right), each warned naming the other
    assert report.inserted == 3 and report.rejected == 0
    assert report.warnings == 2 and report.reasons["duplicate_door"] == 2
    warned = {i.row: i for i in report.issues if i.code == "duplicate_door"}
    assert set(warned) == {2, 4}  # file lines (the header is line 1)
    assert warned[2].severity == "warning"
    assert warned[2].params["other_row"] == 4 and warned[4].params["other_row"] == 2
    assert "龙庭社区" in warned[2].message_zh and "衣裳街社区" in warned[2].message_zh
    assert "人民路12号" in warned[2].message_zh and "row 4" in warned[2].message_en
    out = _rows(tmp_path / "r.csv")
    assert [(r["row"], r["reason"], r["severity"]) for r in out] == [("2", "duplicate_door", "warning"),
                                                                      ("4", "duplicate_door", "warning")]
    assert "第 4 行" in out[0]["message_zh"] and "衣裳街社区" in out[0]["message_zh"]


def test_should_warn_when_the_registry_has_that_door_in_another_village_of_the_township(conn, world, tmp_path):
    load(conn, write_csv(tmp_path / "a.csv", [addr(number="12号")]))
    registered = conn.execute(text("SELECT id FROM addresses WHERE number = '12号'")).scalar_one()
    report = load(conn, write_csv(tmp_path / "b.csv", [addr(division_code=VILLAGE_B, number="12号",
                                                             lon=IN_B[0], lat=IN_B[1])]))
    assert report.inserted == 1 and report.reasons["duplicate_door"] == 1
    (issue,) = report.issues
    assert issue.params["other_id"] == registered and f"库中地址 {registered}" in issue.message_zh
    assert "龙庭社区" in issue.message_zh


def test_should_not_warn_about_the_same_number_on_different_roads_or_in_flats(conn, world, tmp_path):
    rows = [addr(number="12号"), addr(division_code=VILLAGE_B, number="12号", street="解放路",  # former name
                                       lon=IN_B[0], lat=IN_B[1]),
            addr(division_code=VILLAGE_B, number="12号", room="101室", lon=IN_B[0], lat=IN_B[1])]
    report = load(conn, write_csv(tmp_path / "in.csv", rows))
    # 解放路 is 人民路's former name: that one *is* the same door (warned); the flat is another address
    assert report.reasons.get("duplicate_door") == 2
    assert {i.row for i in report.issues if i.code == "duplicate_door"} == {2, 3}


# --- place-name categories: one table --------------------------------------------------------------
def test_should_read_a_category_by_its_code_its_chinese_name_or_a_synonym():
    assert category_code("道路") == "road" and category_code("road") == "road" and category_code("Road") == "road"
    assert category_code("街巷") == "road" and category_code("自然村") == "natural_village"
    assert category_code("ｂｒｉｄｇｅ") == "bridge"  # full-width letters from a spreadsheet
    assert category_code("raod") is None and category_code("") is None
    codes = [c.code for c in CATEGORIES]
    assert len(codes) == len(set(codes)) and all(c.isascii() and c == c.lower() for c in codes)


def test_should_accept_daolu_as_road_and_refuse_raod_with_the_valid_categories(conn, world, tmp_path):
    before = registry_state(conn)
    rows = [{"name": "甲路", "category": "道路", "county_code": COUNTY, "township_code": TOWNSHIP,
             "wkt": "LINESTRING(120.021 30.848, 120.029 30.848)"},
            {"name": "乙路", "category": "raod", "county_code": COUNTY, "township_code": TOWNSHIP}]
    report = load_kind(conn, "place-names", write_csv(tmp_path / "p.csv", rows, header=PLACE_HEADER))
    assert report.inserted == 1 and report.rejected == 1
    stored = conn.execute(text("SELECT category FROM place_names WHERE name = '甲路'")).scalar_one()
    assert stored == "road"  # stored by its code, whatever the file wrote
    (issue,) = report.issues
    assert issue.code == "bad_value" and issue.params["value"] == "raod"
    assert "road（道路）" in issue.message_zh and "natural_village" in issue.message_en
    assert conn.execute(text("SELECT count(*) FROM place_names WHERE category = 'raod' OR name = '乙路'")).scalar() == 0
    assert registry_state(conn)["places"] == before["places"] + 1


def test_should_leave_stored_data_untouched_when_every_category_is_unknown(conn, world, tmp_path):
    before = registry_state(conn)
    rows = [{"name": "乙路", "category": "raod", "county_code": COUNTY, "township_code": TOWNSHIP},
            {"name": "丙桥", "category": "桥樑", "county_code": COUNTY, "village_code": VILLAGE_A}]
    report = load_kind(conn, "place-names", write_csv(tmp_path / "p.csv", rows, header=PLACE_HEADER))
    assert report.rejected == 2 and report.change_set_id is None
    assert registry_state(conn) == before


# --- a name registered under another kind ---------------------------------------------------------
def test_should_name_the_other_kind_instead_of_suggesting_create_places(conn, world, tmp_path):
    before = registry_state(conn)
    # 凤凰小区 is a compound of VILLAGE_A, given as a street; 人民路 is a road, given as a compound
    rows = [addr(street="凤凰小区", number="3号"), addr(street=None, compound="人民路", number="5号")]
    report = load(conn, write_csv(tmp_path / "in.csv", rows))
    assert [i.code for i in report.issues] == ["place_other_kind", "place_other_kind"]
    first, second = report.issues
    assert "登记为小区" in first.message_zh and "as a compound" in first.message_en
    assert "登记为道路" in second.message_zh and "not a compound" in second.message_en
    assert "--create-places would register" in first.message_en
    assert registry_state(conn) == before


def test_should_not_create_a_duplicate_place_of_another_kind_even_with_create_places(conn, world, tmp_path):
    before = registry_state(conn)
    report = load(conn, write_csv(tmp_path / "in.csv", [addr(street="凤凰小区", number="3号")]), create_places=True)
    assert report.places_created == 0 and [i.code for i in report.issues] == ["place_other_kind"]
    assert conn.execute(text("SELECT count(*) FROM place_names WHERE name = '凤凰小区'")).scalar() == 1
    assert registry_state(conn) == before


def test_should_still_suggest_create_places_for_a_name_registered_nowhere(conn, world, tmp_path):
    report = load(conn, write_csv(tmp_path / "in.csv", [addr(street="幸福路", number="3号", lon=IN_A[0])]))
    (issue,) = report.issues
    assert issue.code == "unknown_place" and "--create-places" in issue.message_en


def test_should_not_retire_the_places_a_retiring_load_itself_adds(conn, world, tmp_path):
    rows = [{"name": "人民路", "category": "road", "county_code": COUNTY, "township_code": TOWNSHIP,
             "wkt": "LINESTRING(120.021 30.850, 120.039 30.850)"},
            {"name": "新华路", "category": "道路", "county_code": COUNTY, "township_code": TOWNSHIP,
             "wkt": "LINESTRING(120.021 30.852, 120.039 30.852)"}]
    report = load_kind(conn, "place-names", write_csv(tmp_path / "p.csv", rows, header=PLACE_HEADER),
                       retire_missing=True)
    assert report.inserted == 1
    status = dict(conn.execute(text("SELECT name, status FROM place_names WHERE name IN ('人民路', '新华路')")).all())
    assert status == {"人民路": "active", "新华路": "active"}
