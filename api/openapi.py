"""The app's OpenAPI document (/openapi.json), completed in one place.

FastAPI writes the paths, parameters and bodies from the routes; this module, installed by the app
factory, adds what it cannot see:

- the errors: one `Problem` schema (RFC 9457, with the registry's extension members), answered as
  `application/problem+json`. 401, 429 and 431 on every operation (a wrong key, the rate limits, the
  header limit are app-wide), 403 where a scope dependency guards the route, 400 where anything is
  read from the request, 413 where a body is, 404 where a path names a resource or a query names a
  division or a line, 409 where a division code is read (a code the two authorities gave to two
  townships), 503 where the database is needed; and the few others (409, 410, 422) from `EXTRA_ERRORS`.
  FastAPI's 422 "Validation Error" is dropped: the registry answers invalid input with 400 (api/problems.py).
- the success responses' real media types and schemas (`SUCCESS`): GeoJSON, HTML, SVG, PNG, PDF, CSV,
  vector tiles…
- the constraints the registry enforces on parameters it reads itself (`PARAMETERS`), taken from the
  registry's own constants (division code pattern, authorities, page sizes, statuses, levels…).
- the keys as security schemes (X-API-Key or `Authorization: Bearer`), optional on public operations.
"""
from __future__ import annotations

import inspect
from typing import Any

import fastapi.routing
from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute

from api import deps
from api.problems import MEDIA_TYPE as PROBLEM
from registry.addresses import MAX_PAGE, PUBLIC_MAX_PAGE, STATUSES as ADDRESS_STATUSES
from registry.boundaries import LEVELS as BOUNDARY_LEVELS
from registry.authorities import AUTHORITIES
from registry.divisions import DIVISION_CODE
from registry.doorplates.reports import MAX_TEXT, REPORT_KINDS, REPORT_STATUSES
from registry.doorplates.tokens import MAC_BYTES, MAX_TOKEN_CHARS
from registry.heritage import LEVEL_SPELLINGS as HERITAGE_LEVEL_SPELLINGS
from registry.placename_categories import CATEGORY_SPELLINGS
from registry.features.collections import COLLECTIONS, EXPORT_FORMATS
from registry.search.validate import KINDS, MAX_LIMIT as SEARCH_MAX, MAX_QUERY_CHARS, MAX_RADIUS_M
from registry.tiles import LAYERS, MAX_ZOOM

INT64_MAX = 2**63 - 1
CODE_PATTERN = DIVISION_CODE.pattern  # 6, 9 or 12 digits
PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}

PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "description": "RFC 9457 problem details. Extension members: `parameter` (the parameter at fault), `errors` "
                   "(every invalid parameter), `candidates` (the readings of an ambiguous code), and others "
                   "named in an operation's description (`plate_status`, `replaced_by`, `problems`, `limit` …).",
    "type": "object",
    "required": ["type", "title", "status", "detail", "instance"],
    "properties": {
        "type": {"type": "string", "description": "urn:huzhou-registry:problem:<code>",
                 "pattern": "^urn:huzhou-registry:problem:[a-z0-9-]+$"},
        "title": {"type": "string", "description": "the HTTP status phrase"},
        "status": {"type": "integer", "minimum": 400, "maximum": 599},
        "detail": {"type": "string", "description": "in Chinese and English"},
        "instance": {"type": "string", "description": "the request path"},
        "parameter": {"type": "string", "description": "the parameter (or header, or `body`) at fault"},
        "errors": {"type": "array", "items": {
            "type": "object", "required": ["parameter", "message"],
            "properties": {"parameter": {"type": "string"}, "in": {"type": ["string", "null"]},
                           "message": {"type": ["string", "null"]}}}},
        "candidates": {"type": "array", "description": "409 ambiguous-code: each reading of the code",
                       "items": {"type": "object"}},
    },
    "additionalProperties": True,
}

_TEXT = {"type": "string"}
_BINARY = {"type": "string", "format": "binary"}
_OBJECT = {"type": "object"}
_NONBLANK = "[^\\s\\x00-\\x1f\\x7f-\\x9f]"
FEATURE = {"type": "object", "required": ["type"],
           "properties": {"type": {"const": "Feature"}, "geometry": {"type": ["object", "null"]},
                          "properties": {"type": ["object", "null"]}}}
