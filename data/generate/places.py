"""Place names other than streets: residential compounds (小区) in communities, natural
villages (自然村) in villages, and a few bridges, rivers and hills.

Compound and natural-village points are placed with "room": at least r metres from the
boundary of their village, so anything generated within r of them stays inside it.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import shapely
from shapely.geometry import LineString, Point

from data.generate import names as N
from data.generate.divisions import Divisions
from data.generate.geom import Roomy, geom_to_deg, geom_to_m, random_points_in, smooth_noise, spot_with_room, to_deg
from data.generate.reference import Reference

log = logging.getLogger(__name__)

ANCHOR_COMPOUND = ("330502006", "凤凰小区")  # 凤凰街道, 吴兴区
HILL_TOWNSHIPS = {  # hills placed in their real township
    "莫干山": "330521115", "顾渚山": "330522200", "道场山": "330502200", "含山": "330503103",
    "龙王山": "330523107", "天荒坪": "330523108", "灵峰山": "330523003", "弁山": "330502012",
}


@dataclass
class Compound:
    name: str
    village: int  # index into ref.villages
    x: float  # metric centre
    y: float
    room: float  # metres of clearance round the centre
    weight: float
    origin: str


@dataclass
class NaturalVillage:
    name: str
    village: int
    x: float
    y: float
    room: float
    groups: int
    first_group: int
    weight: float
    origin: str


@dataclass
class Feature:
    name: str
    category: str  # bridge | river | hill
    county_code: str
    township_code: str
    village_code: str | None
    geometry: shapely.Geometry  # CGCS2000
    origin: str


def build_compounds(ref: Reference, divs: Divisions, rng: np.random.Generator) -> list[Compound]:
    out: list[Compound] = []
    used: dict[str, set[str]] = {c.code: set() for c in ref.counties}
    used["330502"].add(ANCHOR_COMPOUND[1])
    anchor_done = False
    towns = {t.nbs_code: t for t in ref.townships}
    for vi, v in enumerate(ref.villages):
        if not v.is_community:
            continue
        t = towns[v.township_code]
        n = int(rng.integers(3, 9)) if t.is_subdistrict else int(rng.integers(2, 6))
        xs, ys, r = Roomy(geom_to_m(divs.village_geoms[vi]), (220.0, 150.0, 100.0, 60.0, 30.0)).sample(rng, n)
        for k in range(n):
            if not anchor_done and v.township_code == ANCHOR_COMPOUND[0] and k == 0:
                name, anchor_done = ANCHOR_COMPOUND[1], True
            else:
                name = N.unique_name(used[v.county_code], lambda: N.compound_name(rng, v.short))
            x, y = float(xs[k]), float(ys[k])
            w = float(rng.lognormal(0.0, 0.5)) * (3.0 if t.is_subdistrict else 1.0)
            year = int(rng.integers(1985, 2024))
            out.append(Compound(name, vi, x, y, r, w, N.compound_origin(name, year)))
    if not anchor_done:
        raise RuntimeError("anchor compound 凤凰小区 could not be placed")
    log.info("compounds: %d", len(out))
    return out


def build_natural_villages(ref: Reference, divs: Divisions, rng: np.random.Generator) -> list[NaturalVillage]:
    out: list[NaturalVillage] = []
    for vi, v in enumerate(ref.villages):
        if v.is_community:
            continue
        poly = divs.village_geoms[vi]
        hilly = v.county_code in N.HILLY_COUNTIES or poly.centroid.x < 119.85
        n = int(rng.integers(3, 9))
        xs, ys, r = Roomy(geom_to_m(poly), (180.0, 120.0, 80.0, 40.0)).sample(rng, n)
        used: set[str] = set()
        group = 1
        for k in range(n):
            name = N.unique_name(used, lambda: N.natural_village_name(rng, hilly))
            x, y = float(xs[k]), float(ys[k])
            g = int(rng.integers(1, 4))
            w = float(rng.lognormal(0.0, 0.45))
            out.append(NaturalVillage(name, vi, x, y, r, g, group, w, N.natural_village_origin(name, rng)))
            group += g
    log.info("natural villages: %d", len(out))
    return out


def _village_at(ref: Reference, divs: Divisions, tree: shapely.STRtree, p: Point) -> int:
    hits = tree.query(p, predicate="intersects").tolist()
    if hits:
        return int(min(hits))
    return int(tree.query_nearest(p)[0])


def build_features(ref: Reference, divs: Divisions, rng: np.random.Generator) -> list[Feature]:
    tree = shapely.STRtree(divs.village_geoms)
    towns = {t.nbs_code: t for t in ref.townships}
    out: list[Feature] = []

    def point_in_village(vi: int) -> Point:
        x, y = random_points_in(divs.village_geoms[vi], 1, rng)
        return Point(float(x[0]), float(y[0]))

    # bridges: more in the water towns of the plain
    water = np.array([0.5 if v.county_code == "330523" else 1.5 if v.county_code in ("330503", "330502") else 1.0
                      for v in ref.villages])
    for county in ref.counties:
        idx = [i for i, v in enumerate(ref.villages) if v.county_code == county.code]
        n = int(rng.integers(5, 10))
        names = list(N.BRIDGE_NAMES)
        rng.shuffle(names)
        p = water[idx] / water[idx].sum()
        for name, vi in zip(names[:n], rng.choice(idx, size=n, replace=False, p=p).tolist()):
            v = ref.villages[vi]
            year = int(rng.integers(1368, 1912))
            origin = f"始建年代不详，{year}年前后重修，为单孔石拱桥，以吉祥寓意命名。"
            out.append(Feature(name, "bridge", v.county_code, v.township_code, v.code, point_in_village(vi), origin))
    # rivers: gently curved lines inside their county
    for county in ref.counties:
        cm = geom_to_m(divs.county_geoms[county.code])
        inner = cm.buffer(-200.0)
        for name in N.RIVER_NAMES.get(county.code, ()):
            x, y, _ = spot_with_room(inner, (0.0,), rng)
            a = rng.uniform(0, np.pi)
            half = rng.uniform(4000, 12000)
            u = np.array([np.cos(a), np.sin(a)]) * half
            n = 40
            t = np.linspace(-1, 1, n)
            pts = np.array([x, y]) + t[:, None] * u[None, :]
            pts += smooth_noise(n, rng, 400.0, 4)[:, None] * np.array([-u[1], u[0]]) / half
            parts = [g for g in shapely.get_parts(shapely.intersection(LineString(pts), inner)) if g.geom_type == "LineString"]
            if not parts:
                continue
            line = geom_to_deg(max(parts, key=lambda g: g.length))
            mid = line.interpolate(0.5, normalized=True)
            v = ref.villages[_village_at(ref, divs, tree, mid)]
            kind = "运河" if "运河" in name else "塘河" if name.endswith("塘") else "溪港"
            origin = f"境内主要{kind}之一，以沿岸地名或水色得名，自古为舟楫往来要道。"
            out.append(Feature(name, "river", county.code, v.township_code, None, line, origin))
    # hills: in their real township when known, else a western village of the county
    for county in ref.counties:
        for name in N.HILL_NAMES.get(county.code, ()):
            tcode = HILL_TOWNSHIPS.get(name)
            cand = [i for i, v in enumerate(ref.villages) if v.county_code == county.code
                    and (v.township_code == tcode if tcode else not v.is_community)]
            if not tcode:
                xs = np.array([divs.village_geoms[i].centroid.x for i in cand])
                cand = [cand[j] for j in np.argsort(xs, kind="stable")[: max(3, len(cand) // 3)]]
            rural = [i for i in cand if not ref.villages[i].is_community] or cand
            vi = int(rural[int(rng.integers(len(rural)))])
            v = ref.villages[vi]
            origin = f"位于{towns[v.township_code].name}境内，以山形或传说得名，为当地名山。"
            out.append(Feature(name, "hill", v.county_code, v.township_code, v.code, point_in_village(vi), origin))
    log.info("bridges, rivers, hills: %d", len(out))
    return out


def compound_point_deg(c: Compound) -> Point:
    x, y = to_deg(c.x, c.y)
    return Point(float(x), float(y))


def natural_point_deg(n: NaturalVillage) -> Point:
    x, y = to_deg(n.x, n.y)
    return Point(float(x), float(y))
