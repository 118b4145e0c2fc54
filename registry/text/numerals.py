"""Chinese numerals in doorplates, buildings, units, rooms and groups.

Two jobs:

* :func:`chinese_to_int` reads one numeral (``一百二十三``, ``三零一``,
  ``1百2十3``) as an int;
* :func:`replace_number_numerals` rewrites numerals to Arabic digits only where
  they are numbers of an address (before 号/幢/单元/室/楼/层/组, lane numbers
  after a street, ``十二号之一``), never inside names: ``五一路``, ``三里桥``,
  ``吉山一村`` name things, they do not count them.
"""

from __future__ import annotations

import re

from .errors import InvalidNumeral

_DIGITS = {
    "零": 0, "〇": 0, "○": 0,
    "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5,
    "六": 6, "七": 7, "八": 8, "九": 9,
    # Financial forms and the spoken 幺 only show up in copied receipts and
    # dictated numbers, but reading them costs nothing.
    "壹": 1, "贰": 2, "叁": 3, "肆": 4, "伍": 5, "陆": 6, "柒": 7, "捌": 8, "玖": 9,
    "幺": 1,
}
_SMALL_UNITS = {"十": 10, "拾": 10, "百": 100, "佰": 100, "千": 1000, "仟": 1000}
_MYRIAD = {"万": 10_000}

_TOKEN = re.compile(r"[0-9]+|.", re.S)


def _tokens(text: str) -> list[tuple[str, int]]:
    """Split into ('d', value) digits, ('z', 0) zeros and ('u', unit) units."""
    out: list[tuple[str, int]] = []
    for tok in _TOKEN.findall(text):
        if tok.isdigit() and tok.isascii():
            out.append(("d", int(tok)))
        elif tok in ("零", "〇", "○"):
            out.append(("z", 0))
        elif tok in _DIGITS:
            out.append(("d", _DIGITS[tok]))
        elif tok in _SMALL_UNITS:
            out.append(("u", _SMALL_UNITS[tok]))
        elif tok in _MYRIAD:
            out.append(("w", _MYRIAD[tok]))
        else:
            raise InvalidNumeral(text, f"“{tok}”不是数字", f"{tok!r} is not a numeral")
    return out


def chinese_to_int(text: str) -> int:
    """Read a Chinese, Arabic or mixed numeral as a non-negative int.

    ``一百二十三`` → 123, ``十二`` → 12, ``一百零五`` → 105, ``两千`` → 2000,
    ``一二三`` / ``三零一`` → 123 / 301 (read digit by digit when there is no
    unit character), ``1百2十3`` → 123, ``一百二`` → 120 (colloquial
    abbreviation).  Raises :class:`InvalidNumeral` on anything else.
    """
    if not isinstance(text, str):
        raise InvalidNumeral(text, "不是文本", "not a string")
    s = "".join(text.split())
    if not s:
        raise InvalidNumeral(text, "空", "empty")
    toks = _tokens(s)
    if not any(kind in ("u", "w") for kind, _ in toks):
        # Digit-by-digit form, the way room numbers are said: 三零一 = 301.
        return int("".join(str(v) for _, v in toks))
    return _positional(text, toks)


