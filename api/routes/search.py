"""Search: free text and structured, autocomplete, reverse geocoding, batch matching.

Search and autocomplete answer from the in-memory gazetteer (no database round trip); reverse
geocoding asks PostGIS; batch matching streams its results back in input order.
"""
from __future__ import annotations

import re
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
import orjson
from fastapi.responses import Response, StreamingResponse

from api.deps import scope
from api.fastpath import read_path
from api.limits import body_chunks, match_limit
from registry.divisions import AUTHORITY_HELP, CodeMatch, settle_code, validate_authority, validate_code
from registry.errors import InvalidQuery
from registry.search import Filters, autocomplete, reverse, search, stream, structured
from registry.search.engine import STRUCTURED_FIELDS, structured_query
from registry.search.batch import COLUMNS, count_statuses, formatted
from registry.search.batch_input import RowReader
from registry.search.gazetteer import Gazetteer
from registry.serving.reverse import reverse_answer
from registry.search.validate import (MAX_BATCH_ROWS, check_limit, check_text, parse_bbox, parse_kinds,
                                      parse_near)

router = APIRouter(prefix="/v1", tags=["search"])


def _json(body: dict) -> Response:
    return Response(orjson.dumps(body), media_type="application/json")


async def get_gazetteer(request: Request):
    """The gazetteer source of the app (a SearchService; tests override it with a StaticSource).
    Async: a plain function would be run in the thread pool, a hop that costs more than a search."""
    return request.app.state.search


Source = Annotated[object, Depends(get_gazetteer)]


async def _gazetteer(source) -> Gazetteer:
    if source.ready:
        return source.get()
    return await run_in_threadpool(source.get)  # the first load: wait off the event loop


_FILTER_PARAMS = ("division", "authority", "kind", "bbox", "near")


def _filters(params) -> tuple[Filters, tuple[str, str | None] | None]:
    """Checked filters (before the gazetteer is needed) and the division (code, authority) still to resolve."""
    if not any(name in params for name in _FILTER_PARAMS):
        return Filters(), None  # what the checks below give for no filter at all
    division = params.get("division")
    authority = validate_authority(params.get("authority"))
    code = (validate_code(division, "division"), authority) if division is not None else None
    filters = Filters(kinds=parse_kinds(params.get("kind")), bbox=parse_bbox(params.get("bbox")),
                      near=parse_near(params.get("near")))
    return filters, code


def _with_division(gaz: Gazetteer, filters: Filters, code: tuple[str, str | None] | None) -> CodeMatch | None:
    """The division filter, read by the same rule as every other division code (a code the two
    authorities gave to different townships needs `authority`)."""
    if code is None:
        return None
    resolved = settle_code(code[0], gaz.code_readings(code[0]), authority=code[1], parameter="division")
    filters.division_id = resolved.division_id
    return resolved


def _answer(body: dict, resolved: CodeMatch | None) -> Response:
    if resolved is not None:
        body["division"] = resolved.as_dict()  # the division the filter was read as, by name
    return _json(body)


_ESCAPES = re.compile(r"(?:%[0-9A-Fa-f]{2})+")


def _unescape(text: str) -> str:
    """urllib.parse.unquote_plus of an ASCII text, a run of %XX escapes decoded at a time (an
    ASCII character ends any UTF-8 sequence, so decoding the runs one by one is decoding the whole)."""
    if "+" in text:
        text = text.replace("+", " ")
    if "%" not in text:
        return text
    return _ESCAPES.sub(lambda m: bytes.fromhex(m.group().replace("%", "")).decode("utf-8", "replace"), text)


def _query(request: Request):
    """The query string as `request.query_params` reads it (urllib.parse.parse_qsl with blank
    values kept, the last of a repeated name), as a dict: starlette's QueryParams cost a tenth of
    a search. A query string that is not ASCII (a client that did not escape it) goes to starlette."""
    raw: bytes = request.scope.get("query_string", b"")
    if not raw.isascii():
        return request.query_params
    params: dict[str, str] = {}
    for pair in raw.decode("ascii").split("&"):
        if not pair:
            continue
        name, _, value = pair.partition("=")
        params[_unescape(name)] = _unescape(value)
    return params


