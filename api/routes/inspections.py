"""Routes: boundary joint inspections (scope editor): rounds, records, package uploads, reports.

An uploaded package (a .gpkg, a .geojson, or a .zip of the Shapefile folder) is read by the same
reader as the CLI (registry/inspection/files.py: one reader of the package files) and becomes a
proposed change set, or a 422 problem listing every problem found (nothing is stored).
"""
from __future__ import annotations

import tempfile
import zipfile
from pathlib import Path as FsPath
from typing import Annotated, Optional

from fastapi import APIRouter, File, Path, Query, Request, UploadFile
from fastapi.responses import HTMLResponse, JSONResponse, Response

from api.deps import DbConn, scope
from api.problems import problem
from registry.errors import InvalidQuery
from registry.inspection import get_round, list_records, list_rounds, propose_package
from registry.inspection.files import read_package
from registry.inspection.validate import Tolerances
from registry.keys import ApiKey

router = APIRouter(prefix="/v1", tags=["inspections"])

Editor = Annotated[ApiKey, scope("editor")]
RoundNo = Annotated[int, Path(ge=1, le=99, description="the round's number, 4 = 第四轮")]
MAX_UPLOAD = 512 << 20  # a whole county's package is a few MB; refuse what cannot be one
_SUFFIXES = (".gpkg", ".geojson", ".json", ".zip")


@router.get("/inspections/rounds", summary="Inspection rounds (scope: editor)")
def rounds(conn: DbConn, key: Editor) -> dict:
    return {"rounds": list_rounds(conn)}


@router.get("/inspections/{round_number}", summary="One round (scope: editor)")
def one_round(conn: DbConn, key: Editor, round_number: RoundNo) -> dict:
    return get_round(conn, round_number)


@router.get("/inspections/{round_number}/records", summary="The round's records (scope: editor)")
def records(conn: DbConn, key: Editor, round_number: RoundNo, line: Optional[str] = None,
            limit: Annotated[int, Query(ge=1, le=10000)] = 1000) -> dict:
    return {"records": list_records(conn, round_number, line_code=line, limit=limit)}


def _unpack(upload: UploadFile, folder: FsPath) -> FsPath:
    name = FsPath(upload.filename or "package").name
    suffix = FsPath(name).suffix.lower()
    if suffix not in _SUFFIXES:
        raise InvalidQuery(f"不支持的文件类型 {name}（应为 .gpkg、.geojson 或 Shapefile 文件夹的 .zip） / unsupported "
                           f"file {name}: send a .gpkg, a .geojson or a .zip of the Shapefile folder", parameter="file")
    target = folder / name
    size = 0
    with target.open("wb") as fh:
        while block := upload.file.read(1 << 20):
            size += len(block)
            if size > MAX_UPLOAD:
                raise InvalidQuery("文件过大 / the file is too large", parameter="file")
            fh.write(block)
    if suffix != ".zip":
        return target
    out = folder / FsPath(name).stem
    try:
        with zipfile.ZipFile(target) as zf:
            for member in zf.namelist():
                p = FsPath(member)
                if p.is_absolute() or ".." in p.parts or member.endswith("/"):
                    continue
                (out / p.name).parent.mkdir(parents=True, exist_ok=True)
                (out / p.name).write_bytes(zf.read(member))
    except zipfile.BadZipFile:
        raise InvalidQuery("zip 文件损坏 / the zip file is corrupt", parameter="file") from None
    return out


@router.post("/inspections/{round_number}/packages", status_code=201,
             summary="Upload an edited field package: a proposed change set, or every problem (scope: editor)")
def upload_package(request: Request, conn: DbConn, key: Editor, round_number: RoundNo,
                   file: Annotated[UploadFile, File(description=".gpkg, .geojson or a .zip of the Shapefile folder")]):
    settings = request.app.state.settings
    tol = Tolerances(marker_m=settings.inspection_marker_tolerance_m, node_m=settings.inspection_node_tolerance_m)
    get_round(conn, round_number)
    with tempfile.TemporaryDirectory(prefix="pkg-") as tmp:
        path = _unpack(file, FsPath(tmp))
        pkg = read_package(path)
        pkg.source = FsPath(file.filename or path.name).name
        result = propose_package(conn, pkg, round_number, actor=f"{key.agency} ({key.prefix})", tolerances=tol)
    if not result.ok:  # validation wrote nothing (its scratch table is temporary)
        return problem(422, "invalid-package",
                       f"数据包有 {len(result.problems)} 个问题，登记库未改变 / the package has "
                       f"{len(result.problems)} problems; nothing was stored", request.url.path,
                       parameter="file", problems=[p.as_row() for p in result.problems])
    body = {"change_set_id": result.change_set_id, "status": "proposed", "counts": result.counts,
            "already_proposed": result.existing}
    return JSONResponse(body, status_code=200 if result.existing else 201)


@router.get("/inspections/{round_number}/report", summary="The round's report: HTML with an SVG map, CSV or PDF (scope: editor)")
def report(conn: DbConn, key: Editor, round_number: RoundNo,
           format: Annotated[str, Query(pattern="^(html|csv|pdf|json)$")] = "html") -> Response:
    from registry.inspection.report import build_report, report_csv, report_html

    rep = build_report(conn, round_number)
    if format == "json":
        return JSONResponse({k: v for k, v in rep.items() if k != "map"})
    if format == "csv":
        return Response(report_csv(rep), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="round{round_number}.csv"'})
    if format == "pdf":
        from registry.inspection.report import report_pdf

        return Response(report_pdf(rep), media_type="application/pdf")
    return HTMLResponse(report_html(rep))
