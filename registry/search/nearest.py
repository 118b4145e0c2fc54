"""The nearest address from memory: a grid over the gazetteer's lon/lat columns, answering what
`registry.search.reverse`'s KNN statement answers — the 8 nearest addresses by planar distance in
degrees (PostGIS `<->`), then the nearest of them in metres on the CGCS2000 spheroid — or nothing
when that one lies beyond the radius. The metres are PostGIS's own (`metres`: geography
`ST_Distance` is GeographicLib's inverse problem, which pyproj's `Geod` runs, on the spheroid PostGIS
derives from the SRID, after its degrees → radians → degrees round trip, rounded to 1e-8 m as
PostGIS rounds it): bit for bit on 240,000 pairs, and checked against the server each time the
reverse memory loads (`registry.search.areas`).

Exact, not approximate: squares of cells, doubling, are scanned until every address nearer than the
8th candidate — or nearer than the radius can reach, whichever comes first — is known (see
`Grid.nearest`). Where it cannot be exact it says so (None) and PostGIS answers: a point far from
every address (more rings than `MAX_RINGS`), a store without the overlay this module reads.

The candidates are the store's base rows that are alive (`ids`, `lon`, `lat`, `alive`: a row
superseded by a change is dead) and the rows of its overlay (changed or new addresses, applied by
the gazetteer's listener). So the answer is as fresh as the gazetteer (tens of milliseconds behind
a commit), like search.
"""
from __future__ import annotations

import math
import threading

import numpy as np
from pyproj import Geod

from registry.search.gazetteer import Rec

CELL_DEG = 0.001  # ~100 m: a dense block's cell holds a few hundred doors
MAX_RINGS = 128  # squares of ±13 km at most; beyond that PostGIS's index answers
KNN = 8  # as registry.search.reverse's statement
NONE_WITHIN = "none within the radius"  # pick's answer when the nearest lies beyond it
# CGCS2000 (EPSG:4490) as PostGIS builds it (liblwgeom spheroid_init): the semi-minor axis from
# PROJ's inverse flattening, then the flattening again from the two axes (not 1/rf: one ulp apart).
_A, _RF = 6378137.0, 298.257222101
_B = _A * (1.0 - 1.0 / _RF)
_GEOD = Geod(a=_A, f=(_A - _B) / _A)
_INVMINDIST = 1.0e8  # PostGIS geography_distance rounds to 1e-8 m ("funny business", ticket #2168)
# Metres per degree, a floor for a planar distance in degrees near latitude φ (with margin).
_M_PER_DEG_LAT = 110_500.0


def _degrees(d):
    """Degrees as PostGIS hands them to GeographicLib: to radians and back (M_PI, like C)."""
    return (d * math.pi / 180.0) * 180.0 / math.pi


def metres(lon1, lat1, lon2, lat2) -> np.ndarray:
    """PostGIS's `ST_Distance(p1::geography, p2::geography)` on EPSG:4490 (arrays or floats), to
    the bit: GeographicLib's inverse problem, rounded half away from zero to 1e-8 m (C `round`)."""
    x1, y1, x2, y2 = (_degrees(np.asarray(v, dtype=np.float64)) for v in (lon1, lat1, lon2, lat2))
    _, _, s12 = _GEOD.inv(np.atleast_1d(x1), np.atleast_1d(y1), np.atleast_1d(x2), np.atleast_1d(y2))
    v = np.asarray(s12) * _INVMINDIST
    f = np.floor(v)
    return (f + (v - f >= 0.5)) / _INVMINDIST


def _m_per_deg_floor(lat: float) -> float:
    return _M_PER_DEG_LAT * math.cos(math.radians(min(89.0, abs(lat) + 1.0))) * 0.99


class Grid:
    """The cells of one store's base rows (not their liveness: read at each query)."""

    def __init__(self, lon: np.ndarray, lat: np.ndarray) -> None:
        ok = np.isfinite(lon) & np.isfinite(lat)
        rows = np.flatnonzero(ok)
        self.x0 = float(lon[rows].min()) if len(rows) else 0.0
        self.y0 = float(lat[rows].min()) if len(rows) else 0.0
        ix = ((lon[rows] - self.x0) / CELL_DEG).astype(np.int64)
        iy = ((lat[rows] - self.y0) / CELL_DEG).astype(np.int64)
        self.nx = int(ix.max()) + 1 if len(rows) else 1
        self.ny = int(iy.max()) + 1 if len(rows) else 1
        key = ix * self.ny + iy
        order = np.argsort(key, kind="stable")
        self.rows = rows[order].astype(np.int64)
        self.starts = np.searchsorted(key[order], np.arange(self.nx * self.ny + 1))

    def square(self, cx: int, cy: int, r: int) -> np.ndarray:
        """The rows of the cells within `r` cells of (cx, cy), clipped to the grid: one slice per
        column (a column's cells are contiguous in the sort)."""
        y0, y1 = max(cy - r, 0), min(cy + r, self.ny - 1)
        x0, x1 = max(cx - r, 0), min(cx + r, self.nx - 1)
        if y0 > y1 or x0 > x1:
            return np.empty(0, dtype=np.int64)
        cols = np.arange(x0, x1 + 1) * self.ny
        s, e = self.starts[cols + y0], self.starts[cols + y1 + 1]
        parts = [self.rows[i:j] for i, j in zip(s.tolist(), e.tolist()) if j > i]
        return np.concatenate(parts) if parts else np.empty(0, dtype=np.int64)