FEATURE_COLLECTION = {"type": "object", "required": ["type", "features"],
                      "properties": {"type": {"const": "FeatureCollection"},
                                     "features": {"type": "array", "items": FEATURE},
                                     "numberReturned": {"type": "integer", "minimum": 0},
                                     "numberMatched": {"type": "integer", "minimum": 0}}}
GEOJSON = "application/geo+json"
JSON = "application/json"
HTML = "text/html"

# (METHOD, path) -> {status: {media type: schema}}: the success answers FastAPI cannot see.
SUCCESS: dict[tuple[str, str], dict[str, dict[str, dict]]] = {
    ("GET", "/v1/addresses"): {"200": {GEOJSON: FEATURE_COLLECTION}},
    ("GET", "/v1/boundary-lines"): {"200": {GEOJSON: FEATURE_COLLECTION}},
    ("GET", "/v1/markers"): {"200": {GEOJSON: FEATURE_COLLECTION}},
    # the feature, or (history=true) every version as JSON
    ("GET", "/v1/boundary-lines/{line}"): {"200": {GEOJSON: FEATURE, JSON: _OBJECT}},
    ("GET", "/v1/markers/{marker}"): {"200": {GEOJSON: FEATURE, JSON: _OBJECT}},
    ("GET", "/p/{token}"): {"200": {JSON: _OBJECT, HTML: _TEXT}},
    ("POST", "/p/{token}/report"): {"201": {JSON: _OBJECT},
                                     "303": {}},  # a form post: back to the scan page
    ("GET", "/v1/doorplates/{plate_id}/qr.svg"): {"200": {"image/svg+xml": _TEXT}},
    ("GET", "/v1/doorplates/{plate_id}/qr.png"): {"200": {"image/png": _BINARY}},
    ("GET", "/v1/inspections/{round_number}/report"): {
        "200": {HTML: _TEXT, "text/csv": _TEXT, "application/pdf": _BINARY, JSON: _OBJECT}},
    ("POST", "/v1/inspections/{round_number}/packages"): {"201": {JSON: _OBJECT},
                                                           "200": {JSON: _OBJECT}},  # already proposed
    ("POST", "/v1/match"): {"200": {"text/csv": _TEXT, "application/x-ndjson": _TEXT, JSON: _OBJECT}},
    ("GET", "/v1/exports/{collection}"): {"200": {
        "application/geopackage+sqlite3": _BINARY, "application/zip": _BINARY, GEOJSON: _OBJECT,
        "text/csv": _TEXT, "application/flatgeobuf": _BINARY}},
    ("GET", "/v1/export-jobs/{job_id}/file"): {"200": {
        "application/geopackage+sqlite3": _BINARY, "application/zip": _BINARY, GEOJSON: _OBJECT,
        "text/csv": _TEXT, "application/flatgeobuf": _BINARY}},
    ("GET", "/tiles/{layer_name}/{z}/{x}/{y}.mvt"): {"200": {"application/vnd.mapbox-vector-tile": _BINARY},
                                                      "204": {}, "304": {}},
    ("GET", "/heritage/atlas"): {"200": {HTML: _TEXT}},
    ("GET", "/heritage/atlas.pdf"): {"200": {"application/pdf": _BINARY}},
}

# (METHOD, path) -> {property: schema}: what the registry checks in a body FastAPI describes loosely.
_NAME = {"type": "string", "minLength": 1, "pattern": _NONBLANK}
BODY_PROPERTIES: dict[tuple[str, str], dict[str, dict]] = {
    ("POST", "/p/{token}/report"): {"kind": {"type": "string", "enum": list(REPORT_KINDS)},
                                     "text": {"type": ["string", "null"], "maxLength": MAX_TEXT}},
    ("POST", "/v1/placenames/check"): {"name": _NAME, "category": {"type": "string",
                                                                   "enum": sorted(CATEGORY_SPELLINGS)},
                                       "division": {"type": "string", "pattern": CODE_PATTERN}},
}

# (METHOD, path) -> the request body of a route that reads its body itself.
REQUEST_BODIES: dict[tuple[str, str], dict] = {
    ("POST", "/v1/match"): {"required": True, "description": "addresses: CSV with a header row, or JSON lines "
                            "(strings or objects with an address field)",
                            "content": {"text/csv": {"schema": _TEXT}, "application/x-ndjson": {"schema": _TEXT}}},
}

