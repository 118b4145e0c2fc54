"""`registry export COLLECTION --format gpkg|shp|geojson|csv|fgb -o FILE`: a collection as a file.

The rows come from `registry.exports` (the public views the OGC API serves) as one `COPY … TO
STDOUT` parsed into Arrow record batches by pyarrow (loaders/export_arrow.py: no Python object per
row) and go to GDAL through `pyogrio.write_arrow` as a stream, in one GDAL transaction with the
spatial index built once at the end, so an export of the whole city holds one batch in memory. CSV is written here (GDAL's CSV
driver has no GBK): UTF-8 with a BOM by default, so that Excel opens it right, points as x/y
columns (lon/lat in a geographic CRS) and other geometries as WKT. `--encoding gbk` writes the
Shapefile's .dbf (and says so in its .cpg) or the CSV in GBK for older desktop GIS; characters
GBK lacks are refused by name, never replaced silently.
"""
from __future__ import annotations

import csv
import logging
from contextlib import closing
import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Callable, Optional

import typer

from registry.errors import Conflict, InvalidQuery, NotFound
from registry.features.collections import EXPORT_FORMATS

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from registry.exports import ExportPlan

log = logging.getLogger(__name__)

DRIVERS = {"gpkg": "GPKG", "shp": "ESRI Shapefile", "geojson": "GeoJSON", "fgb": "FlatGeobuf"}
SUFFIXES = {"gpkg": ".gpkg", "shp": ".shp", "geojson": ".geojson", "csv": ".csv", "fgb": ".fgb"}
ENCODINGS = {"utf-8": "UTF-8", "utf8": "UTF-8", "gbk": "CP936", "cp936": "CP936", "gb18030": "GB18030"}
_GDAL_TYPES = {"Point": "Point", "MultiPolygon": "MultiPolygon", "MultiLineString": "MultiLineString",
               "POINT": "Point", "LINESTRING": "LineString", "POLYGON": "Polygon", "MULTIPOINT": "MultiPoint",
               "MULTILINESTRING": "MultiLineString", "MULTIPOLYGON": "MultiPolygon"}


def _stringify(values: list, kind: str) -> list:
    if kind in ("date", "date-time") and any(not isinstance(v, (str, type(None))) for v in values[:1]):
        return [v.isoformat() if v is not None else None for v in values]
    return values


def _reader(conn: Connection, plan: ExportPlan, counter: list[int], progress: Callable[[int], None] | None):
    """The rows as a stream of Arrow batches built from PostgreSQL's COPY (loaders/export_arrow.py)."""
    import pyarrow as pa

    from loaders.export_arrow import arrow_schema, record_batches

    def batches():
        # closed here (the reader is closed by write_export), not by the garbage collector: the COPY
        # lives in `conn`'s transaction
        with closing(record_batches(conn, plan)) as rows:
            for batch in rows:
                counter[0] += batch.num_rows
                if progress:
                    progress(counter[0])
                yield batch
                log.info("exported %d rows of %s", counter[0], plan.collection.id)

    return pa.RecordBatchReader.from_batches(arrow_schema(plan), batches())


def _geometry_type(conn: Connection, plan: ExportPlan, fmt: str) -> str:
    declared = plan.collection.geometry_type
    if declared in _GDAL_TYPES:
        return _GDAL_TYPES[declared]
    found = plan.geometry_types(conn)
    if fmt == "shp" and len(found) > 1:
        raise InvalidQuery(f"Shapefile 只能存一种几何类型，{plan.collection.id} 中有 {'、'.join(found)}；请用 gpkg / a "
                           f"Shapefile holds one geometry type, {plan.collection.id} has {', '.join(found)}: use gpkg",
                           parameter="format")
    return _GDAL_TYPES.get(found[0], "Unknown") if len(found) == 1 else "Unknown"


def check_encoding(value: str | None, fmt: str) -> str | None:
    """The GDAL name of an attribute encoding asked for (shp and csv only)."""
    if value is None:
        return None
    enc = ENCODINGS.get(value.strip().lower())
    if enc is None or fmt not in ("shp", "csv"):
        raise InvalidQuery(f"encoding 只用于 shp 和 csv，可为 utf-8、gbk、gb18030 / encoding applies to shp and csv and "
                           f"must be utf-8, gbk or gb18030, got {value!r}", parameter="encoding")
    return enc


def write_export(conn: Connection, plan: ExportPlan, fmt: str, path: Path, *, encoding: str | None = None,
                 bom: bool = True, progress: Callable[[int], None] | None = None) -> int:
    """Write the plan's rows to `path` in `fmt`; returns the number of rows written. `progress` is
    called with the rows written so far after each batch."""
    import pyogrio
    from pyproj import CRS

    from registry.exports import parse_format

    fmt = parse_format(fmt)
    enc = check_encoding(encoding, fmt)
    path = Path(path)
    if fmt == "csv":
        return _write_csv(conn, plan, path, enc, bom, progress)
    counter = [0]
    # a Shapefile: GDAL recodes the UTF-8 values into this encoding and names it in the .cpg
    shp_encoding = (enc or "UTF-8") if fmt == "shp" else None
    if path.exists():
        path.unlink()  # GDAL will not overwrite some formats in place
    geometry_type = _geometry_type(conn, plan, fmt)
    reader = _reader(conn, plan, counter, progress)
    try:
        pyogrio.write_arrow(reader, str(path), layer=plan.collection.id.replace("-", "_"), driver=DRIVERS[fmt],
                            geometry_name="geometry", geometry_type=geometry_type,
                            crs=CRS.from_epsg(plan.srid).to_wkt(), encoding=shp_encoding)
    finally:
        reader.close()
    return counter[0]


