"""The place-name categories (地名类别) the registry knows: one table, imported by every caller.

A file may name a category by its English code (`road`), its Chinese name (`道路`) or a listed
synonym (`街巷`); whatever it uses, the registry stores the code. Anything else is refused with
the list of valid categories: a typo (`raod`) must never become a category of its own.

To add a category, add one `Category` row to `CATEGORIES` (code: lower-case ASCII, stable, what
is stored in `place_names.category`). The names follow the place-name classes of GB/T 18521
(道路街巷, 居民点, 交通设施, 水系, 山体 …) at the level the registry uses.
"""
from __future__ import annotations

import unicodedata
from dataclasses import dataclass


@dataclass(frozen=True)
class Category:
    code: str  # stored in place_names.category
    name_zh: str
    name_en: str
    synonyms: tuple[str, ...] = ()  # other spellings a file may use (Chinese or English)


CATEGORIES: tuple[Category, ...] = (
    Category("road", "道路", "road or street", ("道路街巷", "街路巷", "街巷", "街道路巷", "street")),
    Category("compound", "小区", "residential compound", ("居民小区", "住宅小区", "居住小区")),
    Category("natural_village", "自然村", "natural village", ("自然村落", "村落")),
    Category("bridge", "桥梁", "bridge", ("桥",)),
    Category("river", "河流", "river", ("河", "河道")),
    Category("lake", "湖泊", "lake", ("湖",)),
    Category("hill", "山", "hill or mountain", ("山体", "山峰", "mountain")),
    Category("reservoir", "水库", "reservoir", ()),
    Category("tunnel", "隧道", "tunnel", ()),
    Category("square", "广场", "square", ()),
)

BY_CODE: dict[str, Category] = {c.code: c for c in CATEGORIES}
CATEGORY_NAMES_ZH: dict[str, str] = {c.code: c.name_zh for c in CATEGORIES}


def _fold(value: str) -> str:
    # full-width letters, stray spaces, case: "Ｒｏａｄ " is road
    return unicodedata.normalize("NFKC", value).strip().lower().replace(" ", "_")


_LOOKUP: dict[str, str] = {}
for _c in CATEGORIES:
    for _name in (_c.code, _c.name_zh, *_c.synonyms):
        _LOOKUP.setdefault(_fold(_name), _c.code)


def category_code(value: str | None) -> str | None:
    """The stored code of a category named by code, Chinese name or synonym; None if unknown."""
    if value is None:
        return None
    return _LOOKUP.get(_fold(value))


def valid_categories(*, lang: str = "zh") -> str:
    """The valid categories for a message: `road（道路）、compound（小区）…` or `road (道路), …`."""
    if lang == "zh":
        return "、".join(f"{c.code}（{c.name_zh}）" for c in CATEGORIES)
    return ", ".join(f"{c.code} ({c.name_zh})" for c in CATEGORIES)


__all__ = ["BY_CODE", "CATEGORIES", "CATEGORY_NAMES_ZH", "Category", "category_code", "valid_categories"]
