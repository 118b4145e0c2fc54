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
from functools import lru_cache, wraps

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


def _by_text(parse):
    """Remember the parse of each text (pure, and the results immutable: a doorplate page or a
    batch writes the same few thousand numbers over and over); anything but a str is not kept."""
    cached = lru_cache(maxsize=65_536)(parse)

    @wraps(parse)
    def by_text(text):
        return cached(text) if type(text) is str else parse(text)

    return by_text


# 12 / 12号 / 12甲号 / 12-1号 / 12之1号 / 12号之1 / 12号-1 / 附5号
_HOUSE = re.compile(
    rf"(?P<prefix>附)?(?P<main>{_N})(?P<suffix>[甲乙丙丁])?"
    rf"(?:号|[-之](?P<sub1>{_N})号?|号[-之](?P<sub2>{_N}))?")


@_by_text
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


@_by_text
def parse_building(text: str) -> int:
    """``5幢`` / ``5栋`` / ``5座`` / ``五幢`` / ``5号楼`` / ``5`` → 5."""
    return _parse_count(text, _BUILDING, 9_999, InvalidBuilding, "楼幢号", "building number")


@_by_text
def parse_unit(text: str) -> int:
    """``2单元`` / ``二单元`` / ``2`` → 2."""
    return _parse_count(text, _UNIT, 999, InvalidUnit, "单元号", "unit number")


@_by_text
def parse_group(text: str) -> int:
    """``3组`` / ``三组`` / ``第三组`` / ``3村民小组`` → 3 (villagers' group)."""
    return _parse_count(text, _GROUP, 999, InvalidGroup, "村民小组号", "group number")


@_by_text
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


# ------------------------------------------------------------------ the number grammar
#
# One grammar for the number parts of an address, used by the search (registry.search.query),
# the tokenizer (registry.text.components), the loader and the doorplates (through the parse_*
# functions above, which read one part each). It reads normalized text (registry.text.normalize:
# Arabic digits in number positions, 幢 for 栋/座, lower-case latin):
#
#   5-2-301 / 5-2-301室      building 5, unit 2, room 301
#   5号楼 / 5号幢 / 5幢 / 第5幢  building 5;  a幢  building A
#   2单元 / 第2单元           unit 2
#   301室 / b301室            room "301" / "B301"
#   3组 / 3小组 / 3村民小组     villagers' group 3
#   12号 / 12-1号 / 12号之1 / 12号-1 / 12之1号 / 附5号 / 12甲号   door (main, sub, 附, 甲乙丙丁)
#   12弄 / 12巷               lane 12 (人民路12弄 is a street of its own)
#   3楼 / 3层                 floor 3
#   12                        bare: what its neighbour suggests (`bare_kind`)

@dataclass(slots=True)
class NumberPart:
    """One number part found in a text: kind, character span, text and value.

    ``value``: for ``number`` a tuple (main, sub, 附 1/0, 甲乙丙丁 1–4 or 0); for ``building`` an
    int or a letter; for ``room`` the label (str, upper-case, leading zeros kept); an int otherwise.
    """

    kind: str  # number | group | building | unit | room | floor | lane
    start: int
    end: int
    text: str
    value: object


NUMBER_PART_KINDS = ("number", "group", "building", "unit", "room", "floor", "lane")

_GRAMMAR: list[tuple[str, re.Pattern[str]]] = [
    ("bur", re.compile(r"(\d+)-(\d+)-(\d+)室?(?![\d-])")),
    ("building", re.compile(r"第?(\d+)(?:号楼|号幢|幢)")),
    ("unit", re.compile(r"第?(\d+)单元")),
    ("room", re.compile(r"([a-z]?\d+[a-z]?)室")),
    ("group", re.compile(r"第?(\d+)(?:村民小组|小组|组)")),
    ("number", re.compile(r"(附)?(\d+)([甲乙丙丁])?(?:号之(\d+)|号-(\d+)|-(\d+)号?|之(\d+)号?|号)")),
    ("floor", re.compile(r"第?(\d+)(?:楼|层)")),
    ("lane", re.compile(r"(\d+)[弄巷]")),
    ("bare", re.compile(r"(\d+)")),
]


