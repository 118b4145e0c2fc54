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
from sqlalchemy import Connection, func, insert, select

from registry.changes import apply_change_set, open_change_set
from registry.db.tables import division_codes, divisions
from registry.errors import Conflict
from registry.geo import gcj02_to_wgs84
from registry.text import fold_village_suffix

log = logging.getLogger(__name__)

REFERENCE_DIR = Path(__file__).resolve().parent.parent / "data" / "reference"
NBS_FILE = "divisions_nbs_2023.csv"
MCA_FILE = "divisions_mca_2025.csv"
COUNTIES_FILE = "huzhou_counties_gcj02.geojson"
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


def load_reference(conn: Connection, *, actor: str = "registry", directory: Path = REFERENCE_DIR) -> dict[str, int]:
    """Insert the real divisions and county polygons in one change set. Refuses a second run."""
    if reference_loaded(conn):
        raise Conflict("区划已载入 / the reference divisions are already loaded", parameter="divisions")
    nbs_rows = _read_csv(directory / NBS_FILE)
    mca_by_key = {}
    for row in _read_csv(directory / MCA_FILE):
        mca_by_key[(row["level"], row["name"], row["parent_code"][:6])] = row["code"]
    counties = json.loads((directory / COUNTIES_FILE).read_text(encoding="utf-8"))
    polygons = {f["properties"]["code"]: gcj02_polygon_to_cgcs2000(f["geometry"]) for f in counties["features"]}

    checksum = hashlib.sha256(b"".join((directory / n).read_bytes() for n in (NBS_FILE, MCA_FILE, COUNTIES_FILE))).hexdigest()
    cs = open_change_set(conn, kind="load_reference", author=actor, source=str(directory.name),
                         reason="真实区划参考数据 / real reference divisions", checksum=checksum)

    ids: dict[str, int] = {}
    province_id = conn.execute(
        insert(divisions).values(level="province", name=PROVINCE["name"], full_name=PROVINCE["name"],
                                 nbs_code=PROVINCE["code"], mca_code=PROVINCE["code"], change_set_id=cs,
                                 source="GB/T 2260")
        .returning(divisions.c.id)
    ).scalar_one()
    ids[PROVINCE["code"]] = province_id
    code_rows = []
    counts = {"province": 1}
    # The NBS file lists parents before children (city, counties, townships, villages).
    for row in nbs_rows:
        level, nbs = row["level"], row["code"]
        county_code = nbs[:6]
        mca = mca_by_key.get((level, row["name"], county_code if level == "township" else row["parent_code"][:6]))
        if level in ("city", "county") and mca is None:
            mca = nbs  # both authorities agree on 6-digit codes
        name = fold_village_suffix(row["name"]) if level == "village" else row["name"]
        geom = polygons.get(nbs) if level in ("city", "county") else None
        ids[nbs] = conn.execute(
            insert(divisions).values(
                level=level, name=name, full_name=row["name"], parent_id=ids[row["parent_code"]],
                nbs_code=nbs, mca_code=mca if level != "village" else None,
                geom=func.ST_GeomFromWKB(to_wkb(geom), 4490) if geom is not None else None,
                change_set_id=cs, source="NBS 2023 / MCA 2025 (data/reference)",
            ).returning(divisions.c.id)
        ).scalar_one()
        code_rows.append({"code": nbs, "authority": "nbs2023", "valid_from": NBS_SINCE, "division_id": ids[nbs]})
        if mca and level != "village":
            code_rows.append({"code": mca, "authority": "mca2025", "valid_from": MCA_SINCE, "division_id": ids[nbs]})
        counts[level] = counts.get(level, 0) + 1
    conn.execute(insert(division_codes), code_rows)
    apply_change_set(conn, cs, actor=actor, counts=counts)
    log.info("reference divisions loaded: %s", counts)
    return counts
