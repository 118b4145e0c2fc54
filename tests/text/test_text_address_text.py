"""Spec of compose_address() and split_generic()."""

import pytest

from registry.text import (GENERICS, HouseNumber, InvalidAddressPart, InvalidBuilding,
                           InvalidHouseNumber, compose_address, split_generic)

AISHAN = dict(county="吴兴区", township="爱山街道")


def test_should_compose_a_street_door():
    assert compose_address(**AISHAN, street="人民路", number=123) == "浙江省湖州市吴兴区爱山街道人民路123号"


def test_should_leave_the_community_out_of_a_street_door():
    text = compose_address(**AISHAN, village="浮星桥社区居委会", street="人民路", number=123)
    assert text == "浙江省湖州市吴兴区爱山街道人民路123号"


def test_should_compose_a_compound_door():
    text = compose_address(**AISHAN, compound="凤凰小区", building=5, unit=2, room=301)
    assert text == "浙江省湖州市吴兴区爱山街道凤凰小区5幢2单元301室"


def test_should_put_the_street_door_before_the_compound():
    text = compose_address(**AISHAN, street="人民路", number=123, compound="凤凰小区",
                           building=5, unit=2, room=301)
    assert text == "浙江省湖州市吴兴区爱山街道人民路123号凤凰小区5幢2单元301室"


def test_should_compose_a_natural_village_door_with_the_short_village_name():
    text = compose_address(county="南浔区", township="和孚镇", village="荻港村委会",
                           natural_village="钱家浜", group=3, number=12)
    assert text == "浙江省湖州市南浔区和孚镇荻港村钱家浜3组12号"


def test_should_compose_a_village_door_without_natural_village():
    text = compose_address(county="德清县", township="新市镇", village="祝良村委会", group="三组", number="5号")
    assert text == "浙江省湖州市德清县新市镇祝良村3组5号"


@pytest.mark.parametrize("kwargs, tail", [
    (dict(building=5, unit=2, room=301), "5幢2单元301室"),
    (dict(building="5栋", unit="二单元", room="301"), "5幢2单元301室"),
    (dict(building="5号楼", unit="2单元", room="301室"), "5幢2单元301室"),
    (dict(building="A座", room="b301"), "A幢B301室"),
])
def test_should_write_building_unit_room_in_standard_form(kwargs, tail):
    assert compose_address(**AISHAN, compound="凤凰小区", **kwargs) == f"浙江省湖州市吴兴区爱山街道凤凰小区{tail}"


@pytest.mark.parametrize("number", [HouseNumber(12, 1), "12号之1", "12号-1", "12-1号"])
def test_should_write_the_house_number_in_standard_form(number):
    assert compose_address(**AISHAN, street="人民路", number=number).endswith("人民路12-1号")


def test_should_accept_another_province_and_city():
    text = compose_address(province="江苏省", city="苏州市", county="吴江区", township="震泽镇",
                           street="宝塔街", number=1)
    assert text == "江苏省苏州市吴江区震泽镇宝塔街1号"


@pytest.mark.parametrize("missing", ["county", "township"])
def test_should_require_county_and_township(missing):
    kwargs = dict(AISHAN, street="人民路", number=1)
    kwargs[missing] = " "
    with pytest.raises(InvalidAddressPart):
        compose_address(**kwargs)


def test_should_reject_a_bad_number_with_the_house_number_error():
    with pytest.raises(InvalidHouseNumber):
        compose_address(**AISHAN, street="人民路", number=0)


def test_should_reject_a_bad_building_with_the_building_error():
    with pytest.raises(InvalidBuilding):
        compose_address(**AISHAN, compound="凤凰小区", building="五楼东")


@pytest.mark.parametrize("name, parts", [
    ("人民路", ("人民", "路")),
    ("解放北路", ("解放北", "路")),
    ("凤凰大道", ("凤凰", "大道")),
    ("爱山街道", ("爱山", "街道")),
    ("衣裳街", ("衣裳", "街")),
    ("吴兴区", ("吴兴", "区")),
    ("长兴县", ("长兴", "县")),
    ("湖州市", ("湖州", "市")),
    ("和孚镇", ("和孚", "镇")),
    ("凤凰小区", ("凤凰", "小区")),
    ("浮星桥社区", ("浮星桥", "社区")),
    ("浮星桥社区居委会", ("浮星桥", "社区居委会")),
    ("荻港村委会", ("荻港", "村委会")),
    ("荻港村", ("荻港", "村")),
    ("钱家浜自然村", ("钱家浜", "自然村")),
    ("朝阳新村", ("朝阳", "新村")),
    ("新村村", ("新村", "村")),
    ("新村", ("新", "村")),
    ("潘公桥", ("潘公", "桥")),
    ("5幢", ("5", "幢")),
])
def test_should_split_specific_from_generic_longest_first(name, parts):
    assert split_generic(name) == parts


@pytest.mark.parametrize("name", ["莫干", "湖州", "路", "村"])
def test_should_return_an_empty_generic_when_there_is_none(name):
    assert split_generic(name) == (name, "")


def test_should_try_longer_generics_first():
    assert list(GENERICS) == sorted(GENERICS, key=lambda g: (-len(g), g))
