"""Load the real Huzhou reference data shipped in data/reference/ (see its PROVENANCE.md):
divisions under both code authorities and the county polygons (GCJ-02 -> CGCS2000)."""
from __future__ import annotations

import csv
import hashlib
import json
import logging
from datetime import date
from pathlib import Path

from shapely.geometry import MultiPolygon, shape
from shapely import to_wkb, transform
from sqlalchemy import Connection, func, insert, select, text

from data import REFERENCE_DIR
from registry.as_of import REFERENCE_START
from registry.changes import apply_change_set, open_change_set
from registry.db.tables import division_codes, divisions
from registry.errors import Conflict
from registry.geo import gcj02_to_wgs84
from registry.text import fold_village_suffix

log = logging.getLogger(__name__)

NBS_FILE = "divisions_nbs_2023.csv"
MCA_FILE = "divisions_mca_2025.csv"
COUNTIES_FILE = "huzhou_counties_gcj02.geojson"
ADJUSTMENTS_FILE = "township_adjustments_observed.csv"
PROVINCE = {"code": "330000", "name": "浙江省"}
NBS_SINCE = date(2023, 6, 30)
MCA_SINCE = date(2025, 12, 31)


def _read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def gcj02_polygon_to_cgcs2000(geometry: dict) -> MultiPolygon:
    """Convert a GCJ-02 GeoJSON (Multi)Polygon vertex by vertex; shared vertices stay shared."""
    geom = shape(geometry)

    def convert(coords):
        lon, lat = gcj02_to_wgs84(coords[:, 0], coords[:, 1])
        coords = coords.copy()
        coords[:, 0], coords[:, 1] = lon, lat
        return coords

    geom = transform(geom, convert)
    return geom if isinstance(geom, MultiPolygon) else MultiPolygon([geom])


def reference_loaded(conn: Connection) -> bool:
    return bool(conn.execute(select(func.count()).select_from(divisions)).scalar_one())


def load_reference(conn: Connection, *, actor: str = "registry", directory: Path = REFERENCE_DIR,
                   adjust: bool = True) -> dict[str, int]:
    """Insert the real divisions and county polygons in one change set. Refuses a second run.

    The history holds the state before the real township adjustments of the adjustments file
    (旧馆镇; the villages of 东迁街道 and 康乾街道 under their former townships), then the three
    adjustments themselves (change sets of kind `adjustment`, in force by 2023-06-30, no 批复文号:
    the source gives none), and the current rows are NBS 2023 / MCA 2025 exactly. The reference
    rows' first versions begin at `REFERENCE_START` (start unknown). `adjust=False` stops at the
    state before (for data built on it, then carried through `apply_observed_adjustments`)."""
    if reference_loaded(conn):
        raise Conflict("区划已载入 / the reference divisions are already loaded", parameter="divisions")
    nbs_rows = _read_csv(directory / NBS_FILE)
    mca_by_key = {}
    for row in _read_csv(directory / MCA_FILE):
        mca_by_key[(row["level"], row["name"], row["parent_code"][:6])] = row["code"]
    counties = json.loads((directory / COUNTIES_FILE).read_text(encoding="utf-8"))
    polygons = {f["properties"]["code"]: gcj02_polygon_to_cgcs2000(f["geometry"]) for f in counties["features"]}
    adjusted = _read_csv(directory / ADJUSTMENTS_FILE)
    before = before_state(adjusted)

    files = (NBS_FILE, MCA_FILE, COUNTIES_FILE, ADJUSTMENTS_FILE)
    checksum = hashlib.sha256(b"".join((directory / n).read_bytes() for n in files)).hexdigest()
    cs = open_change_set(conn, kind="load_reference", author=actor, source=str(directory.name),
                         reason="真实区划参考数据 / real reference divisions", checksum=checksum)

    ids: dict[str, int] = {}
    province_id = conn.execute(
        insert(divisions).values(level="province", name=PROVINCE["name"], full_name=PROVINCE["name"],
                                 nbs_code=PROVINCE["code"], mca_code=PROVINCE["code"], change_set_id=cs,
                                 source="GB/T 2260", valid_from=REFERENCE_START)
        .returning(divisions.c.id)
    ).scalar_one()
    ids[PROVINCE["code"]] = province_id
    code_rows = []
    counts = {"province": 1}
    mca_of: dict[str, str | None] = {}
    # The NBS file lists parents before children (city, counties, townships, villages).
    for row in nbs_rows:
        level, nbs = row["level"], row["code"]
        county_code = nbs[:6]
        mca = mca_by_key.get((level, row["name"], county_code if level == "township" else row["parent_code"][:6]))
        if level in ("city", "county") and mca is None:
            mca = nbs  # both authorities agree on 6-digit codes
        mca_of[nbs] = mca if level != "village" else None
        counts[level] = counts.get(level, 0) + 1
        plan = before.get(nbs)
        if plan is not None and plan.set_up_by_adjustment:
            continue  # 东迁街道, 康乾街道 and the new communities: set up by the adjustments below
        name = fold_village_suffix(row["name"]) if level == "village" else row["name"]
        full_name, parent, codes = row["name"], ids[row["parent_code"]] if row["parent_code"] in ids else None, True
        if plan is not None:
            # The state before the adjustments: the older list gives no codes (unknown, never invented).
            codes = False
            if plan.name:
                name = full_name = plan.name
            if plan.parent_code:
                parent = ids[plan.parent_code]
        geom = polygons.get(nbs) if level in ("city", "county") else None
        ids[nbs] = conn.execute(
            insert(divisions).values(
                level=level, name=name, full_name=full_name, parent_id=parent,
                nbs_code=nbs if codes else None, mca_code=mca if codes and level != "village" else None,
                geom=func.ST_GeomFromWKB(to_wkb(geom), 4490) if geom is not None else None,
                change_set_id=cs, source="NBS 2023 / MCA 2025 (data/reference)" if codes else
                "JioNLP 1.5.31 前状态，代码不明 / before-state of the older list (code unknown)",
                valid_from=REFERENCE_START,
            ).returning(divisions.c.id)
        ).scalar_one()
        if codes:
            code_rows.append({"code": nbs, "authority": "nbs2023", "valid_from": NBS_SINCE, "division_id": ids[nbs]})
            if mca and level != "village":
                code_rows.append({"code": mca, "authority": "mca2025", "valid_from": MCA_SINCE,
                                  "division_id": ids[nbs]})
    conn.execute(insert(division_codes), code_rows)
    apply_change_set(conn, cs, actor=actor, counts=counts)
    if not adjust:
        return counts
    apply_observed_adjustments(conn, adjusted, ids, mca_of, actor=actor)
    _check_current_state(conn, nbs_rows, mca_of)
    log.info("reference divisions loaded: %s (and %d real adjustments)", counts, len(OBSERVED))
    return counts