# The search routes read their query string themselves: with twenty optional parameters,
# FastAPI's per-parameter validation cost about 1 ms a request — three times the search itself.
# The parameters are still documented (OpenAPI) and checked (registry.search.validate).
_DOC = {
    "q": "free text: 吴兴区爱山街道人民路123号, renminlu 123, rml123 …",
    "limit": "results, 1–50 (default 10)",
    "division": "only results inside this division (code of either authority)",
    "authority": "with `division`: " + AUTHORITY_HELP,
    "bbox": "minlon,minlat,maxlon,maxlat (CGCS2000/WGS84 degrees)",
    "near": "lon,lat: prefer results near this point",
    "kind": "address, place, division, facility, heritage (comma-separated)",
    "explain": "true: add the trace of every step",
    **{f: f"structured field: {f}" for f in STRUCTURED_FIELDS},
}


def _openapi(*names: str) -> dict:
    return {"parameters": [{"name": n, "in": "query", "required": False, "description": _DOC[n],
                            "schema": {"type": "integer" if n == "limit" else "boolean" if n == "explain" else "string"}}
                           for n in names]}


def _int(params, name: str, default: int) -> int:
    raw = params.get(name)
    if raw is None:
        return default
    try:
        return int(raw)
    except ValueError:
        raise InvalidQuery(f"{name} 应为整数 / {name} must be an integer, got {raw!r}", parameter=name) from None


def _bool(params, name: str) -> bool:
    raw = (params.get(name) or "").strip().lower()
    if raw in ("", "0", "false", "no", "off"):
        return False
    if raw in ("1", "true", "yes", "on"):
        return True
    raise InvalidQuery(f"{name} 应为 true 或 false / {name} must be true or false, got {raw!r}", parameter=name)


def _fields(params) -> dict[str, str | None]:
    return {f: check_text(params.get(f), f, required=False) for f in STRUCTURED_FIELDS}


async def _structured(source, params, fields) -> Response:
    limit = check_limit(_int(params, "limit", 10))
    explain = _bool(params, "explain")
    check_text(structured_query(fields) or None, "street")
    filters, code = _filters(params)
    gaz = await _gazetteer(source)
    resolved = _with_division(gaz, filters, code)
    return _answer(structured(gaz, fields, limit=limit, filters=filters, explain=explain), resolved)


@router.get("/search", summary="Search addresses, places, divisions, facilities and heritage items",
            openapi_extra=_openapi("q", "limit", "division", "authority", "bbox", "near", "kind", "explain",
                                   *STRUCTURED_FIELDS))
async def search_route(request: Request, source: Source) -> Response:
    """Free text in `q`, or structured fields (`county`, `township`, `village`, `street`, `compound`,
    `number`, `building`, `unit`, `room`). Each result says which levels matched and why; results
    below the documented confidence (0.6) carry `low_confidence: true`."""
    params = _query(request)
    q = params.get("q")
    if q is None:
        fields = _fields(params)
        if any(fields.values()):
            return await _structured(source, params, fields)
    q = check_text(q, "q")
    limit = check_limit(_int(params, "limit", 10))
    explain = _bool(params, "explain")
    filters, code = _filters(params)
    gaz = await _gazetteer(source)
    resolved = _with_division(gaz, filters, code)
    return _answer(search(gaz, q, limit=limit, filters=filters, explain=explain), resolved)


@router.get("/search/structured", summary="Structured search: one field per level",
            openapi_extra=_openapi(*STRUCTURED_FIELDS, "limit", "division", "authority", "bbox", "near", "kind",
                                   "explain"))
async def structured_route(request: Request, source: Source) -> Response:
    params = request.query_params
    fields = _fields(params)
    if not any(fields.get(f) for f in ("street", "compound", "village", "township", "county")):
        check_text(None, "street")  # a name is needed: the error names `street`
    return await _structured(source, params, fields)


@router.get("/autocomplete", summary="Names (and doors) starting with what was typed; pinyin and initials too",
            openapi_extra={"parameters": [
                {"name": "q", "in": "query", "required": True, "schema": {"type": "string"},
                 "description": "the start of a name or address: 吴兴区人民, renm, rml, 人民路12"},
                {"name": "limit", "in": "query", "schema": {"type": "integer"}, "description": _DOC["limit"]},
                {"name": "kind", "in": "query", "schema": {"type": "string"}, "description": _DOC["kind"]}]})
