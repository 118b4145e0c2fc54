"""Synthetic boundary markers (界桩) for the generated city, deterministic from the seed.

    from data.generate.markers import derive_markers
    derive_markers(conn, seed=1)          # after the boundary lines are derived

Where markers go (the numbering itself is registry.markers.marker_number):
- every line that carries markers: all county lines (including the city's outer edge) and the
  township lines inside a county (a township line lying on a county line has none: the county
  line's markers serve both levels);
- a triple (C/D/E) at every point where three divisions of a level meet (the outside of the
  city counts as one), numbered on the principal line (registry.markers); at township level
  only where one of the meeting lines lies inside a county (else it is a county triple point);
- a same-number pair (A/B, one on each side, A on the smaller code's side) where a river crosses
  the line, a single marker (Q) where a road crosses it;
- between them single markers every 2–5 km on county lines, 3–6 km on township lines (one in
  eight a pair, as where the line follows a ditch or a field path), at least one per line.
Attributes: material, installation date (most from the first survey 1998–2001, some reset in
later rounds), condition (mostly intact), a synthetic elevation (plain in the east, the
Tianmu hills in the west), two photo references (`photos/<number>_1.jpg` close-up, `_2` the
view along the line: the MZ/T 149 package layout), and 3–4 reference objects (方位物) whose
bearing and distance are computed from their stored points on the GRS80 ellipsoid (CGCS2000),
so the numbers and the geometry agree exactly.

Each line draws from its own random stream (seed, line code): one line's change does not
reshuffle the others. Same seed, same lines -> the same markers.
"""
from __future__ import annotations

import logging
import math
import zlib
from datetime import date, timedelta

import numpy as np
import shapely
from pyproj import Geod
from shapely.geometry import LineString, Point
from shapely.geometry.base import BaseGeometry

from data.generate.geom import geom_to_m, to_deg
from registry.markers import PlannedMarker, ReferenceObject, lines_with_markers, planning_inputs, store_markers

log = logging.getLogger(__name__)

_GEOD = Geod(ellps="GRS80")
_STREAM = 7  # beside the generator's other streams (data/generate/__init__.py)
SPACING_KM = {"county": (2.0, 5.0), "township": (3.0, 6.0)}
TRIPLE_OFFSET_M = 20.0  # a triple's markers stand this far along their lines from the meeting point
MIN_GAP_M = 400.0
_CONDITIONS = (("intact", 0.86), ("worn", 0.06), ("damaged", 0.04), ("displaced", 0.02), ("missing", 0.01),
               ("new", 0.01))
_REFS_PLAIN = (("电线杆", "pole"), ("水泥桥", "bridge"), ("房屋墙角", "building"), ("大樟树", "tree"),
               ("机耕路转角", "road"), ("水渠闸门", "water"), ("路口", "road"), ("鱼塘角", "water"),
               ("变压器", "pole"), ("桑树地边角", "field"))
_REFS_HILL = (("山脊巨石", "rock"), ("大松树", "tree"), ("山顶三角点", "survey"), ("林道岔口", "road"),
              ("毛竹林边", "tree"), ("山塘坝顶", "water"), ("护林房", "building"))


def _quant(v: float) -> float:
    return round(float(v), 7)


def _elevation(lon: float, lat: float, rng: np.random.Generator) -> float:
    """Synthetic terrain: the plain at 2–6 m in the east, rising into the hills west of ~119.9°E."""
    west = max(0.0, (119.9 - lon) / 0.45)
    hills = 650.0 * west ** 1.4 * (0.55 + 0.45 * math.sin(lat * 41.0 + lon * 29.0) ** 2)
    return round(3.0 + hills + float(rng.uniform(-1.0, 3.0)), 1)


def _rng(seed: int, key: str) -> np.random.Generator:
    return np.random.default_rng([int(seed), _STREAM, zlib.crc32(key.encode())])


def _point_at(comp_m: LineString, pos: float) -> Point:
    return comp_m.interpolate(min(max(pos, 0.0), comp_m.length))


def _normal(comp_m: LineString, pos: float) -> tuple[float, float]:
    a = _point_at(comp_m, pos - 5.0)
    b = _point_at(comp_m, pos + 5.0)
    dx, dy = b.x - a.x, b.y - a.y
    n = math.hypot(dx, dy) or 1.0
    return -dy / n, dx / n


def _deg(x: float, y: float) -> tuple[float, float]:
    lon, lat = to_deg(x, y)
    return _quant(lon), _quant(lat)


