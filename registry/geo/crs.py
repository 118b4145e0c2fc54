"""Coordinate reference systems of input files, and conversion to CGCS2000 (EPSG:4490).

The loaders (loaders/crs.py: which CRS a file is read in) and the field-package reader
(registry/inspection/files.py) share this one parser.

- EPSG:4490 (CGCS2000) and EPSG:4326 (WGS84) are taken as they are: at the registry's accuracy
  they coincide (they differ by centimetres), as `registry.geo` documents.
- Any other EPSG code or WKT (e.g. the CGCS2000 Gauss-Krüger zones EPSG:4513–4554 that survey
  offices use) is transformed with pyproj.
- `gcj02` (Amap/Tencent, often mislabelled EPSG:4326 in exports) and `bd09` (Baidu) are undone
  with `registry.geo` (the iterative inverse of the published formula).
A file without a CRS is refused unless one is given (`--crs`, the mapping file, or a .prj file
next to a CSV): guessing wrong moves every point by hundreds of metres.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from registry.errors import FileError
from registry.geo.chinese_offsets import transform_coords

_IDENTITY = {4490, 4326}
_OFFSETS = {"gcj02": "gcj02", "gcj-02": "gcj02", "gcj": "gcj02", "bd09": "bd09", "bd-09": "bd09", "baidu": "bd09"}
_NAMES = {"wgs84": 4326, "wgs-84": 4326, "cgcs2000": 4490, "cgcs-2000": 4490}


@dataclass(frozen=True)
class Crs:
    label: str
    epsg: int | None = None
    offset: str | None = None  # gcj02 | bd09
    wkt: str | None = None

    @property
    def identity(self) -> bool:
        return self.offset is None and self.epsg in _IDENTITY

    def _transformer(self):
        from pyproj import CRS, Transformer

        source = CRS.from_epsg(self.epsg) if self.epsg else CRS.from_wkt(self.wkt)
        return Transformer.from_crs(source, CRS.from_epsg(4490), always_xy=True)

    def to_cgcs2000(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Vectorised; NaN stays NaN."""
        x = np.asarray(x, dtype="float64")
        y = np.asarray(y, dtype="float64")
        if self.identity:
            return x, y
        if self.offset:
            ok = np.isfinite(x) & np.isfinite(y)
            ox, oy = x.copy(), y.copy()
            if ok.any():
                cx, cy = transform_coords(x[ok], y[ok], self.offset, "wgs84")
                ox[ok], oy[ok] = cx, cy
            return ox, oy
        if not hasattr(self, "_t"):
            object.__setattr__(self, "_t", self._transformer())
        return self._t.transform(x, y)

    def geometries_to_cgcs2000(self, geoms: np.ndarray) -> np.ndarray:
        if self.identity:
            return geoms
        import shapely

        def convert(coords: np.ndarray) -> np.ndarray:
            if len(coords) == 0:
                return coords
            cx, cy = self.to_cgcs2000(coords[:, 0], coords[:, 1])
            return np.column_stack([cx, cy])

        return shapely.transform(geoms, convert)


def parse_crs(value: str) -> Crs:
    """`EPSG:4326`, `4490`, `WGS84`, `CGCS2000`, `gcj02`, `bd09`, or a WKT/PROJ string."""
    raw = value.strip()
    low = raw.lower()
    if low in _OFFSETS:
        return Crs(label=_OFFSETS[low].upper().replace("GCJ02", "GCJ-02").replace("BD09", "BD-09"),
                   offset=_OFFSETS[low], epsg=4326)
    if low in _NAMES:
        return Crs(label=f"EPSG:{_NAMES[low]}", epsg=_NAMES[low])
    if low.startswith("epsg:"):
        low = low[5:]
    if low.isdigit():
        epsg = int(low)
        try:
            from pyproj import CRS

            CRS.from_epsg(epsg)
        except Exception:
            raise FileError("unknown_crs", f"未知的坐标系 {value}", f"unknown coordinate reference system {value!r}") from None
        return Crs(label=f"EPSG:{epsg}", epsg=epsg)
    try:
        from pyproj import CRS

        crs = CRS.from_user_input(raw)
    except Exception:
        raise FileError("unknown_crs", f"无法识别的坐标系 {value[:80]}",
                        f"unrecognised coordinate reference system {value[:80]!r}") from None
    epsg = crs.to_epsg(min_confidence=70)
    if epsg:
        return Crs(label=f"EPSG:{epsg}", epsg=epsg)
    return Crs(label=crs.name or "WKT", wkt=crs.to_wkt())