def _door_value(m: re.Match[str]) -> tuple[int, int, int, int]:
    prefix, main, suffix = m.group(1), int(m.group(2)), m.group(3)
    sub = next((int(g) for g in m.groups()[3:] if g), 0)
    return main, sub, 1 if prefix else 0, "甲乙丙丁".index(suffix) + 1 if suffix else 0


def room_label(text: str) -> str:
    """A room's label: upper-case, leading zeros kept (as `parse_room`: 0301 and B301 are real
    labels; the search compares all-digit labels as numbers)."""
    return text.upper()


def bare_kind(previous: str | None, adjacent: bool) -> str:
    """What a bare number means after `previous` (the kind of the part before it; `adjacent`:
    with nothing between): a room after a building, unit or floor (5幢301), a building right
    after a door (12号3 → building 3), else a door number."""
    if previous in ("building", "unit", "floor"):
        return "room"
    if previous == "number" and adjacent:
        return "building"
    return "number"


def match_number_part(s: str, i: int, previous: NumberPart | None = None) -> list[NumberPart]:
    """The number parts that start at s[i] (empty if none does): one part, or three for 5-2-301."""
    if s[i].isascii() and s[i].isalpha():
        if i + 1 < len(s) and s[i + 1] == "幢" and (i == 0 or not (s[i - 1].isascii() and s[i - 1].isalpha())):
            return [NumberPart("building", i, i + 2, s[i:i + 2], s[i].upper())]
        return []
    if not (s[i].isdigit() or (s[i] in "附第" and i + 1 < len(s) and s[i + 1].isdigit())):
        return []
    for kind, pat in _GRAMMAR:
        m = pat.match(s, i)
        if not m:
            continue
        g1 = m.group(1)
        if kind == "bur":
            a, b, r = m.group(1), m.group(2), m.group(3)
            return [NumberPart("building", m.start(1), m.start(2), a, int(a)),
                    NumberPart("unit", m.start(2), m.start(3), b, int(b)),
                    NumberPart("room", m.start(3), m.end(), r, room_label(r))]
        if kind == "number":
            return [NumberPart("number", i, m.end(), m.group(0), _door_value(m))]
        if kind == "room":
            return [NumberPart("room", i, m.end(), m.group(0), room_label(g1))]
        if kind == "bare":
            kind = bare_kind(previous.kind if previous else None, previous is not None and previous.end == i)
            if kind == "room":
                return [NumberPart("room", i, m.end(), g1, room_label(g1))]
            if kind == "number":
                return [NumberPart("number", i, m.end(), g1, (int(g1), 0, 0, 0))]
        return [NumberPart(kind, i, m.end(), m.group(0), int(g1))]
    return []  # pragma: no cover - bare matches any digit


# Where match_number_part can find a part: a digit, 附/第 before one, a latin letter (A幢). It
# finds none anywhere else, so the scan jumps from one such place to the next.
_PART_START = re.compile(r"[A-Za-z\d]|[附第](?=\d)")


def scan_number_parts(s: str) -> list[NumberPart]:
    """Every number part of a normalized text, left to right."""
    parts: list[NumberPart] = []
    search = _PART_START.search
    m = search(s)
    while m is not None:
        i = m.start()
        found = match_number_part(s, i, parts[-1] if parts else None)
        if found:
            parts += found
            m = search(s, found[-1].end)
        else:
            m = search(s, i + 1)
    return parts


def parse_sub_address(text: str) -> dict[str, object]:
    """The number parts of a text by kind (the first of each): ``5幢2单元301室`` →
    {"building": 5, "unit": 2, "room": "301"}; ``人民路12号`` → {"number": HouseNumber(12)}.
    Chinese numerals, full-width digits and 栋/座 are read as the search reads them."""
    from .normalize import normalize

    out: dict[str, object] = {}
    for p in scan_number_parts(normalize(text)):
        if p.kind in out:
            continue
        if p.kind == "number":
            main, sub, pre, suf = p.value  # type: ignore[misc]
            out["number"] = HouseNumber(main, sub or None, "附" if pre else None, "甲乙丙丁"[suf - 1] if suf else None)
        else:
            out[p.kind] = p.value
    return out
