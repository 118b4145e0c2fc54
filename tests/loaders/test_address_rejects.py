"""Row-by-row validation: every reject reason, its message in Chinese and English, the reject
file, and nothing silently dropped (read = inserted + updated + unchanged + rejected)."""
from __future__ import annotations

import csv

import pytest
from sqlalchemy import text

from registry.loading.reasons import REASONS, WARNINGS
from loader_helpers import (BOX_A, IN_A, IN_B, VILLAGE_A, VILLAGE_B, addr, flat, load, write_csv)

# (test id, the bad row, expected reason, a fragment of the Chinese message, of the English one)
CASES = [
    ("missing_field", addr(division_code=None), "missing_field", "缺少必填字段", "required field"),
    ("field_too_long", addr(number="1" * 300 + "号"), "field_too_long", "过长", "too long"),
    ("bad_division_code", addr(division_code="33050200300X"), "bad_division_code", "不是 6、9 或 12 位数字", "12-digit"),
    ("unknown_division", addr(division_code="330502003999"), "unknown_division", "未找到区划", "no such division"),
    ("division_level", addr(division_code="330502003"), "division_level", "地址应挂在村", "village or community"),
    ("ambiguous_division", addr(division_code=None, village="凤凰村"), "ambiguous_division", "对应多个区划",
     "several divisions"),
    ("bad_number", addr(number="甲乙号"), "bad_number", "门牌号“甲乙号”无法识别", "house number"),
    ("bad_building", flat(building="东楼"), "bad_building", "楼幢号", "building"),
    ("bad_unit", flat(unit="甲单元"), "bad_unit", "单元号", "unit"),
    ("bad_room", flat(room="天台"), "bad_room", "室号", "room"),
    ("bad_group", addr(street=None, natural_village="钱家浜", division_code=VILLAGE_B, group="第组", lon=IN_B[0],
                       lat=IN_B[1]), "bad_group", "村民小组", "group"),
    ("incomplete_address", addr(number=None), "incomplete_address", "需要门牌号或楼幢号", "house number or a building"),
    ("unit_without_building", flat(building=None, number="8号"), "incomplete_address", "没有楼幢号", "without a building"),
    ("conflicting_fields", flat(natural_village="钱家浜"), "conflicting_fields", "既有小区又有自然村",
     "both a compound and a natural village"),
    ("unknown_place", addr(street="不存在路"), "unknown_place", "道路“不存在路”未在吴兴区登记", "--create-places"),
    ("missing_geometry", addr(lon=None, lat=None), "missing_geometry", "缺少坐标", "no coordinates"),
    ("unreadable_coordinates", addr(lon="东经120度"), "bad_coordinates", "坐标无效", "invalid coordinates"),
    ("swapped_coordinates", addr(lon=IN_A[1], lat=IN_A[0]), "bad_coordinates", "坐标无效", "invalid coordinates"),
    ("bad_id", addr(id="abc"), "bad_id", "不是正整数", "positive integer"),
    ("unknown_id", addr(id="987654321"), "unknown_id", "不存在", "no registered entry"),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_should_refuse_each_bad_row_with_its_reason_and_keep_the_good_ones(conn, world, tmp_path, case):
    name, bad, code, zh, en = case
    good = flat(room="302室")
    path = write_csv(tmp_path / "in.csv", [good, bad])
    report = load(conn, path, reject_file=tmp_path / "rejects.csv")
    assert report.read == 2 and report.inserted == 1 and report.rejected == 1, report.issues
    assert [i.code for i in report.issues] == [code]
    issue = report.issues[0]
    assert issue.row == 3  # the header is row 1
    assert zh in issue.message_zh and en in issue.message_en
    with open(tmp_path / "rejects.csv", encoding="utf-8-sig", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 1 and rows[0]["row"] == "3" and rows[0]["reason"] == code
    assert rows[0]["severity"] == "reject" and rows[0]["message_zh"] and rows[0]["message_en"]
    for key, value in bad.items():  # the original values, as read
        if value is not None and key in rows[0] and len(str(value)) < 100:
            assert rows[0][key] == str(value)


def test_should_reject_a_row_with_the_wrong_number_of_fields(conn, world, tmp_path):
    path = tmp_path / "in.csv"
    path.write_text(",".join(["division_code", "street", "number", "lon", "lat"]) + "\n"
                    f"{VILLAGE_A},人民路,12号,{IN_A[0]},{IN_A[1]}\n"
                    f"{VILLAGE_A},人民路,14号,多余,{IN_A[0]},{IN_A[1]}\n", encoding="utf-8")
    report = load(conn, path)
    assert report.inserted == 1 and [i.code for i in report.issues] == ["wrong_field_count"]
    assert "5" in report.issues[0].message_en and "6" in report.issues[0].message_en


def test_should_reject_a_point_outside_its_village_with_the_distance(conn, world, tmp_path):
    far = addr(lon=BOX_A[2] + 0.003, lat=IN_A[1])  # ~290 m east of VILLAGE_A, inside VILLAGE_B
    report = load(conn, write_csv(tmp_path / "in.csv", [addr(number="1号"), far]))
    assert report.inserted == 1 and report.rejected == 1
    issue = report.issues[0]
    assert issue.code == "outside_division"
    assert 270 < issue.params["distance_m"] < 310
    assert "龙庭社区" in issue.message_zh and "米" in issue.message_zh and " m outside" in issue.message_en


def test_should_accept_a_point_just_outside_its_village_with_a_warning(conn, world, tmp_path):
    near = addr(lon=BOX_A[2] + 0.0001, lat=IN_A[1])  # ~10 m east of the edge
    report = load(conn, write_csv(tmp_path / "in.csv", [near]), reject_file=tmp_path / "r.csv")
    assert report.inserted == 1 and report.rejected == 0 and report.warnings == 1
    assert report.issues[0].code == "near_boundary" and report.issues[0].severity == "warning"
    assert 5 < report.issues[0].params["distance_m"] < 15
    assert "warning" in (tmp_path / "r.csv").read_text(encoding="utf-8-sig")


def test_should_take_the_tolerance_from_the_options(conn, world, tmp_path):
    near = addr(lon=BOX_A[2] + 0.0001, lat=IN_A[1])
    report = load(conn, write_csv(tmp_path / "in.csv", [near]), tolerance_m=5)
    assert report.rejected == 1 and report.issues[0].code == "outside_division"


def test_should_check_a_village_without_a_polygon_against_its_county(conn, world, tmp_path):
    # 330502001005 has no polygon: the county (吴兴区) outline is the check; the sea is not in it.
    rows = [addr(division_code="330502001005", number="1号", lon=IN_A[0], lat=IN_A[1]),
            addr(division_code="330502001005", number="2号", lon=122.5, lat=30.0)]
    report = load(conn, write_csv(tmp_path / "in.csv", rows), create_places=True)
    assert report.inserted == 1 and [i.code for i in report.issues] == ["outside_division"], report.issues
    assert "吴兴区" in report.issues[0].message_zh


def test_should_reject_a_non_point_geometry(conn, world, tmp_path):
    rows = [{"division_code": VILLAGE_A, "street": "人民路", "number": "1号", "wkt": f"POINT({IN_A[0]} {IN_A[1]})"},
            {"division_code": VILLAGE_A, "street": "人民路", "number": "2号",
             "wkt": "POLYGON((120.021 30.846, 120.022 30.846, 120.022 30.847, 120.021 30.846))"}]
    path = write_csv(tmp_path / "in.csv", rows, header=["division_code", "street", "number", "wkt"])
    report = load(conn, path)
    assert report.inserted == 1 and [i.code for i in report.issues] == ["bad_geometry"]
    assert "Polygon" in report.issues[0].message_zh


def test_should_reject_the_later_duplicates_within_the_file_naming_the_first_row(conn, world, tmp_path):
    rows = [addr(), addr(number="十二号", lon=IN_A[0] + 0.0001), addr(number="13号")]
    report = load(conn, write_csv(tmp_path / "in.csv", rows))
    assert report.inserted == 2
    assert [(i.row, i.code, i.params) for i in report.issues] == [(3, "duplicate_in_file", {"first_row": 2})]
    assert "第 2 行" in report.issues[0].message_zh


def test_should_reject_a_correction_whose_new_key_belongs_to_another_address(conn, world, tmp_path):
    load(conn, write_csv(tmp_path / "a.csv", [addr(number="1号"), addr(number="2号")]))
    one = conn.execute(text("SELECT id FROM addresses WHERE number = '1号'")).scalar_one()
    two = conn.execute(text("SELECT id FROM addresses WHERE number = '2号'")).scalar_one()
    report = load(conn, write_csv(tmp_path / "b.csv", [addr(id=one, number="2号")]))
    assert [i.code for i in report.issues] == ["duplicate_in_registry"]
    assert report.issues[0].params["other_id"] == two


def test_should_resolve_an_ambiguous_village_name_with_the_county(conn, world, tmp_path):
    row = addr(division_code=None, village="凤凰村", county="吴兴区", street="人民路", lon=120.2, lat=30.87)
    report = load(conn, write_csv(tmp_path / "in.csv", [row]), create_places=True, tolerance_m=100_000)
    assert report.inserted == 1, report.issues
    code = conn.execute(text("SELECT d.nbs_code FROM addresses a JOIN divisions d ON d.id = a.division_id")).scalar_one()
    assert code == "330502006200"


def test_should_refuse_an_abolished_division(conn, world, tmp_path):
    conn.execute(text("UPDATE divisions SET status = 'abolished' WHERE nbs_code = :c"), {"c": VILLAGE_B})
    report = load(conn, write_csv(tmp_path / "in.csv", [addr(division_code=VILLAGE_B, lon=IN_B[0], lat=IN_B[1])]))
    assert [i.code for i in report.issues] == ["abolished_division"]


def test_should_refuse_a_name_two_places_share_in_the_same_scope(conn, world, tmp_path):
    for _ in range(2):
        conn.execute(text("""INSERT INTO place_names (category, name, division_id, county_id)
                             SELECT 'compound', '双子小区', id, parent_id FROM divisions WHERE nbs_code = :c"""),
                     {"c": VILLAGE_A})
    report = load(conn, write_csv(tmp_path / "in.csv", [flat(compound="双子小区")]))
    assert [i.code for i in report.issues] == ["ambiguous_place"]
    assert report.issues[0].params["count"] == 2


def test_should_accept_a_former_street_name_with_a_warning(conn, world, tmp_path):
    report = load(conn, write_csv(tmp_path / "in.csv", [addr(street="解放路")]))
    assert report.inserted == 1 and report.warnings == 1
    assert report.issues[0].code == "former_place_name" and "人民路" in report.issues[0].message_zh
    street_id, full = conn.execute(text("SELECT street_id, full_text FROM addresses")).one()
    assert street_id == world.road_id and "人民路12号" in full


def test_should_register_unknown_places_in_the_same_change_set_when_asked(conn, world, tmp_path):
    rows = [addr(street="新开路", number="1号"), addr(street="新开路", number="3号"),
            flat(compound="新建花园", building="1幢")]
    report = load(conn, write_csv(tmp_path / "in.csv", rows), create_places=True)
    assert report.inserted == 3 and report.places_created == 2 and report.rejected == 0
    places = conn.execute(text("""SELECT name, category, pinyin, change_set_id FROM place_names
                                  WHERE name IN ('新开路', '新建花园') ORDER BY name""")).all()
    assert [(p.name, p.category) for p in places] == [("新建花园", "compound"), ("新开路", "road")]
    assert all(p.change_set_id == report.change_set_id for p in places)
    assert places[1].pinyin == "Xinkai Lu"


def test_should_count_every_row_once(conn, world, tmp_path):
    rows = [addr(number=f"{n}号", lon=IN_A[0] + n * 1e-5) for n in range(1, 30)] + [addr(number="bad"), addr()]
    report = load(conn, write_csv(tmp_path / "in.csv", rows))
    assert report.read == 31
    assert report.inserted + report.updated + report.unchanged + report.rejected == report.read
    assert report.rejected == 2 and report.reasons["bad_number"] == 1 and report.reasons["duplicate_in_file"] == 1


def test_should_have_a_chinese_and_english_message_for_every_reason():
    for code, (zh, en) in {**REASONS, **WARNINGS}.items():
        assert zh and en and zh != en, code