def _write_csv(conn: Connection, plan: ExportPlan, path: Path, enc: str | None, bom: bool,
               progress: Callable[[int], None] | None) -> int:
    from shapely import from_wkb

    codec = {"CP936": "gbk", "GB18030": "gb18030"}.get(enc or "", "utf-8-sig" if bom else "utf-8")
    points = plan.collection.geometry_type == "Point"
    x, y = ("lon", "lat") if plan.geographic else ("x", "y")
    names = [p.name for p in plan.props]
    header = ["id", *names, *((x, y) if points else ("wkt",))]
    n = 0
    with open(path, "w", encoding=codec, errors="strict", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(header)
        with closing(plan.batches(conn)) as rows:  # closed on the way out, even when a row is refused
            for batch in rows:
                geoms = from_wkb(batch["geometry"])
                cols = [_stringify(batch[name], p.type) for name, p in zip(names, plan.props)]
                for i, fid in enumerate(batch["id"]):
                    g = geoms[i]
                    tail = ((round(g.x, 7), round(g.y, 7)) if g is not None else ("", "")) if points else \
                        ((g.wkt if g is not None else ""),)
                    try:
                        out.writerow([fid, *(c[i] for c in cols), *tail])
                    except UnicodeEncodeError as exc:
                        raise InvalidQuery(f"第 {fid} 号要素含有 {codec} 无法表示的字符 {exc.object[exc.start:exc.end]!r}；"
                                           f"请用 utf-8 / feature {fid} has a character {codec} cannot hold: use utf-8",
                                           parameter="encoding") from None
                n += len(batch["id"])
                if progress:
                    progress(n)
    return n


def zip_shapefile(shp: Path, target: Path) -> None:
    """The Shapefile's parts (.shp .shx .dbf .prj .cpg) in one zip, for a download."""
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as z:
        for part in sorted(shp.parent.glob(shp.stem + ".*")):
            z.write(part, part.name)


def export_to_folder(conn: Connection, plan: ExportPlan, fmt: str, folder: Path, *, encoding: str | None = None,
                     bom: bool = True, progress: Callable[[int], None] | None = None) -> tuple[Path, int]:
    """(file to send, rows) written into `folder` (made if missing) — a Shapefile comes zipped."""
    folder.mkdir(parents=True, exist_ok=True)
    name = plan.collection.id.replace("-", "_")
    path = folder / f"{name}{SUFFIXES[fmt]}"
    n = write_export(conn, plan, fmt, path, encoding=encoding, bom=bom, progress=progress)
    if fmt == "shp":
        zipped = folder / f"{name}.zip"
        zip_shapefile(path, zipped)
        path = zipped
    return path, n


def export_to_temp(conn: Connection, plan: ExportPlan, fmt: str, *, encoding: str | None = None,
                   bom: bool = True, progress: Callable[[int], None] | None = None) -> tuple[Path, Path, int]:
    """(file to send, temporary folder to remove afterwards, rows) — a Shapefile comes zipped."""
    folder = Path(tempfile.mkdtemp(prefix="registry-export-"))
    try:
        path, n = export_to_folder(conn, plan, fmt, folder, encoding=encoding, bom=bom, progress=progress)
        return path, folder, n
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise


def export(
    collection: Annotated[str, typer.Argument(help="addresses, divisions-county|township|village, boundary-lines, "
                                                   "boundary-markers, streets, place-names, heritage-items, "
                                                   "facilities, doorplates")],
    output: Annotated[Path, typer.Option("--output", "-o", help="the file to write")],
    fmt: Annotated[str, typer.Option("--format", "-f", help="|".join(EXPORT_FORMATS))] = "gpkg",
    division: Annotated[Optional[str], typer.Option(help="only this division and below (a code)")] = None,
    authority: Annotated[Optional[str], typer.Option(help="nbs2023|mca2025, for an ambiguous township code")] = None,
    as_of: Annotated[Optional[str], typer.Option("--as-of", help="YYYY-MM-DD: as in force that day")] = None,
    crs: Annotated[Optional[str], typer.Option(help="EPSG:…, default EPSG:4490 (CGCS2000)")] = None,
    encoding: Annotated[Optional[str], typer.Option(help="shp/csv attributes: utf-8 (default), gbk, gb18030")] = None,
    bom: Annotated[bool, typer.Option("--bom/--no-bom", help="CSV in UTF-8 starts with a BOM (for Excel)")] = True,
) -> None:
    """Export a collection (the public view the OGC API serves) to a GIS file."""
    from loaders.cli_support import engine
    from registry.exports import plan_export

    eng = engine()
    try:
        with eng.connect() as conn:
            plan = plan_export(conn, collection, division=division, authority=authority, as_of=as_of, crs=crs)
            n = write_export(conn, plan, fmt, output, encoding=encoding, bom=bom)
    except (InvalidQuery, NotFound, Conflict) as exc:  # the user's mistake: one line, exit 2
        typer.secho(f"错误 / error: {exc}", fg=typer.colors.RED, err=True)
        raise typer.Exit(code=2) from None
    finally:
        eng.dispose()
    typer.echo(f"{n} 条 / rows of {collection} → {output} ({fmt}, EPSG:{plan.srid})")
