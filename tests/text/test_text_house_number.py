"""Spec of HouseNumber and the doorplate / building / unit / room / group parsers."""

import dataclasses

import pytest

from registry.text import (HouseNumber, InvalidBuilding, InvalidGroup, InvalidHouseNumber,
                           InvalidRoom, InvalidUnit, parse_building, parse_group,
                           parse_house_number, parse_room, parse_unit)


@pytest.mark.parametrize("number, standard", [
    (HouseNumber(12), "12号"),
    (HouseNumber(12, 1), "12-1号"),
    (HouseNumber(5, prefix="附"), "附5号"),
    (HouseNumber(12, suffix="甲"), "12甲号"),
])
def test_should_write_the_registry_standard_text(number, standard):
    assert number.standard == standard
    assert str(number) == standard


def test_should_be_immutable():
    with pytest.raises(dataclasses.FrozenInstanceError):
        HouseNumber(12).main = 13


@pytest.mark.parametrize("kwargs", [
    dict(main=0), dict(main=100_000), dict(main=-1), dict(main=12, sub=0),
    dict(main=12, prefix="临"), dict(main=12, suffix="戊"), dict(main="12"),
])
def test_should_refuse_to_build_an_impossible_house_number(kwargs):
    with pytest.raises(InvalidHouseNumber):
        HouseNumber(**kwargs)


@pytest.mark.parametrize("text, expected", [
    ("12号", HouseNumber(12)),
    ("12", HouseNumber(12)),
    ("１２号", HouseNumber(12)),
    ("十二号", HouseNumber(12)),
    ("一百二十三号", HouseNumber(123)),
    ("附5号", HouseNumber(5, prefix="附")),
    ("附 5 号", HouseNumber(5, prefix="附")),
    ("12甲号", HouseNumber(12, suffix="甲")),
    ("12乙", HouseNumber(12, suffix="乙")),
    ("99999号", HouseNumber(99_999)),
    ("12號", HouseNumber(12)),
    (" 12号 ", HouseNumber(12)),
])
def test_should_parse_house_number_forms(text, expected):
    assert parse_house_number(text) == expected


@pytest.mark.parametrize("text", [
    "12-1号", "12号之1", "12号-1", "12之1号", "12—1号", "12–1号", "12－1号", "12-1",
    "12号之一", "十二号之一",
])
def test_should_treat_number_dash_forms_as_same_door(text):
    assert parse_house_number(text) == HouseNumber(12, 1)
    assert parse_house_number(text).standard == "12-1号"


@pytest.mark.parametrize("garbage", ["abc", "", "   ", "号", "12号号号", "12号之", "人民路12号", "12乙丁号"])
def test_should_reject_text_that_is_not_a_house_number(garbage):
    with pytest.raises(InvalidHouseNumber):
        parse_house_number(garbage)


def test_should_reject_zero_house_number_naming_the_text():
    with pytest.raises(InvalidHouseNumber) as info:
        parse_house_number("0号")
    message = str(info.value)
    assert "“0号”" in message and "'0号'" in message
    assert "门牌号" in message and "house number" in message


@pytest.mark.parametrize("text", ["-12号", "－12号", "100000号", "12号之0"])
def test_should_reject_negative_or_absurd_house_numbers(text):
    with pytest.raises(InvalidHouseNumber):
        parse_house_number(text)


def test_should_keep_the_offending_text_on_the_error():
    with pytest.raises(InvalidHouseNumber) as info:
        parse_house_number("abc")
    assert info.value.text == "abc"


@pytest.mark.parametrize("text", ["5幢", "5栋", "5座", "五幢", "5号楼", "5#楼", "第五幢", "5", "５幢"])
def test_should_parse_building_forms(text):
    assert parse_building(text) == 5


@pytest.mark.parametrize("text, value", [("2单元", 2), ("二单元", 2), ("2", 2), ("第2单元", 2), ("2單元", 2)])
def test_should_parse_unit_forms(text, value):
    assert parse_unit(text) == value


@pytest.mark.parametrize("text, value", [
    ("301", "301"), ("301室", "301"), ("三零一室", "301"), ("三〇一", "301"),
    ("0301", "0301"), ("b301", "B301"), ("301A室", "301A"),
])
def test_should_parse_room_forms_as_text(text, value):
    assert parse_room(text) == value


@pytest.mark.parametrize("text, value", [("3组", 3), ("三组", 3), ("第三组", 3), ("3村民小组", 3), ("3", 3)])
def test_should_parse_group_forms(text, value):
    assert parse_group(text) == value


