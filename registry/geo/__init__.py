"""Geometry helpers: CRS transforms (CGCS2000, WGS84, GCJ-02, BD-09) and validation."""
from registry.geo.chinese_offsets import (
    bd09_to_gcj02,
    gcj02_to_bd09,
    gcj02_to_wgs84,
    wgs84_to_gcj02,
    wgs84_to_bd09,
    transform_coords,
)

CGCS2000 = 4490
WGS84 = 4326

__all__ = [
    "CGCS2000",
    "WGS84",
    "bd09_to_gcj02",
    "gcj02_to_bd09",
    "gcj02_to_wgs84",
    "wgs84_to_gcj02",
    "wgs84_to_bd09",
    "transform_coords",
]
