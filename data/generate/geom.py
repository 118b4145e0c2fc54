"""Small geometry helpers shared by the generator modules.

Distances are handled in a local equirectangular metric frame (metres), which is an affine
map of lon/lat and therefore keeps topology: good enough over the 120 km of Huzhou.
Output coordinates are quantized to 1e-7 degree (the CSV's 7 decimals) *before* any
point-in-polygon test, so what the tests read back is exactly what was checked.
"""
from __future__ import annotations

import math

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

LON0, LAT0 = 119.9, 30.8
KY = 110_900.0  # metres per degree of latitude near 30.8 N
KX = 111_320.0 * math.cos(math.radians(LAT0))  # metres per degree of longitude
QUANTUM = 10_000_000  # 7 decimals


def to_m(lon, lat):
    return (np.asarray(lon) - LON0) * KX, (np.asarray(lat) - LAT0) * KY


def to_deg(x, y):
    return np.asarray(x) / KX + LON0, np.asarray(y) / KY + LAT0


def geom_to_m(geom: BaseGeometry) -> BaseGeometry:
    return shapely.transform(geom, lambda xy: np.column_stack(to_m(xy[:, 0], xy[:, 1])))


def geom_to_deg(geom: BaseGeometry) -> BaseGeometry:
    return shapely.transform(geom, lambda xy: np.column_stack(to_deg(xy[:, 0], xy[:, 1])))


def quantize(lon, lat):
    """Round to 7 decimals. Returns (lon_int, lat_int, lon, lat) where lon == lon_int / 1e7
    is bit-identical to ``float(f"{lon:.7f}")`` (IEEE division is correctly rounded)."""
    xi = np.rint(np.asarray(lon, dtype="float64") * QUANTUM).astype(np.int64)
    yi = np.rint(np.asarray(lat, dtype="float64") * QUANTUM).astype(np.int64)
    return xi, yi, xi / QUANTUM, yi / QUANTUM


def fmt_fixed7(values_int: np.ndarray) -> list[str]:
    """Integers in units of 1e-7 -> '120.1234567' strings (positive values only)."""
    q, r = np.divmod(values_int, QUANTUM)
    return [f"{a}.{b:07d}" for a, b in zip(q.tolist(), r.tolist())]


def random_points_in(poly: BaseGeometry, n: int, rng: np.random.Generator, *, max_rounds: int = 200):
    """n uniform random points strictly inside poly (rejection sampling in its bbox)."""
    if n <= 0:
        return np.empty(0), np.empty(0)
    minx, miny, maxx, maxy = poly.bounds
    shapely.prepare(poly)
    xs: list[np.ndarray] = []
    ys: list[np.ndarray] = []
    got = 0
    for _ in range(max_rounds):
        k = max(16, 2 * (n - got))
        x = rng.uniform(minx, maxx, k)
        y = rng.uniform(miny, maxy, k)
        ok = shapely.contains_xy(poly, x, y)
        xs.append(x[ok])
        ys.append(y[ok])
        got += int(ok.sum())
        if got >= n:
            break
    if got < n:
        p = poly.representative_point()
        xs.append(np.full(n - got, p.x))
        ys.append(np.full(n - got, p.y))
    return np.concatenate(xs)[:n], np.concatenate(ys)[:n]


class Roomy:
    """Random spots of a metric polygon that keep a clearance r from its boundary, for the
    largest r of ``radii_m`` that fits (inner polygons computed once)."""

    def __init__(self, poly_m: BaseGeometry, radii_m):
        self.poly = poly_m
        self.levels = []
        for r in radii_m:
            inner = poly_m.buffer(-r, quad_segs=2) if r > 0 else poly_m
            if not inner.is_empty and inner.area > 0:
                self.levels.append((float(r), inner))
                break

    def sample(self, rng: np.random.Generator, n: int = 1):
        """n spots: arrays x, y and the clearance r (0 when nothing fits)."""
        if not self.levels:
            p = self.poly.representative_point()
            return np.full(n, p.x), np.full(n, p.y), 0.0
        r, inner = self.levels[0]
        x, y = random_points_in(inner, n, rng)
        return x, y, r


def spot_with_room(poly_m: BaseGeometry, radii_m, rng: np.random.Generator):
    """A random point of poly_m (metric) at least r from its boundary, for the largest r in
    radii_m that fits. Returns (x, y, r)."""
    x, y, r = Roomy(poly_m, radii_m).sample(rng)
    return float(x[0]), float(y[0]), r


def best_candidates(pool: np.ndarray, existing: np.ndarray, n: int, rng: np.random.Generator, *,
                    k: int = 10, p: np.ndarray | None = None, used: np.ndarray | None = None) -> np.ndarray:
    """Mitchell's best-candidate sampling: n distinct indices into pool (m x 2), each the
    candidate (of k drawn, optionally with probabilities p) farthest from everything chosen
    so far. ``used`` (bool, len m) marks pool entries that may not be chosen; it is updated."""
    m = len(pool)
    used = np.zeros(m, dtype=bool) if used is None else used
    weights = np.ones(m) if p is None else np.asarray(p, dtype="float64").copy()
    weights = weights + 1e-300
    chosen: list[int] = []
    cur = existing.reshape(-1, 2) if len(existing) else np.empty((0, 2))
    for _ in range(n):
        avail = np.where(used, 0.0, weights)
        total = avail.sum()
        if total <= 0:
            raise ValueError("best_candidates: pool exhausted")
        cand = rng.choice(m, size=k, p=avail / total)
        if len(cur) == 0:
            best = int(cand[0])
        else:
            d2 = ((pool[cand, None, :] - cur[None, :, :]) ** 2).sum(axis=2).min(axis=1)
            best = int(cand[int(np.argmax(d2))])
        used[best] = True
        chosen.append(best)
        cur = np.vstack([cur, pool[best]])
    return np.asarray(chosen, dtype=np.int64)


def allocate(total: int, weights: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Split total into integer counts proportional to weights (multinomial, deterministic)."""
    w = np.asarray(weights, dtype="float64")
    if total <= 0 or len(w) == 0:
        return np.zeros(len(w), dtype=np.int64)
    return rng.multinomial(total, w / w.sum()).astype(np.int64)


def smooth_noise(n: int, rng: np.random.Generator, sigma: float, smooth: int = 3) -> np.ndarray:
    """A smooth 1-D random perturbation with zero ends (for gently curved roads and rivers)."""
    raw = rng.normal(0.0, sigma, n + 2 * smooth)
    kernel = np.ones(2 * smooth + 1) / (2 * smooth + 1)
    out = np.convolve(raw, kernel, mode="valid")[:n]
    if n > 1:
        out = out - np.linspace(out[0], out[-1], n)
    return out
