"""The engine answers every class of query in issue 4 (hand-built town on the real divisions)."""
from __future__ import annotations

import pytest
from sqlalchemy import text

from registry.search import LOW_CONFIDENCE, Filters, search, structured
from registry.search.loading import load_gazetteer


def top(gaz, q, **kw):
    res = search(gaz, q, limit=kw.pop("limit", 5), **kw)["results"]
    assert res, f"no result for {q!r}"
    return res[0], res


def assert_address(gaz, town, q, label):
    first, res = top(gaz, q)
    assert (first["kind"], first["id"]) == ("address", town.ids[label]), (q, res[:3])
    return first


# 1 — the full standard text ------------------------------------------------------------------
@pytest.mark.parametrize("q", ["浙江省湖州市吴兴区爱山街道人民路123号", "浙江省湖州市吴兴区爱山街道人民路 123号",
                               "湖州市吴兴区爱山街道人民路123号", "浙江湖州吴兴爱山人民路123号"])
def test_should_find_the_full_standard_address(gaz, town, q):
    first = assert_address(gaz, town, q, "renmin_wx_123")
    assert first["score"] >= 0.95 and not first["low_confidence"]
    assert {"county", "street", "number"} <= set(first["match"]["levels"])
    assert first["address"] == "浙江省湖州市吴兴区爱山街道人民路123号"
    assert first["name"] == "人民路123号"
    assert first["code"].startswith("330502003003")
    assert first["division"]["name"] == "龙庭社区"


# 2 — missing or abbreviated levels -------------------------------------------------------------
@pytest.mark.parametrize("q,label", [
    ("吴兴人民路123号", "renmin_wx_123"), ("吴兴区人民路123号", "renmin_wx_123"),
    ("爱山街道人民路123号", "renmin_wx_123"), ("南浔人民路123号", "renmin_nx_123"),
    ("南浔区人民路123号", "renmin_nx_123"), ("长兴人民路123号", "renmin_cx_123"),
    ("长兴县雉城街道人民路123号", "renmin_cx_123"), ("湖州市吴兴区人民路123号", "renmin_wx_123"),
])
def test_should_find_an_address_with_missing_or_abbreviated_levels(gaz, town, q, label):
    assert_address(gaz, town, q, label)


@pytest.mark.parametrize("q", ["人民路123号", "湖州人民路123号", "湖州市人民路123号"])
def test_should_rank_every_county_and_show_the_ambiguity_when_the_county_is_missing(gaz, town, q):
    _, res = top(gaz, q)
    ids = {r["id"] for r in res[:3]}
    assert ids == {town.ids["renmin_wx_123"], town.ids["renmin_nx_123"], town.ids["renmin_cx_123"]}
    assert all(r["match"]["ambiguous"] == 3 for r in res[:3])
    assert "ambiguous" in res[0]["match"]["reason"]


# 3 — village and community short forms -----------------------------------------------------
@pytest.mark.parametrize("q,code", [("祝良村", "330503002200"), ("祝良村委会", "330503002200"),
                                    ("旧馆街道祝良村", "330503002200"), ("龙庭社区", "330502003003"),
                                    ("龙庭社区居委会", "330502003003"), ("衣裳街社区", "330502003006")])
def test_should_find_a_village_or_community_by_its_short_or_committee_form(gaz, q, code):
    first, _ = top(gaz, q)
    assert first["kind"] == "division" and first["code"] == code


@pytest.mark.parametrize("q", ["祝良村2组8号", "祝良村委会2组8号", "南浔区旧馆街道祝良村2组8号"])
def test_should_find_a_rural_door_by_village_group_and_number(gaz, town, q):
    first = assert_address(gaz, town, q, "zl_8")
    assert {"village", "group", "number"} <= set(first["match"]["levels"])


@pytest.mark.parametrize("q", ["荻港村钱家浜3组12号", "荻港村委会钱家浜3组12号", "和孚镇荻港村钱家浜3组12号",
                               "钱家浜12号"])
