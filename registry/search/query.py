"""Step 1 — normalize the query and cut off its number components.

`prepare(text)` gives a `PreparedQuery`: the normalized text (registry.text.normalize: half-width,
simplified, no punctuation or noise words, Arabic digits in number positions, 幢 for 栋/座), the
number components found in it (door number, building, unit, room, group, floor) and the text
runs between them, each cut into units: one per Han character, one per typed pinyin syllable or
initial. Names are matched against the units by `registry.search.parse`.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from registry.search.keys import char_syllable, fold, is_han, latin_units, strip_latin_tones
from registry.text import chinese_to_int, normalize

NUMBER_KINDS = ("number", "group", "building", "unit", "room", "floor")


@dataclass(slots=True)
class Unit:
    start: int  # character span in the normalized text
    end: int
    kind: str  # han | py (a typed pinyin syllable) | ini (a typed initial)
    char: str | None
    syl: str
    fsyl: str
    init: str


@dataclass(slots=True)
class NumberPart:
    kind: str  # number | group | building | unit | room | floor
    start: int
    end: int
    text: str
    value: object  # number: (main, sub, prefix, suffix); building: int or letter; room: str; others int


@dataclass(slots=True)
class Run:
    start: int
    end: int
    units: list[Unit]


@dataclass
class PreparedQuery:
    raw: str
    text: str
    runs: list[Run]
    numbers: list[NumberPart]
    parts: dict[str, NumberPart] = field(default_factory=dict)  # first part of each kind

    @property
    def atoms(self) -> int:
        return len(self.text)

    def get(self, kind: str):
        p = self.parts.get(kind)
        return p.value if p is not None else None

    has_door_parts: bool = False  # set by prepare: the query names a number, group, building …


# Tone digits typed after a syllable (ren2min2lu4): removed before normalize glues the runs.
_TONE = re.compile(r"([a-zA-Züv]+)([1-5])(?=[a-zA-Züv\s,，])")
# Latin words for the number suffixes, right after digits (123hao, 301shi).
_LATIN_SUFFIX = re.compile(r"(?<=\d)(haolou|hao|danyuan|dong|zhuang|shi|lou|ceng|zu)(?![a-z])")
_LATIN_SUFFIX_MAP = {"hao": "号", "haolou": "号楼", "danyuan": "单元", "dong": "幢", "zhuang": "幢",
                     "shi": "室", "lou": "楼", "ceng": "层", "zu": "组"}


def _strip_tone_digits(text: str) -> str:
    def repl(m: re.Match[str]) -> str:
        letters = m.group(1).lower()
        units = latin_units(letters)
        return m.group(0) if not units or units[-1][3] != "py" else m.group(1) + " "

    return _TONE.sub(repl, text)


_PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    ("bur", re.compile(r"(\d+)-(\d+)-(\d+)室?(?![\d-])")),
    ("building", re.compile(r"第?(\d+)号楼")),
    ("building", re.compile(r"第?(\d+)幢")),
    ("unit", re.compile(r"第?(\d+)单元")),
    ("room", re.compile(r"([a-z]?\d+[a-z]?)室")),
    ("group", re.compile(r"第?(\d+)(?:村民小组|小组|组)")),
    ("number", re.compile(r"(附)?(\d+)([甲乙丙丁])?(?:号之(\d+)|号-(\d+)|-(\d+)号?|之(\d+)号?|号)")),
    ("floor", re.compile(r"第?(\d+)(?:楼|层)")),
    ("bare", re.compile(r"(\d+)")),
]
_LETTER_BUILDING = re.compile(r"([a-z])幢")


def _number_value(m: re.Match[str]) -> tuple[int, int, int, int]:
    prefix, main, suffix = m.group(1), int(m.group(2)), m.group(3)
    sub = next((int(g) for g in m.groups()[3:] if g), 0)
    return main, sub, 1 if prefix else 0, "甲乙丙丁".index(suffix) + 1 if suffix else 0


def _scan_numbers(s: str) -> list[NumberPart]:
    parts: list[NumberPart] = []
    i, n = 0, len(s)
    while i < n:
        c = s[i]
        starts_number = c.isdigit() or (c in "附第" and i + 1 < n and s[i + 1].isdigit())
        if not starts_number and c.isascii() and c.isalpha() and i + 1 < n and s[i + 1] == "幢" \
                and (i == 0 or not (s[i - 1].isascii() and s[i - 1].isalpha())):
            parts.append(NumberPart("building", i, i + 2, s[i:i + 2], c.upper()))
            i += 2
            continue
        if not starts_number:
            i += 1
            continue
        for kind, pat in _PATTERNS:
            m = pat.match(s, i)
            if not m:
                continue
            prev = parts[-1].kind if parts and parts[-1].end == i else (parts[-1].kind if parts else None)
            if kind == "bur":
                a, b, r = m.group(1), m.group(2), m.group(3)
                parts += [NumberPart("building", m.start(1), m.start(2), a, int(a)),
                          NumberPart("unit", m.start(2), m.start(3), b, int(b)),
                          NumberPart("room", m.start(3), m.end(), r, str(int(r)))]
            elif kind == "building":
                parts.append(NumberPart("building", i, m.end(), m.group(0), int(m.group(1))))
            elif kind in ("unit", "group"):
                parts.append(NumberPart(kind, i, m.end(), m.group(0), int(m.group(1))))
            elif kind == "room":
                parts.append(NumberPart("room", i, m.end(), m.group(0), _room_text(m.group(1))))
            elif kind == "number":
                parts.append(NumberPart("number", i, m.end(), m.group(0), _number_value(m)))
            elif kind == "floor":
                parts.append(NumberPart("floor", i, m.end(), m.group(0), int(m.group(1))))
            else:  # a bare number means what its neighbour suggests
                value = m.group(1)
                if prev in ("building", "unit", "floor"):
                    parts.append(NumberPart("room", i, m.end(), value, _room_text(value)))
                elif prev == "number" and i == parts[-1].end:
                    parts.append(NumberPart("building", i, m.end(), value, int(value)))
                else:
                    parts.append(NumberPart("number", i, m.end(), value, (int(value), 0, 0, 0)))
            i = m.end()
            break
        else:  # pragma: no cover - bare always matches a digit
            i += 1
    return parts


def _room_text(text: str) -> str:
    text = text.upper()
    digits = text.strip("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
    if digits.isdigit() and digits == text:
        return str(int(digits))
    return text


_HAN_INFO: dict[str, tuple[str, str, str]] = {}  # char -> (syllable, folded, initial)


def _han_info(c: str) -> tuple[str, str, str] | None:
    info = _HAN_INFO.get(c)
    if info is None:
        if not is_han(c):
            return None
        syl = char_syllable(c)
        info = _HAN_INFO[c] = (syl, fold(syl) if syl.isascii() else syl, syl[0])
    return info


def _units(s: str, start: int, end: int) -> list[Unit]:
    units: list[Unit] = []
    i = start
    while i < end:
        c = s[i]
        info = _HAN_INFO.get(c) or _han_info(c)
        if info is not None:
            units.append(Unit(i, i + 1, "han", c, info[0], info[1], info[2]))
            i += 1
        elif c.isascii() and c.isalpha():
            j = i
            while j < end and s[j].isascii() and s[j].isalpha():
                j += 1
            for a, b, piece, kind in latin_units(s[i:j]):
                units.append(Unit(i + a, i + b, kind, None, piece, fold(piece) if kind == "py" else piece, piece[0]))
            i = j
        else:
            i += 1
    return units


# Financial numerals (壹佰贰拾叁号) are left alone by registry.text.normalize, because 陆 and 伍
# are surnames; right before a number suffix they are numbers.
_FINANCIAL = re.compile(r"[壹贰叁肆伍陆柒捌玖拾佰仟零〇一二三四五六七八九十百千]*[壹贰叁肆伍陆柒捌玖拾佰仟]"
                        r"[壹贰叁肆伍陆柒捌玖拾佰仟零〇一二三四五六七八九十百千]*(?=[号號幢栋棟座室]|单元)")


def _financial(text: str) -> str:
    def repl(m: re.Match[str]) -> str:
        try:
            return str(chinese_to_int(m.group(0)))
        except ValueError:
            return m.group(0)

    return _FINANCIAL.sub(repl, text)


_HAS_LATIN = re.compile(r"[A-Za-z\u00c0-\u024f\uff21-\uff3a\uff41-\uff5a]")


def prepare(raw: str) -> PreparedQuery:
    """Normalize a free-text query and find its number components and text runs."""
    latin = _HAS_LATIN.search(raw) is not None
    text = _financial(_strip_tone_digits(raw) if latin else raw)
    text = normalize(text)
    if latin:
        text = strip_latin_tones(text)
        text = _LATIN_SUFFIX.sub(lambda m: _LATIN_SUFFIX_MAP[m.group(1)], text)
    numbers = _scan_numbers(text)
    # Floors: with no building, 3楼 is building 3 (3号楼) as often as not; keep both readings
    # by recording it as a floor and letting the resolver try the building.
    runs: list[Run] = []
    pos = 0
    for part in numbers + [NumberPart("end", len(text), len(text), "", None)]:
        if part.start > pos:
            units = _units(text, pos, part.start)
            if units:
                runs.append(Run(pos, part.start, units))
        pos = max(pos, part.end)
    pq = PreparedQuery(raw, text, runs, numbers)
    for p in numbers:
        pq.parts.setdefault(p.kind, p)
    pq.has_door_parts = any(k in pq.parts for k in NUMBER_KINDS)
    return pq
