"""Civil-affairs service facilities (服务设施) with exact real-world counts, whatever the scale."""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import shapely
from shapely.geometry import Point

from data.generate.divisions import Divisions
from data.generate.geom import random_points_in
from data.generate.places import NaturalVillage
from data.generate.reference import Reference
from data.generate.streets import Street, street_lines_deg

log = logging.getLogger(__name__)

FACILITY_COUNTS = {
    "居家养老服务照料中心": 1182,
    "幸福邻里中心": 265,
    "儿童之家": 260,
    "社会工作站": 72,
    "集中治丧点": 65,
    "婚姻登记处": 5,
}
PHONE_PREFIX = {"330502": "2", "330503": "3", "330521": "8", "330522": "6", "330523": "5"}
NEAR_STREET_M = 1500.0


@dataclass
class Facility:
    category: str
    name: str
    county_code: str
    township_code: str
    village_code: str
    address: str
    phone: str
    geometry: Point


def _village_at(divs: Divisions, tree: shapely.STRtree, lon: float, lat: float, county_code: str, ref: Reference) -> int:
    for j in sorted(tree.query(Point(lon, lat), predicate="intersects").tolist()):
        if ref.villages[j].county_code == county_code:
            return j
    return -1


def build_facilities(ref: Reference, divs: Divisions, streets: list[Street], naturals: list[NaturalVillage],
                     rng: np.random.Generator) -> list[Facility]:
    villages = ref.villages
    towns = {t.nbs_code: t for t in ref.townships}
    counties = {c.code: c for c in ref.counties}
    n_v = len(villages)
    comm = [i for i, v in enumerate(villages) if v.is_community]
    rural = [i for i, v in enumerate(villages) if not v.is_community]
    tree = shapely.STRtree(divs.village_geoms)
    picks: list[tuple[str, int]] = []  # (category, village index)

    keep = np.sort(rng.choice(n_v, size=FACILITY_COUNTS["居家养老服务照料中心"], replace=False))
    picks += [("居家养老服务照料中心", int(i)) for i in keep]
    w = np.array([3.0 if towns[villages[i].township_code].is_subdistrict else 1.0 for i in comm])
    chosen = np.sort(rng.choice(comm, size=FACILITY_COUNTS["幸福邻里中心"], replace=False, p=w / w.sum()))
    picks += [("幸福邻里中心", int(i)) for i in chosen]
    chosen = np.sort(rng.choice(n_v, size=FACILITY_COUNTS["儿童之家"], replace=False))
    picks += [("儿童之家", int(i)) for i in chosen]
    for ti, t in enumerate(ref.townships):  # one per township, in the township's centre village
        lon, lat = divs.township_centers[ti]
        vi = _village_at(divs, tree, lon, lat, t.county_code, ref)
        if vi < 0 or villages[vi].township_code != t.nbs_code:
            vi = next(i for i, v in enumerate(villages) if v.township_code == t.nbs_code)
        picks.append(("社会工作站", vi))
    towns_chosen = rng.choice(len(ref.townships), size=FACILITY_COUNTS["集中治丧点"], replace=False)
    for ti in np.sort(towns_chosen).tolist():
        code = ref.townships[ti].nbs_code
        cand = [i for i in rural if villages[i].township_code == code] or \
               [i for i, v in enumerate(villages) if v.township_code == code]
        picks.append(("集中治丧点", int(cand[int(rng.integers(len(cand)))])))
    for c in ref.counties:
        lon, lat = divs.seats[c.code]
        vi = _village_at(divs, tree, lon, lat, c.code, ref)
        if vi < 0:
            vi = next(i for i, v in enumerate(villages) if v.county_code == c.code)
        picks.append(("婚姻登记处", vi))

    lines = street_lines_deg(streets)
    by_county: dict[str, list[int]] = {}
    for i, s in enumerate(streets):
        by_county.setdefault(s.county_code, []).append(i)
    trees = {c: shapely.STRtree([lines[i] for i in idx]) for c, idx in by_county.items()}
    nat_by_village: dict[int, list[NaturalVillage]] = {}
    for n in naturals:
        nat_by_village.setdefault(n.village, []).append(n)

    out: list[Facility] = []
    phones: set[str] = set()
    for category, vi in picks:
        v = villages[vi]
        t = towns[v.township_code]
        county = counties[v.county_code]
        x, y = random_points_in(divs.village_geoms[vi], 1, rng)
        pt = Point(float(x[0]), float(y[0]))
        if category == "社会工作站":
            name = f"{t.name}社会工作站"
        elif category == "婚姻登记处":
            name = f"{county.name}婚姻登记处"
        else:
            name = f"{t.name}{v.short}{category}"
        j = int(trees[v.county_code].query_nearest(pt)[0])
        street = streets[by_county[v.county_code][j]]
        dist_m = lines[by_county[v.county_code][j]].distance(pt) * 100_000
        number = int(rng.integers(1, 400))
        if dist_m <= NEAR_STREET_M or vi not in nat_by_village:
            place = f"{street.name}{number}号"
        else:
            nats = nat_by_village[vi]
            place = f"{v.short}{nats[int(rng.integers(len(nats)))].name}{number}号"
        address = f"湖州市{county.name}{t.name}{place}"
        while True:
            phone = f"0572-{PHONE_PREFIX.get(v.county_code, '2')}{int(rng.integers(0, 1_000_000)):06d}"
            if phone not in phones:
                phones.add(phone)
                break
        out.append(Facility(category, name, v.county_code, t.nbs_code, v.code, address, phone, pt))
    counts = {k: sum(f.category == k for f in out) for k in FACILITY_COUNTS}
    if counts != FACILITY_COUNTS:
        raise RuntimeError(f"facility counts {counts} != {FACILITY_COUNTS}")
    log.info("facilities: %d", len(out))
    return out
