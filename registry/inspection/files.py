"""Field packages (外业数据包) read back from their files: a GeoPackage, a folder of Shapefiles, or
one GeoJSON file, with pyogrio (GDAL's Arrow stream) and shapely; no GeoPandas. The CLI and the
API's upload route read a package through this one reader; writing one (GeoPandas, and the
GeoPackage schema extension for aliases and value lists) is the loaders' (loaders/field_package.py).

Reading accepts whatever tool wrote the file: field names in any case, numbers stored as text
or floats, any known CRS (converted to CGCS2000 by registry/geo/crs.py). What cannot be read becomes a
problem of the package (rule `file_unreadable`, `crs_missing`, `crs_unknown`), never a crash.
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from registry.errors import FileError
from registry.inspection import schema
from registry.inspection.package import Feature, PackageData, Problem

FORMATS = {".gpkg": "gpkg", ".shp": "shp", ".geojson": "geojson", ".json": "geojson"}
GEO_LAYERS = (schema.LINES, schema.MARKERS, schema.REFERENCE_OBJECTS)


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


def _checksum(paths: list[Path]) -> str:
    h = hashlib.sha256()
    for p in sorted(paths):
        if p.is_file():
            with p.open("rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    h.update(block)
    return h.hexdigest()


def _read(src: Path, layer: str | None, *, geometry: bool) -> tuple[str | None, list[dict[str, Any]], list]:
    """(declared CRS, attribute rows with lower-case names, WKB per row or None) of one layer."""
    import pyogrio

    kwargs = {"layer": layer} if layer else {}
    meta, table = pyogrio.read_arrow(src, read_geometry=geometry, **kwargs)
    geom_col = (meta.get("geometry_name") or "wkb_geometry") if geometry else None
    wkbs: list = [None] * table.num_rows
    if geom_col and geom_col in table.column_names:
        wkbs = table.column(geom_col).to_pylist()
        table = table.drop_columns([geom_col])
    rows = [{k.lower(): v for k, v in r.items()} for r in table.to_pylist()]
    return meta.get("crs"), rows, wkbs


def _to_features(rows: list[dict[str, Any]], wkbs: list, crs_label: str | None, layer: str,
                 pkg: PackageData) -> list[Feature]:
    import numpy as np
    import shapely

    from registry.geo.crs import parse_crs

    geoms = shapely.from_wkb(np.array(wkbs, dtype=object)) if any(w is not None for w in wkbs) else None
    if geoms is not None and crs_label:
        try:
            crs = parse_crs(crs_label)
            if not crs.identity:
                geoms = crs.geometries_to_cgcs2000(geoms)
        except FileError as exc:
            pkg.problems.append(Problem(layer, None, "crs_unknown", exc.message))
            geoms = None
        except Exception as exc:  # pyproj cannot transform it (e.g. a local survey grid)
            pkg.problems.append(Problem(layer, None, "crs_unknown",
                                        f"无法转换到 CGCS2000 的坐标系：{crs_label[:80]} / a CRS that cannot be "
                                        f"converted to CGCS2000 ({type(exc).__name__}): {crs_label[:80]}"))
            geoms = None
    out = []
    for i, rec in enumerate(rows):
        wkb = None
        if geoms is not None:
            g = geoms[i]
            if g is not None and not shapely.is_empty(g):
                wkb = shapely.to_wkb(g, output_dimension=2)
        out.append(Feature(i + 1, {k: (None if isinstance(v, float) and v != v else v) for k, v in rec.items()}, wkb))
    return out


def read_package(path: Path) -> PackageData:
    """Read a package of any supported format; problems found are in `PackageData.problems`."""
    import pyogrio

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
            sources = {str(n): (path, str(n)) for n, _ in pyogrio.list_layers(path)}
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
            crs, rows, wkbs = _read(path, None, geometry=True)
            if not crs:
                pkg.problems.append(Problem(None, None, "crs_missing", "GeoJSON 文件没有坐标系 / the GeoJSON file "
                                            "declares no CRS (expected EPSG:4490)"))
            pkg.crs = crs
            if rows and "layer" not in rows[0]:
                pkg.problems.append(Problem(None, None, "empty", "GeoJSON 要素缺少 layer 属性 / the features "
                                            "carry no `layer` property"))
                return pkg
            parts: dict[str, tuple[list, list]] = {}
            for rec, wkb in zip(rows, wkbs):
                name = str(rec.pop("layer"))
                part = parts.setdefault(name, ([], []))
                part[0].append(rec)
                part[1].append(wkb)
            for name, (part_rows, part_wkbs) in parts.items():
                pkg.layers[name] = _to_features(part_rows, part_wkbs, crs, name, pkg)
        else:
            for name, (src, layer) in sources.items():
                is_geo = name in GEO_LAYERS
                crs, rows, wkbs = _read(src, layer, geometry=is_geo)
                crs = crs if is_geo else None
                if is_geo and not crs:
                    pkg.problems.append(Problem(name, None, "crs_missing",
                                                f"图层 {name} 没有坐标系（缺少 .prj？） / layer {name} declares no "
                                                "CRS (a missing .prj?); expected EPSG:4490"))
                if is_geo and pkg.crs is None:
                    pkg.crs = crs
                pkg.layers[name] = _to_features(rows, wkbs, crs, name, pkg)
    except Exception as exc:
        pkg.problems.append(Problem(None, None, "file_unreadable",
                                    f"无法读取数据包（文件损坏或不完整）：{exc} / cannot read the package "
                                    f"(corrupt or truncated file): {exc}"))
        return pkg
    pkg.info = {str(f.get("key")): str(f.get("value")) for f in pkg.layer(schema.PACKAGE_INFO) if f.get("key")}
    return pkg