def test_should_find_a_natural_village_door(gaz, town, q):
    assert_address(gaz, town, q, "qjb_12")


# 4 — typos -------------------------------------------------------------------------------------
@pytest.mark.parametrize("q", ["艾山街道人民路123号", "吴兴区艾山街道人民路123号", "吴兴区爱山街到人民路123号"])
def test_should_find_homophone_of_township(gaz, town, q):
    first = assert_address(gaz, town, q, "renmin_wx_123")
    assert "township" in first["match"]["levels"]


@pytest.mark.parametrize("q,how", [
    ("吴兴区人敏路123号", "homophone"), ("吴兴区仁民路123号", "homophone"), ("吴兴区入民路123号", "look-alike"),  # 入/人: 形近字
    ("吴兴区人路123号", "edit"), ("吴兴区人民民路123号", "edit"), ("吴兴区民人路123号", "edit"),
])
def test_should_find_a_street_with_a_typo(gaz, town, q, how):
    first = assert_address(gaz, town, q, "renmin_wx_123")
    assert how in first["match"]["reason"]


def test_should_not_trade_an_exactly_named_street_for_a_similar_one(gaz, town):
    # 仁皇山路 exists with doors 1–10; 人民路 has no door 7000: the street comes back, not 仁皇山路
    first, res = top(gaz, "吴兴区人民路7000号")
    assert (first["kind"], first["id"]) == ("place", town.ids["renmin_wx"])
    assert all(r["kind"] != "address" for r in res)


# 5 — pinyin ------------------------------------------------------------------------------------
@pytest.mark.parametrize("q", ["吴兴区renminlu 123", "吴兴区 renmin lu 123", "吴兴 rén mín lù 123",
                               "吴兴区ren2 min2 lu4 123", "吴兴区RenMinLu123", "wuxing renminlu 123",
                               "吴兴区人民lu123号", "吴兴区renmin路123号"])
def test_should_find_an_address_typed_in_pinyin(gaz, town, q):
    assert_address(gaz, town, q, "renmin_wx_123")


@pytest.mark.parametrize("q", ["吴兴rml123", "吴兴区rml123号", "吴兴 RML 123"])
def test_should_find_a_street_by_its_pinyin_initials(gaz, town, q):
    first = assert_address(gaz, town, q, "renmin_wx_123")
    assert "initials" in first["match"]["reason"]


def test_should_find_a_street_by_initials_without_a_county_and_show_the_ambiguity(gaz, town):
    _, res = top(gaz, "rml123")
    assert town.ids["renmin_wx_123"] in {r["id"] for r in res[:3]}


# 6 — traditional characters, full-width digits, Chinese numerals ---------------------------------
@pytest.mark.parametrize("q", ["吳興區愛山街道人民路123號", "吳興人民路１２３號", "吴兴区人民路１２３号",
                               "吴兴区人民路一百二十三号", "吴兴区人民路壹佰贰拾叁号", "吳興區人民路一百二十三號"])
def test_should_find_traditional_full_width_and_chinese_numeral_forms(gaz, town, q):
    assert_address(gaz, town, q, "renmin_wx_123")


# 7 — sub-addresses -----------------------------------------------------------------------------
@pytest.mark.parametrize("q", ["凤凰小区5幢2单元301", "凤凰小区5栋2单元301室", "凤凰小区5座2单元301室",
                               "凤凰小区5号楼2单元301室", "凤凰小区5-2-301", "吴兴区凤凰小区五幢二单元三零一室",
                               "爱山街道凤凰小区5幢2单元301室"])
def test_should_find_a_flat_by_building_unit_and_room(gaz, town, q):
    first = assert_address(gaz, town, q, "fenghuang_5_2_301")
    assert first["match"]["levels"][-4:] == ["compound", "building", "unit", "room"]