def _references(lon: float, lat: float, elevation: float, rng: np.random.Generator) -> list[ReferenceObject]:
    pool = _REFS_HILL if elevation > 80 else _REFS_PLAIN
    n = 3 if rng.random() < 0.7 else 4
    picks = rng.choice(len(pool), size=n, replace=False)
    start = float(rng.uniform(0, 360))
    out = []
    for seq, k in enumerate(picks, start=1):
        az = (start + (seq - 1) * 360.0 / n + float(rng.uniform(-25, 25))) % 360.0
        dist = float(rng.uniform(15.0, 250.0))
        rlon, rlat, _ = _GEOD.fwd(lon, lat, az, dist)
        rlon, rlat = _quant(rlon), _quant(rlat)
        # bearing and distance from the stored (rounded) points, so they agree with the geometry
        fwd, _, d = _GEOD.inv(lon, lat, rlon, rlat)
        name, kind = pool[int(k)]
        out.append(ReferenceObject(seq, name, kind, round(fwd % 360.0, 1) % 360.0, round(d, 2), rlon, rlat))
    return out


def _attributes(line: dict, lon: float, lat: float, rng: np.random.Generator) -> dict:
    elevation = _elevation(lon, lat, rng)
    r = rng.random()
    cum = 0.0
    condition = "intact"
    for c, w in _CONDITIONS:
        cum += w
        if r < cum:
            condition = c
            break
    if condition == "new":
        installed = date(2019, 3, 1) + timedelta(days=int(rng.integers(0, 900)))
    elif rng.random() < 0.15:  # reset during the second or third joint inspection
        installed = date(2008, 4, 1) + timedelta(days=int(rng.integers(0, 4000)))
    else:
        installed = date(1998, 3, 1) + timedelta(days=int(rng.integers(0, 1400)))
    if line["level"] == "county":
        material = "花岗岩" if rng.random() < 0.8 else "钢筋混凝土"
    else:
        material = "钢筋混凝土" if rng.random() < 0.85 else "花岗岩"
    return {"elevation_m": elevation, "condition": condition, "installed_on": installed, "material": material,
            "references": _references(lon, lat, elevation, rng)}


def _marker(line: dict, stand: dict, serial: int, letter: str, lon: float, lat: float,
            rng: np.random.Generator) -> PlannedMarker:
    attrs = _attributes(line, lon, lat, rng)
    m = PlannedMarker(line_id=line["id"], line_code=line["code"], serial=serial, letter=letter, lon=lon, lat=lat,
                      left_division_id=stand["left_division_id"], right_division_id=stand["right_division_id"],
                      photos=[], **attrs)
    m.photos = [f"photos/{m.number}_1.jpg", f"photos/{m.number}_2.jpg"]
    return m


def _pair_offsets(line: dict, comp_m: LineString, pos: float, polygons_m: dict, d: float):
    """The A and B points: either side of the line, A in the line's left (smaller-code) division."""
    p = _point_at(comp_m, pos)
    nx, ny = _normal(comp_m, pos)
    plus, minus = (p.x + nx * d, p.y + ny * d), (p.x - nx * d, p.y - ny * d)
    left = polygons_m.get(line["left_division_id"])
    if left is not None and not left.contains(Point(plus)) and left.contains(Point(minus)):
        plus, minus = minus, plus
    return plus, minus


def _ends(lines: list[dict]) -> dict[tuple, list[tuple[dict, int, int]]]:
    """Meeting points: rounded end point -> [(line, component index, 0 start | 1 end)]."""
    out: dict[tuple, list] = {}
    for line in lines:
        for ci, comp in enumerate(line["components_deg"]):
            for which, (x, y) in ((0, comp.coords[0]), (1, comp.coords[-1])):
                if comp.is_closed:
                    continue
                out.setdefault((round(x, 7), round(y, 7)), []).append((line, ci, which))
    return out


def _triples(lines: list[dict], level: str) -> dict[int, list]:
    """Principal line id -> [(component, position, [(standing line, component, which)...])]."""
    out: dict[int, list] = {}
    for _key, ends in sorted(_ends(lines).items()):
        divisions = {d for line, _, _ in ends for d in (line["left_division_id"], line["right_division_id"] or 0)}
        if len(divisions) < 3:
            continue
        by_code = sorted({id(e[0]): e for e in ends}.values(), key=lambda e: e[0]["code"])
        carrying = [e for e in by_code if e[0]["carries"]]
        if not carrying:
            continue  # a county triple point seen from the township level
        principal = carrying[0]
        stands = [principal] + [e for e in by_code if e is not principal][:2]
        if len(stands) < 3:
            continue
        out.setdefault(principal[0]["id"], []).append(stands)
    return out