def _positional(text: str, toks: list[tuple[str, int]]) -> int:
    total = 0          # value of completed 万 sections
    section = 0        # value below 万 being built
    pending: int | None = None   # digit waiting for its unit
    last_unit: int | None = None  # last small unit in this section
    zero_since_unit = False
    seen_myriad = False
    prev_kind = ""

    def bad(zh: str, en: str) -> InvalidNumeral:
        return InvalidNumeral(text, zh, en)

    for kind, value in toks:
        if kind == "d":
            if pending is not None:
                raise bad("数字连写但没有位", "digits without a unit between them")
            pending = value
        elif kind == "z":
            if pending is not None:
                raise bad("“零”的位置不对", "misplaced zero")
            zero_since_unit = True
        elif kind == "u":
            if pending is None:
                # 十 alone means 一十 (十二, 一千零十); 百/千 need their digit.
                if value != 10:
                    raise bad("位前缺少数字", "unit without a digit")
                pending = 1
            if last_unit is not None and value >= last_unit:
                raise bad("位的顺序不对", "units out of order")
            section += pending * value
            pending, last_unit, zero_since_unit = None, value, False
        else:  # 万
            if seen_myriad:
                raise bad("“万”重复", "repeated 万")
            if pending is not None:
                section += pending
            if section == 0:
                raise bad("“万”前缺少数字", "万 without a digit")
            total, section = section * value, 0
            pending, last_unit, zero_since_unit = None, None, False
            seen_myriad = True
        prev_kind = kind
    if pending is not None:
        if prev_kind == "d" and not zero_since_unit and last_unit and last_unit >= 100:
            # 一百二 = 120, 三千五 = 3500: the digit takes the next lower unit.
            section += pending * (last_unit // 10)
        elif prev_kind == "d" and not zero_since_unit and last_unit is None and seen_myriad:
            section += pending * 1000      # 两万三 = 23000
        else:
            section += pending
    return total + section


# Characters a written address uses for a number.  Financial forms are left
# out on purpose: 陆 and 伍 are surnames and appear in names.
NUMERAL_CHARS = "0-9零〇○一二两三四五六七八九十百千万"
_NUM = f"[{NUMERAL_CHARS}]+"
_HAS_CHINESE = re.compile("[零〇○一二两三四五六七八九十百千万]")

# Suffixes that make the numeral in front of them a number, longest first.
NUMBER_SUFFIXES = ("村民小组", "单元", "小组", "号", "幢", "栋", "座", "室", "楼", "层", "组")

# 第五幢 / 十二号 / 十二甲号 / 三零一室: numeral right before a number suffix.
_BEFORE_SUFFIX = re.compile(
    rf"(第)?({_NUM})(?=[甲乙丙丁]?(?:{'|'.join(NUMBER_SUFFIXES)}))")
# 人民路三弄: a lane number only right after a street generic, so 五四巷 (a
# name) stays.
_LANE = re.compile(rf"(?<=[路街巷弄])({_NUM})(?=[弄巷])")
# 十二号之一 / 十二之一号 / 十二-一号: the second part of a compound door.
_AFTER_ZHI = re.compile(rf"(?<=号之)({_NUM})|({_NUM})之({_NUM})(?=号)")
_DASHED = re.compile(rf"({_NUM})-({_NUM})")


def _to_digits(run: str) -> str:
    if not _HAS_CHINESE.search(run):
        return run
    try:
        return str(chinese_to_int(run))
    except InvalidNumeral:
        return run      # not a numeral after all (e.g. 万 alone): leave it


def replace_number_numerals(text: str) -> str:
    """Rewrite Chinese numerals as digits in number positions only.

    ``人民路十二号之一`` → ``人民路12号之1``, ``五幢二单元三零一室`` →
    ``5幢2单元301室``, ``第三组`` → ``3组``; ``五一路`` and ``吉山一村`` are
    untouched.  Expects simplified, space-free text (see ``normalize``).
    """
    if "第" not in text and not _HAS_CHINESE.search(text):
        return text
    text = _BEFORE_SUFFIX.sub(lambda m: _to_digits(m.group(2)), text)
    text = _LANE.sub(lambda m: _to_digits(m.group(1)), text)

    def zhi(m: re.Match[str]) -> str:
        if m.group(1) is not None:
            return _to_digits(m.group(1))
        return f"{_to_digits(m.group(2))}之{_to_digits(m.group(3))}"

    text = _AFTER_ZHI.sub(zhi, text)
    return _DASHED.sub(lambda m: f"{_to_digits(m.group(1))}-{_to_digits(m.group(2))}", text)
