"""Spec of normalize(), to_simplified() and the village/community name forms."""

import pytest

from registry.text import fold_village_suffix, normalize, to_simplified, village_name_variants


# ------------------------------------------------------------ to_simplified

@pytest.mark.parametrize("traditional, simplified", [
    ("吳興區", "吴兴区"),
    ("南潯區", "南浔区"),
    ("長興縣", "长兴县"),
    ("德清縣", "德清县"),
    ("安吉縣", "安吉县"),
    ("愛山街道", "爱山街道"),
    ("飛英街道", "飞英街道"),
    ("和孚鎮荻港村", "和孚镇荻港村"),
    ("練市鎮", "练市镇"),
    ("浮星橋社區居委會", "浮星桥社区居委会"),
])
def test_should_fold_traditional_county_name(traditional, simplified):
    assert to_simplified(traditional) == simplified


@pytest.mark.parametrize("name", ["湖州市", "乾元镇", "莫干山镇", "雉城街道", "新市镇", "钱家浜", "沈家"])
def test_should_leave_simplified_place_names_unchanged(name):
    assert to_simplified(name) == name


@pytest.mark.parametrize("variant, standard", [("嶴", "岙"), ("衞", "卫"), ("衖", "弄"), ("朝阳新邨", "朝阳新村")])
def test_should_fold_variant_characters_opencc_misses(variant, standard):
    assert to_simplified(variant) == standard


# ---------------------------------------------------------------- normalize

@pytest.mark.parametrize("raw, expected", [
    ("１２３号", "123号"),
    ("ＡＢ幢", "ab幢"),
    ("人民路　１２号", "人民路12号"),
])
def test_should_turn_full_width_into_half_width(raw, expected):
    assert normalize(raw) == expected


def test_should_fold_traditional_and_lower_case_latin():
    assert normalize("吳興區愛山街道Ａ座") == "吴兴区爱山街道a幢"


def test_should_strip_control_and_zero_width_characters():
    assert normalize("人民\u200b路\t12\x00号\ufeff") == "人民路12号"


@pytest.mark.parametrize("raw, expected", [
    ("5栋", "5幢"),
    ("5座", "5幢"),
    ("5棟", "5幢"),
    ("五栋", "5幢"),
    ("a座", "a幢"),
    ("12號", "12号"),
    ("12#", "12号"),
    ("5#楼", "5号楼"),
    ("5号栋", "5幢"),
    ("2単元", "2单元"),
    ("2單元", "2单元"),
    ("301室", "301室"),
])
def test_should_unify_number_suffix_variants(raw, expected):
    assert normalize(raw) == expected


@pytest.mark.parametrize("name", ["栋梁路", "星座花园", "宝座"])
def test_should_not_rewrite_building_words_that_follow_no_number(name):
    assert normalize(name) == name


@pytest.mark.parametrize("raw, expected", [
    ("人民路12号（某某超市）", "人民路12号"),
    ("人民路12号(某某超市)", "人民路12号"),
    ("人民路12号【旧址】", "人民路12号"),
    ("人民路12号[东门]", "人民路12号"),
    ("人民路（近（红旗路）口）12号", "人民路12号"),
])
def test_should_drop_bracketed_asides(raw, expected):
    assert normalize(raw) == expected


@pytest.mark.parametrize("raw", [
    "人民路12号附近", "人民路12号旁边", "人民路12号对面", "人民路12号斜对面",
    "人民路12号隔壁", "人民路12号门口", "人民路12号一带", "人民路12号边上",
])
def test_should_drop_trailing_noise_words(raw):
    assert normalize(raw) == "人民路12号"


def test_should_drop_embedded_noise_words():
    assert normalize("凤凰小区门口的5幢") == "凤凰小区5幢"


@pytest.mark.parametrize("raw, expected", [
    ("人民路, 12号!", "人民路12号"),
    ("人民路·12号。", "人民路12号"),
    ("凤凰小区 5 幢 2 单元 301 室", "凤凰小区5幢2单元301室"),
])
def test_should_remove_whitespace_and_punctuation(raw, expected):
    assert normalize(raw) == expected


@pytest.mark.parametrize("raw, expected", [
    ("人民路12—1号", "人民路12-1号"),
    ("人民路12－1号", "人民路12-1号"),
    ("人民路12–1号", "人民路12-1号"),
    ("人民路12号-1", "人民路12号-1"),
    ("凤凰小区3-2-301", "凤凰小区3-2-301"),
    ("人民路-凤凰小区", "人民路凤凰小区"),
])
def test_should_keep_dashes_only_inside_numbers(raw, expected):
    assert normalize(raw) == expected