def plan_markers(inputs: dict, seed: int) -> list[PlannedMarker]:
    """The synthetic markers of every line that carries markers (see the module doc)."""
    polygons_m = {i: geom_to_m(shapely.from_wkb(w)) for i, w in inputs["polygons"].items()}
    for g in polygons_m.values():
        shapely.prepare(g)
    crossings = {cat: [geom_to_m(shapely.from_wkb(w)) for w in ws] for cat, ws in inputs["crossings"].items()}
    crossing_tree = {cat: shapely.STRtree(gs) if gs else None for cat, gs in crossings.items()}
    lines = []
    for r in inputs["lines"]:
        g: BaseGeometry = shapely.from_wkb(r["wkb"])
        comps = list(getattr(g, "geoms", [g]))
        lines.append({**r, "components_deg": comps, "components_m": [geom_to_m(c) for c in comps],
                      "carries": r["level"] == "county" or r["county_line_id"] is None})
    planned: list[PlannedMarker] = []
    for level in ("county", "township"):
        at_level = [ln for ln in lines if ln["level"] == level]
        triples = _triples(at_level, level)
        for line in at_level:
            if line["carries"]:
                planned.extend(_plan_line(line, triples.get(line["id"], []), polygons_m, crossings,
                                          crossing_tree, seed))
    log.info("planned %s markers on %s lines", len(planned), len({m.line_id for m in planned}))
    return planned


def _plan_line(line: dict, triples: list, polygons_m: dict, crossings: dict, trees: dict, seed: int
               ) -> list[PlannedMarker]:
    rng = _rng(seed, line["code"])
    lo, hi = SPACING_KM[line["level"]]
    # (component, position along it, kind, payload): kinds triple / pair / single
    spots: list[tuple[int, float, str, object]] = []
    for stands in triples:
        _, ci, which = stands[0]
        comp = line["components_m"][ci]
        spots.append((ci, TRIPLE_OFFSET_M if which == 0 else comp.length - TRIPLE_OFFSET_M, "triple", stands))
    for ci, comp in enumerate(line["components_m"]):
        taken = [p for c, p, _, _ in spots if c == ci]

        def free(pos: float) -> bool:
            return all(abs(pos - t) >= MIN_GAP_M for t in taken) and 0 < pos < comp.length

        for cat, kind in (("river", "pair"), ("road", "single")):
            tree = trees.get(cat)
            if tree is None:
                continue
            for k in sorted(tree.query(comp, predicate="intersects").tolist()):
                hit = comp.intersection(crossings[cat][k])
                for pt in sorted(getattr(hit, "geoms", [hit]), key=lambda q: comp.project(q.centroid)):
                    if pt.is_empty:
                        continue
                    pos = comp.project(pt.centroid)
                    if free(pos):
                        spots.append((ci, pos, kind, cat))
                        taken.append(pos)
        pos = float(rng.uniform(0.3, 1.0)) * lo * 1000.0
        while pos < comp.length - MIN_GAP_M:
            if free(pos):
                spots.append((ci, pos, "pair" if rng.random() < 0.125 else "single", None))
                taken.append(pos)
            pos += float(rng.uniform(lo, hi)) * 1000.0
    if not spots:  # a short line still gets its marker
        ci = max(range(len(line["components_m"])), key=lambda i: line["components_m"][i].length)
        spots.append((ci, line["components_m"][ci].length / 2, "single", None))
    spots.sort(key=lambda s: (s[0], s[1]))
    out: list[PlannedMarker] = []
    for serial, (ci, pos, kind, payload) in enumerate(spots, start=1):
        comp = line["components_m"][ci]
        if kind == "single":
            p = _point_at(comp, pos)
            out.append(_marker(line, line, serial, "Q", *_deg(p.x, p.y), rng))
        elif kind == "pair":
            a, b = _pair_offsets(line, comp, pos, polygons_m, float(rng.uniform(6.0, 15.0)))
            out.append(_marker(line, line, serial, "A", *_deg(*a), rng))
            out.append(_marker(line, line, serial, "B", *_deg(*b), rng))
        else:
            for letter, (stand, sci, which) in zip("CDE", payload):
                scomp = stand["components_m"][sci]
                spos = TRIPLE_OFFSET_M if which == 0 else scomp.length - TRIPLE_OFFSET_M
                p = _point_at(scomp, spos)
                out.append(_marker(line, stand, serial, letter, *_deg(p.x, p.y), rng))
        group = [m for m in out if m.serial == serial]
        for m in group[1:]:  # the markers of a pair or triple were set together, of one material
            m.installed_on, m.material = group[0].installed_on, group[0].material
    return out


def derive_markers(conn, *, seed: int = 1, actor: str = "registry") -> dict:
    """Plan the synthetic markers and store them (lines that already have markers are kept)."""
    inputs = planning_inputs(conn)
    done = lines_with_markers(conn)
    carrying = {r["id"] for r in inputs["lines"] if r["level"] == "county" or r["county_line_id"] is None}
    if carrying and carrying <= done:  # nothing to place: skip the planning (load city runs this every time)
        return {"markers": 0, "reference_objects": 0, "lines": 0, "unchanged_lines": len(carrying),
                "change_set_id": None}
    planned = plan_markers(inputs, seed)
    return store_markers(conn, planned, actor=actor, source=f"synthetic: data.generate.markers seed={int(seed)}")


__all__ = ["derive_markers", "plan_markers"]
