"""Properties of the text rules, over any string hypothesis can make (not only the examples we thought of)."""
from __future__ import annotations

import unicodedata

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from registry.text.errors import InvalidText
from registry.text.house_number import MAX_HOUSE_NUMBER, HouseNumber, parse_house_number
from registry.text.normalize import normalize

FAST = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# Address-like text: CJK, digits (ASCII and full-width), Chinese numerals, brackets, dashes, spaces, controls.
ADDRESS_ALPHABET = st.sampled_from(list("湖州市吴兴区爱山街道人民路号幢栋座单元室附甲乙丙丁之一二三四五六七八九十百千零〇○"
                                        "0123456789０１２３４５６７８９-－—#（）()【】 \u3000\t\n\x00\u200b吳興區號"))
address_text = st.text(ADDRESS_ALPHABET, max_size=40)
any_text = st.text(max_size=60)


@FAST
@given(st.one_of(any_text, address_text))
def test_normalize_should_never_raise_on_any_string(s):
    assert isinstance(normalize(s), str)


@FAST
@given(st.one_of(any_text, address_text))
def test_normalize_should_be_idempotent(s):
    once = normalize(s)
    assert normalize(once) == once


@FAST
@given(st.one_of(any_text, address_text))
def test_normalize_should_leave_no_full_width_or_space_behind(s):
    out = normalize(s)
    assert unicodedata.normalize("NFKC", out) == out  # already NFKC: no full-width forms left
    assert not any(c.isspace() for c in out)
    assert "\x00" not in out


@FAST
@given(address_text)
def test_normalize_should_not_care_about_full_width_digits(s):
    wide = s.translate({ord(c): 0xFF10 + int(c) for c in "0123456789"})
    assert normalize(wide) == normalize(s)


@FAST
@given(st.one_of(any_text, address_text))
def test_house_number_should_raise_only_its_typed_error(s):
    try:
        parse_house_number(s)
    except InvalidText:
        pass


@FAST
@given(st.integers(1, MAX_HOUSE_NUMBER), st.one_of(st.none(), st.integers(1, MAX_HOUSE_NUMBER)),
       st.sampled_from([None, "附"]), st.sampled_from([None, "甲", "乙", "丙", "丁"]))
def test_house_number_should_round_trip_its_standard_form(main, sub, prefix, suffix):
    n = HouseNumber(main, sub, prefix, suffix)
    assert parse_house_number(n.standard) == n
    assert parse_house_number(parse_house_number(n.standard).standard).standard == n.standard


@FAST
@given(st.integers(-10**9, 0) | st.integers(MAX_HOUSE_NUMBER + 1, 10**12))
def test_house_number_should_refuse_numbers_out_of_range(value):
    with pytest.raises(InvalidText):
        parse_house_number(f"{value}号")