# -- the real adjustments (data/reference/township_adjustments_observed.csv) --------------------------
# The file gives no date and no 批复文号: only that NBS 2023 (as of 2023-06-30) shows the result.
OBSERVED_NOTE = ("来源未给出批复文号和生效日期，仅知 2023-06-30（国家统计局 2023 区划代码）前已生效；调整前的代码不明 / "
                 "the source gives no approval document and no date: in force by 2023-06-30 (NBS 2023); the codes "
                 "before the adjustment are unknown")
# township after (NBS 2023 code) → how it came about
OBSERVED = {"330503002": "rename", "330503001": "transfer", "330521005": "transfer"}


class _Plan:
    """How a 2023 division of the adjustments file looked before: its name (旧馆镇), its parent's
    2023 code (南浔镇 …), or nothing at all (set up by the adjustment)."""

    def __init__(self, *, name: str | None = None, parent_code: str | None = None,
                 set_up_by_adjustment: bool = False) -> None:
        self.name, self.parent_code, self.set_up_by_adjustment = name, parent_code, set_up_by_adjustment


def before_state(rows: list[dict[str, str]]) -> dict[str, _Plan]:
    plans: dict[str, _Plan] = {}
    for r in rows:
        town = r["township_2023_code"]
        if OBSERVED.get(town) == "rename":
            plans[town] = _Plan(name=r["township_before"] or None)
            plans[r["village_code"]] = _Plan() if r["township_before"] else _Plan(set_up_by_adjustment=True)
        else:
            plans[town] = _Plan(set_up_by_adjustment=True)
            if r["township_before_code_2023"]:
                plans[r["village_code"]] = _Plan(parent_code=r["township_before_code_2023"])
            else:
                plans[r["village_code"]] = _Plan(set_up_by_adjustment=True)
    return plans


def carry_through_observed_adjustments(conn: Connection, *, actor: str = "registry",
                                       directory: Path = REFERENCE_DIR) -> list[int]:
    """Apply the real adjustments to a registry loaded with `adjust=False` (and whatever was built on
    that state since: addresses, plates, place names live through them). Returns the adjustment ids."""
    rows = _read_csv(directory / ADJUSTMENTS_FILE)
    nbs_rows = _read_csv(directory / NBS_FILE)
    mca_of = {}
    for row in _read_csv(directory / MCA_FILE):
        if row["level"] == "township":
            mca_of[(row["name"], row["parent_code"][:6])] = row["code"]
    ids = _before_state_ids(conn, rows)
    if ids is None:
        raise Conflict("调整前状态中找不到调整所涉的村社区 / the state before the adjustments does not hold the "
                       "villages of the adjustments (was the reference loaded with adjust=False?)",
                       parameter="divisions")
    mca = {row["code"]: mca_of.get((row["name"], row["code"][:6])) for row in nbs_rows if row["level"] == "township"}
    done = apply_observed_adjustments(conn, rows, ids, mca, actor=actor)
    mca_all = {row["code"]: (mca.get(row["code"]) if row["level"] == "township" else
                             (row["code"] if row["level"] in ("city", "county") else None)) for row in nbs_rows}
    _check_current_state(conn, nbs_rows, mca_all)
    return done


