"""The place-name categories (地名类别) the registry knows: one table, imported by every caller.

A file may name a category by its English code (`road`), its Chinese name (`道路`) or a listed
synonym (`街巷`); whatever it uses, the registry stores the code. Anything else is refused with
the list of valid categories: a typo (`raod`) must never become a category of its own.

To add a category, add one `Category` row to `CATEGORIES` (code: lower-case ASCII, stable, what
is stored in `place_names.category`).

Source of the structure: GB/T 18521-2001《地名分类与类别代码编制规则》(the national rule for
place-name classification), which classifies place names in four levels, 门类 → 大类 → 中类 →
小类, the first split being 自然地理实体 (natural features) and 人文地理实体 (human features).
Each row here is a 小类 the registry uses, placed under the 门类/大类/中类 it falls in, **by name
only**: the standard's numeric class codes are not reproduced, because no copy of its code table
was available to cite while this table was written (a registry code that looks official but is
guessed would be worse than none). `gbt_code` stays empty until it can be filled from the text.
`generics` lists the 通名 a name of the category may end with (the naming check "a 路 that is a
bridge" reads it); an empty tuple means no check.
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
    door: str = ""  # 门类 (GB/T 18521): 自然地理实体 / 人文地理实体
    major: str = ""  # 大类
    middle: str = ""  # 中类
    generics: tuple[str, ...] = ()  # 通名 that fit the category; () = not checked
    gbt_code: str = ""  # the standard's class code, only where it can be cited (none yet)

    @property
    def path(self) -> tuple[str, ...]:
        """门类 → 大类 → 中类 → 小类 (the last is this category's Chinese name)."""
        return tuple(p for p in (self.door, self.major, self.middle, self.name_zh) if p)


_NATURAL, _HUMAN = "自然地理实体", "人文地理实体"
_ROADS = ("路", "街", "巷", "弄", "大道", "大街", "道", "里", "坊", "公路", "国道", "省道", "线", "高速")
CATEGORIES: tuple[Category, ...] = (
    Category("road", "道路", "road or street", ("道路街巷", "街路巷", "街巷", "街道路巷", "street"),
             _HUMAN, "交通运输设施", "城镇道路街巷", _ROADS),
    Category("compound", "小区", "residential compound", ("居民小区", "住宅小区", "居住小区"),
             _HUMAN, "居民点", "城镇居民点", ("小区", "花园", "家园", "公寓", "新村", "山庄", "苑", "府",
                                             "庭", "园", "城", "湾", "里", "坊", "居", "邸", "村")),
    Category("natural_village", "自然村", "natural village", ("自然村落", "村落"),
             _HUMAN, "居民点", "农村居民点"),
    Category("bridge", "桥梁", "bridge", ("桥",), _HUMAN, "交通运输设施", "桥梁", ("桥", "大桥", "立交")),
    Category("river", "河流", "river", ("河", "河道"), _NATURAL, "水系", "河流",
             ("河", "江", "溪", "港", "浜", "塘", "渠", "漾", "溇", "荡", "泾", "水")),
    Category("lake", "湖泊", "lake", ("湖",), _NATURAL, "水系", "湖泊", ("湖", "漾", "荡", "潭", "池", "泊")),
    Category("hill", "山", "hill or mountain", ("山体", "山峰", "mountain"), _NATURAL, "陆地地形", "山",
             ("山", "岭", "峰", "岗", "坞", "顶", "尖", "坡", "岙")),
    Category("reservoir", "水库", "reservoir", (), _HUMAN, "水利设施", "水库", ("水库", "库", "塘")),
    Category("tunnel", "隧道", "tunnel", (), _HUMAN, "交通运输设施", "隧道", ("隧道", "隧洞")),
    Category("square", "广场", "square", (), _HUMAN, "纪念地和旅游胜地", "广场", ("广场",)),
    Category("landmark", "标志性建筑物", "landmark", ("地标", "标志性建筑", "建筑物"),
             _HUMAN, "建筑物", "标志性建筑物"),
    Category("division", "行政区划", "administrative division", ("行政区", "政区"),
             _HUMAN, "行政区划", "行政区域", ("省", "市", "县", "区", "镇", "乡", "街道")),
)

BY_CODE: dict[str, Category] = {c.code: c for c in CATEGORIES}
CATEGORY_NAMES_ZH: dict[str, str] = {c.code: c.name_zh for c in CATEGORIES}


def _fold(value: str) -> str:
    # full-width letters, stray spaces, case: "Ｒｏａｄ " is road
    return unicodedata.normalize("NFKC", value).strip().lower().replace(" ", "_")


# Every spelling a category is accepted by (its code, Chinese name and synonyms, folded) -> its code;
# the API documents them as the parameter's enum.
CATEGORY_SPELLINGS: dict[str, str] = {}
for _c in CATEGORIES:
    for _name in (_c.code, _c.name_zh, *_c.synonyms):
        CATEGORY_SPELLINGS.setdefault(_fold(_name), _c.code)


def category_code(value: str | None) -> str | None:
    """The stored code of a category named by code, Chinese name or synonym; None if unknown."""
    if value is None:
        return None
    return CATEGORY_SPELLINGS.get(_fold(value))


def valid_categories(*, lang: str = "zh") -> str:
    """The valid categories for a message: `road（道路）、compound（小区）…` or `road (道路), …`."""
    if lang == "zh":
        return "、".join(f"{c.code}（{c.name_zh}）" for c in CATEGORIES)
    return ", ".join(f"{c.code} ({c.name_zh})" for c in CATEGORIES)


def generic_fits(code: str, generic: str) -> bool | None:
    """Whether a 通名 fits the category (None when the category has no generics to check)."""
    category = BY_CODE.get(code)
    if category is None or not category.generics:
        return None
    return generic in category.generics


def category_tree() -> dict[str, dict[str, dict[str, list[str]]]]:
    """门类 → 大类 → 中类 → [category codes], in table order (for pages and the API)."""
    tree: dict[str, dict[str, dict[str, list[str]]]] = {}
    for c in CATEGORIES:
        tree.setdefault(c.door, {}).setdefault(c.major, {}).setdefault(c.middle, []).append(c.code)
    return tree


__all__ = ["BY_CODE", "CATEGORIES", "CATEGORY_NAMES_ZH", "Category", "category_code", "category_tree", "generic_fits",
           "valid_categories"]
