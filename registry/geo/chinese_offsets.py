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


def _transform_lat(x, y):
    ret = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * np.sqrt(np.abs(x))
    ret += (20.0 * np.sin(6.0 * x * np.pi) + 20.0 * np.sin(2.0 * x * np.pi)) * 2.0 / 3.0
    ret += (20.0 * np.sin(y * np.pi) + 40.0 * np.sin(y / 3.0 * np.pi)) * 2.0 / 3.0
    ret += (160.0 * np.sin(y / 12.0 * np.pi) + 320 * np.sin(y * np.pi / 30.0)) * 2.0 / 3.0
    return ret


def _transform_lon(x, y):
    ret = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * np.sqrt(np.abs(x))
    ret += (20.0 * np.sin(6.0 * x * np.pi) + 20.0 * np.sin(2.0 * x * np.pi)) * 2.0 / 3.0
    ret += (20.0 * np.sin(x * np.pi) + 40.0 * np.sin(x / 3.0 * np.pi)) * 2.0 / 3.0
    ret += (150.0 * np.sin(x / 12.0 * np.pi) + 300.0 * np.sin(x / 30.0 * np.pi)) * 2.0 / 3.0
    return ret


def _offset(lon, lat):
    """The GCJ-02 shift (dlon, dlat) in degrees at a WGS84 position."""
    dlat = _transform_lat(lon - 105.0, lat - 35.0)
    dlon = _transform_lon(lon - 105.0, lat - 35.0)
    radlat = lat / 180.0 * np.pi
    magic = 1 - _EE * np.sin(radlat) ** 2
    sqrtmagic = np.sqrt(magic)
    dlat = (dlat * 180.0) / ((_A * (1 - _EE)) / (magic * sqrtmagic) * np.pi)
    dlon = (dlon * 180.0) / (_A / sqrtmagic * np.cos(radlat) * np.pi)
    return dlon, dlat


def _out(a):
    return float(a) if np.ndim(a) == 0 else a


def wgs84_to_gcj02(lon, lat):
    """WGS84/CGCS2000 -> GCJ-02. Outside China the shift is not applied by map vendors,
    but the registry only handles Huzhou, so no out-of-China test is made."""
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
    x = np.asarray(lon, dtype="float64")
    y = np.asarray(lat, dtype="float64")
    z = np.sqrt(x * x + y * y) + 0.00002 * np.sin(y * _X_PI)
    theta = np.arctan2(y, x) + 0.000003 * np.cos(x * _X_PI)
    return _out(z * np.cos(theta) + 0.0065), _out(z * np.sin(theta) + 0.006)


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
