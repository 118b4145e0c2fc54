"""GCJ-02 and BD-09, the offset coordinate systems of Chinese consumer maps.

Official data is kept in CGCS2000 (EPSG:4490). At the registry's accuracy CGCS2000 and
WGS84 coincide (they differ by centimetres), so both are treated as "true" coordinates here.
GCJ-02 (Amap, Tencent) is produced only for navigation links and accepted on input; BD-09
(Baidu) likewise. The forward formula is the published one; the inverse is iterative,
converging to well under a millimetre in a few steps.

All functions accept scalars or numpy arrays, and are deterministic: the same input vertex
always gives the same output vertex, so edges shared by neighbouring polygons stay shared.
"""
from __future__ import annotations

import math

import numpy as np

_A = 6378245.0  # Krasovsky 1940 semi-major axis, used by the GCJ-02 formula
_EE = 0.00669342162296594323  # its first eccentricity squared
_X_PI = math.pi * 3000.0 / 180.0


class _Floats:
    """The formulas on two Python floats (a navigation link): numpy's scalar overhead is most of
    the cost of one point. The same IEEE operations; numpy's float64 sin, cos, atan2 are the C
    library's here (no AVX-512 SVML), so a point converts alike either way."""

    sin, cos, sqrt, abs, arctan2, pi = math.sin, math.cos, math.sqrt, abs, math.atan2, math.pi

    @staticmethod
    def square(x):
        return x * x


def _transform_lat(x, y, m=np):
    ret = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * m.sqrt(m.abs(x))
    ret += (20.0 * m.sin(6.0 * x * m.pi) + 20.0 * m.sin(2.0 * x * m.pi)) * 2.0 / 3.0
    ret += (20.0 * m.sin(y * m.pi) + 40.0 * m.sin(y / 3.0 * m.pi)) * 2.0 / 3.0
    ret += (160.0 * m.sin(y / 12.0 * m.pi) + 320 * m.sin(y * m.pi / 30.0)) * 2.0 / 3.0
    return ret


def _transform_lon(x, y, m=np):
    ret = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * m.sqrt(m.abs(x))
    ret += (20.0 * m.sin(6.0 * x * m.pi) + 20.0 * m.sin(2.0 * x * m.pi)) * 2.0 / 3.0
    ret += (20.0 * m.sin(x * m.pi) + 40.0 * m.sin(x / 3.0 * m.pi)) * 2.0 / 3.0
    ret += (150.0 * m.sin(x / 12.0 * m.pi) + 300.0 * m.sin(x / 30.0 * m.pi)) * 2.0 / 3.0
    return ret


def _offset(lon, lat, m=np):
    """The GCJ-02 shift (dlon, dlat) in degrees at a WGS84 position."""
    dlat = _transform_lat(lon - 105.0, lat - 35.0, m)
    dlon = _transform_lon(lon - 105.0, lat - 35.0, m)
    radlat = lat / 180.0 * m.pi
    magic = 1 - _EE * m.square(m.sin(radlat))
    sqrtmagic = m.sqrt(magic)
    dlat = (dlat * 180.0) / ((_A * (1 - _EE)) / (magic * sqrtmagic) * m.pi)
    dlon = (dlon * 180.0) / (_A / sqrtmagic * m.cos(radlat) * m.pi)
    return dlon, dlat


def _out(a):
    return float(a) if np.ndim(a) == 0 else a


def _floats(lon, lat) -> bool:
    return isinstance(lon, float) and isinstance(lat, float)


def wgs84_to_gcj02(lon, lat):
    """WGS84/CGCS2000 -> GCJ-02. Outside China the shift is not applied by map vendors,
    but the registry only handles Huzhou, so no out-of-China test is made."""
    if _floats(lon, lat):
        lon, lat = float(lon), float(lat)
        dlon, dlat = _offset(lon, lat, _Floats)
        return lon + dlon, lat + dlat
    lon = np.asarray(lon, dtype="float64")
    lat = np.asarray(lat, dtype="float64")
    dlon, dlat = _offset(lon, lat)
    return _out(lon + dlon), _out(lat + dlat)


def gcj02_to_wgs84(lon, lat, *, iterations: int = 8):
    """GCJ-02 -> WGS84/CGCS2000 by fixed-point iteration on the forward formula.

    A fixed number of iterations (no early exit on the batch's worst point) makes each vertex's
    result independent of what else is converted with it, so a vertex shared by two polygons
    converts identically whichever polygon it comes with. The shift's gradient is ~1e-5, so the
    error shrinks by about that factor per step: 8 steps are far below a millimetre.
    """
    glon = np.asarray(lon, dtype="float64")
    glat = np.asarray(lat, dtype="float64")
    wlon, wlat = glon.copy(), glat.copy()
    for _ in range(iterations):
        dlon, dlat = _offset(wlon, wlat)
        wlon = wlon - ((wlon + dlon) - glon)
        wlat = wlat - ((wlat + dlat) - glat)
    return _out(wlon), _out(wlat)


def gcj02_to_bd09(lon, lat):
    if _floats(lon, lat):
        return _to_bd09(float(lon), float(lat), _Floats)
    lon, lat = _to_bd09(np.asarray(lon, dtype="float64"), np.asarray(lat, dtype="float64"), np)
    return _out(lon), _out(lat)


def _to_bd09(x, y, m):
    z = m.sqrt(x * x + y * y) + 0.00002 * m.sin(y * _X_PI)
    theta = m.arctan2(y, x) + 0.000003 * m.cos(x * _X_PI)
    return z * m.cos(theta) + 0.0065, z * m.sin(theta) + 0.006


def bd09_to_gcj02(lon, lat):
    x = np.asarray(lon, dtype="float64") - 0.0065
    y = np.asarray(lat, dtype="float64") - 0.006
    z = np.sqrt(x * x + y * y) - 0.00002 * np.sin(y * _X_PI)
    theta = np.arctan2(y, x) - 0.000003 * np.cos(x * _X_PI)
    return _out(z * np.cos(theta)), _out(z * np.sin(theta))


def wgs84_to_bd09(lon, lat):
    return gcj02_to_bd09(*wgs84_to_gcj02(lon, lat))


_TO_WGS = {
    "wgs84": lambda x, y: (x, y),
    "cgcs2000": lambda x, y: (x, y),
    "gcj02": gcj02_to_wgs84,
    "bd09": lambda x, y: gcj02_to_wgs84(*bd09_to_gcj02(x, y)),
}
_FROM_WGS = {
    "wgs84": lambda x, y: (x, y),
    "cgcs2000": lambda x, y: (x, y),
    "gcj02": wgs84_to_gcj02,
    "bd09": wgs84_to_bd09,
}


def transform_coords(lon, lat, source: str, target: str):
    """Convert between 'wgs84', 'cgcs2000', 'gcj02' and 'bd09' (case-insensitive)."""
    s, t = source.lower().replace("-", ""), target.lower().replace("-", "")
    if s not in _TO_WGS or t not in _FROM_WGS:
        raise ValueError(f"unknown coordinate system: {source!r} -> {target!r}")
    return _FROM_WGS[t](*_TO_WGS[s](lon, lat))