def test_should_return_both_flats_when_the_unit_is_not_said(gaz, town):
    _, res = top(gaz, "凤凰小区5幢301")
    flats = [r for r in res if r["kind"] == "address"]
    assert len(flats) == 2 and all(r["match"]["ambiguous"] == 2 for r in flats)
    assert town.ids["fenghuang_5_2_301"] in {r["id"] for r in flats}


def test_should_read_a_floor_as_the_building_when_no_building_is_named(gaz, town):
    _, res = top(gaz, "凤凰小区3楼301")
    assert {r["address"] for r in res[:2]} == {"浙江省湖州市吴兴区爱山街道凤凰小区3幢1单元301室",
                                              "浙江省湖州市吴兴区爱山街道凤凰小区3幢2单元301室"}


@pytest.mark.parametrize("q,missing", [("凤凰小区5幢2单元309室", "room"), ("凤凰小区9幢2单元301室", "building"),
                                       ("凤凰小区5幢7单元301室", "unit")])
def test_should_return_the_finest_existing_level_as_a_partial_match_never_another_flat(gaz, town, q, missing):
    first, res = top(gaz, q)
    assert (first["kind"], first["id"]) == ("place", town.ids["fenghuang"])
    assert first["match"]["partial"] is True
    assert missing in first["match"]["reason"]
    assert all(r["kind"] != "address" for r in res)


def test_should_say_which_levels_matched_for_a_building_without_its_own_record(gaz, town):
    first, _ = top(gaz, "凤凰小区5幢")
    assert first["kind"] == "place" and first["match"]["partial"]
    assert "building" in first["match"]["levels"]
    assert "12" in first["match"]["reason"]  # 12 flats below it


# 8 — noise -------------------------------------------------------------------------------------
@pytest.mark.parametrize("q", ["吴兴区人民路123号附近", "吴兴区人民路123号(某某超市)", "吴兴区人民路123号（某某超市）旁边",
                               "  吴兴区 人民路 ，123 号。", "吴兴区-人民路/123号", "【吴兴区】人民路123号对面"])
def test_should_ignore_noise_spaces_and_punctuation(gaz, town, q):
    first = assert_address(gaz, town, q, "renmin_wx_123")
    assert first["score"] >= 0.9


# 9 — former and alternative names --------------------------------------------------------------
@pytest.mark.parametrize("q", ["东方红路8号", "吴兴区东方红路8号", "爱山街道东方红路8号"])
def test_should_resolve_a_former_street_name_to_todays_record_and_say_so(gaz, town, q):
    first = assert_address(gaz, town, q, "jiefang_8")
    assert first["address"].endswith("解放路8号")
    assert first["match"]["former_names"][0] == {"name": "东方红路", "current": "解放路", "kind": "place"}
    assert "former name" in first["match"]["reason"]


def test_should_resolve_a_former_township_name_after_a_rename(town, engine):
    conn = town.conn
    with conn.begin_nested() as sp:
        conn.execute(text("UPDATE divisions SET name = '旧馆镇', full_name = '旧馆镇' WHERE nbs_code = '330503002'"))
        conn.execute(text("UPDATE divisions SET name = '旧馆街道', full_name = '旧馆街道' WHERE nbs_code = '330503002'"))
        gaz = load_gazetteer(conn)
        first, _ = top(gaz, "旧馆镇祝良村2组8号")
        assert (first["kind"], first["id"]) == ("address", town.ids["zl_8"])
        assert "旧馆镇" in first["match"]["reason"] and "township" in first["match"]["levels"]
        sp.rollback()


