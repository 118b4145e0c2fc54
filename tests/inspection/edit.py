"""Editing a field package the way a field team's GIS does: with pyogrio/shapely (GDAL), never
with the project's own writer."""
from __future__ import annotations

import math
from pathlib import Path

import pyogrio
import shapely
from pyproj import Geod

GEOD = Geod(ellps="GRS80")  # CGCS2000's ellipsoid


def read(path: Path, layer: str):
    return pyogrio.read_dataframe(path, layer=layer)


def write(path: Path, layer: str, frame) -> None:
    pyogrio.write_dataframe(frame, path, layer=layer, driver="GPKG", layer_options={"OVERWRITE": "YES"})


def offset(lon: float, lat: float, east_m: float, north_m: float) -> tuple[float, float]:
    dlat = north_m / 111_132.0
    dlon = east_m / (111_320.0 * math.cos(math.radians(lat)))
    return lon + dlon, lat + dlat


def move_point(geom, east_m: float, north_m: float = 0.0):
    x, y = offset(geom.x, geom.y, east_m, north_m)
    return shapely.Point(x, y)


def reshape_middle(geom, north_m: float):
    """Shift every vertex of a one-part line but its two ends by `north_m`: the ends still meet
    the neighbouring lines, the middle moves."""
    line = geom.geoms[0] if geom.geom_type == "MultiLineString" else geom
    coords = list(line.coords)
    moved = [coords[0]] + [offset(x, y, 0.0, north_m) for x, y in coords[1:-1]] + [coords[-1]]
    return shapely.MultiLineString([moved])


def area_between(old, new) -> float:
    """m² enclosed between two lines with the same ends (geodesic)."""
    faces = shapely.polygonize([shapely.union(old, new)])
    return sum(abs(GEOD.geometry_area_perimeter(f)[0]) for f in faces.geoms)


def faces_between(old, new):
    return list(shapely.polygonize([shapely.union(old, new)]).geoms)
