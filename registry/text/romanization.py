"""Romanization of place names by the 1984 spelling rules (中国地名汉语拼音字母拼写规则（汉语地名部分）,
中国地名委员会 等 1984) and GB/T 16159; the sign form of GB 17733.

The rules implemented, each with the rule's own example:

* specific and generic are written apart, each capitalised: 人民路 ``Renmin Lu``, 太湖路 ``Taihu Lu``;
* a one-syllable modifier of the generic is joined to it: 景山后街 ``Jingshan Houjie``,
  解放北路 ``Jiefang Beilu`` (only when at least two characters of specific remain: 城北路 ``Chengbei Lu``);
* natural villages and towns (names that need no split) are one word: 王村 ``Wangcun``,
  周口店 ``Zhoukoudian`` (``one_word=True`` or the category ``natural_village``);
* a generic that has become part of the name is specific: 景德镇市 ``Jingdezhen Shi`` (only the last
  generic splits off);
* personal names in a name are joined (the specific is always one word): 中山路 ``Zhongshan Lu``;
* numbers in a name are pinyin (三八路 ``Sanba Lu``), ordinals and codes are Arabic (经五路 ``Jing 5 Lu``,
  第九弄 ``9 Nong``, digits as written stay digits);
* an apostrophe before a syllable starting with a/o/e inside a word: 西安 ``Xi'an``;
* the sign form of GB 17733 is all capitals: ``RENMIN LU`` (:func:`sign_form`).

Readings of polyphonic characters in place names come from one data table,
``data/reference/placename_readings.csv`` (phrase, reading, where, source): 十里堡 *pu*, 南浔 *xun*,
乐清 *yue*, 重庆 *chong* …; longer phrases win. Where even that is wrong for one name, the place
name's own ``romanization_override`` wins (stored on the row, so its history records it).
"""
from __future__ import annotations

import csv
import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from .address_text import split_generic
from .pinyin import _syllables

READINGS_FILE = Path(__file__).resolve().parent.parent.parent / "data" / "reference" / "placename_readings.csv"

_DIRECTIONS = set("东南西北中")
# One-syllable modifiers joined to a road generic (rule: 单音节附加成分与通名连写): 后街 Houjie, 北路 Beilu.
_MODIFIERS = _DIRECTIONS | set("前后上下内外横")
_ROAD_GENERICS = {"路", "街", "大道", "大街", "巷", "弄"}
# Generics that take an ordinal the same way (吉山一村 → Jishan Yicun).
_NUMBERED_GENERICS = {"村", "新村", "区", "小区"}
_NUMERALS = "零一二三四五六七八九十百"
_NUMERAL_VALUE = {c: i for i, c in enumerate("零一二三四五六七八九")}
# A one-character series head before a numeral is a grid ordinal: 经五路 Jing 5 Lu, 纬三路 Wei 3 Lu.
_SERIES = set("经纬横纵")


@dataclass(frozen=True)
class Reading:
    phrase: str
    syllables: tuple[str, ...]
    where: str
    source: str


@lru_cache(maxsize=1)
def readings() -> tuple[Reading, ...]:
    """The polyphonic-reading table, longest phrase first (so 十里堡 wins over 堡)."""
    out: list[Reading] = []
    with READINGS_FILE.open(encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f):
            syl = tuple(row["reading"].split())
            if len(syl) != len(row["phrase"]):
                raise ValueError(f"{READINGS_FILE.name}: {row['phrase']} has {len(syl)} syllables")
            out.append(Reading(row["phrase"], syl, row["where"], row["source"]))
    return tuple(sorted(out, key=lambda r: -len(r.phrase)))


def _cn_number(text: str) -> int | None:
    """A small Chinese numeral (一 … 九十九) as an int; None if it is not one."""
    if not text or any(c not in _NUMERALS for c in text):
        return None
    if "十" not in text:
        return int("".join(str(_NUMERAL_VALUE[c]) for c in text)) if "百" not in text else None
    tens, _, units = text.partition("十")
    if "十" in units or "百" in text:
        return None
    return (_NUMERAL_VALUE.get(tens, 0) if tens else 1) * 10 + (_NUMERAL_VALUE.get(units, 0) if units else 0)


@lru_cache(maxsize=1)
def _by_first_char() -> dict[str, tuple[Reading, ...]]:
    """The readings by their first character, longest first (one dict look-up per character)."""
    out: dict[str, list[Reading]] = {}
    for r in readings():
        out.setdefault(r.phrase[0], []).append(r)
    return {k: tuple(v) for k, v in out.items()}


