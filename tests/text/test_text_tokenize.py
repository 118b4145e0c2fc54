"""Spec of tokenize_address(): components by suffix, no gazetteer."""

import pytest

from registry.text import Component, HouseNumber, tokenize_address


def kinds(text):
    return [(c.kind, c.text) for c in tokenize_address(text)]


def test_should_cut_a_street_address_into_divisions_street_and_number():
    assert tokenize_address("湖州市吴兴区爱山街道人民路123号") == [
        Component("city", "湖州市"),
        Component("county", "吴兴区"),
        Component("township", "爱山街道"),
        Component("street", "人民路"),
        Component("number", "123号", HouseNumber(123)),
    ]


def test_should_cut_a_compound_address_into_building_unit_room():
    assert tokenize_address("凤凰小区5幢2单元301") == [
        Component("compound", "凤凰小区"),
        Component("building", "5幢", 5),
        Component("unit", "2单元", 2),
        Component("room", "301", "301"),
    ]


@pytest.mark.parametrize("text", ["人民路12号之1", "人民路12-1号", "人民路12号-1", "人民路十二号之一"])
def test_should_read_compound_doors_as_one_number(text):
    number = tokenize_address(text)[-1]
    assert number.kind == "number" and number.value == HouseNumber(12, 1)


def test_should_read_a_floor():
    assert tokenize_address("3楼") == [Component("floor", "3楼", 3)]


def test_should_cut_a_rural_address():
    comps = tokenize_address("浙江省湖州市南浔区和孚镇荻港村钱家浜3组12号")
    assert [(c.kind, c.text) for c in comps] == [
        ("province", "浙江省"), ("city", "湖州市"), ("county", "南浔区"), ("township", "和孚镇"),
        ("village", "荻港村"), ("natural_village", "钱家浜"), ("group", "3组"), ("number", "12号")]
    assert comps[6].value == 3


@pytest.mark.parametrize("text, township", [
    ("德清县新市镇", "新市镇"), ("南浔区练市镇", "练市镇"), ("练市镇", "练市镇"),
    ("长兴县雉城街道", "雉城街道"), ("吴兴区月河街道", "月河街道"), ("长兴县虹星桥镇", "虹星桥镇"),
])
def test_should_not_take_a_township_name_containing_shi_for_a_city(text, township):
    assert kinds(text)[-1] == ("township", township)


@pytest.mark.parametrize("text, short", [
    ("荻港村委会", "荻港村"), ("浮星桥社区居委会", "浮星桥社区"), ("吉山一村社区居委会", "吉山一村社区"),
])
def test_should_keep_a_committee_name_whole_with_its_short_form(text, short):
    assert tokenize_address(text) == [Component("village", text, short)]


@pytest.mark.parametrize("text, expected", [
    ("潘公桥路5号", [("street", "潘公桥路"), ("number", "5号")]),
    ("县前街8号", [("street", "县前街"), ("number", "8号")]),
    ("西街小区", [("compound", "西街小区")]),
    ("吴兴区区府路", [("county", "吴兴区"), ("street", "区府路")]),
    ("318国道12号", [("street", "318国道"), ("number", "12号")]),
])
def test_should_absorb_a_generic_that_follows_a_name(text, expected):
    assert kinds(text) == expected


def test_should_keep_a_lane_number_with_its_street():
    assert kinds("人民路3弄5号") == [("street", "人民路3弄"), ("number", "5号")]


def test_should_read_dashed_building_unit_room():
    assert tokenize_address("凤凰小区3-2-301")[1:] == [
        Component("building", "3", 3), Component("unit", "2", 2), Component("room", "301", "301")]


@pytest.mark.parametrize("text, kind", [
    ("人民路12", "number"), ("凤凰小区5幢301", "room"), ("荻港村3组12", "number"), ("湖州12", "unknown"),
])
def test_should_read_a_trailing_bare_number_by_its_neighbour(text, kind):
    assert tokenize_address(text)[-1].kind == kind


def test_should_mark_what_it_cannot_cut_as_unknown():
    assert tokenize_address("湖州师范学院") == [Component("unknown", "湖州师范学院")]


def test_should_mark_an_impossible_house_number_as_unknown():
    assert tokenize_address("人民路0号")[-1] == Component("unknown", "0号")


def test_should_normalize_before_cutting():
    assert kinds("吳興區 愛山街道（某某超市）人民路十二號附近") == [
        ("county", "吴兴区"), ("township", "爱山街道"), ("street", "人民路"), ("number", "12号")]


def test_should_read_a_lettered_building():
    assert tokenize_address("凤凰小区A座301室")[1:] == [
        Component("building", "a幢", "A"), Component("room", "301室", "301")]


def test_should_return_nothing_for_empty_text():
    assert tokenize_address("  ") == []
