"""Routes: boundary lines (界线) and markers (界桩), read-only, public scope.

Lines and markers are named by their stable id or by their code / number; lists are GeoJSON
FeatureCollections in CGCS2000 (EPSG:4490). Errors are problem+json (api/problems.py).
"""
from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query
from fastapi.responses import JSONResponse

from api.deps import ReadConn
from registry.addresses import Page
from registry.boundaries import get_line, line_history, list_lines
from registry.divisions import AUTHORITY_HELP, resolve_division_id, validate_authority
from registry.markers import get_marker, list_markers, marker_history

router = APIRouter(prefix="/v1", tags=["boundary lines and markers"])

_GEOJSON = "application/geo+json"


def _collection(features: list[dict], total: int, **extra) -> JSONResponse:
    body = {"type": "FeatureCollection", **extra, "numberMatched": total, "numberReturned": len(features),
            "features": features}
    return JSONResponse(body, media_type=_GEOJSON)


@router.get("/boundary-lines", summary="Boundary lines (界线), as GeoJSON: by level and/or division")
def boundary_lines(
    conn: ReadConn,
    level: Annotated[str | None, Query(description="county or township")] = None,
    division: Annotated[str | None, Query(description="division code (either authority): lines on its boundary")] = None,
    authority: Annotated[str | None, Query(description=AUTHORITY_HELP)] = None,
    geometry: Annotated[bool, Query(description="include the line geometry")] = True,
    limit: Annotated[int, Query(description="page size, 1–1000")] = 1000,
    offset: Annotated[int, Query(description="rows to skip")] = 0,
) -> JSONResponse:
    page = Page.of(limit, offset)
    validate_authority(authority)  # refused even without a division, never ignored
    division_id = resolve_division_id(conn, division, "division", authority)[0] if division else None
    features, total = list_lines(conn, level=level, division_id=division_id, geometry=geometry,
                                 limit=page.limit, offset=page.offset)
    return _collection(features, total)


@router.get("/boundary-lines/{line}", summary="A boundary line by its id or its 12-/18-digit code")
def boundary_line(
    conn: ReadConn,
    line: Annotated[str, Path(description="stable id, or line code such as 330502330503")],
    history: Annotated[bool, Query(description="every version instead of the current one")] = False,
) -> JSONResponse:
    if history:
        return JSONResponse(line_history(conn, line))
    return JSONResponse(get_line(conn, line), media_type=_GEOJSON)


@router.get("/boundary-lines/{line}/history", summary="Every version of a boundary line, oldest first")
def boundary_line_history(conn: ReadConn, line: Annotated[str, Path(description="stable id or line code")]) -> dict:
    return line_history(conn, line)


@router.get("/markers", summary="Boundary markers (界桩), as GeoJSON: all, or those of one line")
def markers(
    conn: ReadConn,
    line: Annotated[str | None, Query(description="the line's stable id or code")] = None,
    limit: Annotated[int, Query(description="page size, 1–1000")] = 1000,
    offset: Annotated[int, Query(description="rows to skip")] = 0,
) -> JSONResponse:
    page = Page.of(limit, offset)
    line_ref = get_line(conn, line, geometry=False)["properties"] if line else None
    features, total = list_markers(conn, line_ref["id"] if line_ref else None, limit=page.limit, offset=page.offset)
    extra = {"line": {"id": line_ref["id"], "code": line_ref["code"], "name": line_ref["name"]}} if line_ref else {}
    return _collection(features, total, **extra)


@router.get("/markers/{marker}", summary="A boundary marker by its id or number, with its reference objects (方位物)")
def marker(
    conn: ReadConn,
    marker: Annotated[str, Path(description="stable id, or the full number such as 330502330503007Q")],
    history: Annotated[bool, Query(description="every version instead of the current one")] = False,
) -> JSONResponse:
    if history:
        return JSONResponse(marker_history(conn, marker))
    return JSONResponse(get_marker(conn, marker), media_type=_GEOJSON)


@router.get("/markers/{marker}/history", summary="Every version of a boundary marker, oldest first")
def marker_history_route(conn: ReadConn, marker: Annotated[str, Path(description="stable id or number")]) -> dict:
    return marker_history(conn, marker)