@pytest.mark.parametrize("raw, expected", [
    ("人民路十二号", "人民路12号"),
    ("人民路一百二十三号", "人民路123号"),
    ("人民路十二号之一", "人民路12号之1"),
    ("人民路十二之一号", "人民路12之1号"),
    ("人民路十二—一号", "人民路12-1号"),
    ("人民路十二甲号", "人民路12甲号"),
    ("附五号", "附5号"),
    ("五幢二单元三零一室", "5幢2单元301室"),
    ("三〇一室", "301室"),
    ("三○一室", "301室"),
    ("五号楼", "5号楼"),
    ("三楼", "3楼"),
    ("十二层", "12层"),
    ("荻港村三组", "荻港村3组"),
    ("第三组", "3组"),
    ("第五幢", "5幢"),
    ("人民路三弄五号", "人民路3弄5号"),
])
def test_should_convert_numerals_in_number_positions(raw, expected):
    assert normalize(raw) == expected


@pytest.mark.parametrize("name", [
    "五一路", "三里桥", "一村", "吉山一村", "吉山一村社区", "千金镇", "八里店镇",
    "百间楼", "五四巷", "三元巷", "十字港",
])
def test_should_not_convert_numerals_inside_street_names(name):
    assert normalize(name) == name


def test_should_convert_the_number_but_not_the_name_in_one_address():
    assert normalize("五一路十二号") == "五一路12号"
    assert normalize("吉山一村三组五号") == "吉山一村3组5号"


SAMPLES = [
    "浙江省湖州市吳興區愛山街道 人民路１２３號（某某超市）附近",
    "凤凰小区5栋2単元301",
    "人民路十二号之一",
    "附 近 人民路",
    "门(x)口人民路",
    "人民路12号 - 1",
    "人民路12--1号",
    "五幢二单元三〇一室",
    "吉山一村社区居委会【旧】",
    "  ",
    "#12#",
    "十二##",
    "长兴县雉城街道 (县前街) 8 號",
    "南浔区和孚镇荻港村钱家浜第三组十二号",
]


@pytest.mark.parametrize("raw", SAMPLES)
def test_should_be_idempotent(raw):
    once = normalize(raw)
    assert normalize(once) == once


def test_should_give_the_full_example_address_its_matching_form():
    raw = "浙江省湖州市吳興區愛山街道 人民路１２３號（某某超市）附近"
    assert normalize(raw) == "浙江省湖州市吴兴区爱山街道人民路123号"


def test_should_reject_non_text():
    with pytest.raises(TypeError):
        normalize(123)


# ------------------------------------------------------- village name forms

@pytest.mark.parametrize("committee, name", [
    ("祝良村委会", "祝良村"),
    ("荻港村委会", "荻港村"),
    ("祝良村民委员会", "祝良村"),
    ("祝良村村委会", "祝良村"),
    ("新村村委会", "新村村"),
    ("浮星桥社区居委会", "浮星桥社区"),
    ("吉山一村社区居委会", "吉山一村社区"),
    ("城东居委会", "城东社区"),
    ("城东居民委员会", "城东社区"),
    ("浮星桥社区居民委员会", "浮星桥社区"),
])
def test_should_fold_committee_form_to_village_name(committee, name):
    assert fold_village_suffix(committee) == name


@pytest.mark.parametrize("name", ["祝良村", "浮星桥社区", "钱家浜", "爱山街道", "村委会"])
def test_should_leave_non_committee_names_unchanged(name):
    assert fold_village_suffix(name) == name


def test_should_list_the_forms_people_write_for_a_village():
    assert village_name_variants("祝良村委会")[:3] == ["祝良村委会", "祝良村", "祝良"]


@pytest.mark.parametrize("written", ["祝良村委会", "祝良村", "祝良村民委员会"])
def test_should_list_the_same_village_forms_from_any_form(written):
    assert {"祝良村委会", "祝良村", "祝良"} <= set(village_name_variants(written))


def test_should_list_the_forms_people_write_for_a_community():
    assert village_name_variants("浮星桥社区居委会")[:4] == [
        "浮星桥社区居委会", "浮星桥社区", "浮星桥居委会", "浮星桥"]


def test_should_not_offer_a_bare_name_ending_in_a_numeral():
    assert "吉山一" not in village_name_variants("吉山一村")


def test_should_return_a_name_without_committee_suffix_alone():
    assert village_name_variants("钱家浜") == ["钱家浜"]