class NearestIndex:
    """The grid of the current gazetteer's store, built once per store (off the event loop)."""

    def __init__(self) -> None:
        self._store = None
        self._grid: Grid | None = None
        self._building = threading.Lock()

    def prepare(self, store) -> bool:
        """Build the grid of `store` if needed (slow: call it in a thread); True when ready."""
        if self._store is store and self._grid is not None:
            return True
        with self._building:
            if self._store is not store:
                grid = Grid(np.asarray(store.lon), np.asarray(store.lat))
                self._store, self._grid = store, grid
        return True

    def ready_for(self, store) -> bool:
        return self._store is store and self._grid is not None

    def nearest(self, store, lon: float, lat: float, radius: float) -> int | None:
        """The id PostGIS's KNN statement would answer, 0 when none lies within `radius` metres,
        None where memory cannot be exact."""
        found = self.pick(store, lon, lat, radius)
        if found is None:
            return None
        if found is NONE_WITHIN:
            return 0
        ref, _ = found
        return ref.id if isinstance(ref, Rec) else int(store.ids[ref])

    def pick(self, store, lon: float, lat: float, radius: float):
        """What PostGIS's KNN statement would answer: `(ref, metres)` (ref: the store's base row
        number, or its overlay's Rec; metres: PostGIS's distance to the bit), NONE_WITHIN when the
        nearest lies beyond `radius`, None where memory cannot be exact."""
        if not self.ready_for(store):
            return None
        overlay = getattr(store, "overlay", None)
        if not isinstance(overlay, dict):
            return None  # a store this module does not know how to read whole
        grid = self._grid
        reach = radius / _m_per_deg_floor(lat)  # no address within the radius is farther (degrees)
        cx = math.floor((lon - grid.x0) / CELL_DEG)
        cy = math.floor((lat - grid.y0) / CELL_DEG)
        alive, lons, lats = store.alive, store.lon, store.lat
        extra = [r for r in list(overlay.values())
                 if r is not None and math.isfinite(r.lon) and math.isfinite(r.lat)]
        ex_lon = np.array([r.lon for r in extra], dtype=np.float64)
        ex_lat = np.array([r.lat for r in extra], dtype=np.float64)
        ex_d = np.hypot(ex_lon - lon, ex_lat - lat)
        r = 0
        while True:
            # every base row nearer than `bound` (degrees) lies in the square scanned
            bound = min(lon - (grid.x0 + (cx - r) * CELL_DEG), grid.x0 + (cx + r + 1) * CELL_DEG - lon,
                        lat - (grid.y0 + (cy - r) * CELL_DEG), grid.y0 + (cy + r + 1) * CELL_DEG - lat)
            rows = grid.square(cx, cy, r)
            rows = rows[alive[rows]]
            d = np.concatenate([np.hypot(lons[rows] - lon, lats[rows] - lat), ex_d])
            if len(d) >= KNN and np.partition(d, KNN - 1)[KNN - 1] <= bound:
                break  # the 8 nearest are known exactly
            if bound >= reach:
                break  # every address within the radius is known, and so is its rank among the 8
            if r >= MAX_RINGS:
                return None
            r = max(1, r * 2)
        if len(d) == 0:
            return NONE_WITHIN
        top = np.argsort(d, kind="stable")[:KNN]
        cand_lon = np.concatenate([lons[rows], ex_lon])[top]
        cand_lat = np.concatenate([lats[rows], ex_lat])[top]
        m = metres(cand_lon, cand_lat, np.full(len(top), lon), np.full(len(top), lat))
        best = int(np.argmin(m))
        if m[best] > radius:
            return NONE_WITHIN
        k = int(top[best])
        ref = int(rows[k]) if k < len(rows) else extra[k - len(rows)]
        return ref, float(m[best])
