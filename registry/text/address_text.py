"""Standard address text: composing it from components, splitting names into
specific + generic (专名 + 通名), and tokenizing free text into components.

The standard address is what the doorplate page prints and the loader stores;
its shape follows the provincial standard-address practice: divisions down to
the township, then either the street door, the compound door, or the rural
door (village, natural village, villagers' group, number), then building,
unit and room.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

from .components import Component, tokenize_address
from .errors import InvalidAddressPart
from .house_number import (HouseNumber, parse_building, parse_group, parse_house_number,
                           parse_room, parse_unit)
from .normalize import fold_village_suffix

__all__ = ["GENERICS", "Component", "compose_address", "split_generic", "tokenize_address"]

# Generic parts (通名) of place names.  split_generic tries them longest first,
# so 大道 wins over 道, 社区居委会 over 区, 自然村/新村 over 村, 街道 over 街.
GENERICS: tuple[str, ...] = tuple(sorted({
    # committees and divisions
    "社区居民委员会", "社区居委会", "村民委员会", "居民委员会", "村委会", "居委会",
    "街道办事处", "街道", "社区", "自然村", "行政村", "村", "镇", "乡", "区", "县", "市", "省",
    "自治县", "开发区", "新区",
    # streets
    "大道", "大街", "国道", "省道", "公路", "路", "街", "巷", "弄",
    # compounds
    "小区", "花园", "家园", "公寓", "新村", "山庄", "大厦", "广场", "苑", "园区", "工业区",
    # water and crossings that name hamlets in the Taihu plain
    "桥", "港", "河", "浜", "兜", "埭", "湾", "漾", "溇",
    # numbered things, so 5幢 reads as 5 + 幢
    "幢", "单元", "室", "组",
}, key=lambda g: (-len(g), g)))


def split_generic(name: str) -> tuple[str, str]:
    """Split a name into (specific, generic): ``人民路`` → ``("人民", "路")``.

    The longest known generic wins (``凤凰大道`` → 凤凰 + 大道, ``爱山街道`` →
    爱山 + 街道, ``朝阳新村`` → 朝阳 + 新村 but ``新村村`` → 新村 + 村).  The
    specific is never empty: ``新村`` → 新 + 村, and a name with no known
    generic comes back as ``(name, "")``.
    """
    name = name.strip()
    for generic in GENERICS:
        if len(name) > len(generic) and name.endswith(generic):
            return name[: -len(generic)], generic
    return name, ""


# ------------------------------------------------------------------ compose

def _part(value: object, suffix: str, parse, error_name: str) -> str | None:
    """int → ``<n><suffix>``; str → parsed and re-written in standard form."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise InvalidAddressPart(value, f"{error_name}不能是布尔值", f"{error_name} must not be a bool")
    if isinstance(value, int):
        return f"{parse(str(value))}{suffix}"
    if isinstance(value, str):
        return f"{parse(value)}{suffix}"
    raise InvalidAddressPart(value, f"{error_name}类型不对", f"unsupported {error_name} type")


_LETTER_BUILDING = re.compile(r"([A-Za-z])[幢栋座棟]")


def _by_str(maxsize: int):
    """A writer that remembers what it wrote when every argument is a str (a scan or a batch writes
    the same few thousand parts over and over); anything else is written each time (nor is a
    failure kept)."""
    def decorate(write):
        cached = lru_cache(maxsize=maxsize)(write)

        def by_str(*values):
            for value in values:
                if type(value) is not str:
                    return write(*values)
            return cached(*values)

        return by_str

    return decorate


@_by_str(65_536)
def _building(value: object) -> str | None:
    # Lettered blocks (A幢) exist in newer compounds; parse_building only
    # knows numbers, so keep a lone letter as written.
    if isinstance(value, str):
        m = _LETTER_BUILDING.fullmatch("".join(unicodedata.normalize("NFKC", value).split()))
        if m:
            return f"{m[1].upper()}幢"
    return _part(value, "幢", parse_building, "building")


@_by_str(65_536)
def _number(value: object) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, HouseNumber):
        return value.standard
    if isinstance(value, int) and not isinstance(value, bool):
        return HouseNumber(value).standard
    if isinstance(value, str):
        return parse_house_number(value).standard
    raise InvalidAddressPart(value, "门牌号类型不对", "unsupported house number type")


def _name(value: str | None, label: str, required: bool = False) -> str | None:
    if value is None or not str(value).strip():
        if required:
            raise InvalidAddressPart(value, f"缺少{label}", f"{label} is required")
        return None
    return "".join(str(value).split())


@_by_str(16_384)
def _divisions(province: object, city: object, county: object, township: object) -> str:
    """The province … township part (each required)."""
    return "".join([_name(province, "省", True), _name(city, "市", True),  # type: ignore[list-item]
                    _name(county, "区县", True), _name(township, "乡镇街道", True)])


def compose_address(*, province: str = "浙江省", city: str = "湖州市", county: str,
                    township: str, village: str | None = None, street: str | None = None,
                    compound: str | None = None, natural_village: str | None = None,
                    group: int | str | None = None,
                    number: int | str | HouseNumber | None = None,
                    building: int | str | None = None, unit: int | str | None = None,
                    room: int | str | None = None) -> str:
    """The registry's standard address text.

    * street door: ``浙江省湖州市吴兴区爱山街道人民路123号``;
    * compound: ``…爱山街道凤凰小区5幢2单元301室``, and with a street door
      ``…人民路123号凤凰小区5幢2单元301室``;
    * rural door: ``浙江省湖州市南浔区和孚镇荻港村钱家浜3组12号``.

    Village/community, natural village and group describe a rural door; they
    are written only when there is neither street nor compound (a community is
    an administrative area, not part of an urban address).  The village is
    written in its short form (荻港村委会 → 荻港村).  Numbers may be ints or
    strings in any accepted form (``5`` → 5幢, ``2`` → 2单元, ``301`` →
    301室, ``3`` → 3组, ``12号之1`` → 12-1号) or a :class:`HouseNumber`.
    """
    parts = [_divisions(province, city, county, township)]
    street_name = _name(street, "道路")
    compound_name = _name(compound, "小区")
    door = _number(number)
    if street_name:
        parts += [street_name, door]
    elif not compound_name:
        village_name = _name(village, "村社区")
        parts += [fold_village_suffix(village_name) if village_name else None,
                  _name(natural_village, "自然村"),
                  _part(group, "组", parse_group, "group"), door]
    if compound_name:
        parts.append(compound_name)
        if not street_name:
            parts.append(door)
    parts += [_building(building), _part(unit, "单元", parse_unit, "unit"),
              _part(room, "室", parse_room, "room")]
    return "".join(p for p in parts if p)
