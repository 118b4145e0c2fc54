"""OGC API – Features under /ogc: Part 1 Core + GeoJSON, Part 2 CRS, Part 3 queryables and basic
CQL2-text filters, over the collections of `registry.features` (public views, public scope).

Query parameters are read from the request as strings and checked here against what each path
takes, because the standard wants an unknown parameter refused (400) rather than ignored; the
rules (CRS, axis order, datetime, limits, CQL2) live in `registry.features.query`. These paths are
described by their own OpenAPI 3.0 document at /ogc/api, not by the app's /openapi.json.
"""
from __future__ import annotations

import json
from datetime import datetime, timezone

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from api.deps import ReadConn
from api.ogc.openapi import document
from registry.errors import InvalidQuery
from registry.features import query as fq
from registry.features.collections import COLLECTIONS, Collection
from registry.features.stats import CollectionStats

router = APIRouter(prefix="/ogc", include_in_schema=False)

GEOJSON = "application/geo+json"
JSON = "application/json"
OPENAPI = "application/vnd.oai.openapi+json;version=3.0"
CONFORMANCE = [
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
    "http://www.opengis.net/spec/ogcapi-features-2/1.0/conf/crs",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/filter",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/features-filter",
    "http://www.opengis.net/spec/cql2/1.0/conf/cql2-text",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-cql2",
]
_ITEMS = {"limit", "offset", "after", "bbox", "bbox-crs", "crs", "datetime", "filter", "filter-lang", "filter-crs", "f"}
_ITEM = {"crs", "datetime", "f"}
_PLAIN = {"f"}
_ALLOW = "GET, HEAD, OPTIONS"


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/") + "/ogc"


def _check_params(request: Request, allowed: set[str]) -> None:
    for name in request.query_params:
        if name not in allowed:
            raise InvalidQuery(f"未知参数 {name}（可用：{', '.join(sorted(allowed))}）/ unknown parameter {name!r} "
                               f"(this path takes: {', '.join(sorted(allowed))})", parameter=name)
    f = request.query_params.get("f")
    if f is not None and f not in ("json", "geojson", "application/json", "application/geo+json"):
        raise InvalidQuery(f"f 只支持 json / f must be json or geojson, got {f!r}", parameter="f")
    lang = request.query_params.get("filter-lang")
    if lang is not None and lang != "cql2-text":
        raise InvalidQuery(f"filter-lang 只支持 cql2-text / filter-lang must be cql2-text, got {lang!r}",
                           parameter="filter-lang")
    if "filter-crs" in request.query_params:
        fq.parse_crs(request.query_params["filter-crs"], "filter-crs")


def _link(href: str, rel: str, type_: str, title: str | None = None) -> dict:
    out = {"href": href, "rel": rel, "type": type_}
    if title:
        out["title"] = title
    return out


@router.get("", name="ogc_landing")
@router.get("/", name="ogc_landing_slash")
def landing(request: Request) -> JSONResponse:
    _check_params(request, _PLAIN)
    b = _base(request)
    return JSONResponse({
        "title": "湖州市地名地址库 / Huzhou place-name and address registry",
        "description": "OGC API – Features：区划、界线、界桩、地名、地址、地名文化遗产、服务设施、门牌 / divisions, "
                       "boundary lines, markers, place names, addresses, heritage, facilities, doorplates",
        "links": [
            _link(b, "self", JSON, "本页 / this page"),
            _link(f"{b}/api", "service-desc", OPENAPI, "OpenAPI 3.0"),
            _link(str(request.base_url).rstrip("/") + "/docs", "service-doc", "text/html", "API 文档 / docs"),
            _link(f"{b}/conformance", "conformance", JSON, "一致性类 / conformance"),
            _link(f"{b}/collections", "data", JSON, "集合 / collections"),
        ],
    })


@router.get("/api")
def api_document(request: Request) -> Response:
    _check_params(request, _PLAIN)
    return Response(json.dumps(document(_base(request)), ensure_ascii=False), media_type=OPENAPI)


@router.get("/conformance")
def conformance(request: Request) -> JSONResponse:
    _check_params(request, _PLAIN)
    return JSONResponse({"conformsTo": CONFORMANCE})


def _stats(request: Request) -> CollectionStats:
    stats = getattr(request.app.state, "ogc_stats", None)
    if stats is None:
        stats = request.app.state.ogc_stats = CollectionStats()
    return stats


def _collection_body(request: Request, conn, c: Collection, version: int | None = -1) -> dict:
    b = f"{_base(request)}/collections/{c.id}"
    d = _stats(request).describe(conn, c, version)  # cached per registry version
    return {
        "id": c.id, "title": c.title, "description": c.description, "keywords": list(c.keywords),
        "itemType": "feature",
        "links": [
            _link(b, "self", JSON, c.title),
            _link(f"{b}/items", "items", GEOJSON, "要素 / features"),
            _link(f"{b}/queryables", "http://www.opengis.net/def/rel/ogc/1.0/queryables", "application/schema+json",
                  "可查询属性 / queryables"),
        ],
        "extent": {
            "spatial": {"bbox": [d["bbox"]], "crs": fq.CRS84},
            "temporal": {"interval": [d["interval"]], "trs": "http://www.opengis.net/def/uom/ISO-8601/0/Gregorian"},
        },
        "itemCount": d["count"],
        "crs": list(fq.SUPPORTED_CRS),
        "storageCrs": fq.EPSG4490,
    }


