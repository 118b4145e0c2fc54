"""Output: city.gpkg (EPSG:4490), addresses.csv and manifest.json.

The CSV is written in chunks with a buffered binary writer ('\\n' line ends, UTF-8) and
hashed on the way; rows are sorted by (division, kind, street/compound/natural village,
number ...), so the same inputs always give the same bytes.
"""
from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely
from shapely.geometry import MultiPolygon

from data.generate.addresses import COMPOUND, DASH, FU, JIA, NATURAL, PLAIN, STREET, AddressTable
from data.generate.geom import fmt_fixed7

log = logging.getLogger(__name__)

CSV_COLUMNS = ("division_code", "street", "compound", "natural_village", "group", "number",
               "building", "unit", "room", "lon", "lat")
CRS = "EPSG:4490"
CHUNK = 200_000


def door_number(num: int, var: int, sub: int) -> str:
    if var == PLAIN:
        return f"{num}号"
    if var == DASH:
        return f"{num}-{sub}号"
    if var == FU:
        return f"附{sub}号"
    if var == JIA:
        return f"{num}{'甲' if sub == 0 else '乙'}号"
    raise ValueError(f"unknown door variant {var}")


def write_addresses_csv(path: Path, table: AddressTable, village_codes: list[str], street_names: list[str],
                        compound_names: list[str], natural_names: list[str], progress=None) -> str:
    """Write the CSV; return its SHA-256 (hex)."""
    order = table.sort_order()
    digest = hashlib.sha256()
    total = len(order)
    with path.open("wb", buffering=1 << 20) as fh:
        head = (",".join(CSV_COLUMNS) + "\n").encode("utf-8")
        fh.write(head)
        digest.update(head)
        for start in range(0, total, CHUNK):
            idx = order[start : start + CHUNK]
            lons = fmt_fixed7(table.xi[idx])
            lats = fmt_fixed7(table.yi[idx])
            rows = zip(table.div[idx].tolist(), table.kind[idx].tolist(), table.ref[idx].tolist(),
                       table.a[idx].tolist(), table.b[idx].tolist(), table.c[idx].tolist(), lons, lats)
            lines = []
            for div, kind, ref, a, b, c, lon, lat in rows:
                code = village_codes[div]
                if kind == COMPOUND:
                    lines.append(f"{code},,{compound_names[ref]},,,,{a}幢,{b}单元,{c}室,{lon},{lat}")
                elif kind == STREET:
                    lines.append(f"{code},{street_names[ref]},,,,{door_number(a, b, c)},,,,{lon},{lat}")
                elif kind == NATURAL:
                    lines.append(f"{code},,,{natural_names[ref]},{a}组,{b}号,,,,{lon},{lat}")
                else:
                    raise ValueError(f"unknown address kind {kind}")
            blob = ("\n".join(lines) + "\n").encode("utf-8")
            fh.write(blob)
            digest.update(blob)
            if progress:
                progress("write", min(start + CHUNK, total), total)
    return digest.hexdigest()


def _multi(geoms) -> list:
    return [MultiPolygon([g]) if g.geom_type == "Polygon" else g for g in geoms]


def frame(records: list[dict], geometry: list, *, multi: bool = False) -> gpd.GeoDataFrame:
    df = pd.DataFrame.from_records(records)
    geoms = _multi(geometry) if multi else list(geometry)
    return gpd.GeoDataFrame(df, geometry=gpd.GeoSeries(geoms, crs=CRS), crs=CRS)


def content_hash(gdf: gpd.GeoDataFrame) -> str:
    """SHA-256 of a layer's attributes and WKB: equal contents -> equal hash."""
    digest = hashlib.sha256()
    attrs = gdf.drop(columns=gdf.geometry.name)
    digest.update(json.dumps(list(attrs.columns), ensure_ascii=False).encode("utf-8"))
    rows = attrs.astype(object).where(attrs.notna(), None).values.tolist()
    digest.update(json.dumps(rows, ensure_ascii=False, default=str).encode("utf-8"))
    for wkb in shapely.to_wkb(np.asarray(gdf.geometry.values, dtype=object), output_dimension=2, byte_order=1):
        digest.update(wkb)
    return digest.hexdigest()


def write_gpkg(path: Path, layers: dict[str, gpd.GeoDataFrame], progress=None) -> dict[str, dict]:
    if path.exists():
        path.unlink()
    info: dict[str, dict] = {}
    if progress:
        progress("gpkg", 0, len(layers))
    for i, (name, gdf) in enumerate(layers.items()):
        kinds = sorted(set(gdf.geometry.geom_type))
        geometry_type = kinds[0] if len(kinds) == 1 else "Unknown"
        pyogrio.write_dataframe(gdf, path, layer=name, driver="GPKG", geometry_type=geometry_type)
        info[name] = {"rows": int(len(gdf)), "sha256": content_hash(gdf)}
        log.info("city.gpkg: layer %s, %d rows", name, len(gdf))
        if progress:
            progress("gpkg", i + 1, len(layers))
    return info


def write_manifest(path: Path, manifest: dict) -> None:
    text = json.dumps(manifest, ensure_ascii=False, indent=2, sort_keys=True) + "\n"
    path.write_bytes(text.encode("utf-8"))