def test_should_resolve_a_merged_township_to_the_one_that_took_its_villages(town):
    conn = town.conn
    with conn.begin_nested() as sp:
        parent = conn.execute(text("SELECT id, parent_id FROM divisions WHERE nbs_code = '330503002'")).one()
        old = conn.execute(text("""
            INSERT INTO divisions (level, name, full_name, parent_id, nbs_code, status)
            VALUES ('township', '祝良镇', '祝良镇', :county, '330503999', 'active') RETURNING id
        """), {"county": parent.parent_id}).scalar_one()
        conn.execute(text("UPDATE divisions SET parent_id = :old WHERE nbs_code = '330503002200'"), {"old": old})
        conn.execute(text("UPDATE divisions SET parent_id = :new WHERE nbs_code = '330503002200'"), {"new": parent.id})
        conn.execute(text("UPDATE divisions SET status = 'abolished' WHERE id = :old"), {"old": old})
        gaz = load_gazetteer(conn)
        first, _ = top(gaz, "祝良镇祝良村2组8号")
        assert (first["kind"], first["id"]) == ("address", town.ids["zl_8"])
        # the former township's name, or (since villages moved by an adjustment are indexed under it)
        # the village's former full name
        assert "旧馆街道" in first["match"]["reason"] or "“祝良镇祝良村”是曾用名" in first["match"]["reason"]
        sp.rollback()


# 10 — places, facilities, heritage ------------------------------------------------------------
@pytest.mark.parametrize("q,kind,label", [
    ("荻港", "place", "digang_nv"), ("荻港村幸福邻里中心", "facility", "facility_digang"),
    ("爱山街道居家养老服务照料中心", "facility", "facility_aishan"), ("南浔古镇", "heritage", "heritage_nanxun"),
    ("荻溪村", "heritage", "heritage_digang"), ("潘公桥", "heritage", "heritage_bridge"),
    ("钱家浜", "place", "qianjiabang"), ("仁皇山路", "place", "renhuang"),
])
def test_should_find_places_facilities_and_heritage_items_by_name(gaz, town, q, kind, label):
    first, _ = top(gaz, q)
    assert (first["kind"], first["id"]) == (kind, town.ids[label])


# 11 — several at once -------------------------------------------------------------------------
@pytest.mark.parametrize("q", ["吳興愛山街道人敏路一百二十三號附近", "吴兴艾山街道 renmin lu 一百二十三号",
                               "吳興區人民lu１２３號（超市）", "艾山街道入民路一二三号"])
def test_should_find_a_hurried_query_with_several_faults(gaz, town, q):
    assert_address(gaz, town, q, "renmin_wx_123")


# 12 — house-number variants and missing numbers --------------------------------------------------
@pytest.mark.parametrize("q", ["吴兴区人民路12-1号", "吴兴区人民路12号之1", "吴兴区人民路12号-1", "吴兴区人民路12之1号",
                               "吴兴区人民路十二号之一", "吴兴区人民路12-1"])
def test_should_read_house_number_variants_as_the_same_door(gaz, town, q):
    assert_address(gaz, town, q, "renmin_wx_12_1")


@pytest.mark.parametrize("q", ["吴兴区人民路999号", "吴兴区人民路12-7号", "吴兴区人民路12甲号"])
def test_should_return_the_street_as_a_partial_match_when_the_number_does_not_exist(gaz, town, q):
    first, res = top(gaz, q)
    assert (first["kind"], first["id"]) == ("place", town.ids["renmin_wx"])
    assert first["match"]["partial"] is True and first["match"]["levels"][-1] == "street"
    assert "number not found" in first["match"]["reason"]
    assert first["score"] < 0.9
    assert all(r["kind"] != "address" for r in res)


# confidence ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("q", ["某某某某", "qqqqxxzz", "火星基地99号", "这是一段和地址无关的话"])
def test_should_mark_results_for_unrelated_text_as_low_confidence(gaz, q):
    res = search(gaz, q)["results"]
    assert all(r["low_confidence"] and r["score"] < LOW_CONFIDENCE for r in res)


def test_should_not_mark_a_clean_match_as_low_confidence(gaz):
    first, _ = top(gaz, "吴兴区人民路123号")
    assert first["low_confidence"] is False and first["match"]["partial"] is False


# filters, explain, structured ------------------------------------------------------------------------
def test_should_restrict_results_to_a_division(gaz, town):
    d = gaz.division_by_code("330503")
    first, res = top(gaz, "人民路123号", filters=Filters(division_id=d.id))
    assert first["id"] == town.ids["renmin_nx_123"] and len([r for r in res if r["kind"] == "address"]) == 1


