"""Field packages (外业数据包) on disk: GeoPackage, a folder of Shapefiles, or one GeoJSON file.

- `.gpkg`: one layer per package layer (lines, markers, reference_objects; records, value_lists
  and package_info as attribute tables), EPSG:4490, with the Chinese field aliases and the value
  lists (condition, type, target) written to the GeoPackage schema extension
  (`gpkg_data_columns`, `gpkg_data_column_constraints`), which QGIS and GDAL read as aliases
  and field domains (pyogrio cannot write either itself).
- `.shp` (or a folder): `lines.shp`, `markers.shp`, `reference_objects.shp` with `.prj` and
  `.cpg` (UTF-8), and the attribute tables as `.dbf` files, in a folder named after the path
  (`field.shp` → `field/`).
- `.geojson`: one FeatureCollection; each feature's `layer` property names its layer.

Reading them back is registry/inspection/files.py (pyogrio without GeoPandas, so the API's
upload route reads a package without importing the loaders); `read_package` is re-exported here
for the CLI and the benches.
"""
from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely

from registry.inspection import schema
from registry.inspection.files import package_format, read_package, shapefile_folder
from registry.inspection.package import PackageData, Problem

log = logging.getLogger(__name__)
logging.getLogger("pyogrio").setLevel(logging.WARNING)  # one INFO line per layer written

__all__ = ["read_package", "write_package", "write_problems_csv"]
_DTYPES = {"int": "Int64", "float": "float64", "str": "object", "date": "object"}


def _frame(pkg: PackageData, name: str) -> pd.DataFrame | gpd.GeoDataFrame:
    layer = schema.LAYERS[name]
    feats = pkg.layer(name)
    data = {f.name: pd.Series([ft.attrs.get(f.name) for ft in feats], dtype=_DTYPES[f.kind]) for f in layer.fields}
    df = pd.DataFrame(data)
    if layer.geometry is None:
        return df
    geoms = shapely.from_wkb([ft.wkb for ft in feats]) if feats else np.array([], dtype=object)
    return gpd.GeoDataFrame(df, geometry=geoms, crs=f"EPSG:{schema.SRID}")


def write_package(pkg: PackageData, path: Path) -> list[Path]:
    """Write the package; returns the files written."""
    fmt = package_format(path)
    if fmt == "gpkg":
        if path.exists():
            path.unlink()
        for name in schema.LAYERS:
            frame = _frame(pkg, name)
            geom_type = schema.LAYERS[name].geometry
            pyogrio.write_dataframe(frame, path, layer=name, driver="GPKG",
                                    **({"geometry_type": geom_type} if geom_type else {}))
        _write_gpkg_schema(path)
        return [path]
    if fmt == "shp":
        folder = shapefile_folder(path)
        folder.mkdir(parents=True, exist_ok=True)
        out = []
        for name in schema.LAYERS:
            frame = _frame(pkg, name)
            target = folder / (f"{name}.shp" if schema.LAYERS[name].geometry else f"{name}.dbf")
            for stale in folder.glob(f"{name}.*"):
                stale.unlink()
            pyogrio.write_dataframe(frame, target, driver="ESRI Shapefile", encoding="UTF-8")
            out.append(target)
        return out
    frames = []
    for name in schema.LAYERS:
        frame = _frame(pkg, name)
        if not isinstance(frame, gpd.GeoDataFrame):
            frame = gpd.GeoDataFrame(frame, geometry=[None] * len(frame), crs=f"EPSG:{schema.SRID}")
        frame.insert(0, "layer", name)
        frames.append(frame)
    allf = gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), geometry="geometry", crs=f"EPSG:{schema.SRID}")
    if path.exists():
        path.unlink()
    pyogrio.write_dataframe(allf, path, driver="GeoJSON", geometry_type="Unknown")
    return [path]


def _write_gpkg_schema(path: Path) -> None:
    """Field aliases and value lists through the GeoPackage schema extension (GPKG 1.3 §2.3)."""
    db = sqlite3.connect(path)
    try:
        db.executescript("""
            CREATE TABLE IF NOT EXISTS gpkg_data_columns (
                table_name TEXT NOT NULL, column_name TEXT NOT NULL, name TEXT, title TEXT, description TEXT,
                mime_type TEXT, constraint_name TEXT, CONSTRAINT pk_gdc PRIMARY KEY (table_name, column_name));
            CREATE TABLE IF NOT EXISTS gpkg_data_column_constraints (
                constraint_name TEXT NOT NULL, constraint_type TEXT NOT NULL, value TEXT, min NUMERIC,
                min_is_inclusive BOOLEAN, max NUMERIC, max_is_inclusive BOOLEAN, description TEXT,
                CONSTRAINT gdcc_ntv UNIQUE (constraint_name, constraint_type, value));
            CREATE TABLE IF NOT EXISTS gpkg_extensions (
                table_name TEXT, column_name TEXT, extension_name TEXT NOT NULL, definition TEXT NOT NULL,
                scope TEXT NOT NULL, CONSTRAINT ge_tce UNIQUE (table_name, column_name, extension_name));
        """)
        for list_name, values in schema.VALUE_LIST_OF.items():
            for value, (zh, en) in values.items():
                db.execute("INSERT OR REPLACE INTO gpkg_data_column_constraints (constraint_name, constraint_type, "
                           "value, description) VALUES (?, 'enum', ?, ?)", (list_name, value, f"{zh} / {en}"))
        for layer in schema.LAYERS.values():
            for f in layer.fields:
                db.execute("INSERT OR REPLACE INTO gpkg_data_columns (table_name, column_name, name, title, "
                           "description, constraint_name) VALUES (?, ?, ?, ?, ?, ?)",
                           (layer.name, f.name, f.alias, f.alias, f.note or None, f.values))
        for table in ("gpkg_data_columns", "gpkg_data_column_constraints"):
            db.execute("INSERT OR IGNORE INTO gpkg_extensions VALUES (?, NULL, 'gpkg_schema', "
                       "'http://www.geopackage.org/spec/#extension_schema', 'read-write')", (table,))
        db.commit()
    finally:
        db.close()


def write_problems_csv(problems: list[Problem], path: Path) -> Path:
    import csv

    with path.open("w", newline="", encoding="utf-8-sig") as fh:  # BOM: Excel opens it right
        w = csv.DictWriter(fh, fieldnames=["layer", "feature", "rule", "message"])
        w.writeheader()
        for p in problems:
            w.writerow(p.as_row())
    return path
