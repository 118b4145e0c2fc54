"""Township and village polygons that tile the real counties.

1. Township regions on a ~240 m grid: a capacity-constrained power diagram (targets from the
   number of communities and villages; 街道 small and clustered round the county seat).
2. Village seeds inside their township's region: communities clustered near the township
   centre, villages spread out (best-candidate sampling) -> communities get small cells.
3. One Voronoi diagram per county; its edges (overshooting the county by 1e-7 deg) and all
   county boundaries are noded together city-wide and polygonized. Each face goes to the
   nearest seed of its county (= its Voronoi cell). Every edge therefore exists exactly
   once: neighbours share identical vertices, and townships/counties are unions of faces.
4. Seeds of villages cut off from their township's main piece are moved and the diagram is
   redone; detached bits of a village are merged into the neighbour they share most edge with.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
import shapely
from shapely.geometry import MultiPoint, Polygon
from shapely.geometry.base import BaseGeometry
from shapely.ops import nearest_points

from data.generate.geom import best_candidates, random_points_in, to_deg, to_m
from data.generate.reference import Reference, county_seat

log = logging.getLogger(__name__)

GRID_DX, GRID_DY = 0.0025, 0.00225  # ~240 m x 250 m
OVERSHOOT = 1e-7
MAX_REPAIR_ROUNDS = 12


@dataclass
class Divisions:
    county_geoms: dict[str, Polygon]  # county code -> polygon (CGCS2000)
    village_geoms: list[Polygon]  # aligned with ref.villages
    township_geoms: list[BaseGeometry]  # aligned with ref.townships
    township_centers: np.ndarray  # (72, 2) lon/lat: the township's urban centre
    seats: dict[str, tuple[float, float]]
    disconnected_townships: list[str]


def _grid(county: Polygon, rng: np.random.Generator):
    minx, miny, maxx, maxy = county.bounds
    xs = np.arange(minx + GRID_DX / 2, maxx, GRID_DX)
    ys = np.arange(miny + GRID_DY / 2, maxy, GRID_DY)
    gx, gy = np.meshgrid(xs, ys)
    gx, gy = gx.ravel(), gy.ravel()
    inside = shapely.contains_xy(county, gx, gy)
    gx, gy = gx[inside], gy[inside]
    jx = gx + rng.uniform(-0.45, 0.45, len(gx)) * GRID_DX
    jy = gy + rng.uniform(-0.45, 0.45, len(gy)) * GRID_DY
    ok = shapely.contains_xy(county, jx, jy)
    return np.where(ok, jx, gx), np.where(ok, jy, gy)


def _power_partition(pts: np.ndarray, targets: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Labels of a capacity-constrained power diagram (Lloyd steps + weight updates) whose
    cells hold about ``targets`` points each."""
    n_t = len(targets)
    if n_t == 1:
        return np.zeros(len(pts), dtype=np.int64)
    pts = pts - pts.mean(axis=0)
    seeds = pts[best_candidates(pts, np.empty((0, 2)), n_t, rng, k=40)].copy()
    cell = max(float(np.ptp(pts[:, 0]) * np.ptp(pts[:, 1])) / max(len(pts), 1), 1.0)
    w = np.zeros(n_t)
    labels = np.zeros(len(pts), dtype=np.int64)
    for it in range(80):
        score = (seeds**2).sum(axis=1) - w - 2.0 * (pts @ seeds.T)  # |p-s|^2 - w - |p|^2
        labels = np.argmin(score, axis=1)
        counts = np.bincount(labels, minlength=n_t)
        if it < 30:
            has = counts > 0
            sx = np.bincount(labels, weights=pts[:, 0], minlength=n_t)
            sy = np.bincount(labels, weights=pts[:, 1], minlength=n_t)
            seeds[has, 0] = sx[has] / counts[has]
            seeds[has, 1] = sy[has] / counts[has]
        w += 0.6 * (targets - counts) * cell / math.pi
    return labels


def _township_regions(pool_m, targets, is_sub, seat_m, rng):
    """Township label per grid point: the 街道 share a compact, slightly irregular urban
    core round the county seat; the towns partition the rest."""
    sub = np.flatnonzero(is_sub)
    towns = np.flatnonzero(~is_sub)
    labels = np.zeros(len(pool_m), dtype=np.int64)
    n_core = int(round(targets[sub].sum())) if len(sub) else 0
    rel = pool_m - seat_m
    angle = np.arctan2(rel[:, 1], rel[:, 0])
    harmonics = rng.normal(0.0, 0.12, 3)
    phases = rng.uniform(0, 2 * math.pi, 3)
    wobble = 1.0 + sum(a * np.cos((k + 2) * angle + ph) for k, (a, ph) in enumerate(zip(harmonics, phases)))
    order = np.argsort(np.hypot(rel[:, 0], rel[:, 1]) * wobble, kind="stable")
    core, rest = order[:n_core], order[n_core:]
    if len(sub):
        labels[core] = sub[_power_partition(pool_m[core], targets[sub], rng)]
    if len(towns):
        labels[rest] = towns[_power_partition(pool_m[rest], targets[towns] * len(rest) / targets[towns].sum(), rng)]
    return labels