async def autocomplete_route(request: Request, source: Source) -> Response:
    params = request.query_params
    q = check_text(params.get("q"), "q")
    limit = check_limit(_int(params, "limit", 10))
    kinds = parse_kinds(params.get("kind"))
    gaz = await _gazetteer(source)
    return _json({"suggestions": autocomplete(gaz, q, limit=limit, kinds=kinds)})


@router.get("/reverse", summary="The nearest address within a radius and the divisions containing a point",
            response_class=Response)
async def reverse_route(
    request: Request,
    lon: Annotated[float, Query(description="longitude (CGCS2000 ≈ WGS84)")],
    lat: Annotated[float, Query(description="latitude")],
    radius: Annotated[float, Query(description="metres, at most 5000")] = 200.0,
) -> Response:
    fast = await read_path(request)
    if fast is None:  # a test's own connection: its rows are uncommitted
        return _json(await run_in_threadpool(_reverse_on_request_connection, request, lon, lat, radius))
    return await reverse_response(request.app, fast, lon, lat, radius)


async def reverse_response(app, fast, lon: float, lat: float, radius: float) -> Response:
    """Called by the route and by the hot-path front (api/front.py)."""
    return _json(await reverse_answer(fast, getattr(app.state, "search", None), lon, lat, radius))


def _reverse_on_request_connection(request: Request, lon: float, lat: float, radius: float) -> dict:
    from api.deps import _request_connection

    with _request_connection(request) as conn:
        return reverse(conn, lon, lat, radius)


_FEED_BYTES = 256 * 1024


@router.post("/match", summary=f"Batch matching (scope: agency): CSV or JSON lines, ≤ {MAX_BATCH_ROWS:,} rows",
             dependencies=[scope("agency")])
async def match_route(
    request: Request, source: Source,
    column: Annotated[str | None, Query(description="the address column (default 地址/address/q)")] = None,
    format: Annotated[str | None, Query(description="csv or jsonl (streamed, default: as the input), or json "
                                                    "(one document with the counts per status)")] = None,
) -> Response:
    """Send `text/csv` (with a header row) or `application/x-ndjson` (strings or objects with an
    address field), in the `charset` of the Content-Type (`utf-8`, `gb18030`, `gbk`; detected
    when absent). Results stream back in input order: row, input, id, kind, address, code,
    confidence, levels, low_confidence, status (matched, partial, ambiguous, low_confidence,
    unmatched), reason. `format=json` answers one JSON document instead: `rows`, `counts` (rows
    per status) and `results`."""
    reader = RowReader(request.headers.get("content-type", ""), column)  # an unknown charset: refused at once
    if format is not None and format not in ("csv", "jsonl", "json"):
        raise InvalidQuery("format 只能是 csv、jsonl 或 json / format must be csv, jsonl or json", parameter="format")
    # The rows are read as the body arrives, a run of lines at a time in the thread pool (parsing
    # 256 KB is ~5 ms: too long for the event loop, too short to pay a hop per network chunk).
    pending: list[bytes] = []
    size = 0
    async for chunk in body_chunks(request, match_limit(request)):
        pending.append(chunk)
        size += len(chunk)
        if size >= _FEED_BYTES:
            await run_in_threadpool(reader.feed, b"".join(pending))
            pending, size = [], 0
    rows, fmt = await run_in_threadpool(_last_rows, reader, b"".join(pending))
    fmt = format or fmt
    gaz = await _gazetteer(source)
    if fmt == "json":
        results = await run_in_threadpool(lambda: [r for recs in formatted(gaz, rows, "records") for r in recs])
        return _json({"rows": len(rows), "counts": count_statuses(results),
                      "results": [{c: r.get(c) for c in COLUMNS} for r in results]})
    media = "text/csv; charset=utf-8" if fmt == "csv" else "application/x-ndjson"
    return StreamingResponse(stream(gaz, rows, fmt), media_type=media,
                             headers={"X-Rows": str(len(rows))})


def _last_rows(reader: RowReader, rest: bytes) -> tuple[list[str], str]:
    reader.feed(rest)
    return reader.finish()


__all__ = ["router", "get_gazetteer", "STRUCTURED_FIELDS"]
