"""The real Huzhou divisions (names, both code authorities) and county polygons.

Everything is read from ``data/reference/`` next to this package; nothing outside it.
County polygons are converted GCJ-02 -> CGCS2000 vertex by vertex, so edges shared by
two counties stay identical after the conversion.
"""
from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import shapely
from shapely.geometry import MultiPolygon, Polygon, shape

from data import REFERENCE_DIR
from registry.geo import gcj02_to_wgs84

CITY_CODE = "330500"

# Approximate seats (CGCS2000 lon, lat) of the county governments; used only to make the
# synthetic urban cores plausible. A seat outside its county falls back to a point inside.
COUNTY_SEATS: dict[str, tuple[float, float]] = {
    "330502": (120.088, 30.872),  # 吴兴区, the Huzhou urban core (爱山/月河)
    "330503": (120.420, 30.872),  # 南浔区, 南浔镇
    "330521": (119.958, 30.543),  # 德清县, 武康
    "330522": (119.905, 31.010),  # 长兴县, 雉城
    "330523": (119.678, 30.638),  # 安吉县, 递铺
}


@dataclass(frozen=True)
class County:
    code: str
    name: str

    @property
    def short(self) -> str:
        return self.name[:-1]


@dataclass(frozen=True)
class Township:
    nbs_code: str
    mca_code: str
    name: str
    county_code: str

    @property
    def is_subdistrict(self) -> bool:
        """街道: township digits 001-099."""
        return int(self.nbs_code[6:9]) < 100

    @property
    def short(self) -> str:
        for suffix in ("街道", "镇", "乡"):
            if self.name.endswith(suffix):
                return self.name[: -len(suffix)]
        return self.name


@dataclass(frozen=True)
class Village:
    code: str
    name: str
    township_code: str

    @property
    def county_code(self) -> str:
        return self.code[:6]

    @property
    def is_community(self) -> bool:
        """社区/居委会 (001-199) and the odd special units (>= 400) count as urban."""
        n = int(self.code[9:])
        return n < 200 or n >= 400

    @property
    def short(self) -> str:
        """The form people write: 祝良村委会 -> 祝良村, 龙庭社区居委会 -> 龙庭社区."""
        return short_village_name(self.name)


def short_village_name(name: str) -> str:
    if name.endswith("社区居委会"):
        return name[: -len("居委会")]
    if name.endswith("村委会"):
        return name[: -len("委会")]
    if name.endswith("居民委员会"):
        return name[: -len("居民委员会")] + "社区"
    if name.endswith("居委会"):
        return name[: -len("居委会")] + "社区"
    return name


@dataclass
class Reference:
    counties: list[County]
    townships: list[Township]
    villages: list[Village]
    county_gcj02: dict[str, Polygon]

    def townships_of(self, county_code: str) -> list[Township]:
        return [t for t in self.townships if t.county_code == county_code]

    def villages_of(self, township_code: str) -> list[Village]:
        return [v for v in self.villages if v.township_code == township_code]


def _read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def load_reference(ref_dir: Path = REFERENCE_DIR) -> Reference:
    nbs = sorted(_read_csv(ref_dir / "divisions_nbs_2023.csv"), key=lambda r: r["code"])
    crosswalk = {r["nbs2023_code"]: r["mca2025_code"] for r in _read_csv(ref_dir / "township_code_crosswalk.csv")}
    counties = [County(r["code"], r["name"]) for r in nbs if r["level"] == "county"]
    townships = [
        Township(r["code"], crosswalk.get(r["code"], r["code"]), r["name"], r["parent_code"])
        for r in nbs
        if r["level"] == "township"
    ]
    villages = [Village(r["code"], r["name"], r["parent_code"]) for r in nbs if r["level"] == "village"]
    with (ref_dir / "huzhou_counties_gcj02.geojson").open(encoding="utf-8") as fh:
        features = json.load(fh)["features"]
    geoms: dict[str, Polygon] = {}
    for feat in features:
        code = str(feat["properties"]["code"])
        if code == CITY_CODE:
            continue
        geom = shape(feat["geometry"])
        if isinstance(geom, MultiPolygon):
            if len(geom.geoms) != 1:
                raise ValueError(f"county {code}: expected one polygon, got {len(geom.geoms)}")
            geom = geom.geoms[0]
        geoms[code] = geom
    missing = [c.code for c in counties if c.code not in geoms]
    if missing:
        raise ValueError(f"no polygon for counties {missing}")
    return Reference(counties, townships, villages, geoms)


def county_polygons_cgcs2000(ref: Reference) -> dict[str, Polygon]:
    """GCJ-02 -> CGCS2000, vertex by vertex, all counties in ONE batch.

    ``gcj02_to_wgs84`` stops iterating on the batch-wide maximum error, so the same vertex
    converted in two different batches can differ in the last bits (~1e-13 deg). Converting
    every county's vertices together guarantees that shared vertices stay bit-identical.
    """
    codes = [c.code for c in ref.counties]
    parts = [shapely.get_coordinates(ref.county_gcj02[c]) for c in codes]
    allxy = np.concatenate(parts)
    lon, lat = gcj02_to_wgs84(allxy[:, 0], allxy[:, 1])
    converted = np.column_stack([lon, lat])
    out: dict[str, Polygon] = {}
    start = 0
    for code, xy in zip(codes, parts):
        chunk = converted[start : start + len(xy)]
        geom = shapely.transform(ref.county_gcj02[code], lambda _xy, chunk=chunk: chunk)
        start += len(xy)
        if not geom.is_valid:
            raise ValueError(f"county {code} became invalid after conversion")
        out[code] = geom
    return out


def county_seat(county_code: str, polygon: Polygon) -> tuple[float, float]:
    lon, lat = COUNTY_SEATS.get(county_code, (np.nan, np.nan))
    if np.isfinite(lon) and polygon.contains(shapely.Point(lon, lat)):
        return lon, lat
    p = polygon.representative_point()
    return p.x, p.y
