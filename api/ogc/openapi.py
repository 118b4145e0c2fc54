"""The OpenAPI 3.0 document of the OGC API under /ogc (`service-desc` of its landing page).

Clients read it: QGIS takes the page size's maximum from the `limit` parameter of each
collection's items path, GDAL looks for the paths it needs. The app's own /openapi.json (3.1)
describes the /v1 API; this one describes /ogc only, with each collection's paths spelled out.
"""
from __future__ import annotations

from typing import Any

from registry.features.collections import COLLECTIONS
from registry.features.query import DEFAULT_LIMIT, MAX_LIMIT, SUPPORTED_CRS

_PROBLEM = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/problem"}}}
_JSON = {"application/json": {"schema": {"type": "object"}}}
_GEOJSON = {"application/geo+json": {"schema": {"type": "object"}}}


def _ok(description: str, content: dict) -> dict:
    return {"description": description, "content": content}


def _errors(*statuses: int) -> dict:
    text = {400: "参数无效 / invalid parameter", 404: "未找到 / not found"}
    return {str(s): {"description": text[s], "content": _PROBLEM} for s in statuses}


def _q(name: str, schema: dict, description: str, **extra) -> dict:
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": description, **extra}


# RFC 3339: a day or a date-time, or an interval a/b with `..` or nothing for an open end (not a lone `..`)
_INSTANT = ("(000[1-9]|00[1-9][0-9]|0[1-9][0-9]{2}|[1-9][0-9]{3})-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"
            "([Tt ]([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\\.[0-9]+)?)?([Zz]|[+-]([01][0-9]|2[0-3]):[0-5][0-9])?)?")
_DATETIME = f"^({_INSTANT}|({_INSTANT}|\\.\\.)?/({_INSTANT}|\\.\\.)?)$"

PARAMETERS: dict[str, dict] = {
    "limit": _q("limit", {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT},
                "每页要素数 / features per page", style="form", explode=False),
    "offset": _q("offset", {"type": "integer", "minimum": 0, "default": 0}, "跳过的要素数 / features to skip"),
    "after": _q("after", {"type": "integer", "minimum": 0},
                "从此编号之后开始（下一页链接带上）/ start after this feature id (the next links carry it)"),
    "bbox": _q("bbox", {"type": "array", "minItems": 4, "maxItems": 6, "items": {"type": "number"}},
               "范围 / bounding box (in bbox-crs; CRS84 by default)", style="form", explode=False),
    "bbox-crs": _q("bbox-crs", {"type": "string", "format": "uri", "enum": list(SUPPORTED_CRS)},
                   "bbox 的坐标系 / CRS of bbox"),
    "crs": _q("crs", {"type": "string", "format": "uri", "enum": list(SUPPORTED_CRS)},
              "输出坐标系 / CRS of the response geometries"),
    "datetime": _q("datetime", {"type": "string", "pattern": _DATETIME},
                   "某时刻或时段有效的版本 / the versions in force at an instant "
                   "or during an interval (RFC 3339, `..` for an open end)"),
    "filter": _q("filter", {"type": "string", "minLength": 1, "pattern": "\\S"},
                 "CQL2-text 过滤条件（可查询属性）/ a basic CQL2-text filter on the "
                 "queryables"),
    "filter-lang": _q("filter-lang", {"type": "string", "enum": ["cql2-text"], "default": "cql2-text"},
                      "过滤语言 / filter language"),
    "filter-crs": _q("filter-crs", {"type": "string", "format": "uri", "enum": list(SUPPORTED_CRS)},
                     "过滤条件的坐标系 / CRS of the filter"),
    "f": _q("f", {"type": "string", "enum": ["json", "geojson"]}, "格式 / format"),
}
_ITEMS_PARAMS = ("limit", "offset", "after", "bbox", "bbox-crs", "crs", "datetime", "filter", "filter-lang", "filter-crs", "f")


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/parameters/{name}"}


def document(base: str) -> dict[str, Any]:
    """The document for the OGC API served at `base` (…/ogc)."""
    paths: dict[str, Any] = {
        "/": {"get": {"operationId": "getLandingPage", "summary": "落地页 / landing page",
                      "responses": {"200": _ok("links", _JSON)}}},
        "/api": {"get": {"operationId": "getApi", "summary": "本文档 / this document",
                         "responses": {"200": _ok("OpenAPI 3.0", {"application/vnd.oai.openapi+json;version=3.0":
                                                                   {"schema": {"type": "object"}}})}}},
        "/conformance": {"get": {"operationId": "getConformance", "summary": "一致性类 / conformance classes",
                                 "responses": {"200": _ok("conformsTo", _JSON)}}},
        "/collections": {"get": {"operationId": "getCollections", "summary": "集合 / collections",
                                 "responses": {"200": _ok("collections", _JSON)}}},
    }
    for cid, c in COLLECTIONS.items():
        fid = {"name": "featureId", "in": "path", "required": True, "schema": {"type": "integer", "minimum": 1}}
        paths[f"/collections/{cid}"] = {"get": {
            "operationId": f"describe-{cid}", "summary": c.title, "tags": [cid],
            "responses": {"200": _ok("collection", _JSON), **_errors(404)}}}
        paths[f"/collections/{cid}/items"] = {"get": {
            "operationId": f"getItems-{cid}", "summary": f"{c.title}: 要素 / features", "tags": [cid],
            "parameters": [_ref(p) for p in _ITEMS_PARAMS],
            "responses": {"200": _ok("features", _GEOJSON), **_errors(400, 404)}}}
        paths[f"/collections/{cid}/items/{{featureId}}"] = {"get": {
            "operationId": f"getItem-{cid}", "summary": f"{c.title}: 一个要素 / one feature", "tags": [cid],
            "parameters": [fid, _ref("crs"), _ref("datetime"), _ref("f")],
            "responses": {"200": _ok("feature", _GEOJSON), **_errors(400, 404)}}}
        paths[f"/collections/{cid}/queryables"] = {"get": {
            "operationId": f"getQueryables-{cid}", "summary": f"{c.title}: 可查询属性 / queryables", "tags": [cid],
            "responses": {"200": _ok("JSON Schema", {"application/schema+json": {"schema": {"type": "object"}}}),
                          **_errors(404)}}}
    return {
        "openapi": "3.0.3",
        "info": {"title": "湖州市地名地址库 OGC API – Features / Huzhou registry OGC API – Features",
                 "version": "1.0.0",
                 "description": "Part 1 Core + GeoJSON, Part 2 CRS (EPSG:4490, EPSG:4326, CRS84), "
                                "Part 3 queryables and basic CQL2-text filters. Errors are problem+json."},
        "servers": [{"url": base}],
        "paths": paths,
        "components": {
            "parameters": PARAMETERS,
            "schemas": {"problem": {"type": "object", "properties": {
                "type": {"type": "string"}, "title": {"type": "string"}, "status": {"type": "integer"},
                "detail": {"type": "string"}, "parameter": {"type": "string"}}}},
        },
    }
