"""What a scan shows around the door: the nearest civil-affairs facility of each category (from the
KNN candidates of `registry.doorplates.view.SCAN_SQL` or the reference data held in process) and the
navigation links to the door, written for a render-cache miss with as little arithmetic as gives the
same bytes."""
from __future__ import annotations

import math
from functools import lru_cache
from typing import Any
from urllib.parse import quote

from registry.geo import gcj02_to_bd09, wgs84_to_gcj02

# The civil-affairs services shown on the page, in this order.
SERVICE_CATEGORIES = (
    "居家养老服务照料中心",
    "幸福邻里中心",
    "儿童之家",
    "社会工作站",
    "集中治丧点",
    "婚姻登记处",
)

_EARTH_M = 6370986.0  # the sphere of PostGIS's ST_DistanceSphere
_SERVICE_SET = frozenset(SERVICE_CATEGORIES)
_DEGREE = math.pi / 180.0  # math.radians(x) is x * this, exactly (CPython's degToRad)


def _metres_from(lon: float, lat: float, points, *, radians=math.radians, sin=math.sin, cos=math.cos,
                 asin=math.asin, sqrt=math.sqrt) -> list[int]:
    """Great-circle distances in metres (the sphere of PostGIS's ST_DistanceSphere) from (lon, lat)
    to each point `[…, lon, lat]` (its last two items)."""
    p1 = radians(lat)
    cos1 = cos(p1)
    out = []
    for p in points:
        p2 = radians(p[-1])
        h = sin((p2 - p1) / 2) ** 2 + cos1 * cos(p2) * sin(radians(p[-2] - lon) / 2) ** 2
        out.append(round(2 * _EARTH_M * asin(sqrt(h))))
    return out


def distance_m(lon1: float, lat1: float, lon2: float, lat2: float) -> int:
    """Great-circle distance in metres (the sphere of PostGIS's ST_DistanceSphere)."""
    return _metres_from(lon1, lat1, ((lon2, lat2),))[0]


@lru_cache(maxsize=65_536, typed=True)  # typed: a whole-number coordinate may come from the JSON as an int
def _rounded(lon: float, lat: float) -> tuple[float, float]:
    return round(lon, 6), round(lat, 6)


# A facility is passed over when its category holds a nearer one by more than a metre on a lower bound
# of its distance (the same answer, without the arithmetic): with a = |Δφ|/2, b = |Δλ|/2 (radians),
# sin² x ≥ x²(1 - x²/3), cos φ2 ≥ cos φ1 - 2a and asin x ≥ x give metres ≥ 2R √(k (a² + cos φ1 (cos φ1 - 2a) b²))
# with k = 1 - 3.4e-5 for a, b ≤ 0.01 (≤ 127 km); _BOUND_SLACK keeps float rounding far inside that.
_HALF_DEGREE = math.pi / 360.0
_BOUND_SLACK = 1 - 4e-5


def nearest_services(lon: float | None, lat: float | None, candidates, *, sin=math.sin, cos=math.cos,
                     asin=math.asin, sqrt=math.sqrt) -> list[dict[str, Any]]:
    """The nearest facility of each civil-affairs category among the KNN candidates, nearest first:
    of each category the least (metres, facility), in that order (`_metres_from`'s arithmetic inline)."""
    if lon is None or not candidates:
        return []
    p1 = lat * _DEGREE
    cos1 = cos(p1)
    diameter = 2 * _EARTH_M
    best: dict[str, tuple[int, Any]] = {}
    beyond: dict[str, float] = {}  # by category: a bound past which a facility is more than a metre farther
    for c in candidates:
        category = c[0]
        if category in _SERVICE_SET:
            held = best.get(category)
            if held is not None and cos1 > 0.05:
                a, b = (c[-1] - lat) * _HALF_DEGREE, (c[-2] - lon) * _HALF_DEGREE
                a2, b2 = a * a, b * b
                if a2 <= 1e-4 and b2 <= 1e-4 and (a2 + cos1 * (cos1 - 2 * abs(a)) * b2) * _BOUND_SLACK > beyond[category]:
                    continue
            p2 = c[-1] * _DEGREE
            h = sin((p2 - p1) / 2) ** 2 + cos1 * cos(p2) * sin((c[-2] - lon) * _DEGREE / 2) ** 2
            here = (round(diameter * asin(sqrt(h))), c)
            if held is None or here[0] < held[0] or here[0] == held[0] and _tie(c) < _tie(held[1]):
                best[category] = here
                beyond[category] = ((here[0] + 1) / diameter) ** 2
    return [{"category": c[0], "name": c[1], "address": c[2], "phone": c[3], "distance_m": d,
             "location": [*_rounded(c[4], c[5])]} for d, c in sorted(best.values(), key=_by_distance)]


def _tie(c) -> tuple:
    """Of two facilities of one category the same metres away: by name, address, phone (a missing one
    first), location; the order of the facilities' own fields, with no None compared to a text."""
    return c[1], c[2] is not None, c[2] or "", c[3] is not None, c[3] or "", c[4], c[5]


def _by_distance(held: tuple[int, Any]) -> tuple[int, str]:
    return held[0], held[1][0]  # one facility per category: the category settles a tie


_QUOTED: dict[str, str] = {}  # character → its percent-encoding, as quote(ch, safe="") writes it


def quote_all(text: str) -> str:
    """`urllib.parse.quote(text, safe="")`, character by character from a table filled on use (UTF-8
    encodes each character on its own, so the concatenation is the same; a lone surrogate raises
    UnicodeEncodeError, as quote does)."""
    try:
        return "".join(map(_QUOTED.__getitem__, text))
    except KeyError:
        for ch in text:
            if ch not in _QUOTED:
                _QUOTED[ch] = quote(ch, safe="")
        return "".join(map(_QUOTED.__getitem__, text))


def navigation(lon: float | None, lat: float | None, label: str) -> dict[str, str] | None:
    """Links for Amap (GCJ-02), Baidu (BD-09) and a plain geo: URI (WGS84 ≈ CGCS2000)."""
    if lon is None or lat is None:
        return None
    glon, glat = wgs84_to_gcj02(lon, lat)
    blon, blat = gcj02_to_bd09(glon, glat)
    name = quote_all(label)
    here = f"{lat:.6f},{lon:.6f}"
    # round(x, 6) is float(f"{x:.6f}"): both are the correctly rounded 6-decimal value (dtoa mode 3)
    gx, gy, bx, by = f"{glon:.6f}", f"{glat:.6f}", f"{blon:.6f}", f"{blat:.6f}"
    return {
        "amap": f"https://uri.amap.com/marker?position={gx},{gy}&name={name}&coordinate=gaode&callnative=1",
        "baidu": (f"https://api.map.baidu.com/marker?location={by},{bx}&title={name}&content={name}"
                  f"&coord_type=bd09ll&output=html&src=huzhou.registry.doorplate"),
        "geo": f"geo:{here}?q={here}({name})",
        "gcj02": [float(gx), float(gy)],
        "bd09": [float(bx), float(by)],
    }


__all__ = ["SERVICE_CATEGORIES", "distance_m", "navigation", "nearest_services", "quote_all"]