_ERROR_TEXT_503 = "数据库不可用 / the database is unavailable"
# (METHOD, path) -> statuses beyond the derived ones, each with what it means there.
EXTRA_ERRORS: dict[tuple[str, str], dict[int, str]] = {
    ("GET", "/p/{token}"): {410: "the plate was replaced or revoked, or its address retired (`plate_status`, "
                                 "`replaced_by`)", 503: _ERROR_TEXT_503},
    ("POST", "/v1/inspections/{round_number}/packages"): {422: "the package has problems (`problems`); nothing "
                                                               "was stored"},
    ("GET", "/v1/changes"): {404: "`since` names no applied change set"},
    ("GET", "/v1/addresses"): {403: "a status other than active, or offset paging, without an agency key"},
    ("GET", "/v1/export-jobs/{job_id}/file"): {409: "the job is not done yet"},
    ("GET", "/v1/doorplates/{plate_id}/qr.svg"): {409: "REGISTRY_PUBLIC_BASE_URL is not public"},
    ("GET", "/v1/doorplates/{plate_id}/qr.png"): {409: "REGISTRY_PUBLIC_BASE_URL is not public"},
    ("POST", "/v1/doorplates/issue"): {409: "the addresses cannot be issued plates as asked"},
    **{("POST", f"/v1/doorplates/{{plate_id}}/{a}"): {409: "the plate's status does not allow it"}
       for a in ("activate", "replace", "revoke")},
    **{("POST", f"/v1/change-sets/{{change_set_id}}/{a}"): {409: "stale, or not in a state that allows it"}
       for a in ("approve", "reject", "apply")},
    ("POST", "/v1/adjustments"): {409: "the adjustment contradicts what is stored"},
    ("POST", "/v1/placenames/{pid}/rename"): {409: "the name is taken"},
}

# The HTML pages answer their errors as HTML to a browser (Accept: text/html).
HTML_ERRORS = {("GET", "/p/{token}"), ("POST", "/p/{token}/report")}

_LIMIT = {"type": "integer", "minimum": 1}
_ID = {"type": "integer", "format": "int64", "minimum": 1, "maximum": INT64_MAX}
_TEXT_PARAM = {"type": "string", "maxLength": MAX_QUERY_CHARS,
               # no control characters but tab; something that is not white space
               "pattern": "^[^\\x00-\\x08\\x0a-\\x1f\\x7f-\\x9f]*[^\\s\\x00-\\x1f\\x7f-\\x9f]"
                          "[^\\x00-\\x08\\x0a-\\x1f\\x7f-\\x9f]*$"}
_KINDS = {"type": "string", "pattern": "^\\s*(" + "|".join(KINDS) + ")?\\s*(,\\s*(" + "|".join(KINDS)
          + ")?\\s*)*$"}
_NUM = "[-+]?(\\d+\\.?\\d*|\\.\\d+)([eE][-+]?\\d+)?"

# Parameter schemas by name (every operation), then by (path, name): what the registry checks.
PARAMETERS: dict[str, dict] = {
    "authority": {"type": "string", "enum": list(AUTHORITIES)},
    "division": {"type": "string", "pattern": CODE_PATTERN},
    "as_of": {"type": "string", "format": "date"},
    "offset": {"type": "integer", "minimum": 0, "maximum": INT64_MAX},
    "address_id": _ID, "plate_id": _ID, "pid": _ID, "item_id": _ID,
}
# A division filter that the route skips when empty (`?division=`).
_OPTIONAL_CODE = {"type": "string", "pattern": "^(" + CODE_PATTERN.strip("^$") + ")?$",
                  "description": "a division code of either authority (6, 9 or 12 digits); empty: no filter"}
