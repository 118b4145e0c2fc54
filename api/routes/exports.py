"""Route: a collection as a GIS file for agencies (`GET /v1/exports/{collection}?format=`).

The file is written by the same code as `registry export` (loaders/export_cli.py: pyogrio, rows in
batches from a server-side cursor) into a temporary folder and sent in chunks from there, then
removed; a Shapefile comes as a zip of its .shp/.shx/.dbf/.prj/.cpg. Large exports run inside the
request: there is no background job with progress yet.
"""
from __future__ import annotations

import shutil
from typing import Annotated

from fastapi import APIRouter, Path, Query
from fastapi.responses import FileResponse
from starlette.background import BackgroundTask

from api.deps import DbConn, scope
from registry.exports import FORMATS, parse_format, plan_export

router = APIRouter(prefix="/v1", tags=["exports"])

MEDIA_TYPES = {"gpkg": "application/geopackage+sqlite3", "shp": "application/zip", "geojson": "application/geo+json",
               "csv": "text/csv", "fgb": "application/flatgeobuf"}


@router.get("/exports/{collection}", summary="A collection as a GIS file (scope: agency)",
            dependencies=[scope("agency")],
            responses={200: {"description": "the file", "content": {m: {} for m in MEDIA_TYPES.values()}}})
def export_file(
    conn: DbConn,
    collection: Annotated[str, Path(description="a collection of /ogc/collections, e.g. addresses")],
    format: Annotated[str, Query(description="|".join(FORMATS), pattern="^(" + "|".join(FORMATS) + ")$")] = "gpkg",
    division: Annotated[str | None, Query(description="only this division and below (a code)")] = None,
    authority: Annotated[str | None, Query(description="nbs2023|mca2025 for an ambiguous township code")] = None,
    as_of: Annotated[str | None, Query(description="YYYY-MM-DD: as in force that day")] = None,
    crs: Annotated[str | None, Query(description="EPSG:…, default EPSG:4490")] = None,
    encoding: Annotated[str | None, Query(description="shp/csv attributes: utf-8 (default), gbk, gb18030")] = None,
) -> FileResponse:
    from loaders.export_cli import export_to_temp  # the file writer (pyogrio) lives with the loaders

    fmt = parse_format(format)
    plan = plan_export(conn, collection, division=division, authority=authority, as_of=as_of, crs=crs)
    path, folder, rows = export_to_temp(conn, plan, fmt, encoding=encoding)
    media = MEDIA_TYPES[fmt]
    if fmt == "csv":
        media += "; charset=" + ("gbk" if (encoding or "").lower() in ("gbk", "cp936") else
                                 "gb18030" if (encoding or "").lower() == "gb18030" else "utf-8")
    return FileResponse(path, media_type=media, filename=path.name,
                        headers={"X-Row-Count": str(rows), "Content-Crs": f"<http://www.opengis.net/def/crs/EPSG/0/"
                                                                          f"{plan.srid}>"},
                        background=BackgroundTask(shutil.rmtree, folder, ignore_errors=True))