@lru_cache(maxsize=65_536)
def _syllables_of(text: str) -> tuple[tuple[str, bool], ...]:
    """(syllable, is_han) with the place-name readings table applied over pypinyin's."""
    syl = _syllables(text, v_to_u=True)
    norm = unicodedata.normalize("NFKC", text)
    han_text = "".join(ch for ch in norm if _is_han(ch))
    han_idx = [k for k, (_, h) in enumerate(syl) if h]
    if len(han_text) != len(han_idx):  # never expected: keep pypinyin's readings
        return tuple(syl)
    table = _by_first_char()
    i = 0
    while i < len(han_text):
        for r in table.get(han_text[i], ()):
            if han_text.startswith(r.phrase, i):  # longest phrase first, left to right
                for k, reading in enumerate(r.syllables):
                    syl[han_idx[i + k]] = (reading.replace("v", "ü"), True)
                i += len(r.phrase)
                break
        else:
            i += 1
    return tuple(syl)


def _is_han(ch: str) -> bool:
    o = ord(ch)
    return 0x3400 <= o <= 0x4DBF or 0x4E00 <= o <= 0x9FFF or 0xF900 <= o <= 0xFAFF or 0x20000 <= o <= 0x3134F


def _ordinal(specific: str) -> tuple[str, int] | None:
    """(head, number) when the specific ends in an ordinal or code, written in Arabic digits.

    Digits as written (经5路, 1718峰), 第 + numeral (第九弄) and a grid series head + numeral
    (经五路, 纬三路) are ordinals; any other Chinese numeral is part of the name (三八路 Sanba Lu).
    """
    m = re.fullmatch(r"(.*?)([0-9]+)", specific)
    if m:
        return m[1], int(m[2])
    m = re.fullmatch(rf"(.*?)第([{_NUMERALS}]+)", specific)
    if m and _cn_number(m[2]) is not None:
        return m[1], _cn_number(m[2])
    m = re.fullmatch(rf"([{''.join(sorted(_SERIES))}])([{_NUMERALS}]+)", specific)
    if m and _cn_number(m[2]) is not None:
        return m[1], _cn_number(m[2])
    return None


def word(text: str) -> str:
    """One romanized word: syllables joined, apostrophe before a/o/e, first letter capital."""
    parts: list[str] = []
    for syllable, han in _syllables_of(text):
        if parts and han and syllable[0] in "aoe":
            parts.append("'")
        parts.append(syllable)
    w = "".join(parts)
    return w[:1].upper() + w[1:]


def split_name(name: str) -> tuple[str, str]:
    """(specific, generic): only the last generic splits off (景德镇市 → 景德镇 + 市)."""
    return split_generic(name)


def romanize(name: str, *, category: str | None = None, one_word: bool = False,
             specific: str | None = None, generic: str | None = None, override: str | None = None) -> str:
    """The romanized form of a place name by the 1984 rules (see the module doc).

    ``specific``/``generic`` given (the registry's 专名/通名 fields) win over the automatic split;
    ``override`` (a place name's own ``romanization_override``) wins over everything.
    """
    if override:
        return override.strip()
    name = "".join(unicodedata.normalize("NFKC", name).split())
    if not name:
        return ""
    if one_word or category == "natural_village":
        return word(name)
    if specific is None or generic is None:
        specific, generic = split_name(name)
    if not generic:
        return word(specific)
    ordinal = _ordinal(specific)
    if ordinal is not None:
        head, value = ordinal
        return " ".join(p for p in (word(head) if head else "", str(value), word(generic)) if p)
    if len(specific) >= 3:
        last = specific[-1]
        if (last in _MODIFIERS and generic in _ROAD_GENERICS) or (
                last in _NUMERALS[1:10] and specific[-2] not in _NUMERALS
                and generic in _NUMBERED_GENERICS):
            specific, generic = specific[:-1], last + generic
    return f"{word(specific)} {word(generic)}"


def sign_form(romanized: str) -> str:
    """The all-capitals form for signs (GB 17733): ``Renmin Lu`` → ``RENMIN LU``."""
    return romanized.upper()


__all__ = ["READINGS_FILE", "Reading", "readings", "romanize", "sign_form", "split_name", "word"]