# base64url of key id and plate id (varints) and the MAC: the signature is checked, not described
_TOKEN = {"type": "string", "pattern": "^[A-Za-z0-9_-]+$", "minLength": -(-(2 + MAC_BYTES) * 4 // 3),
          "maxLength": MAX_TOKEN_CHARS}
PATH_PARAMETERS: dict[tuple[str, str], dict] = {
    ("/v1/divisions/{code}", "code"): {"type": "string", "pattern": CODE_PATTERN},
    **{(p, "division"): _OPTIONAL_CODE for p in ("/heritage/atlas", "/heritage/atlas.pdf", "/v1/adjustments",
                                                   "/v1/boundary-lines", "/v1/heritage", "/v1/placenames")},
    ("/p/{token}", "token"): _TOKEN, ("/p/{token}/report", "token"): _TOKEN,
    **{(p, "line"): {"type": "string", "pattern": "^([0-9]{1,12}|[0-9]{18})$",
                     "description": "stable id, or 12- or 18-digit line code"}
       for p in ("/v1/boundary-lines/{line}", "/v1/boundary-lines/{line}/history")},
    ("/v1/markers", "line"): {"type": "string", "pattern": "^([0-9]{1,12}|[0-9]{18})?$",
                              "description": "the line's stable id or 12- or 18-digit code; empty: every marker"},
    **{(p, "marker"): {"type": "string", "pattern": "^([0-9]{1,11}|([0-9]{12}|[0-9]{18})[0-9]{3}[QABCDE])$",
                       "description": "stable id, or the full number such as 330502330503007Q"}
       for p in ("/v1/markers/{marker}", "/v1/markers/{marker}/history")},
    ("/v1/heritage", "level"): {"type": "string", "enum": sorted(HERITAGE_LEVEL_SPELLINGS)},
    ("/v1/placenames", "category"): {"type": "string", "enum": ["", *sorted(CATEGORY_SPELLINGS)],
                                     "description": "a category code, Chinese name or synonym (road, 桥梁 …)"},
    ("/v1/addresses", "limit"): {**_LIMIT, "maximum": MAX_PAGE, "default": 100,
                                 "description": f"page size: 1–{PUBLIC_MAX_PAGE} without a key, "
                                                f"1–{MAX_PAGE} with an agency key"},
    ("/v1/addresses", "status"): {"type": "string", "enum": list(ADDRESS_STATUSES)},
    ("/v1/boundary-lines", "limit"): {**_LIMIT, "maximum": MAX_PAGE, "default": 1000},
    ("/v1/boundary-lines", "level"): {"type": "string", "enum": list(BOUNDARY_LEVELS)},
    ("/v1/markers", "limit"): {**_LIMIT, "maximum": MAX_PAGE, "default": 1000},
    ("/v1/doorplates/reports", "limit"): {**_LIMIT, "maximum": MAX_PAGE, "default": 100},
    ("/v1/doorplates/reports", "status"): {"type": "string", "enum": [*REPORT_STATUSES, "all"], "default": "open"},
    ("/v1/reverse", "lon"): {"type": "number", "minimum": -180, "maximum": 180},
    ("/v1/reverse", "lat"): {"type": "number", "minimum": -90, "maximum": 90},
    ("/v1/reverse", "radius"): {"type": "number", "exclusiveMinimum": 0, "maximum": MAX_RADIUS_M, "default": 200},
    ("/v1/match", "format"): {"type": "string", "enum": ["csv", "jsonl", "json"]},
    ("/tiles/{layer_name}/{z}/{x}/{y}.mvt", "layer_name"): {"type": "string", "enum": list(LAYERS)},
    ("/tiles/{layer_name}.json", "layer_name"): {"type": "string", "enum": list(LAYERS)},
    ("/tiles/{layer_name}/{z}/{x}/{y}.mvt", "z"): {"type": "integer", "minimum": 0, "maximum": MAX_ZOOM},
    ("/tiles/{layer_name}/{z}/{x}/{y}.mvt", "x"): {"type": "integer", "minimum": 0,
                                                    "description": "column 0–2^z−1"},
    ("/tiles/{layer_name}/{z}/{x}/{y}.mvt", "y"): {"type": "integer", "minimum": 0,
                                                    "description": "row 0–2^z−1 (XYZ: 0 at the north)"},
    ("/v1/exports/{collection}", "format"): {"type": "string", "enum": list(EXPORT_FORMATS), "default": "gpkg"},
    ("/v1/exports/{collection}", "collection"): {"type": "string", "enum": list(COLLECTIONS)},
    ("/v1/exports/{collection}", "crs"): {"type": "string", "pattern": "^\\s*([Ee][Pp][Ss][Gg]:)?[0-9]{4,6}\\s*$",
                                          "description": "EPSG:…, a code PostGIS knows (default EPSG:4490)"},
    ("/v1/exports/{collection}", "encoding"): {"type": "string", "enum": ["utf-8", "utf8", "gbk", "cp936", "gb18030"],
                                               "description": "shp and csv only: utf-8 (default), gbk, gb18030"},
}
for _path in ("/v1/search", "/v1/search/structured", "/v1/autocomplete"):
    PATH_PARAMETERS[(_path, "limit")] = {**_LIMIT, "maximum": SEARCH_MAX, "default": 10}
    PATH_PARAMETERS[(_path, "kind")] = _KINDS
    PATH_PARAMETERS[(_path, "bbox")] = {"type": "string", "pattern": f"^\\s*{_NUM}\\s*(,\\s*{_NUM}\\s*){{3}}$",
                                        "description": "minlon,minlat,maxlon,maxlat (min < max)"}
    PATH_PARAMETERS[(_path, "near")] = {"type": "string", "pattern": f"^\\s*{_NUM}\\s*,\\s*{_NUM}\\s*$"}
    PATH_PARAMETERS[(_path, "explain")] = {"type": "boolean"}
PATH_PARAMETERS[("/v1/autocomplete", "q")] = _TEXT_PARAM
PATH_PARAMETERS[("/v1/search", "q")] = _TEXT_PARAM

_ERROR_TEXT = {
    400: "参数无效 / an invalid parameter or body (`parameter`, `errors`)",
    401: "密钥无效 / a wrong, unknown or revoked key (a key that is sent is checked everywhere)",
    403: "权限不足 / the key lacks the scope this needs",
    404: "未找到 / not found",
    409: "冲突 / a conflict: a division code the two authorities gave to different townships (`candidates`)",
    410: "已失效 / gone",
    413: "请求体过大 / the body is too large",
    422: "无法处理 / unprocessable",
    429: "请求过多 / too many requests (Retry-After)",
    431: "请求头过大 / the request headers are too large",
    503: _ERROR_TEXT_503,
}
_HEADERS = {
    401: {"WWW-Authenticate": {"schema": {"type": "string"}, "description": 'ApiKey header="X-API-Key"'}},
    429: {"Retry-After": {"schema": {"type": "integer", "minimum": 0}, "description": "seconds"}},
}
_KEY_HEADERS = {"x-api-key", "authorization"}
SECURITY_SCHEMES = {
    "ApiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key", "description": "an agency or editor key"},
    "Bearer": {"type": "http", "scheme": "bearer", "description": "the same key as a bearer token"},
}


