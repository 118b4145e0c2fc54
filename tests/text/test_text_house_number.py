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
