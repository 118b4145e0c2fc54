"""Spec of chinese_to_int() and replace_number_numerals()."""

import pytest

from registry.text import InvalidNumeral, chinese_to_int, replace_number_numerals


@pytest.mark.parametrize("numeral, value", [
    ("一", 1), ("十", 10), ("十二", 12), ("二十", 20), ("二十三", 23),
    ("一百二十三", 123), ("一百零五", 105), ("一千零十", 1010), ("两千", 2000),
    ("两百", 200), ("九千九百九十九", 9999), ("十万", 100_000), ("一万零三百", 10_300),
    ("九万九千九百九十九", 99_999), ("零", 0),
])
def test_should_read_positional_chinese_numerals(numeral, value):
    assert chinese_to_int(numeral) == value


@pytest.mark.parametrize("numeral, value", [("一二三", 123), ("三零一", 301), ("三〇一", 301), ("幺零二", 102)])
def test_should_read_digit_by_digit_numerals(numeral, value):
    assert chinese_to_int(numeral) == value


@pytest.mark.parametrize("numeral, value", [("1百2十3", 123), ("12万", 120_000), ("3零1", 301), ("123", 123)])
def test_should_read_mixed_arabic_and_chinese_numerals(numeral, value):
    assert chinese_to_int(numeral) == value


@pytest.mark.parametrize("numeral, value", [("一百二", 120), ("三千五", 3500), ("两万三", 23_000)])
def test_should_read_colloquial_abbreviated_numerals(numeral, value):
    assert chinese_to_int(numeral) == value


@pytest.mark.parametrize("numeral, value", [("壹佰贰拾叁", 123), ("伍", 5)])
def test_should_read_financial_numerals(numeral, value):
    assert chinese_to_int(numeral) == value


@pytest.mark.parametrize("garbage", ["", "  ", "abc", "十二号", "百", "十十", "二三十", "万", "一万万", "-12", "一.五"])
def test_should_reject_garbage_numerals(garbage):
    with pytest.raises(InvalidNumeral):
        chinese_to_int(garbage)


def test_should_name_the_offending_text_in_both_languages():
    with pytest.raises(InvalidNumeral) as info:
        chinese_to_int("十十")
    assert "“十十”" in str(info.value) and "'十十'" in str(info.value)
    assert "数字" in str(info.value) and "numeral" in str(info.value)


def test_should_be_a_value_error():
    with pytest.raises(ValueError):
        chinese_to_int("abc")


@pytest.mark.parametrize("text, expected", [
    ("十二号", "12号"),
    ("十二号之一", "12号之1"),
    ("十二之一号", "12之1号"),
    ("十二-一号", "12-1号"),
    ("二单元", "2单元"),
    ("三零一室", "301室"),
    ("第三组", "3组"),
    ("三村民小组", "3村民小组"),
    ("人民路二弄", "人民路2弄"),
])
def test_should_replace_numerals_in_number_positions(text, expected):
    assert replace_number_numerals(text) == expected


@pytest.mark.parametrize("text", ["五一路", "三里桥", "吉山一村", "五四巷", "万号"])
def test_should_leave_numerals_in_names(text):
    assert replace_number_numerals(text) == text