@router.get("/collections")
def collections(request: Request, conn: ReadConn) -> JSONResponse:
    _check_params(request, _PLAIN)
    b = _base(request)
    version = _stats(request).version(conn)
    return JSONResponse({
        "links": [_link(f"{b}/collections", "self", JSON, "集合 / collections")],
        "crs": list(fq.SUPPORTED_CRS),
        "collections": [_collection_body(request, conn, c, version) for c in COLLECTIONS.values()],
    })


@router.get("/collections/{collection_id}")
def collection(request: Request, conn: ReadConn, collection_id: str) -> JSONResponse:
    _check_params(request, _PLAIN)
    return JSONResponse(_collection_body(request, conn, fq.collection(collection_id)))


@router.get("/collections/{collection_id}/queryables")
def queryables(request: Request, collection_id: str) -> JSONResponse:
    _check_params(request, _PLAIN)
    c = fq.collection(collection_id)
    props = {}
    for p in c.queryables:
        schema = {"title": p.title}
        if p.type in ("date", "date-time"):
            schema.update(type="string", format=p.type)
        else:
            schema["type"] = p.type
        props[p.name] = schema
    props["geometry"] = {"$ref": f"https://geojson.org/schema/{c.geometry_type}.json"
                         if c.geometry_type != "Geometry" else "https://geojson.org/schema/Geometry.json"}
    return JSONResponse({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"{_base(request)}/collections/{c.id}/queryables",
        "type": "object", "title": c.title, "properties": props, "additionalProperties": False,
    }, media_type="application/schema+json")


def _items_query(request: Request, c: Collection, *, with_filters: bool) -> fq.ItemsQuery:
    qp = request.query_params
    return fq.ItemsQuery(
        collection=c,
        crs=fq.parse_crs(qp.get("crs")),
        period=fq.parse_datetime(qp.get("datetime")),
        bbox=fq.parse_bbox(qp.get("bbox"), qp.get("bbox-crs")) if with_filters else None,
        filter=qp.get("filter") if with_filters else None,
    )


@router.api_route("/collections/{collection_id}/items", methods=["OPTIONS"])
@router.api_route("/collections/{collection_id}/items/{feature_id}", methods=["OPTIONS"])
def items_options(collection_id: str, feature_id: str | None = None) -> Response:
    # QGIS asks to learn whether the collection can be edited: it cannot (read-only API).
    fq.collection(collection_id)
    return Response(status_code=204, headers={"Allow": _ALLOW})


@router.api_route("/collections/{collection_id}/items", methods=["GET", "HEAD"])
def items(request: Request, conn: ReadConn, collection_id: str) -> Response:
    c = fq.collection(collection_id)
    _check_params(request, _ITEMS)
    q = _items_query(request, c, with_filters=True)
    limit = fq.parse_limit(request.query_params.get("limit"))
    offset = fq.parse_offset(request.query_params.get("offset"))
    after = fq.parse_after(request.query_params.get("after"))
    p = fq.page(conn, q, limit=limit, offset=offset, after=after, count=lambda: _stats(request).count(conn, c))
    links = [_link(str(request.url), "self", GEOJSON, "本页 / this page"),
             _link(f"{_base(request)}/collections/{c.id}", "collection", JSON, c.title)]
    if p.more:  # keyset: `after` finds the next page by index; `offset` keeps its place for prev
        links.append(_link(str(request.url.include_query_params(offset=offset + limit, limit=limit, after=p.last_id)),
                           "next", GEOJSON, "下一页 / next page"))
    if offset > 0:
        prev = request.url.remove_query_params("after").include_query_params(offset=max(0, offset - limit),
                                                                               limit=limit)
        links.append(_link(str(prev), "prev", GEOJSON, "上一页 / previous page"))
    head = {"type": "FeatureCollection", "numberMatched": p.matched, "numberReturned": p.returned,
            "timeStamp": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"), "links": links}
    if p.matched is None:  # more than registry.features.query.COUNT_CAP: not counted (optional)
        del head["numberMatched"]
    meta = json.dumps(head, ensure_ascii=False)
    body = meta[:-1] + ', "features": [' + p.features + "]}"
    return Response(body, media_type=GEOJSON, headers={"Content-Crs": f"<{q.crs}>"})


@router.get("/collections/{collection_id}/items/{feature_id}")
def item(request: Request, conn: ReadConn, collection_id: str, feature_id: str) -> Response:
    c = fq.collection(collection_id)
    _check_params(request, _ITEM)
    q = _items_query(request, c, with_filters=False)
    feature = json.loads(fq.feature(conn, q, feature_id))
    b = f"{_base(request)}/collections/{c.id}"
    feature["links"] = [_link(str(request.url), "self", GEOJSON), _link(b, "collection", JSON, c.title)]
    return Response(json.dumps(feature, ensure_ascii=False), media_type=GEOJSON,
                    headers={"Content-Crs": f"<{q.crs}>"})