def test_should_restrict_results_to_a_kind_and_a_bbox(gaz, town):
    res = search(gaz, "人民路", filters=Filters(kinds=frozenset({"place"}), bbox=(119.8, 30.9, 120.0, 31.1)))["results"]
    assert [r["id"] for r in res] == [town.ids["renmin_cx"]]


def test_should_prefer_the_result_nearest_to_near_among_equals(gaz, town):
    first, _ = top(gaz, "人民路123号", filters=Filters(near=(120.42, 30.87)))
    assert first["id"] == town.ids["renmin_nx_123"]
    assert first["match"]["components"]["distance"] > 0.7


def test_should_explain_every_step_when_asked(gaz):
    body = search(gaz, "吳興愛山街道人敏路一百二十三號附近", explain=True)
    ex = body["explain"]
    assert ex["normalized"] == "吴兴爱山街道人敏路123号"
    assert ex["steps"] == ["normalize", "parse", "match names", "resolve doors", "rank"]
    assert {"kind": "number", "text": "123号", "span": [9, 13],
            "value": {"main": 123, "sub": None, "prefix": None, "suffix": None}} in ex["numbers"]
    assert any(m["name"] == "人民路" and m["mode"] == "homophone" for m in ex["matches"])
    assert ex["candidates"][0]["components"]["coverage"] > 0.9
    chosen = body["results"][0]["explain"]["chosen"]
    assert {c["name"] for c in chosen} >= {"人民路", "爱山街道"}


@pytest.mark.parametrize("fields,label", [
    ({"county": "吴兴区", "street": "人民路", "number": "123"}, "renmin_wx_123"),
    ({"county": "南浔", "street": "人民路", "number": "123号"}, "renmin_nx_123"),
    ({"street": "凤凰小区", "building": "5", "unit": "2", "room": "301"}, "fenghuang_5_2_301"),
    ({"township": "艾山街道", "street": "人民路", "number": "12-1"}, "renmin_wx_12_1"),
])
def test_should_answer_structured_fields(gaz, town, fields, label):
    first = structured(gaz, fields)["results"][0]
    assert (first["kind"], first["id"]) == ("address", town.ids[label])


# batch ----------------------------------------------------------------------------------------------
def test_should_match_a_batch_in_input_order_with_confidence(gaz, town):
    from registry.search import match_rows

    rows = ["吴兴区人民路123号", "火星基地99号", "", "凤凰小区5-2-301", "吴兴区人民路999号"]
    out = list(match_rows(gaz, rows))
    assert [r["row"] for r in out] == [1, 2, 3, 4, 5] and [r["input"] for r in out] == rows
    assert out[0]["id"] == town.ids["renmin_wx_123"] and out[0]["confidence"] >= 0.95
    assert out[1]["id"] is None or out[1]["low_confidence"]
    assert out[2]["id"] is None and "not searchable" in out[2]["reason"]
    assert out[3]["id"] == town.ids["fenghuang_5_2_301"] and out[3]["levels"][-3:] == ["building", "unit", "room"]
    assert out[4]["kind"] == "place" and out[4]["confidence"] < 0.9


def test_should_match_a_large_batch_in_worker_processes_in_input_order(gaz, town):
    from registry.search.batch import formatted

    rows = ["吴兴区人民路123号", "凤凰小区5-2-301", "东方红路8号", "", "祝良村2组8号"] * 300
    pieces = list(formatted(gaz, rows, "records", processes=2))
    recs = [r for piece in pieces for r in piece]
    assert [r["row"] for r in recs] == list(range(1, len(rows) + 1))
    expected = [town.ids["renmin_wx_123"], town.ids["fenghuang_5_2_301"], town.ids["jiefang_8"], None,
                town.ids["zl_8"]]
    assert [r["id"] for r in recs] == expected * 300
