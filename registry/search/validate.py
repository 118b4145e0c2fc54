"""Checks of search input. Each failure is an InvalidQuery naming the parameter, in Chinese and
English, so the API answers it as a 400 problem+json."""
from __future__ import annotations

import math
import re

from registry.errors import InvalidQuery

MAX_QUERY_CHARS = 200
MAX_LIMIT = 50
MAX_BATCH_ROWS = 100_000
MAX_RADIUS_M = 5_000
KINDS = ("address", "place", "division", "facility", "heritage")


# The control characters (Unicode category Cc: U+0000–U+001F, U+007F–U+009F) but the tab.
_CONTROL = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f]")


def check_text(value: str | None, parameter: str = "q", *, required: bool = True) -> str | None:
    if value is None or not value.strip():
        if required:
            raise InvalidQuery(f"{parameter} 不能为空 / {parameter} must not be empty", parameter=parameter)
        return None
    if len(value) > MAX_QUERY_CHARS:
        raise InvalidQuery(
            f"{parameter} 太长：{len(value)} 个字符，最多 {MAX_QUERY_CHARS} / "
            f"{parameter} is too long: {len(value)} characters, at most {MAX_QUERY_CHARS}", parameter=parameter)
    found = _CONTROL.search(value)
    if found is not None:
        bad = found.group()
        raise InvalidQuery(
            f"{parameter} 含有控制字符 U+{ord(bad):04X} / {parameter} contains a control character U+{ord(bad):04X}",
            parameter=parameter)
    return value


def check_limit(limit: int, parameter: str = "limit", maximum: int = MAX_LIMIT) -> int:
    if not 1 <= limit <= maximum:
        raise InvalidQuery(f"{parameter} 应在 1 到 {maximum} 之间 / {parameter} must be between 1 and {maximum}",
                           parameter=parameter)
    return limit


def _floats(value: str, n: int, parameter: str, example: str) -> list[float]:
    parts = [p.strip() for p in value.split(",")]
    try:
        nums = [float(p) for p in parts]
    except ValueError:
        nums = []
    if len(nums) != n or not all(math.isfinite(x) for x in nums):
        raise InvalidQuery(f"{parameter} 应为 {n} 个以逗号分隔的数字，如 {example} / "
                           f"{parameter} must be {n} comma-separated numbers, e.g. {example}", parameter=parameter)
    return nums


def check_lon_lat(lon: float, lat: float, parameter: str | None = None) -> tuple[float, float]:
    """`parameter`: the one to name (bbox, near); None names lon or lat themselves."""
    if not (math.isfinite(lon) and -180 <= lon <= 180):
        name = parameter or "lon"
        raise InvalidQuery(f"{name}: 经度应在 -180 到 180 之间 / {name}: longitude must be between -180 and 180, "
                           f"got {lon}", parameter=name)
    if not (math.isfinite(lat) and -90 <= lat <= 90):
        name = parameter or "lat"
        raise InvalidQuery(f"{name}: 纬度应在 -90 到 90 之间 / {name}: latitude must be between -90 and 90, "
                           f"got {lat}", parameter=name)
    return lon, lat


def parse_bbox(value: str | None) -> tuple[float, float, float, float] | None:
    if value is None:
        return None
    x0, y0, x1, y1 = _floats(value, 4, "bbox", "120.0,30.8,120.2,30.95")
    check_lon_lat(x0, y0, "bbox")
    check_lon_lat(x1, y1, "bbox")
    if x0 >= x1 or y0 >= y1:
        raise InvalidQuery("bbox 应为 最小经度,最小纬度,最大经度,最大纬度 / bbox must be minlon,minlat,maxlon,maxlat "
                           "with min < max", parameter="bbox")
    return x0, y0, x1, y1


def parse_near(value: str | None) -> tuple[float, float] | None:
    if value is None:
        return None
    lon, lat = _floats(value, 2, "near", "120.09,30.87")
    return check_lon_lat(lon, lat, "near")


def parse_kinds(value: str | None) -> frozenset[str] | None:
    if value is None or not value.strip():
        return None
    kinds = frozenset(k.strip() for k in value.split(",") if k.strip())
    unknown = sorted(kinds - set(KINDS))
    if unknown:
        raise InvalidQuery(f"kind 只能是 {', '.join(KINDS)} / kind must be among {', '.join(KINDS)}: "
                           f"{', '.join(unknown)}", parameter="kind")
    return kinds


def check_radius(radius: float) -> float:
    if not (math.isfinite(radius) and 0 < radius <= MAX_RADIUS_M):
        raise InvalidQuery(f"radius 应在 0 到 {MAX_RADIUS_M} 米之间 / radius must be in (0, {MAX_RADIUS_M}] metres",
                           parameter="radius")
    return radius
