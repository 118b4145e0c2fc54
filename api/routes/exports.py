"""Route: a collection as a GIS file for agencies (`GET /v1/exports/{collection}?format=`).

The file is written by the same code as `registry export` (loaders/export_cli.py: pyogrio, rows in
batches from a server-side cursor) into a temporary folder and sent in chunks from there, then
removed; a Shapefile comes as a zip of its .shp/.shx/.dbf/.prj/.cpg. A large export is better a job:
`POST /v1/exports/{collection}` answers 202 at once, `GET /v1/export-jobs/{id}` tells its progress
and, when done, links the file (api/export_jobs.py: the jobs are rows of `export_jobs` and files
under REGISTRY_EXPORT_DIR, so any worker answers).
"""
from __future__ import annotations

import shutil
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import FileResponse, JSONResponse
from starlette.background import BackgroundTask

from api.deps import DbConn, scope
from api.export_jobs import ExportJobs
from registry.errors import Conflict, NotFound
from registry.keys import ApiKey
from registry.exports import parse_format, plan_export
from registry.features.collections import EXPORT_FORMATS

router = APIRouter(prefix="/v1", tags=["exports"])

MEDIA_TYPES = {"gpkg": "application/geopackage+sqlite3", "shp": "application/zip", "geojson": "application/geo+json",
               "csv": "text/csv", "fgb": "application/flatgeobuf"}


# The parameters of an export, the same for a file answered at once and for a job.
Collection = Annotated[str, Path(description="a collection of /ogc/collections, e.g. addresses")]
Format = Annotated[str, Query(description="|".join(EXPORT_FORMATS), pattern="^(" + "|".join(EXPORT_FORMATS) + ")$")]
Division = Annotated[str | None, Query(description="only this division and below (a code)")]
Authority = Annotated[str | None, Query(description="nbs2023|mca2025 for an ambiguous township code")]
AsOf = Annotated[str | None, Query(description="YYYY-MM-DD: as in force that day")]
Crs = Annotated[str | None, Query(description="EPSG:…, default EPSG:4490")]
Encoding = Annotated[str | None, Query(description="shp/csv attributes: utf-8 (default), gbk, gb18030")]


@router.get("/exports/{collection}", summary="A collection as a GIS file (scope: agency)",
            dependencies=[scope("agency")],
            responses={200: {"description": "the file", "content": {m: {} for m in MEDIA_TYPES.values()}}})
def export_file(
    conn: DbConn,
    collection: Collection,
    format: Format = "gpkg",
    division: Division = None,
    authority: Authority = None,
    as_of: AsOf = None,
    crs: Crs = None,
    encoding: Encoding = None,
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


def _jobs(request: Request) -> ExportJobs:
    jobs = getattr(request.app.state, "export_jobs", None)
    if jobs is None:  # made on first use, on the app's engine
        jobs = request.app.state.export_jobs = ExportJobs(request.app.state.engine,
                                                          request.app.state.settings.export_dir)
    return jobs


def _job_body(request: Request, job) -> dict:
    body = job.as_dict()
    base = str(request.url_for("export_job", job_id=job.id))
    body["links"] = [{"rel": "monitor", "href": base, "type": "application/json"}]
    if job.status == "done":
        body["download"] = base + "/file"
        body["links"].append({"rel": "enclosure", "href": body["download"], "type": MEDIA_TYPES[job.format]})
    return body


@router.post("/exports/{collection}", summary="Start an export job, answered at once (scope: agency)",
             status_code=202, responses={202: {"description": "the job: poll its monitor link"}})
def start_export_job(
    request: Request,
    conn: DbConn,
    collection: Collection,
    key: ApiKey = scope("agency"),
    format: Format = "gpkg",
    division: Division = None,
    authority: Authority = None,
    as_of: AsOf = None,
    crs: Crs = None,
    encoding: Encoding = None,
) -> JSONResponse:
    from loaders.export_cli import check_encoding

    fmt = parse_format(format)
    check_encoding(encoding, fmt)
    plan = plan_export(conn, collection, division=division, authority=authority, as_of=as_of, crs=crs)
    job = _jobs(request).start(plan, fmt, agency=key.agency, encoding=encoding)
    body = _job_body(request, job)
    return JSONResponse(body, status_code=202, headers={"Location": body["links"][0]["href"]})


@router.get("/export-jobs/{job_id}", name="export_job", summary="An export job's progress (scope: agency)",
            dependencies=[scope("agency")])
def export_job(request: Request, job_id: Annotated[str, Path(max_length=40)]) -> dict:
    return _job_body(request, _jobs(request).get(job_id))


@router.get("/export-jobs/{job_id}/file", summary="The file of a finished export job (scope: agency)",
            dependencies=[scope("agency")])
def export_job_file(request: Request, job_id: Annotated[str, Path(max_length=40)]) -> FileResponse:
    job = _jobs(request).get(job_id)
    if job.status == "done" and job.path is not None and not job.path.exists():
        raise NotFound(f"导出任务 {job_id} 的文件已不在 / the file of export job {job_id} is gone", parameter="job_id")
    if job.status != "done" or job.path is None:
        raise Conflict(f"导出任务 {job_id} 尚未完成（{job.status}）/ export job {job_id} is not done ({job.status})",
                       parameter="job_id")
    return FileResponse(job.path, media_type=MEDIA_TYPES[job.format], filename=job.path.name,
                        headers={"X-Row-Count": str(job.rows_written)})
