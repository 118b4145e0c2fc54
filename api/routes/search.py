"""Search: free text and structured, autocomplete, reverse geocoding, batch matching.

Search and autocomplete answer from the in-memory gazetteer (no database round trip); reverse
geocoding asks PostGIS; batch matching streams its results back in input order.
"""
from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import ORJSONResponse, StreamingResponse

from api.deps import DbConn, scope
from registry.divisions import validate_code
from registry.errors import NotFound
from registry.search import Filters, autocomplete, parse_body, reverse, search, stream, structured
from registry.search.engine import STRUCTURED_FIELDS, structured_query
from registry.search.gazetteer import Gazetteer
from registry.search.validate import (MAX_BATCH_ROWS, check_limit, check_text, parse_bbox, parse_kinds,
                                      parse_near)

router = APIRouter(prefix="/v1", tags=["search"])


def get_gazetteer(request: Request):
    """The gazetteer source of the app (a SearchService; tests override it with a StaticSource)."""
    return request.app.state.search


Source = Annotated[object, Depends(get_gazetteer)]


async def _gazetteer(source) -> Gazetteer:
    if source.ready:
        return source.get()
    return await run_in_threadpool(source.get)  # the first load: wait off the event loop


def _filters(kind: str | None, division: str | None, bbox: str | None, near: str | None) -> tuple[Filters, str | None]:
    """Checked filters (before the gazetteer is needed) and the division code still to resolve."""
    code = validate_code(division, "division") if division is not None else None
    return Filters(kinds=parse_kinds(kind), bbox=parse_bbox(bbox), near=parse_near(near)), code


def _with_division(gaz: Gazetteer, filters: Filters, code: str | None) -> Filters:
    if code is not None:
        d = gaz.division_by_code(code)
        if d is None:
            raise NotFound(f"未找到区划代码 {code} / no division with code {code}", parameter="division")
        filters.division_id = d.id
    return filters


Q = Annotated[str | None, Query(description="free text: 吴兴区爱山街道人民路123号, renminlu 123, rml123 …")]
Limit = Annotated[int, Query(description="results, 1–50")]
Division = Annotated[str | None, Query(description="only results inside this division (code of either authority)")]
Bbox = Annotated[str | None, Query(description="minlon,minlat,maxlon,maxlat (CGCS2000/WGS84 degrees)")]
Near = Annotated[str | None, Query(description="lon,lat: prefer results near this point")]
Kind = Annotated[str | None, Query(description="address, place, division, facility, heritage (comma-separated)")]
Explain = Annotated[bool, Query(description="add the trace of every step")]
Field = Annotated[str | None, Query()]


def _structured_fields(**fields) -> dict[str, str | None]:
    out = {}
    for name, value in fields.items():
        out[name] = check_text(value, name, required=False)
    return out


@router.get("/search", summary="Search addresses, places, divisions, facilities and heritage items")
async def search_route(
    source: Source, q: Q = None, limit: Limit = 10, division: Division = None, bbox: Bbox = None,
    near: Near = None, kind: Kind = None, explain: Explain = False,
    county: Field = None, township: Field = None, village: Field = None, street: Field = None,
    compound: Field = None, number: Field = None, building: Field = None, unit: Field = None, room: Field = None,
) -> ORJSONResponse:
    """Free text in `q`, or structured fields (`county`, `township`, `village`, `street`, `compound`,
    `number`, `building`, `unit`, `room`). Each result says which levels matched and why; results
    below the documented confidence (0.6) carry `low_confidence: true`."""
    fields = _structured_fields(county=county, township=township, village=village, street=street,
                                compound=compound, number=number, building=building, unit=unit, room=room)
    if q is None and any(fields.values()):
        return await _structured(source, fields, limit, division, bbox, near, kind, explain)
    q = check_text(q, "q")
    check_limit(limit)
    filters, code = _filters(kind, division, bbox, near)
    gaz = await _gazetteer(source)
    filters = _with_division(gaz, filters, code)
    return ORJSONResponse(search(gaz, q, limit=limit, filters=filters, explain=explain))


async def _structured(source, fields, limit, division, bbox, near, kind, explain) -> ORJSONResponse:
    check_limit(limit)
    check_text(structured_query(fields) or None, "street")
    filters, code = _filters(kind, division, bbox, near)
    gaz = await _gazetteer(source)
    filters = _with_division(gaz, filters, code)
    return ORJSONResponse(structured(gaz, fields, limit=limit, filters=filters, explain=explain))


@router.get("/search/structured", summary="Structured search: one field per level")
async def structured_route(
    source: Source, county: Field = None, township: Field = None, village: Field = None, street: Field = None,
    compound: Field = None, number: Field = None, building: Field = None, unit: Field = None, room: Field = None,
    limit: Limit = 10, division: Division = None, bbox: Bbox = None, near: Near = None, kind: Kind = None,
    explain: Explain = False,
) -> ORJSONResponse:
    fields = _structured_fields(county=county, township=township, village=village, street=street,
                                compound=compound, number=number, building=building, unit=unit, room=room)
    if not any(fields.get(f) for f in ("street", "compound", "village", "township", "county")):
        check_text(None, "street")  # a name is needed: the error names `street`
    return await _structured(source, fields, limit, division, bbox, near, kind, explain)


@router.get("/autocomplete", summary="Names (and doors) starting with what was typed; pinyin and initials too")
async def autocomplete_route(
    source: Source,
    q: Annotated[str | None, Query(description="the start of a name or address: 吴兴区人民, renm, rml, 人民路12")] = None,
    limit: Limit = 10, kind: Kind = None,
) -> ORJSONResponse:
    q = check_text(q, "q")
    check_limit(limit)
    kinds = parse_kinds(kind)
    gaz = await _gazetteer(source)
    return ORJSONResponse({"suggestions": autocomplete(gaz, q, limit=limit, kinds=kinds)})


@router.get("/reverse", summary="The nearest address within a radius and the divisions containing a point")
def reverse_route(
    conn: DbConn,
    lon: Annotated[float, Query(description="longitude (CGCS2000 ≈ WGS84)")],
    lat: Annotated[float, Query(description="latitude")],
    radius: Annotated[float, Query(description="metres, at most 5000")] = 200.0,
) -> dict:
    return reverse(conn, lon, lat, radius)


@router.post("/match", summary=f"Batch matching (scope: agency): CSV or JSON lines, ≤ {MAX_BATCH_ROWS:,} rows",
             dependencies=[scope("agency")])
async def match_route(
    request: Request, source: Source,
    column: Annotated[str | None, Query(description="the address column (default 地址/address/q)")] = None,
    format: Annotated[str | None, Query(description="csv or jsonl (default: as the input)")] = None,
) -> StreamingResponse:
    """Send `text/csv` (with a header row) or `application/x-ndjson` (strings or objects with an
    address field). Results stream back in input order: row, input, id, kind, address, code,
    confidence, levels, low_confidence, reason."""
    body = await request.body()
    rows, fmt = parse_body(body, request.headers.get("content-type", ""), column)
    if format is not None:
        if format not in ("csv", "jsonl"):
            from registry.errors import InvalidQuery

            raise InvalidQuery("format 只能是 csv 或 jsonl / format must be csv or jsonl", parameter="format")
        fmt = format
    gaz = await _gazetteer(source)
    media = "text/csv; charset=utf-8" if fmt == "csv" else "application/x-ndjson"
    return StreamingResponse(stream(gaz, rows, fmt), media_type=media,
                             headers={"X-Rows": str(len(rows))})


__all__ = ["router", "get_gazetteer", "STRUCTURED_FIELDS"]
