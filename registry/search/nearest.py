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
# A local plane (the spheroid's radii at the query's latitude) is within 0.5 % of the geodesic up to
# 50 km around Huzhou (the error grows like distance × tan(latitude) / R): candidates farther than
# that by it are not the nearest; beyond APPROX_MAX_M every candidate is measured.
APPROX_SLACK = 0.02
APPROX_MAX_M = 50_000.0
_INVMINDIST = 1.0e8  # PostGIS geography_distance rounds to 1e-8 m ("funny business", ticket #2168)
# Metres per degree, a floor for a planar distance in degrees near latitude φ (with margin).
_M_PER_DEG_LAT = 110_500.0


def _degrees(d: float) -> float:
    """Degrees as PostGIS hands them to GeographicLib: to radians and back (M_PI, like C)."""
    return (d * math.pi / 180.0) * 180.0 / math.pi


def metre(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    """PostGIS's `ST_Distance(p1::geography, p2::geography)` on EPSG:4490, to the bit: GeographicLib's
    inverse problem, rounded half away from zero to 1e-8 m (C `round`)."""
    _, _, s12 = _GEOD.inv(_degrees(lon1), _degrees(lat1), _degrees(lon2), _degrees(lat2))
    v = s12 * _INVMINDIST
    f = math.floor(v)
    return (f + (1.0 if v - f >= 0.5 else 0.0)) / _INVMINDIST


def metres(lon1, lat1, lon2, lat2) -> np.ndarray:
    """`metre` over sequences (one GeographicLib call per pair, as PostGIS makes)."""
    return np.array([metre(float(a), float(b), float(c), float(d)) for a, b, c, d in zip(lon1, lat1, lon2, lat2)],
                    dtype=np.float64)


def _nearest_in_metres(xs: list[float], ys: list[float], lon: float, lat: float) -> tuple[int, float]:
    """The candidate nearest in PostGIS's metres (the first of equals) and its distance. GeographicLib
    runs only for the candidates a local plane's distance cannot rule out (within APPROX_SLACK of the
    nearest by it), once per distinct point (flats share one)."""
    ky = _M_PER_DEG_LAT_AT(lat)
    kx = ky * math.cos(math.radians(lat))
    approx = [math.hypot((x - lon) * kx, (y - lat) * ky) for x, y in zip(xs, ys)]
    floor = min(approx)
    exact: dict[tuple[float, float], float] = {}
    best, meters = -1, math.inf
    for i, (x, y) in enumerate(zip(xs, ys)):
        if floor > APPROX_MAX_M or approx[i] * (1 - APPROX_SLACK) <= floor * (1 + APPROX_SLACK):
            m = exact.get((x, y))
            if m is None:
                m = exact[(x, y)] = metre(x, y, lon, lat)  # the address first, as the statement
            if m < meters:
                best, meters = i, m
    return best, meters


def _M_PER_DEG_LAT_AT(lat: float) -> float:  # noqa: N802 - a scale, named like the others
    """Metres per degree of latitude on the spheroid at `lat` (the meridian's radius of curvature)."""
    e2 = (_A * _A - _B * _B) / (_A * _A)
    s = math.sin(math.radians(lat))
    return math.radians(1.0) * _A * (1 - e2) / (1 - e2 * s * s) ** 1.5


def _m_per_deg_floor(lat: float) -> float:
    return _M_PER_DEG_LAT * math.cos(math.radians(min(89.0, abs(lat) + 1.0))) * 0.99


class Grid:
    """The cells of one store's base rows (not their liveness: read at each query), with the rows'
    coordinates copied in cell order (a square's doors are then a few contiguous slices, not a
    gather from 1.6M mapped rows: ~37 MB per process at the full city, with the cells' starts)."""

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
        self.rows = rows[order].astype(np.int32 if len(lon) < 2**31 else np.int64)
        self.lon = np.ascontiguousarray(lon[self.rows])
        self.lat = np.ascontiguousarray(lat[self.rows])
        starts = np.searchsorted(key[order], np.arange(self.nx * self.ny + 1))
        self.starts = starts.astype(np.int32) if len(rows) < 2**31 else starts

    def square(self, cx: int, cy: int, r: int):
        """The positions (in cell order) of the cells within `r` cells of (cx, cy), clipped to the
        grid: a slice when it is one column's run, else an array (a column's cells are contiguous)."""
        y0, y1 = max(cy - r, 0), min(cy + r, self.ny - 1)
        x0, x1 = max(cx - r, 0), min(cx + r, self.nx - 1)
        if y0 > y1 or x0 > x1:
            return slice(0, 0)
        if x0 == x1:
            return slice(int(self.starts[x0 * self.ny + y0]), int(self.starts[x0 * self.ny + y1 + 1]))
        cols = np.arange(x0, x1 + 1) * self.ny
        s, e = self.starts[cols + y0], self.starts[cols + y1 + 1]
        parts = [np.arange(i, j) for i, j in zip(s.tolist(), e.tolist()) if j > i]
        return np.concatenate(parts) if parts else slice(0, 0)


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
                grid = Grid(np.asarray(store.lon), np.asarray(store.lat))  # plain views of mapped files
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
        alive, dead = store.alive, store.dead  # dead == 0: no base row superseded, no filter
        extra = [r for r in list(overlay.values())
                 if r is not None and math.isfinite(r.lon) and math.isfinite(r.lat)]
        if extra:
            ex_lon = np.array([r.lon for r in extra], dtype=np.float64)
            ex_lat = np.array([r.lat for r in extra], dtype=np.float64)
            ex_d = np.hypot(ex_lon - lon, ex_lat - lat)
        r = 0
        while True:
            # every base row nearer than `bound` (degrees) lies in the square scanned
            bound = min(lon - (grid.x0 + (cx - r) * CELL_DEG), grid.x0 + (cx + r + 1) * CELL_DEG - lon,
                        lat - (grid.y0 + (cy - r) * CELL_DEG), grid.y0 + (cy + r + 1) * CELL_DEG - lat)
            pos = grid.square(cx, cy, r)
            if dead:
                pos = np.arange(pos.start, pos.stop) if isinstance(pos, slice) else pos
                pos = pos[alive[grid.rows[pos]]]
            glon, glat = grid.lon[pos], grid.lat[pos]
            d = np.hypot(glon - lon, glat - lat)
            if extra:
                d = np.concatenate([d, ex_d])
            order = np.argsort(d, kind="stable")
            if len(d) >= KNN and d[order[KNN - 1]] <= bound:
                break  # the 8 nearest are known exactly
            if bound >= reach:
                break  # every address within the radius is known, and so is its rank among the 8
            if r >= MAX_RINGS:
                return None
            r = max(1, r * 2)
        if len(d) == 0:
            return NONE_WITHIN
        top = order[:KNN].tolist()
        if extra:
            glon, glat = np.concatenate([glon, ex_lon]), np.concatenate([glat, ex_lat])
        cand_lon, cand_lat = glon[top].tolist(), glat[top].tolist()
        best, meters = _nearest_in_metres(cand_lon, cand_lat, lon, lat)
        if meters > radius:
            return NONE_WITHIN
        k = top[best]
        n_base = len(d) - len(extra)
        if k >= n_base:
            return extra[k - n_base], meters
        row = grid.rows[pos][k] if not isinstance(pos, slice) else grid.rows[pos.start + k]
        return int(row), meters
