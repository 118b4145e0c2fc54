"""Helpers shared by the loader tests (imported as a plain module: tests/ is not a package)."""
from __future__ import annotations

import csv
import os
from pathlib import Path

import geopandas as gpd
import pandas as pd
import shapely
from sqlalchemy import Connection, text

from loaders.run import FileOptions, load_addresses_file, load_entities_file
from registry.loading.addresses import AddressOptions
from registry.loading.entities import EntityOptions

VILLAGE_A = "330502003003"  # 龙庭社区, 爱山街道, 吴兴区
VILLAGE_B = "330502003006"  # 衣裳街社区, same township
TOWNSHIP = "330502003"  # 爱山街道
COUNTY = "330502"  # 吴兴区
# VILLAGE_A: lon 120.020–120.030, VILLAGE_B: lon 120.030–120.040; both lat 30.845–30.855
BOX_A = (120.020, 30.845, 120.030, 30.855)
BOX_B = (120.030, 30.845, 120.040, 30.855)
IN_A = (120.025, 30.85)
IN_B = (120.035, 30.85)
HEADER = ["division_code", "street", "compound", "natural_village", "group", "number", "building", "unit", "room",
          "lon", "lat"]


def addr(**kw) -> dict:
    """An address row: a street door on 人民路 in VILLAGE_A unless told otherwise."""
    row = {"division_code": VILLAGE_A, "street": "人民路", "number": "12号", "lon": IN_A[0], "lat": IN_A[1]}
    row.update(kw)
    return row


def flat(**kw) -> dict:
    row = {"division_code": VILLAGE_A, "street": None, "compound": "凤凰小区", "building": "5幢", "unit": "2单元",
           "room": "301室", "lon": IN_A[0] + 0.001, "lat": IN_A[1]}
    row.update(kw)
    return row


def write_csv(path: Path, rows: list[dict], header: list[str] | None = None, encoding: str = "utf-8") -> Path:
    header = header or list(dict.fromkeys(HEADER + [k for r in rows for k in r]))
    with open(path, "w", encoding=encoding, newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        for r in rows:
            w.writerow(["" if r.get(c) is None else r.get(c) for c in header])
    return path


def write_gis(path: Path, rows: list[dict], *, driver: str, crs: str | None = "EPSG:4490", encoding: str | None = None,
              layer: str | None = None, geometry: list | None = None) -> Path:
    df = pd.DataFrame([{k: v for k, v in r.items() if k not in ("lon", "lat")} for r in rows])
    for c in df.columns:
        df[c] = df[c].astype("string")  # text, as offices keep codes and numbers
    geoms = geometry if geometry is not None else [shapely.Point(r["lon"], r["lat"]) for r in rows]
    gdf = gpd.GeoDataFrame(df, geometry=gpd.GeoSeries(geoms), crs=crs)
    kwargs = {}
    if encoding:
        kwargs["encoding"] = encoding
    if layer:
        kwargs["layer"] = layer
    gdf.to_file(path, driver=driver, engine="pyogrio", **kwargs)
    return path


def load(conn: Connection, path: Path, *, crs: str | None = "EPSG:4490", fmt=None, layer=None, mapping=None,
         encoding=None, reject_file=None, **options):
    options.setdefault("source", Path(path).name)
    fo = FileOptions(format=fmt, layer=layer, crs=crs, mapping=mapping, encoding=encoding, reject_file=reject_file)
    return load_addresses_file(conn, Path(path), fo, AddressOptions(**options))


def load_kind(conn: Connection, kind: str, path: Path, *, crs: str | None = "EPSG:4490", layer=None,
              reject_file=None, **options):
    options.setdefault("source", Path(path).name)
    fo = FileOptions(crs=crs, layer=layer, reject_file=reject_file)
    return load_entities_file(conn, Path(path), kind, fo, EntityOptions(**options))


def box(b) -> shapely.Polygon:
    return shapely.box(*b)


def registry_state(conn: Connection) -> dict:
    """What a failed load must leave untouched."""
    return dict(conn.execute(text("""
        SELECT (SELECT count(*) FROM addresses) AS addresses, (SELECT count(*) FROM addresses_history) AS history,
               (SELECT count(*) FROM change_sets) AS change_sets, (SELECT count(*) FROM audit_log) AS audit,
               (SELECT count(*) FROM place_names) AS places,
               (SELECT coalesce(sum(version), 0) FROM divisions) AS division_versions""")).mappings().one())



def inside(engine, village: str) -> tuple[float, float]:
    """A point inside the village (or, without a polygon yet, inside its county)."""
    with engine.connect() as c:
        return tuple(c.execute(text("""
            SELECT ST_X(p), ST_Y(p) FROM (
                SELECT ST_PointOnSurface(coalesce(v.geom, t.geom, k.geom)) AS p FROM divisions v
                JOIN divisions t ON t.id = v.parent_id JOIN divisions k ON k.id = t.parent_id
                WHERE v.nbs_code = :v) x"""), {"v": village}).one())


def survey(engine, path: Path, village: str, street: str, n: int) -> Path:
    """A CSV of n doors 1号…n号 on `street` in `village`, a micro-degree apart."""
    x, y = inside(engine, village)
    rows = [{"division_code": village, "street": street, "number": f"{i}号", "lon": f"{x + (i % 50) * 1e-6:.7f}",
             "lat": f"{y + (i // 50) * 1e-6:.7f}"} for i in range(1, n + 1)]
    return write_csv(path, rows, header=["division_code", "street", "number", "lon", "lat"])


def cli_env(url: str, **extra: str) -> dict:
    env = dict(os.environ)
    env["REGISTRY_DATABASE_URL"] = url
    env.pop("REGISTRY_LOADER_PAUSE_AT", None)
    env.update(extra)
    return env


ROWS_OK = [addr()]
