"""Addresses (地址), built as numeric arrays in bulk.

Three kinds: street doors (门牌: odd numbers on one side, even on the other, some ``12-1号``,
``附5号``, ``12甲号``), flats in residential compounds (幢/单元/室) and doors in natural
villages (组/号). Every point is quantized to 7 decimals first and then located with a
point-in-polygon test against the village polygons: ``div`` is the village that contains it.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
import shapely

from data.generate.divisions import Divisions
from data.generate.geom import allocate, quantize, to_deg
from data.generate.places import ANCHOR_COMPOUND, Compound, NaturalVillage
from data.generate.reference import Reference
from data.generate.streets import KIND_WEIGHT, Street

log = logging.getLogger(__name__)

STREET, COMPOUND, NATURAL = 0, 1, 2
PLAIN, DASH, FU, JIA = 0, 1, 2, 3
SHARES = {STREET: 0.35, NATURAL: 0.15}  # compounds take the rest (~50%)
# spec anchors: (county, street name) -> required plain numbers / (base, sub) dash numbers
STREET_ANCHORS = {("330502", "人民路"): ({12, 123}, [(12, 1)]), ("330503", "人民路"): ({123}, []),
                  ("330522", "人民路"): ({123}, [])}
ANCHOR_FLAT = (5, 2, 301)  # 凤凰小区 5幢2单元301室 (see _flats)
ANCHOR_NATURAL_VILLAGE = "330503106202"  # 荻港村
MIN_ADDRESSES = 300


@dataclass
class AddressTable:
    """One row per address. ref = street / compound / natural-village index; a, b, c are
    (number, variant, sub) for doors, (building, unit, room) for flats, (group, number, 0)
    for natural-village doors; xi, yi are lon/lat in units of 1e-7 degree."""
    div: np.ndarray
    kind: np.ndarray
    ref: np.ndarray
    a: np.ndarray
    b: np.ndarray
    c: np.ndarray
    xi: np.ndarray
    yi: np.ndarray

    def __len__(self) -> int:
        return len(self.div)

    def sort_order(self) -> np.ndarray:
        return np.lexsort((self.c, self.b, self.a, self.ref, self.kind, self.div))


def _split_counts(total: int) -> dict[int, int]:
    n_street = int(round(total * SHARES[STREET]))
    n_nat = int(round(total * SHARES[NATURAL]))
    return {STREET: n_street, COMPOUND: total - n_street - n_nat, NATURAL: n_nat}


def _street_doors(streets: list[Street], total: int, rng: np.random.Generator):
    forced = np.zeros(len(streets), dtype=np.int64)
    anchors: dict[int, tuple[set[int], list[tuple[int, int]]]] = {}
    for i, s in enumerate(streets):
        key = (s.county_code, s.name)
        if key in STREET_ANCHORS:
            anchors[i] = STREET_ANCHORS[key]
            forced[i] = len(anchors[i][0]) + len(anchors[i][1])
    if len(anchors) != len(STREET_ANCHORS):
        raise RuntimeError("anchor streets missing")
    weights = np.array([s.line_m.length * KIND_WEIGHT[s.kind] for s in streets])
    doors = forced + allocate(total - int(forced.sum()), weights, rng)
    cols: dict[str, list[np.ndarray]] = {k: [] for k in ("sid", "num", "var", "sub", "along", "side", "off")}

    def put(sid, num, var, sub, along, side, off):
        n = len(num)
        cols["sid"].append(np.full(n, sid))
        cols["num"].append(np.asarray(num, dtype=np.int64))
        cols["var"].append(np.full(n, var))
        cols["sub"].append(np.asarray(sub, dtype=np.int64))
        cols["along"].append(np.asarray(along, dtype=float))
        cols["side"].append(np.asarray(side, dtype=float))
        cols["off"].append(np.asarray(off, dtype=float))

    for sid in np.flatnonzero(doors).tolist():
        d = int(doors[sid])
        must, must_dash = anchors.get(sid, (set(), []))
        length = streets[sid].line_m.length
        n_dash = max(int(rng.binomial(d, 0.05)), len(must_dash))
        n_fu = int(rng.binomial(d, 0.01))
        n_jia = int(rng.binomial(d, 0.005))
        while n_dash + n_fu + n_jia > 0 and d - (n_dash + n_fu + n_jia) < max(1, len(must)):
            if n_jia:
                n_jia -= 1
            elif n_fu:
                n_fu -= 1
            elif n_dash > len(must_dash):
                n_dash -= 1
            else:
                break
        n_plain = d - n_dash - n_fu - n_jia
        per_side = max(math.ceil(n_plain / 2 / rng.uniform(0.55, 0.9)), math.ceil(max(must, default=0) / 2) + 8, 1)
        pool = np.setdiff1d(np.arange(1, 2 * per_side + 1), np.fromiter(must, dtype=np.int64))
        nums = np.sort(np.concatenate([np.fromiter(sorted(must), dtype=np.int64),
                                       rng.choice(pool, size=n_plain - len(must), replace=False)]))
        spacing = length / per_side
        base_along = ((nums - 1) // 2 + 0.5) * spacing
        side = np.where(nums % 2 == 1, 1.0, -1.0)
        put(sid, nums, PLAIN, np.zeros(n_plain), base_along, side, rng.uniform(8, 22, n_plain))
        if n_dash:
            pos = rng.integers(0, n_plain, n_dash - len(must_dash))
            bases = np.concatenate([[b for b, _ in must_dash], nums[pos]]).astype(np.int64)
            order = np.argsort(bases, kind="stable")
            sb = bases[order]
            first = np.r_[True, sb[1:] != sb[:-1]]
            grp_start = np.maximum.accumulate(np.where(first, np.arange(len(sb)), 0))
            subs = np.empty(len(sb), dtype=np.int64)
            subs[order] = np.arange(len(sb)) - grp_start + 1
            b_along = ((bases - 1) // 2 + 0.5) * spacing
            put(sid, bases, DASH, subs, np.minimum(b_along + 2.5 * subs, length), np.where(bases % 2 == 1, 1.0, -1.0),
                rng.uniform(24, 32, n_dash))
        if n_fu:
            put(sid, np.zeros(n_fu), FU, np.arange(1, n_fu + 1), rng.uniform(0, length, n_fu),
                np.where(rng.random(n_fu) < 0.5, 1.0, -1.0), rng.uniform(15, 30, n_fu))
        if n_jia:
            m1 = min(math.ceil(n_jia / 2), n_plain)
            m2 = min(n_jia - m1, m1)
            bases = rng.choice(nums, size=m1, replace=False)
            bases = np.concatenate([bases, bases[:m2]])
            subs = np.concatenate([np.zeros(m1), np.ones(m2)]).astype(np.int64)
            b_along = ((bases - 1) // 2 + 0.5) * spacing
            put(sid, bases, JIA, subs, np.minimum(b_along + 4 + 2 * subs, length), np.where(bases % 2 == 1, 1.0, -1.0),
                rng.uniform(8, 22, len(bases)))
    out = {k: np.concatenate(v) if v else np.empty(0) for k, v in cols.items()}
    short = total - len(out["sid"])  # jia doors dropped on very short streets: top up with 附
    if short > 0:
        sid = int(np.argmax(weights))
        existing = out["sub"][(out["sid"] == sid) & (out["var"] == FU)]
        start = int(existing.max()) + 1 if len(existing) else 1
        length = streets[sid].line_m.length
        extra = {"sid": np.full(short, sid), "num": np.zeros(short, dtype=np.int64), "var": np.full(short, FU),
                 "sub": np.arange(start, start + short), "along": rng.uniform(0, length, short),
                 "side": np.where(rng.random(short) < 0.5, 1.0, -1.0), "off": rng.uniform(15, 30, short)}
        out = {k: np.concatenate([out[k], extra[k]]) for k in out}
    return out


def _street_points(streets: list[Street], d: dict[str, np.ndarray]):
    lines = np.array([s.line_m for s in streets], dtype=object)[d["sid"].astype(np.int64)]
    lengths = shapely.length(lines)
    along = np.clip(d["along"], 0.0, lengths)
    ahead = np.where(along + 1.0 <= lengths, along + 1.0, along - 1.0)
    p = shapely.get_coordinates(shapely.line_interpolate_point(lines, along))
    q = shapely.get_coordinates(shapely.line_interpolate_point(lines, ahead))
    t = (q - p) * np.where(ahead > along, 1.0, -1.0)[:, None]
    t /= np.maximum(np.hypot(t[:, 0], t[:, 1]), 1e-9)[:, None]
    nrm = np.column_stack([-t[:, 1], t[:, 0]])
    xy = p + (d["side"] * d["off"])[:, None] * nrm
    return to_deg(xy[:, 0], xy[:, 1])


def _flats(compounds: list[Compound], ref: Reference, total: int, rng: np.random.Generator):
    town, name = ANCHOR_COMPOUND
    anchor = next(i for i, c in enumerate(compounds)
                  if c.name == name and ref.villages[c.village].township_code == town)
    weights = np.array([c.weight for c in compounds])
    forced = np.zeros(len(compounds), dtype=np.int64)
    forced[anchor] = 4 * 24 + 12 + 2 * 2 + 1  # buildings 1-4, unit 1, floors 1-2 of unit 2, then 301
    counts = forced + allocate(total - int(forced.sum()), weights, rng)
    b_comp, b_no, b_units, b_floors, b_per, b_fill = [], [], [], [], [], []
    for ci in np.flatnonzero(counts).tolist():
        need = int(counts[ci])
        style = rng.random()
        lo, hi = (5, 7) if style < 0.55 else (11, 18) if style < 0.9 else (2, 4)
        k = need // 4 + 2
        units = rng.choice([1, 2, 3, 4], size=k, p=[0.2, 0.4, 0.25, 0.15])
        floors = rng.integers(lo, hi + 1, size=k)
        per = rng.choice([2, 3, 4], size=k, p=[0.6, 0.25, 0.15])
        if ci == anchor:
            units[:5], floors[:5], per[:5] = 2, 6, 2
        sizes = units * floors * per
        cum = np.cumsum(sizes)
        nb = int(np.searchsorted(cum, need)) + 1
        fill = sizes[:nb].copy()
        fill[-1] = need - (cum[nb - 2] if nb > 1 else 0)
        b_comp.append(np.full(nb, ci))
        b_no.append(np.arange(1, nb + 1))
        b_units.append(units[:nb])
        b_floors.append(floors[:nb])
        b_per.append(per[:nb])
        b_fill.append(fill)
    comp = np.concatenate(b_comp)
    bno = np.concatenate(b_no)
    per = np.concatenate(b_per)
    floors = np.concatenate(b_floors)
    fill = np.concatenate(b_fill)
    starts = np.cumsum(fill) - fill
    row_b = np.repeat(np.arange(len(fill)), fill)
    local = np.arange(int(fill.sum())) - starts[row_b]
    per_unit = floors[row_b] * per[row_b]
    unit = local // per_unit + 1
    rem = local % per_unit
    room = (rem // per[row_b] + 1) * 100 + rem % per[row_b] + 1
    # building points: a sunflower spiral inside the compound's clearance
    n_b = np.bincount(comp, minlength=len(compounds))[comp]
    cx = np.array([c.x for c in compounds])[comp]
    cy = np.array([c.y for c in compounds])[comp]
    r = np.array([c.room for c in compounds])[comp] * 0.9 * np.sqrt((bno - 0.5) / n_b)
    phase = rng.uniform(0, 2 * math.pi, len(compounds))[comp]
    ang = bno * 2.399963 + phase
    bx, by = to_deg(cx + r * np.cos(ang), cy + r * np.sin(ang))
    return comp[row_b], bno[row_b], unit, room, bx[row_b], by[row_b]


def _natural_doors(naturals: list[NaturalVillage], ref: Reference, total: int, rng: np.random.Generator):
    weights = np.array([n.weight for n in naturals])
    forced = np.zeros(len(naturals), dtype=np.int64)
    anchor = next(i for i, n in enumerate(naturals) if ref.villages[n.village].code == ANCHOR_NATURAL_VILLAGE)
    forced[anchor] = 5
    counts = forced + allocate(total - int(forced.sum()), weights, rng)
    nat = np.repeat(np.arange(len(naturals)), counts)
    local = np.arange(len(nat)) - (np.cumsum(counts) - counts)[nat]
    groups = np.array([n.groups for n in naturals])[nat]
    first = np.array([n.first_group for n in naturals])[nat]
    group = first + local % groups
    number = local // groups + 1
    rad = np.array([n.room for n in naturals])[nat] * 0.9 * np.sqrt(rng.random(len(nat)))
    ang = rng.uniform(0, 2 * math.pi, len(nat))
    x = np.array([n.x for n in naturals])[nat] + rad * np.cos(ang)
    y = np.array([n.y for n in naturals])[nat] + rad * np.sin(ang)
    lon, lat = to_deg(x, y)
    return nat, group, number, lon, lat


def _locate(divs: Divisions, lon: np.ndarray, lat: np.ndarray):
    """Quantize, then find the village whose polygon contains each point (-1 if none)."""
    xi, yi, qx, qy = quantize(lon, lat)
    div = np.full(len(qx), -1, dtype=np.int64)
    tree = shapely.STRtree(divs.village_geoms)
    pts = shapely.points(qx, qy)
    hit_pt, hit_poly = tree.query(pts, predicate="within")
    div[hit_pt] = hit_poly
    return div, xi, yi


def _locate_all(divs: Divisions, lon, lat, intended: np.ndarray | None = None):
    div, xi, yi = _locate(divs, lon, lat)
    for attempt in range(1, 6):  # points exactly on an edge after rounding: nudge by 1e-7
        bad = np.flatnonzero(div < 0)
        if not len(bad):
            break
        d2, x2, y2 = _locate(divs, xi[bad] / 1e7 + attempt * 1e-7, yi[bad] / 1e7 + attempt * 1e-7)
        div[bad], xi[bad], yi[bad] = d2, x2, y2
    if (div < 0).any():
        raise RuntimeError(f"{int((div < 0).sum())} address points outside every village")
    if intended is not None and (div != intended).any():
        raise RuntimeError(f"{int((div != intended).sum())} points left their intended village")
    return div, xi, yi


def build_addresses(ref: Reference, divs: Divisions, streets: list[Street], compounds: list[Compound],
                    naturals: list[NaturalVillage], total: int, rng: np.random.Generator, progress=None) -> AddressTable:
    if total < MIN_ADDRESSES:
        raise ValueError(f"addresses must be at least {MIN_ADDRESSES} (to hold the spec anchors), got {total}")
    counts = _split_counts(total)
    step = (lambda i: progress("addresses", i, 3)) if progress else (lambda i: None)
    d = _street_doors(streets, counts[STREET], rng)
    lon, lat = _street_points(streets, d)
    div_s, xi_s, yi_s = _locate_all(divs, lon, lat)
    village_county = np.array([v.county_code for v in ref.villages])
    street_county = np.array([s.county_code for s in streets])[d["sid"].astype(np.int64)]
    if (village_county[div_s] != street_county).any():
        raise RuntimeError("a street door fell outside its street's county")
    step(1)
    comp, bno, unit, room, blon, blat = _flats(compounds, ref, counts[COMPOUND], rng)
    comp_village = np.array([c.village for c in compounds])
    div_c, xi_c, yi_c = _locate_all(divs, blon, blat, comp_village[comp])
    step(2)
    nat, group, number, nlon, nlat = _natural_doors(naturals, ref, counts[NATURAL], rng)
    nat_village = np.array([n.village for n in naturals])
    div_n, xi_n, yi_n = _locate_all(divs, nlon, nlat, nat_village[nat])
    step(3)
    n_s, n_c, n_n = len(div_s), len(div_c), len(div_n)
    table = AddressTable(
        div=np.concatenate([div_s, div_c, div_n]),
        kind=np.concatenate([np.full(n_s, STREET), np.full(n_c, COMPOUND), np.full(n_n, NATURAL)]).astype(np.int8),
        ref=np.concatenate([d["sid"], comp, nat]).astype(np.int64),
        a=np.concatenate([d["num"], bno, group]).astype(np.int64),
        b=np.concatenate([d["var"], unit, number]).astype(np.int64),
        c=np.concatenate([d["sub"], room, np.zeros(n_n)]).astype(np.int64),
        xi=np.concatenate([xi_s, xi_c, xi_n]),
        yi=np.concatenate([yi_s, yi_c, yi_n]),
    )
    if len(table) != total:
        raise RuntimeError(f"generated {len(table)} addresses, wanted {total}")
    log.info("addresses: %d street doors, %d flats, %d natural-village doors", n_s, n_c, n_n)
    return table
