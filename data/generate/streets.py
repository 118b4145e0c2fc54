"""The synthetic street network (道路街巷): urban grids round each county seat, ring roads,
old-city lanes, small grids in every town, county avenues and roads linking the towns.

Work is done in the metric frame; every street stays at least 80 m inside its county so
that doors offset from it are in the county too. Names are unique within a county;
classic names (人民路, 解放路 ...) repeat across counties.
"""
from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass, field

import numpy as np
import shapely
from shapely.geometry import LineString
from shapely.ops import substring

from data.generate import names as N
from data.generate.divisions import Divisions
from data.generate.geom import geom_to_deg, geom_to_m, smooth_noise, to_m
from data.generate.reference import Reference

log = logging.getLogger(__name__)

RENMIN_COUNTIES = ("330502", "330503", "330522", "330521")  # 人民路 exists here
ANCHOR_TOWNSHIP = "330502003"  # 爱山街道: its 人民路 carries the spec anchors
KIND_WEIGHT = {"main": 1.0, "ring": 1.0, "lane": 2.0, "town": 0.7, "townlane": 1.0, "avenue": 0.3, "link": 0.08}


@dataclass
class Street:
    name: str
    county_code: str
    kind: str
    line_m: LineString
    township_code: str = ""
    former_name: str | None = None
    former_until: str | None = None
    origin: str = ""


@dataclass
class _CountyCtx:
    code: str
    inner: shapely.Geometry
    core: shapely.Geometry
    seat: np.ndarray
    theta: float
    rng: np.random.Generator
    used: set[str] = field(default_factory=set)
    streets: list[Street] = field(default_factory=list)