def _village_seeds(ref: Reference, county_code: str, county: Polygon, rng: np.random.Generator):
    """Seeds (lon/lat) for the county's villages, in ref.villages order, and township centres."""
    gx, gy = _grid(county, rng)
    pool_m = np.column_stack(to_m(gx, gy))
    towns = ref.townships_of(county_code)
    seat = county_seat(county_code, county)
    seat_m = np.array(to_m(*seat), dtype=float)
    weights = []
    for t in towns:
        vs = ref.villages_of(t.nbs_code)
        w = sum(1.0 if v.is_community else 4.0 for v in vs)
        weights.append(w * (0.5 if t.is_subdistrict else 1.0))
    weights = np.asarray(weights)
    targets = weights / weights.sum() * len(pool_m)
    is_sub = np.array([t.is_subdistrict for t in towns])
    labels = _township_regions(pool_m, targets, is_sub, seat_m, rng)
    seeds: dict[str, np.ndarray] = {}
    centers: dict[str, np.ndarray] = {}
    placed = np.empty((0, 2))
    for ti, t in enumerate(towns):
        vs = ref.villages_of(t.nbs_code)
        region = np.flatnonzero(labels == ti)
        if len(region) < 2 * len(vs):
            anchor = pool_m[region].mean(axis=0) if len(region) else pool_m[int(np.argmin(((pool_m - seat_m) ** 2).sum(1)))]
            near = np.argsort(((pool_m - anchor) ** 2).sum(axis=1), kind="stable")[: 3 * len(vs)]
            region = np.union1d(region, near)
        pts = pool_m[region]
        used = np.zeros(len(pts), dtype=bool)
        centre = pts.mean(axis=0)
        centre = pts[int(np.argmin(((pts - centre) ** 2).sum(axis=1)))]
        comm = [v for v in vs if v.is_community]
        rural = [v for v in vs if not v.is_community]
        out = {}
        if rural:
            idx = best_candidates(pts, placed, len(rural), rng, k=25, used=used)
            for v, i in zip(rural, idx):
                out[v.code] = pts[i]
            placed = np.vstack([placed, pts[idx]])
        if comm:
            # an urban core: about 0.5 km2 per community in 街道, 0.7 km2 in towns
            core = math.sqrt(len(comm) * (0.5e6 if t.is_subdistrict else 0.7e6) / math.pi)
            d2 = ((pts - centre) ** 2).sum(axis=1)
            p = np.exp(-d2 / (2 * core * core))
            idx = best_candidates(pts, np.empty((0, 2)), len(comm), rng, k=6, p=p, used=used)
            for v, i in zip(comm, idx):
                out[v.code] = pts[i]
            placed = np.vstack([placed, pts[idx]])
            centre = pts[idx[0]]
        for v in vs:
            seeds[v.code] = np.array(to_deg(*out[v.code]))
        centers[t.nbs_code] = np.array(to_deg(*centre))
    return seeds, centers


def _faces(county_geoms: dict[str, Polygon], seeds_by_county: dict[str, np.ndarray]):
    """Polygonize county boundaries + per-county Voronoi edges, noded city-wide."""
    lines = [shapely.boundary(g) for g in county_geoms.values()]
    for code, g in county_geoms.items():
        pts = seeds_by_county[code]
        env = g.envelope.buffer(0.05)
        edges = shapely.voronoi_polygons(MultiPoint(pts), extend_to=env, only_edges=True)
        lines.append(shapely.intersection(edges, g.buffer(OVERSHOOT, quad_segs=2)))
    noded = shapely.union_all(lines)
    faces = list(shapely.polygonize(list(shapely.get_parts(noded))).geoms)
    return faces


def _assign_faces(faces, county_codes, county_geoms, seeds_by_county, offset_by_county):
    reps = shapely.point_on_surface(np.array(faces, dtype=object))
    rx, ry = shapely.get_x(reps), shapely.get_y(reps)
    owner = np.full(len(faces), -1, dtype=np.int64)
    for code in county_codes:
        inside = shapely.contains_xy(county_geoms[code], rx, ry)
        idx = np.flatnonzero(inside & (owner < 0))
        if not len(idx):
            continue
        s = seeds_by_county[code]
        d2 = (rx[idx, None] - s[None, :, 0]) ** 2 + (ry[idx, None] - s[None, :, 1]) ** 2
        owner[idx] = offset_by_county[code] + np.argmin(d2, axis=1)
    if (owner < 0).any():
        raise RuntimeError(f"{int((owner < 0).sum())} faces outside every county")
    return owner


