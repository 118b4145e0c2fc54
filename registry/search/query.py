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
from registry.text.normalize import is_normal
from registry.text.house_number import NumberPart, scan_number_parts

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
class Run:
    start: int
    end: int
    units: list[Unit]


@dataclass
class PreparedQuery:
    raw: str
    text: str
    numbers: list[NumberPart]
    parts: dict[str, NumberPart] = field(default_factory=dict)  # first part of each kind

    @property
    def atoms(self) -> int:
        return len(self.text)

    def get(self, kind: str):
        p = self.parts.get(kind)
        return p.value if p is not None else None

    has_door_parts: bool = False  # set by prepare: the query names a number, group, building …
    # readings the precision rules refused (parse.compatible_kind, engine._straddles_division), for the trace
    refused: list[dict] = field(default_factory=list)
    shape_ends: list[int] | None = None  # where a name-shaped generic ends (rank.unexplained_names), lazily
    _runs: list[Run] | None = field(default=None, repr=False)

    @property
    def runs(self) -> list[Run]:
        """The text runs between the number parts, cut into units when first asked for (the
        exact-text path answers without them)."""
        if self._runs is None:
            self._runs = _cut_runs(self.text, self.numbers)
        return self._runs


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


def _cut_runs(text: str, numbers: list[NumberPart]) -> list[Run]:
    runs: list[Run] = []
    pos = 0
    for part in numbers + [NumberPart("end", len(text), len(text), "", None)]:
        if part.start > pos:
            units = _units(text, pos, part.start)
            if units:
                runs.append(Run(pos, part.start, units))
        pos = max(pos, part.end)
    return runs


_HAS_LATIN = re.compile(r"[A-Za-z\u00c0-\u024f\uff21-\uff3a\uff41-\uff5a]")


def query_text(raw: str) -> str:
    """The query as the engine reads it: financial numerals before a number suffix as digits,
    normalized, latin tones and suffixes folded (the exact path looks this text up as it is)."""
    latin = _HAS_LATIN.search(raw) is not None
    text = _financial(_strip_tone_digits(raw) if latin else raw)
    if not is_normal(text):  # a few µs where normalize costs ~25: most queries are typed normal
        text = normalize(text)
    if latin:
        text = strip_latin_tones(text)
        text = _LATIN_SUFFIX.sub(lambda m: _LATIN_SUFFIX_MAP[m.group(1)], text)
    return text


def prepare(raw: str, text: str | None = None) -> PreparedQuery:
    """Normalize a free-text query and find its number components and text runs (`text`: its
    query_text, when the caller has it already)."""
    if text is None:
        text = query_text(raw)
    numbers = scan_number_parts(text)  # the one number grammar (registry.text.house_number)
    # Floors: with no building, 3楼 is building 3 (3号楼) as often as not; keep both readings
    # by recording it as a floor and letting the resolver try the building.
    pq = PreparedQuery(raw, text, numbers)
    for p in numbers:
        pq.parts.setdefault(p.kind, p)
    pq.has_door_parts = any(k in pq.parts for k in NUMBER_KINDS)
    return pq