def _scopes(route: APIRoute) -> set[str]:
    """The scopes the route's dependencies require (api.deps.scope)."""
    found: set[str] = set()
    stack = [route.dependant]
    while stack:
        dep = stack.pop()
        call = dep.call
        if call is not None and getattr(call, "__qualname__", "").startswith("scope.<locals>"):
            found.add(inspect.getclosurevars(call).nonlocals.get("name", "?"))
        stack.extend(dep.dependencies)
    return found


_DB_DEPENDENCIES = {getattr(deps, n) for n in ("get_conn", "get_read_conn") if hasattr(deps, n)}


def _uses_db(route: APIRoute) -> bool:
    stack = [route.dependant]
    while stack:
        dep = stack.pop()
        if dep.call in _DB_DEPENDENCIES:
            return True
        stack.extend(dep.dependencies)
    return False


def _error(status: int, text: str, html: bool) -> dict:
    content = {PROBLEM: {"schema": PROBLEM_REF}}
    if html:
        content[HTML] = {"schema": _TEXT}
    out = {"description": text, "content": content}
    if status in _HEADERS:
        out["headers"] = _HEADERS[status]
    return out


def _patch_body(schema: dict, properties: dict[str, dict], doc_schemas: dict) -> None:
    if not properties:
        return
    if "$ref" in schema:
        schema = doc_schemas[schema["$ref"].rsplit("/", 1)[-1]]
    for name, override in properties.items():
        if name in schema.get("properties", {}):
            description = schema["properties"][name].get("description")
            schema["properties"][name] = {**override, **({"description": description} if description else {})}