def _before_state_ids(conn: Connection, rows: list[dict[str, str]]) -> dict[str, int] | None:
    """Today's (NBS 2023) code → the before-state division of the adjustments file (the villages,
    still code-less under their former townships, and 旧馆镇); None unless the registry holds that state."""
    found = conn.execute(text("""
        SELECT v.id, v.full_name, t.id AS township_id, t.name AS township, c.nbs_code AS county
        FROM divisions v JOIN divisions t ON t.id = v.parent_id JOIN divisions c ON c.id = t.parent_id
        WHERE v.level = 'village' AND v.status = 'active' AND v.nbs_code IS NULL""")).all()
    by_name = {(r.county, r.township, r.full_name): r for r in found}
    ids: dict[str, int] = {}
    for r in rows:
        if r["township_before"]:
            hit = by_name.get((r["county_code"], r["township_before"], r["village"]))
            if hit is None:
                return None
            ids[r["village_code"]] = hit.id
            if r["township_before"] == "旧馆镇":
                ids[r["township_2023_code"]] = hit.township_id
    return ids


def before_state_codes(conn: Connection, *, directory: Path = REFERENCE_DIR) -> tuple[tuple[str, str, int], ...]:
    """While the registry holds the state before the real adjustments (`adjust=False`): the NBS 2023
    codes the divisions of the adjustments file will carry, as (code, "nbs2023", division id), for
    loading files written against today's codes (the generated city) onto that state. Empty otherwise.
    Nothing is written: the codes come with `carry_through_observed_adjustments`. Divisions the
    adjustments set up (东迁街道, 康乾街道, their new communities) have no before-state row."""
    rows = _read_csv(directory / ADJUSTMENTS_FILE)
    ids = _before_state_ids(conn, rows)
    if not ids:
        return ()
    out = {(code, "nbs2023", i) for code, i in ids.items()}
    # a village still under 南浔镇 stands for 东迁街道 in the parent check of a row naming both codes
    parents = dict(conn.execute(text("SELECT nbs_code, id FROM divisions WHERE level = 'township' AND nbs_code = "
                                     "ANY(:c)"), {"c": [r["township_before_code_2023"] for r in rows
                                                       if r["township_before_code_2023"]]}).all())
    out |= {(r["township_2023_code"], "parent", parents[r["township_before_code_2023"]]) for r in rows
            if r["township_before_code_2023"] in parents}
    return tuple(sorted(out))


def apply_observed_adjustments(conn: Connection, rows: list[dict[str, str]], ids: dict[str, int],
                               mca_of: dict[str, str | None], *, actor: str) -> list[int]:
    """The three real adjustments, each one change set of kind `adjustment`, dated honestly."""
    from registry import adjustments as adj

    dating = adj.Dating(known_in_force_by=NBS_SINCE, note=OBSERVED_NOTE)
    by_town: dict[str, list[dict[str, str]]] = {}
    for r in rows:
        by_town.setdefault(r["township_2023_code"], []).append(r)
    done = []
    for town, kind in OBSERVED.items():
        group = by_town[town]
        name = group[0]["township_2023"]
        new_villages = [adj.NewVillage(r["village_code"], r["village"]) for r in group
                        if not r["township_before"]]
        if kind == "rename":
            result = adj.rename(conn, None, division_id=ids[town], name=name, dating=dating, actor=actor,
                                new_code=town, new_mca_code=mca_of.get(town),
                                village_codes_by_id={ids[r["village_code"]]: r["village_code"] for r in group
                                                     if r["township_before"]})
            if new_villages:  # pragma: no cover - the file has none for 旧馆街道
                raise Conflict("旧馆街道的新设社区未处理 / new communities of a renamed township are not handled",
                               parameter="adjustments")
        else:
            moved = [r for r in group if r["township_before"]]
            result = adj.transfer(conn, [], village_ids=[ids[r["village_code"]] for r in moved], to=town,
                                  to_name=name, to_mca_code=mca_of.get(town), dating=dating, actor=actor,
                                  codes_by_id={ids[r["village_code"]]: r["village_code"] for r in moved},
                                  new_villages=new_villages)
        done.append(result.id)
    return done


def _check_current_state(conn: Connection, nbs_rows: list[dict[str, str]], mca_of: dict[str, str | None]) -> None:
    """After the adjustments the current rows are the reference lists exactly (a guard)."""
    current = {r.nbs_code: r for r in conn.execute(text("""
        SELECT d.nbs_code, d.mca_code, d.full_name, d.status, p.nbs_code AS parent_code
        FROM divisions d LEFT JOIN divisions p ON p.id = d.parent_id WHERE d.level <> 'province'""")).all()}
    for row in nbs_rows:
        got = current.get(row["code"])
        want = (row["name"], row["parent_code"], mca_of.get(row["code"]), "active")
        if got is None or (got.full_name, got.parent_code, got.mca_code, got.status) != want:
            raise Conflict(f"调整后的区划与参考数据不符：{row['code']} {row['name']} / after the adjustments division "
                           f"{row['code']} differs from the reference lists: {got} vs {want}", parameter="divisions")
    if len(current) != len(nbs_rows):
        raise Conflict("调整后的区划数与参考数据不符 / the number of divisions differs from the reference lists",
                       parameter="divisions")