def _merge_detached(parts_by_village: list[list[Polygon]], village_township: np.ndarray, village_county: np.ndarray):
    """Keep each village's largest piece; give the other pieces to the neighbour sharing the
    longest edge (same county only, same township preferred)."""
    polys: list[BaseGeometry] = [shapely.union_all(p) if len(p) > 1 else p[0] for p in parts_by_village]
    stray: list[tuple[int, Polygon]] = []
    for i, g in enumerate(polys):
        if g.geom_type == "MultiPolygon":
            pieces = sorted(g.geoms, key=lambda q: -q.area)
            polys[i] = pieces[0]
            stray.extend((i, q) for q in pieces[1:])
    tree = shapely.STRtree([g.envelope.buffer(1e-3) for g in polys]) if stray else None
    for owner, piece in stray:
        best, best_key = -1, (-1, -1.0)
        for j in sorted(tree.query(piece).tolist()):
            if j == owner or village_county[j] != village_county[owner]:
                continue
            shared = piece.boundary.intersection(polys[j].boundary).length
            if shared <= 0:
                continue
            key = (int(village_township[j] == village_township[owner]), shared)
            if key > best_key:
                best, best_key = j, key
        if best < 0:
            polys[owner] = shapely.union_all([polys[owner], piece])
            continue
        polys[best] = shapely.union_all([polys[best], piece])
    return polys


def build_divisions(ref: Reference, county_geoms: dict[str, Polygon], rng: np.random.Generator) -> Divisions:
    codes = [c.code for c in ref.counties]
    seeds_by_county: dict[str, np.ndarray] = {}
    centers: dict[str, np.ndarray] = {}
    village_order: dict[str, list[int]] = {c: [] for c in codes}
    for i, v in enumerate(ref.villages):
        village_order[v.county_code].append(i)
    for code in codes:
        s, cen = _village_seeds(ref, code, county_geoms[code], rng)
        seeds_by_county[code] = np.array([s[ref.villages[i].code] for i in village_order[code]])
        centers.update(cen)
    offset, start = {}, 0
    global_index = []
    for code in codes:
        offset[code] = start
        start += len(village_order[code])
        global_index.extend(village_order[code])
    global_index = np.asarray(global_index)  # position in county-ordered list -> ref index
    town_pos = {t.nbs_code: i for i, t in enumerate(ref.townships)}
    village_township = np.array([town_pos[v.township_code] for v in ref.villages])
    village_county = np.array([int(v.county_code) for v in ref.villages])
    disconnected: list[str] = []
    for round_ in range(MAX_REPAIR_ROUNDS + 1):
        faces = _faces(county_geoms, seeds_by_county)
        owner = global_index[_assign_faces(faces, codes, county_geoms, seeds_by_county, offset)]
        parts: list[list[Polygon]] = [[] for _ in ref.villages]
        for f, o in zip(faces, owner.tolist()):
            parts[o].append(f)
        if any(not p for p in parts):
            raise RuntimeError("a village got no face")
        villages = _merge_detached(parts, village_township, village_county)
        towns = [shapely.union_all([villages[i] for i in np.flatnonzero(village_township == t)])
                 for t in range(len(ref.townships))]
        disconnected = [ref.townships[t].nbs_code for t, g in enumerate(towns) if g.geom_type != "Polygon"]
        log.debug("tiling round %d: %d faces, %d disconnected townships", round_, len(faces), len(disconnected))
        if not disconnected or round_ == MAX_REPAIR_ROUNDS:
            break
        for tcode in disconnected:
            t = town_pos[tcode]
            pieces = sorted(towns[t].geoms, key=lambda q: -q.area)
            main = pieces[0]
            target = np.array(main.centroid.coords[0])
            for vi in np.flatnonzero(village_township == t).tolist():
                vp = villages[vi].representative_point()
                if main.contains(vp):
                    continue
                code = ref.villages[vi].county_code
                k = village_order[code].index(vi)
                s = seeds_by_county[code][k]
                near = np.array(nearest_points(main, shapely.Point(*s))[0].coords[0])
                new = near + rng.uniform(0.25, 0.45) * (target - near)
                if not main.contains(shapely.Point(*new)):
                    x, y = random_points_in(main, 1, rng)
                    new = np.array([x[0], y[0]])
                seeds_by_county[code][k] = new
    if disconnected:
        log.warning("townships left in several pieces: %s", ", ".join(disconnected))
    center_arr = np.array([centers[t.nbs_code] for t in ref.townships])
    seats = {c: county_seat(c, county_geoms[c]) for c in codes}
    return Divisions(county_geoms, villages, towns, center_arr, seats, disconnected)