def _complete(op: dict, method: str, path: str, route: APIRoute, doc_schemas: dict) -> None:
    key = (method, path)
    params = [p for p in op.get("parameters", []) if p.get("name", "").lower() not in _KEY_HEADERS]
    for p in params:
        override = PATH_PARAMETERS.get((path, p["name"])) or PARAMETERS.get(p["name"])
        if override:
            description = override.get("description")
            p["schema"] = {k: v for k, v in override.items() if k != "description"}
            if description and not p.get("description"):
                p["description"] = description
    if params:
        op["parameters"] = params
    else:
        op.pop("parameters", None)
    if key in REQUEST_BODIES:
        op["requestBody"] = REQUEST_BODIES[key]
    for content in op.get("requestBody", {}).get("content", {}).values():
        _patch_body(content.get("schema", {}), BODY_PROPERTIES.get(key, {}), doc_schemas)
    scopes = _scopes(route)
    op["security"] = [{"ApiKey": []}, {"Bearer": []}] if scopes else [{}, {"ApiKey": []}, {"Bearer": []}]
    responses = op.setdefault("responses", {})
    responses.pop("422", None)
    for status, content in SUCCESS.get(key, {}).items():
        entry = responses.setdefault(status, {"description": "OK"})
        if content:
            entry["content"] = {m: {"schema": s} for m, s in content.items()}
        else:
            entry.pop("content", None)
    if any(s in responses for s in ("201", "202", "204")) and "200" in responses and ("200" not in
                                                                                     SUCCESS.get(key, {})):
        responses.pop("200")  # FastAPI's default 200 next to the declared status
    names = {p["name"] for p in params}
    errors: dict[int, str] = {401: _ERROR_TEXT[401], 429: _ERROR_TEXT[429], 431: _ERROR_TEXT[431]}
    if params or "requestBody" in op:
        errors[400] = _ERROR_TEXT[400]
    if scopes:
        errors[403] = _ERROR_TEXT[403] + f" ({', '.join(sorted(scopes))})"
    if any(p["in"] == "path" for p in params) or names & {"division", "line"} or "requestBody" in op:
        errors[404] = _ERROR_TEXT[404]
    if names & {"division", "code"} or "requestBody" in op and method != "GET":
        errors[409] = _ERROR_TEXT[409]
    if "requestBody" in op or method in ("POST", "PUT", "PATCH"):
        errors[413] = _ERROR_TEXT[413]
        errors[400] = _ERROR_TEXT[400]
    if _uses_db(route) or route.path.startswith("/v1/search") or route.path == "/v1/autocomplete":
        errors[503] = _ERROR_TEXT[503]
    for status, text in EXTRA_ERRORS.get(key, {}).items():
        errors[status] = (errors[status] + "; " if status in errors else "") + text
    html = key in HTML_ERRORS
    for status in sorted(errors):
        responses[str(status)] = _error(status, errors[status], html)


def _api_routes(app: FastAPI) -> list:
    """The app's API routes, those of included routers too (FastAPI ≥ 0.16x includes routers lazily)."""
    iterate = getattr(fastapi.routing, "iter_route_contexts", None)
    if iterate is None:
        return [r for r in app.routes if isinstance(r, APIRoute)]
    return [c for c in iterate(app.routes) if isinstance(c.original_route, APIRoute)]


def build(app: FastAPI) -> dict[str, Any]:
    doc = get_openapi(title=app.title, version=app.version, openapi_version=app.openapi_version,
                      summary=app.summary, description=app.description, routes=app.routes, tags=app.openapi_tags,
                      servers=app.servers)
    for route in _api_routes(app):
        if not route.include_in_schema:
            continue
        item = doc.get("paths", {}).get(route.path_format, {})
        for method in route.methods:
            op = item.get(method.lower())
            if op is not None:
                _complete(op, method, route.path_format, route, doc.get("components", {}).get("schemas", {}))
    components = doc.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    schemas["Problem"] = PROBLEM_SCHEMA
    components["securitySchemes"] = SECURITY_SCHEMES
    return doc


def install(app: FastAPI) -> None:
    """Serve the completed document at /openapi.json (built once, on first request)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = build(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
