"""Doorplate numbers (门牌号) and the building / unit / room / group numbers
that follow them.

The registry writes one standard text per door (``12号``, ``12-1号``,
``附5号``, ``12甲号``); clerks and residents write many more (``12号之1``,
``12号-1``, ``十二号``, ``１２号``).  Parsing folds them to a
:class:`HouseNumber`, whose :attr:`~HouseNumber.standard` is the stored text.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from .errors import (InvalidBuilding, InvalidGroup, InvalidHouseNumber, InvalidNumeral,
                     InvalidRoom, InvalidText, InvalidUnit)
from .normalize import to_simplified
from .numerals import NUMERAL_CHARS, chinese_to_int

MAX_HOUSE_NUMBER = 99_999
#: 附 marks an annex door sharing the main door's number (附5号).
HOUSE_PREFIXES = frozenset({"附"})
#: Heavenly stems mark doors inserted after numbering (12甲号 between 12 and 13).
HOUSE_SUFFIXES = frozenset("甲乙丙丁")


@dataclass(frozen=True)
class HouseNumber:
    """A doorplate number: main, optional sub-number, 附 prefix, 甲乙丙丁 suffix."""

    main: int
    sub: int | None = None
    prefix: str | None = None
    suffix: str | None = None

    def __post_init__(self) -> None:
        for label, value in (("main", self.main), ("sub", self.sub)):
            if value is None and label == "sub":
                continue
            if not isinstance(value, int) or isinstance(value, bool):
                raise InvalidHouseNumber(value, f"{label} 必须是整数", f"{label} must be an int")
            if not 1 <= value <= MAX_HOUSE_NUMBER:
                raise InvalidHouseNumber(
                    value, f"必须在1到{MAX_HOUSE_NUMBER}之间", f"must be 1..{MAX_HOUSE_NUMBER}")
        if self.prefix is not None and self.prefix not in HOUSE_PREFIXES:
            raise InvalidHouseNumber(self.prefix, "不认识的前缀", "unknown prefix")
        if self.suffix is not None and self.suffix not in HOUSE_SUFFIXES:
            raise InvalidHouseNumber(self.suffix, "后缀只能是甲乙丙丁", "suffix must be one of 甲乙丙丁")

    @property
    def standard(self) -> str:
        """The registry's standard doorplate text: 12号, 12-1号, 附5号, 12甲号."""
        sub = f"-{self.sub}" if self.sub is not None else ""
        return f"{self.prefix or ''}{self.main}{self.suffix or ''}{sub}号"

    def __str__(self) -> str:
        return self.standard


_DASHES = str.maketrans({c: "-" for c in "‐‑‒–—―−﹣－"})
_N = f"[{NUMERAL_CHARS}]+"


def _clean(text: str) -> str:
    """Light cleaning only: a stray sign or dash must still be seen (-12号)."""
    s = unicodedata.normalize("NFKC", text)
    s = "".join(s.split())
    return to_simplified(s).translate(_DASHES).replace("#", "号").replace("〇", "零")


def _number(text: str, run: str, error: type[InvalidText]) -> int:
    try:
        return chinese_to_int(run)
    except InvalidNumeral as exc:
        raise error(text, exc.reason_zh, exc.reason_en) from None


def _check_range(text: object, value: int, high: int, error: type[InvalidText]) -> int:
    if value == 0:
        raise error(text, "不能为0", "must not be zero")
    if value > high:
        raise error(text, f"不能大于{high}", f"must not exceed {high}")
    return value


def _require_text(text: object, error: type[InvalidText]) -> str:
    if not isinstance(text, str):
        raise error(text, "不是文本", "not a string")
    s = _clean(text)
    if not s:
        raise error(text, "空", "empty")
    return s


# 12 / 12号 / 12甲号 / 12-1号 / 12之1号 / 12号之1 / 12号-1 / 附5号
_HOUSE = re.compile(
    rf"(?P<prefix>附)?(?P<main>{_N})(?P<suffix>[甲乙丙丁])?"
    rf"(?:号|[-之](?P<sub1>{_N})号?|号[-之](?P<sub2>{_N}))?")


def parse_house_number(text: str) -> HouseNumber:
    """Read a doorplate number; ``12号之1``, ``12号-1``, ``12-1号`` are one door.

    Raises :class:`InvalidHouseNumber` on empty, non-numeric, zero, negative
    or absurd (> 99999) numbers.
    """
    s = _require_text(text, InvalidHouseNumber)
    m = _HOUSE.fullmatch(s)
    if m is None:
        raise InvalidHouseNumber(text, "不是门牌号的写法", "not a house number")
    main = _check_range(text, _number(text, m["main"], InvalidHouseNumber),
                        MAX_HOUSE_NUMBER, InvalidHouseNumber)
    sub_run = m["sub1"] or m["sub2"]
    sub = None
    if sub_run is not None:
        sub = _check_range(text, _number(text, sub_run, InvalidHouseNumber),
                           MAX_HOUSE_NUMBER, InvalidHouseNumber)
    return HouseNumber(main, sub, m["prefix"], m["suffix"])


def _parse_count(text: str, pattern: re.Pattern[str], high: int,
                 error: type[InvalidText], what_zh: str, what_en: str) -> int:
    s = _require_text(text, error)
    m = pattern.fullmatch(s)
    if m is None:
        raise error(text, f"不是{what_zh}的写法", f"not a {what_en}")
    return _check_range(text, _number(text, m[1], error), high, error)


_BUILDING = re.compile(rf"第?({_N})(?:号楼|号幢|号栋|幢|栋|座|号)?")
_UNIT = re.compile(rf"第?({_N})(?:单元)?")
_GROUP = re.compile(rf"第?({_N})(?:村民小组|小组|组)?")
_ROOM = re.compile(rf"([a-z]?)({_N})([a-z]?)(?:室|号)?", re.I)


def parse_building(text: str) -> int:
    """``5幢`` / ``5栋`` / ``5座`` / ``五幢`` / ``5号楼`` / ``5`` → 5."""
    return _parse_count(text, _BUILDING, 9_999, InvalidBuilding, "楼幢号", "building number")


def parse_unit(text: str) -> int:
    """``2单元`` / ``二单元`` / ``2`` → 2."""
    return _parse_count(text, _UNIT, 999, InvalidUnit, "单元号", "unit number")


def parse_group(text: str) -> int:
    """``3组`` / ``三组`` / ``第三组`` / ``3村民小组`` → 3 (villagers' group)."""
    return _parse_count(text, _GROUP, 999, InvalidGroup, "村民小组号", "group number")


def parse_room(text: str) -> str:
    """``301`` / ``301室`` / ``三零一室`` → ``"301"``.

    A string, not an int: ``0301`` and ``B301`` are real room labels whose
    leading zero or letter must survive (letters are upper-cased).
    """
    s = _require_text(text, InvalidRoom)
    m = _ROOM.fullmatch(s)
    if m is None:
        raise InvalidRoom(text, "不是室号的写法", "not a room number")
    run = m[2]
    digits = run if run.isascii() else str(_number(text, run, InvalidRoom))
    if int(digits) == 0:
        raise InvalidRoom(text, "不能为0", "must not be zero")
    if len(digits) > 6:
        raise InvalidRoom(text, "位数太多", "too many digits")
    return f"{m[1].upper()}{digits}{m[3].upper()}"
