"""From a Source to the registry's RowBatches: column mapping, geometry, CRS conversion."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Iterator

import numpy as np

from loaders.crs import Crs, resolve_crs
from loaders.errors import FileError
from loaders.mapping import Mapping, resolve_columns
from loaders.readers import RawBatch, Source
from registry.loading.base import RowBatch

_TYPE_NAMES = {0: "Point", 1: "LineString", 2: "LinearRing", 3: "Polygon", 4: "MultiPoint", 5: "MultiLineString",
               6: "MultiPolygon", 7: "GeometryCollection"}


@dataclass
class Prepared:
    source: Source
    fields: dict[str, str]  # registry field -> source column
    defaults: dict[str, str]
    crs: Crs
    geometry: str  # point | any
    coords: str  # lonlat | wkt | native
    notes: list[str] = field(default_factory=list)

    @property
    def ignored_columns(self) -> list[str]:
        used = set(self.fields.values())
        return [c for c in self.source.columns if c not in used]


def prepare(source: Source, kind_fields: tuple[str, ...], mapping: Mapping, crs_given: str | None, *,
            geometry: str, required: list[tuple[str, ...]], what: str, geometry_optional: bool = False) -> Prepared:
    fields = kind_fields + ("lon", "lat", "wkt")
    cols = resolve_columns(source.columns, fields, mapping)
    present = set(cols) | set(mapping.defaults)
    missing = [alts for alts in required if not any(a in present for a in alts)]
    if missing:
        need = "；".join(" 或 ".join(alts) for alts in missing)
        need_en = "; ".join(" or ".join(alts) for alts in missing)
        raise FileError("missing_columns", f"{what}缺少必需的列：{need}；文件的列：{', '.join(source.columns)}（可用 --mapping 指定）",
                        f"the file lacks required column(s): {need_en}; its columns: {', '.join(source.columns)} "
                        "(name them with --mapping)")
    if source.format != "csv" and source.geometry_type is not None and "wkt" not in mapping.columns:
        coords = "native"
        cols.pop("wkt", None)
    elif "lon" in cols and "lat" in cols:
        coords = "lonlat"
    elif "wkt" in cols:
        coords = "wkt"
    elif geometry_optional:
        return Prepared(source, cols, dict(mapping.defaults), Crs(label="none", epsg=4490), geometry, "none")
    else:
        raise FileError("missing_columns", f"{what}没有坐标：需要 lon/lat（经度/纬度）列或 WKT 列",
                        "no coordinates: the file needs lon/lat (经度/纬度) columns or a WKT column")
    crs, note = resolve_crs(source.declared_crs, crs_given, what=source.path.name)
    notes = [note] if note else []
    return Prepared(source, cols, dict(mapping.defaults), crs, geometry, coords, notes)


def _parse_floats(values) -> tuple[np.ndarray, list]:
    try:  # the common case, every value a number: parsed in numpy's C loop
        out = np.array(values, dtype=np.float64)
        if np.isfinite(out).all():
            return out, [None] * len(values)
    except (ValueError, TypeError):
        pass
    out = np.full(len(values), np.nan)
    bad: list = [None] * len(values)
    for i, v in enumerate(values):
        if v is None or v == "" or v.isspace():
            continue
        try:
            f = float(v)
        except ValueError:
            bad[i] = v
            continue
        if math.isfinite(f):
            out[i] = f
        else:
            bad[i] = v
    return out, bad


def row_batches(p: Prepared, size: int) -> Iterator[RowBatch]:
    for raw in p.source.batches(size):
        yield to_row_batch(p, raw)


def to_row_batch(p: Prepared, raw: RawBatch) -> RowBatch:
    n = len(raw.rows)
    values = {f: raw.columns[c] for f, c in p.fields.items() if f not in ("lon", "lat", "wkt")}
    for f, v in p.defaults.items():
        if f not in values:
            values[f] = [v] * n
    geom_issues: list = [None] * n
    batch = RowBatch(rows=raw.rows, values=values, issues=raw.issues, geom_issues=geom_issues)
    if p.coords == "none":
        return batch
    if p.coords == "lonlat":
        xs, bad_x = _parse_floats(raw.columns[p.fields["lon"]])
        ys, bad_y = _parse_floats(raw.columns[p.fields["lat"]])
        for i in range(n):
            if bad_x[i] is not None or bad_y[i] is not None:
                geom_issues[i] = ("bad_coordinates", {"value": f"{raw.columns[p.fields['lon']][i]}, "
                                                               f"{raw.columns[p.fields['lat']][i]}"})
        if p.geometry == "point":
            batch.lon, batch.lat = p.crs.to_cgcs2000(xs, ys)
            return batch
        import shapely

        geoms = shapely.points(xs, ys)
        geoms[np.isnan(xs) | np.isnan(ys)] = None
    elif p.coords == "wkt":
        import shapely

        texts = raw.columns[p.fields["wkt"]]
        geoms = np.empty(n, dtype=object)
        for i, t in enumerate(texts):
            if t is None or not t.strip():
                continue
            try:
                geoms[i] = shapely.from_wkt(t)
            except Exception:
                geom_issues[i] = ("bad_geometry", {"value": t[:60]})
    else:
        import shapely

        geoms = np.empty(n, dtype=object)
        for i, w in enumerate(raw.wkb or [None] * n):
            if w is None:
                continue
            try:
                geoms[i] = shapely.from_wkb(w)
            except Exception:
                geom_issues[i] = ("bad_geometry", {"value": "unreadable WKB"})
    geoms = np.asarray(geoms, dtype=object)
    present = np.array([g is not None and not g.is_empty for g in geoms], dtype=bool)
    if p.geometry == "point":
        xs = np.full(n, np.nan)
        ys = np.full(n, np.nan)
        for i in np.flatnonzero(present):
            g = geoms[i]
            if g.geom_type == "MultiPoint" and len(g.geoms) == 1:
                g = g.geoms[0]
            if g.geom_type != "Point":
                geom_issues[i] = ("bad_geometry", {"value": f"{g.geom_type}（地址应为点 / an address is a Point）"})
                continue
            xs[i], ys[i] = g.x, g.y
        batch.lon, batch.lat = p.crs.to_cgcs2000(xs, ys)
        return batch
    out: list = [None] * n
    types: list = [None] * n
    if present.any():
        import shapely

        idx = np.flatnonzero(present)
        converted = p.crs.geometries_to_cgcs2000(geoms[idx])
        converted = shapely.set_srid(converted, 4490)
        hexes = shapely.to_wkb(converted, hex=True, include_srid=True)
        type_ids = shapely.get_type_id(converted)
        for j, i in enumerate(idx):
            out[i] = hexes[j]
            types[i] = _TYPE_NAMES.get(int(type_ids[j]), "Unknown")
    batch.wkb, batch.geom_types = out, types
    return batch