def _polyline(a: np.ndarray, b: np.ndarray, rng: np.random.Generator, step: float, wiggle: float) -> LineString:
    length = float(np.hypot(*(b - a)))
    n = max(2, int(length // step) + 1)
    t = np.linspace(0.0, 1.0, n)
    pts = a[None, :] + t[:, None] * (b - a)[None, :]
    if n > 2 and wiggle > 0:
        nrm = np.array([-(b - a)[1], (b - a)[0]]) / max(length, 1e-9)
        pts = pts + smooth_noise(n, rng, wiggle)[:, None] * nrm[None, :]
    return LineString(pts)


def _parts(geom, min_len: float) -> list[LineString]:
    out = []
    for g in shapely.get_parts(shapely.line_merge(geom) if geom.geom_type == "MultiLineString" else geom):
        if g.geom_type == "LineString" and g.length >= min_len:
            out.append(g)
    return out


def _split(line: LineString, max_len: float, rng: np.random.Generator) -> list[LineString]:
    n = max(1, math.ceil(line.length / max_len))
    if n == 1:
        return [line]
    cuts = np.linspace(0, line.length, n + 1)
    cuts[1:-1] += rng.uniform(-0.15, 0.15, n - 1) * (line.length / n)
    return [substring(line, float(a), float(b)) for a, b in zip(cuts[:-1], cuts[1:])]


def _add(ctx: _CountyCtx, name: str, kind: str, line: LineString, origin_extra: str = "") -> None:
    ctx.used.add(name)
    ctx.streets.append(Street(name, ctx.code, kind, line, origin=N.street_origin(name, kind, ctx.rng, extra=origin_extra)))


def _renmin_in_aishan(ctx: _CountyCtx, divs: Divisions, ref: Reference) -> None:
    ti = [t.nbs_code for t in ref.townships].index(ANCHOR_TOWNSHIP)
    poly = geom_to_m(divs.township_geoms[ti]).buffer(-60.0)
    c = np.array(poly.representative_point().coords[0])
    best = None
    for k in range(12):
        a = ctx.theta + k * math.pi / 12
        u = np.array([math.cos(a), math.sin(a)]) * 20_000
        for part in _parts(shapely.intersection(_polyline(c - u, c + u, ctx.rng, 150, 0.0), poly), 1.0):
            if best is None or part.length > best.length:
                best = part
    if best is None or best.length < 200:
        raise RuntimeError("爱山街道 is too small for 人民路")
    _add(ctx, "人民路", "main", best)


def _urban_grid(ctx: _CountyCtx, name_queue: list[str]) -> None:
    rng, seat = ctx.rng, ctx.seat
    minx, miny, maxx, maxy = ctx.core.bounds
    reach = max(np.hypot(x - seat[0], y - seat[1]) for x in (minx, maxx) for y in (miny, maxy)) + 500
    spacing = rng.uniform(480, 650)
    lines: list[tuple[float, LineString, int]] = []
    for axis, a in enumerate((ctx.theta, ctx.theta + math.pi / 2)):
        u = np.array([math.cos(a), math.sin(a)])
        nrm = np.array([-u[1], u[0]])
        for k in range(-int(reach // spacing), int(reach // spacing) + 1):
            o = seat + (k * spacing + rng.uniform(-60, 60)) * nrm
            raw = _polyline(o - reach * u, o + reach * u, rng, 150, 18.0)
            for part in _parts(shapely.intersection(raw, ctx.core), 450):
                lines.append((abs(k) + rng.random() * 0.5, part, axis))
    lines.sort(key=lambda t: t[0])
    for _, part, axis in lines:
        pieces = _split(part, 3200, rng)
        if len(pieces) in (2, 3) and rng.random() < 0.6:
            dirs = ("西", "东", "中") if axis == 0 else ("南", "北", "中")
            for _try in range(50):
                stem = N.pick(rng, N.STREET_WORDS)
                names = [f"{stem}{d}路" for d in dirs[: len(pieces)]]
                if not any(nm in ctx.used for nm in names):
                    break
            else:
                names = [N.unique_name(ctx.used, lambda: N.street_name(rng)) for _ in pieces]
            if len(pieces) == 3:
                names = [names[0], names[2], names[1]]  # west, middle, east
            for piece, nm in zip(pieces, names):
                _add(ctx, nm, "main", piece)
            continue
        for piece in pieces:
            while name_queue and name_queue[0] in ctx.used:
                name_queue.pop(0)
            if name_queue:
                nm = name_queue.pop(0)
            else:
                nm = N.unique_name(ctx.used, lambda: N.street_name(rng, long=piece.length > 2500))
            _add(ctx, nm, "main", piece)


def _ring(ctx: _CountyCtx) -> None:
    h = ctx.rng.uniform(700, 1100)
    c, s = math.cos(ctx.theta), math.sin(ctx.theta)
    corners = [ctx.seat + h * np.array([c * x - s * y, s * x + c * y]) for x, y in ((1, -1), (1, 1), (-1, 1), (-1, -1))]
    sides = {"环城东路": (0, 1), "环城北路": (1, 2), "环城西路": (2, 3), "环城南路": (3, 0)}
    for nm, (i, j) in sides.items():
        if nm in ctx.used:
            continue
        parts = _parts(shapely.intersection(_polyline(corners[i], corners[j], ctx.rng, 150, 10.0), ctx.core), 300)
        if parts:
            _add(ctx, nm, "ring", max(parts, key=lambda p: p.length))


def _lanes(ctx: _CountyCtx, area: shapely.Geometry, hosts: list[Street], n: int, kind: str) -> None:
    rng = ctx.rng
    if not hosts:
        return
    for _ in range(n):
        host = hosts[int(rng.integers(len(hosts)))].line_m
        d = rng.uniform(0.1, 0.9) * host.length
        p0 = np.array(host.interpolate(d).coords[0])
        p1 = np.array(host.interpolate(min(d + 5, host.length)).coords[0])
        t = (p1 - p0) / max(np.hypot(*(p1 - p0)), 1e-9)
        side = 1 if rng.random() < 0.5 else -1
        start = p0 + side * 25 * np.array([-t[1], t[0]])
        end = start + side * rng.uniform(120, 380) * np.array([-t[1], t[0]])
        parts = _parts(shapely.intersection(_polyline(start, end, rng, 60, 4.0), area), 90)
        if parts:
            nm = N.unique_name(ctx.used, lambda: N.street_name(rng, lane=True))
            _add(ctx, nm, kind, parts[0])


def _town(ctx: _CountyCtx, tname: str, tshort: str, centre: np.ndarray, area: shapely.Geometry) -> None:
    rng = ctx.rng
    queue = [f"{tshort}路", f"{tshort}大道", f"{tshort}老街", f"{tshort}中路"]
    theta = ctx.theta + rng.uniform(-0.5, 0.5)
    made: list[Street] = []
    for a in (theta, theta + math.pi / 2):
        u = np.array([math.cos(a), math.sin(a)])
        nrm = np.array([-u[1], u[0]])
        n = int(rng.integers(2, 4))
        spacing = rng.uniform(250, 420)
        for k in range(n):
            o = centre + (k - (n - 1) / 2) * spacing * nrm
            half = rng.uniform(400, 1100)
            parts = _parts(shapely.intersection(_polyline(o - half * u, o + half * u, rng, 120, 12.0), area), 250)
            if not parts:
                continue
            part = max(parts, key=lambda p: p.length)
            nm = None
            while queue and nm is None:
                cand = queue.pop(0)
                nm = None if cand in ctx.used else cand
            nm = nm or N.unique_name(ctx.used, lambda: N.street_name(rng))
            before = len(ctx.streets)
            _add(ctx, nm, "town", part, origin_extra=tname)
            made.extend(ctx.streets[before:])
    _lanes(ctx, area, made, int(rng.integers(1, 5)), "townlane")


def _links(ctx: _CountyCtx, towns: list[tuple[str, np.ndarray]]) -> None:
    """Roads along a minimum spanning tree of the township centres (Prim, deterministic)."""
    rng = ctx.rng
    pts = np.array([c for _, c in towns])
    if len(pts) < 2:
        return
    in_tree = [0]
    edges = []
    while len(in_tree) < len(pts):
        best = None
        for i in in_tree:
            d = np.hypot(*(pts - pts[i]).T)
            d[in_tree] = np.inf
            j = int(np.argmin(d))
            if best is None or d[j] < best[0]:
                best = (d[j], i, j)
        edges.append(best[1:])
        in_tree.append(best[2])
    for i, j in edges:
        a, b = towns[i][0], towns[j][0]
        parts = _parts(shapely.intersection(_polyline(pts[i], pts[j], rng, 300, 160.0), ctx.inner), 1000)
        if not parts:
            continue
        nm = f"{a[0]}{b[0]}公路"
        if nm in ctx.used:
            nm = f"{a}{b[0]}公路"
        if nm in ctx.used:
            nm = N.unique_name(ctx.used, lambda: N.street_name(rng, long=True))
        _add(ctx, nm, "link", max(parts, key=lambda p: p.length), origin_extra=f"{a}与{b}")


def _former_candidate(s: Street, rng: np.random.Generator) -> tuple[str, int]:
    if s.name in N.CLASSIC_STREETS or rng.random() < 0.3:
        return N.pick(rng, N.FORMER_STREET_NAMES), int(rng.integers(1972, 1986))
    if s.name.endswith("路") and rng.random() < 0.6:
        return s.name[:-1] + "街", int(rng.integers(1986, 2023))
    return N.pick(rng, N.STREET_WORDS) + ("弄" if s.kind.endswith("lane") else "路"), int(rng.integers(1986, 2023))


def _former_names(streets: list[Street], rng: np.random.Generator, share: float = 0.075) -> None:
    """About 7.5% of the streets were renamed: record the former name and the date."""
    taken: dict[str, set[str]] = {}
    for s in streets:
        taken.setdefault(s.county_code, set()).add(s.name)
    chosen = np.sort(rng.choice(len(streets), size=int(round(share * len(streets))), replace=False))
    for i in chosen.tolist():
        s = streets[i]
        for _ in range(20):
            former, year = _former_candidate(s, rng)
            if former not in taken[s.county_code]:
                break
        else:
            continue
        taken[s.county_code].add(former)
        month, day = int(rng.integers(1, 13)), int(rng.integers(1, 29))
        s.former_name = former
        s.former_until = f"{year:04d}-{month:02d}-{day:02d}"
        s.origin = re.sub(r"\d{4}年命名。", "", s.origin) + f"原名{former}，{year}年更名为{s.name}。"


def build_streets(ref: Reference, divs: Divisions, rng: np.random.Generator) -> list[Street]:
    tpos = {t.nbs_code: i for i, t in enumerate(ref.townships)}
    out: list[Street] = []
    for county in ref.counties:
        code = county.code
        cm = geom_to_m(divs.county_geoms[code])
        inner = cm.buffer(-80.0)
        towns = ref.townships_of(code)
        # the built-up core: the communities (社区) of the county's 街道
        subs = {t.nbs_code for t in towns if t.is_subdistrict}
        core = shapely.union_all([geom_to_m(g) for v, g in zip(ref.villages, divs.village_geoms)
                                  if v.township_code in subs and v.is_community])
        core = shapely.intersection(core.buffer(-40.0), inner)
        ctx = _CountyCtx(code, inner, core, np.array(to_m(*divs.seats[code]), dtype=float), rng.uniform(-0.35, 0.35), rng)
        queue: list[str] = []
        if code in RENMIN_COUNTIES:
            if code == "330502":
                _renmin_in_aishan(ctx, divs, ref)
            else:
                queue.append("人民路")
        local = list(N.LOCAL_STREETS.get(code, ()))
        classic = [n for n in N.CLASSIC_STREETS if n != "人民路"]
        rng.shuffle(classic)
        queue += local[: len(local) // 2] + classic[:8] + local[len(local) // 2 :] + classic[8:]
        _urban_grid(ctx, queue)
        _ring(ctx)
        urban = [s for s in ctx.streets if s.kind in ("main", "ring")]
        _lanes(ctx, core, urban, 90 if code == "330502" else 45, "lane")
        seat = ctx.seat
        u = np.array([math.cos(ctx.theta + math.pi / 4), math.sin(ctx.theta + math.pi / 4)]) * 9000
        parts = _parts(shapely.intersection(_polyline(seat - u, seat + u, rng, 300, 60.0), inner), 1000)
        if parts and f"{county.short}大道" not in ctx.used:
            _add(ctx, f"{county.short}大道", "avenue", max(parts, key=lambda p: p.length))
        centres = []
        for t in towns:
            i = tpos[t.nbs_code]
            centre = np.array(to_m(*divs.township_centers[i]), dtype=float)
            centres.append((t.short, centre))
            if not t.is_subdistrict:
                area = shapely.intersection(geom_to_m(divs.township_geoms[i]).buffer(-60.0), inner)
                _town(ctx, t.name, t.short, centre, area)
        _links(ctx, centres)
        out.extend(ctx.streets)
    _former_names(out, rng)
    _locate(out, ref, divs)
    log.info("streets: %d", len(out))
    return out


def _locate(streets: list[Street], ref: Reference, divs: Divisions) -> None:
    """township_code = the township holding the street's midpoint."""
    mids = [geom_to_deg(s.line_m).interpolate(0.5, normalized=True) for s in streets]
    tree = shapely.STRtree(divs.township_geoms)
    for s, p in zip(streets, mids):
        hits = [ref.townships[j] for j in tree.query(p, predicate="intersects").tolist()]
        hits = [t for t in hits if t.county_code == s.county_code]
        if not hits:
            j = int(tree.query_nearest(p)[0])
            hits = [ref.townships[j]]
        s.township_code = hits[0].nbs_code


def street_lines_deg(streets: list[Street]) -> list[LineString]:
    return [geom_to_deg(s.line_m) for s in streets]
