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

Reading accepts whatever tool wrote the file: field names in any case, numbers stored as text
or floats, any known CRS (converted to CGCS2000 by loaders/crs.py). What cannot be read becomes a
problem of the package (rule `file_unreadable`, `crs_missing`, `crs_unknown`), never a crash.
"""
from __future__ import annotations

import hashlib
import logging
import sqlite3
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely

from loaders.crs import parse_crs
from loaders.errors import FileError
from registry.inspection import schema
from registry.inspection.package import Feature, PackageData, Problem

log = logging.getLogger(__name__)
logging.getLogger("pyogrio").setLevel(logging.WARNING)  # one INFO line per layer written

FORMATS = {".gpkg": "gpkg", ".shp": "shp", ".geojson": "geojson", ".json": "geojson"}
_GEO_LAYERS = (schema.LINES, schema.MARKERS, schema.REFERENCE_OBJECTS)
_DTYPES = {"int": "Int64", "float": "float64", "str": "object", "date": "object"}


def package_format(path: Path) -> str:
    if path.is_dir():
        return "shp"
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise FileError("unsupported_format", f"不支持的数据包格式 {path.name}（支持 .gpkg、.shp、.geojson）",
                        f"unsupported package format {path.name} (use .gpkg, .shp or .geojson)")
    return fmt


def shapefile_folder(path: Path) -> Path:
    return path if path.is_dir() or path.suffix == "" else path.with_suffix("")


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


def _checksum(paths: list[Path]) -> str:
    h = hashlib.sha256()
    for p in sorted(paths):
        if p.is_file():
            with p.open("rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    h.update(block)
    return h.hexdigest()


def _to_features(frame: pd.DataFrame, crs_label: str | None, layer: str, pkg: PackageData) -> list[Feature]:
    frame = frame.rename(columns={c: c.lower() for c in frame.columns})
    geoms = None
    if isinstance(frame, gpd.GeoDataFrame) and frame.geometry.name in frame.columns:
        geoms = frame.geometry.values
        if crs_label and len(geoms):
            try:
                crs = parse_crs(crs_label)
                if not crs.identity:
                    geoms = crs.geometries_to_cgcs2000(np.asarray(shapely.from_wkb(shapely.to_wkb(geoms))))
            except FileError as exc:
                pkg.problems.append(Problem(layer, None, "crs_unknown", exc.message))
                geoms = None
            except Exception as exc:  # pyproj cannot transform it (e.g. a local survey grid)
                pkg.problems.append(Problem(layer, None, "crs_unknown",
                                            f"无法转换到 CGCS2000 的坐标系：{crs_label[:80]} / a CRS that cannot be "
                                            f"converted to CGCS2000 ({type(exc).__name__}): {crs_label[:80]}"))
                geoms = None
        frame = pd.DataFrame(frame.drop(columns=frame.geometry.name))
    records = frame.replace({np.nan: None}).to_dict("records")
    out = []
    for i, rec in enumerate(records):
        wkb = None
        if geoms is not None:
            g = geoms[i]
            if g is not None and not shapely.is_empty(g):
                wkb = shapely.to_wkb(g, output_dimension=2)
        out.append(Feature(i + 1, rec, wkb))
    return out


def _layer_crs(path: Path, layer: str | None) -> str | None:
    info = pyogrio.read_info(path, layer=layer) if layer else pyogrio.read_info(path)
    return info.get("crs")


def read_package(path: Path) -> PackageData:
    """Read a package of any supported format; problems found are in `PackageData.problems`."""
    pkg = PackageData(source=str(path))
    try:
        fmt = package_format(path)
    except FileError as exc:
        pkg.problems.append(Problem(None, None, "unsupported_format", exc.message))
        return pkg
    if not path.exists() and not (fmt == "shp" and shapefile_folder(path).exists()):
        pkg.problems.append(Problem(None, None, "file_unreadable", f"文件不存在：{path} / no such file: {path}"))
        return pkg
    try:
        if fmt == "gpkg":
            pkg.checksum = _checksum([path])
            names = [str(n) for n, _ in pyogrio.list_layers(path)]
            sources = {n: (path, n) for n in names}
        elif fmt == "shp":
            folder = shapefile_folder(path)
            files = sorted(folder.iterdir())
            pkg.checksum = _checksum(files)
            sources = {}
            for f in files:
                if f.suffix.lower() == ".shp" or (f.suffix.lower() == ".dbf" and not f.with_suffix(".shp").exists()):
                    sources[f.stem.lower()] = (f, None)
        else:
            pkg.checksum = _checksum([path])
            sources = None
    except Exception as exc:  # GDAL/SQLite refuse a truncated or corrupt file in many ways
        pkg.problems.append(Problem(None, None, "file_unreadable",
                                    f"无法读取数据包（文件损坏或不完整）：{exc} / cannot read the package "
                                    f"(corrupt or truncated file): {exc}"))
        return pkg
    try:
        if sources is None:
            crs = _layer_crs(path, None)
            whole = pyogrio.read_dataframe(path)
            if not crs:
                pkg.problems.append(Problem(None, None, "crs_missing", "GeoJSON 文件没有坐标系 / the GeoJSON file "
                                            "declares no CRS (expected EPSG:4490)"))
            pkg.crs = crs
            if "layer" not in {c.lower() for c in whole.columns}:
                pkg.problems.append(Problem(None, None, "empty", "GeoJSON 要素缺少 layer 属性 / the features "
                                            "carry no `layer` property"))
                return pkg
            whole = whole.rename(columns={c: c.lower() for c in whole.columns if c != whole.geometry.name})
            for name, part in whole.groupby("layer", sort=False):
                part = part.drop(columns=["layer"]).reset_index(drop=True)
                pkg.layers[str(name)] = _to_features(part, crs, str(name), pkg)
        else:
            for name, (src, layer) in sources.items():
                is_geo = name in _GEO_LAYERS
                crs = _layer_crs(src, layer) if is_geo else None
                if is_geo and not crs:
                    pkg.problems.append(Problem(name, None, "crs_missing",
                                                f"图层 {name} 没有坐标系（缺少 .prj？） / layer {name} declares no "
                                                "CRS (a missing .prj?); expected EPSG:4490"))
                if is_geo and pkg.crs is None:
                    pkg.crs = crs
                kwargs = {"layer": layer} if layer else {}
                frame = pyogrio.read_dataframe(src, read_geometry=is_geo, **kwargs)
                pkg.layers[name] = _to_features(frame, crs, name, pkg)
    except Exception as exc:
        pkg.problems.append(Problem(None, None, "file_unreadable",
                                    f"无法读取数据包（文件损坏或不完整）：{exc} / cannot read the package "
                                    f"(corrupt or truncated file): {exc}"))
        return pkg
    pkg.info = {str(f.get("key")): str(f.get("value")) for f in pkg.layer(schema.PACKAGE_INFO) if f.get("key")}
    return pkg


def write_problems_csv(problems: list[Problem], path: Path) -> Path:
    import csv

    with path.open("w", newline="", encoding="utf-8-sig") as fh:  # BOM: Excel opens it right
        w = csv.DictWriter(fh, fieldnames=["layer", "feature", "rule", "message"])
        w.writeheader()
        for p in problems:
            w.writerow(p.as_row())
    return path