@pytest.mark.parametrize("parser, error, garbage", [
    (parse_building, InvalidBuilding, "abc"),
    (parse_building, InvalidBuilding, "0幢"),
    (parse_building, InvalidBuilding, "A幢"),
    (parse_unit, InvalidUnit, "二楼"),
    (parse_unit, InvalidUnit, ""),
    (parse_room, InvalidRoom, "厨房"),
    (parse_room, InvalidRoom, "000"),
    (parse_group, InvalidGroup, "三队"),
    (parse_group, InvalidGroup, "0组"),
])
def test_should_raise_a_typed_error_on_garbage_parts(parser, error, garbage):
    with pytest.raises(error):
        parser(garbage)


# --- the one number grammar (issue 10): search, tokenizer and loader read numbers alike ----------
from registry.search.query import prepare  # noqa: E402
from registry.text import tokenize_address  # noqa: E402
from registry.text.house_number import parse_sub_address, scan_number_parts  # noqa: E402


@pytest.mark.parametrize("text, expected", [
    ("5幢2单元301室", {"building": 5, "unit": 2, "room": "301"}),
    ("5号幢2单元301室", {"building": 5, "unit": 2, "room": "301"}),
    ("5号楼2单元301", {"building": 5, "unit": 2, "room": "301"}),
    ("5栋2单元301室", {"building": 5, "unit": 2, "room": "301"}),
    ("5座2单元301室", {"building": 5, "unit": 2, "room": "301"}),
    ("5-2-301", {"building": 5, "unit": 2, "room": "301"}),
    ("五幢二单元三零一室", {"building": 5, "unit": 2, "room": "301"}),
    ("第五幢第二单元", {"building": 5, "unit": 2}),
    ("A幢101室", {"building": "A", "room": "101"}),
    ("3组12号", {"group": 3, "number": HouseNumber(12)}),
    ("三村民小组十二号", {"group": 3, "number": HouseNumber(12)}),
    ("人民路12弄5号", {"lane": 12, "number": HouseNumber(5)}),
    ("人民路一百二十三号", {"number": HouseNumber(123)}),
    ("人民路12号之1", {"number": HouseNumber(12, 1)}),
    ("人民路十二号之一", {"number": HouseNumber(12, 1)}),
    ("附5号", {"number": HouseNumber(5, prefix="附")}),
    ("12甲号", {"number": HouseNumber(12, suffix="甲")}),
    ("凤凰小区3楼301", {"floor": 3, "room": "301"}),
    ("5幢0301室", {"building": 5, "room": "0301"}),
])
def test_should_read_every_number_part_by_one_grammar(text, expected):
    assert parse_sub_address(text) == expected


@pytest.mark.parametrize("text", ["人民路12号5幢2单元301室", "凤凰小区5号幢2单元301室", "凤凰小区5-2-301",
                                  "人民路12弄5号", "荻港村3组12号", "凤凰小区A幢101室", "人民路12号之1"])
def test_should_give_the_search_and_the_tokenizer_the_same_parts(text):
    """search/query.py and text/components.py both cut numbers with house_number's grammar."""
    searched = {p.kind: p.value for p in prepare(text).numbers}
    tokens = {c.kind: c.value for c in tokenize_address(text)
              if c.kind in ("number", "building", "unit", "room", "group")}
    if "number" in tokens:
        hn = tokens["number"]
        tokens["number"] = (hn.main, hn.sub or 0, 1 if hn.prefix else 0, "甲乙丙丁".index(hn.suffix) + 1 if hn.suffix else 0)
    assert {k: v for k, v in searched.items() if k in tokens} == tokens
    assert set(tokens) <= set(searched)


def test_should_read_a_lane_as_a_lane_not_a_door():
    parts = scan_number_parts("人民路12弄5号")
    assert [(p.kind, p.value) for p in parts] == [("lane", 12), ("number", (5, 0, 0, 0))]
    comps = tokenize_address("人民路12弄5号")
    assert [(c.kind, c.text) for c in comps] == [("street", "人民路12弄"), ("number", "5号")]


def test_should_read_hao_zhuang_as_a_building_everywhere():
    assert [(p.kind, p.value) for p in scan_number_parts("凤凰小区5号幢")] == [("building", 5)]
    assert [(c.kind, c.value) for c in tokenize_address("凤凰小区5号幢")][-1] == ("building", 5)
    assert parse_building("5号幢") == 5
