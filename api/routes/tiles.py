"""Routes: vector tiles of the public layers and their TileJSON (registry.tiles does the work).

`/tiles/{layer}/{z}/{x}/{y}.mvt` answers `application/vnd.mapbox-vector-tile` (204 No Content
outside the layer's zoom range), with a strong ETag (a hash of the bytes: the same in every worker)
and `If-None-Match` → 304. The cache is one `TileCache` per app (api/app.py's lifespan makes it
and has it follow the applied change sets; made on first use otherwise, e.g. in tests).
"""
from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request, Response
from fastapi.responses import JSONResponse

from fastapi.concurrency import run_in_threadpool

from api.deps import _request_connection, get_read_conn
from registry.errors import InvalidQuery
from registry.tiles import LAYERS, MAX_ZOOM, TileCache, check_tile, in_range, layer, tilejson

router = APIRouter(tags=["vector tiles"])

MVT = "application/vnd.mapbox-vector-tile"
# Browsers and proxies may keep a tile a minute, then revalidate with the ETag: an applied change
# set reaches a map within a minute without every pan costing a request.
CACHE_CONTROL = "public, max-age=60"
_LAYER_DOC = "图层 / layer: " + ", ".join(f"{n} (z{lay.minzoom}+)" for n, lay in LAYERS.items())


def tile_cache(request: Request) -> TileCache:
    cache = getattr(request.app.state, "tile_cache", None)
    if cache is None:
        cache = request.app.state.tile_cache = TileCache()
    return cache


def _int(raw: str, name: str) -> int:
    if not raw.isdigit():  # digits only: no sign, no spaces, no 1e3
        raise InvalidQuery(f"{name} 应为非负整数 / {name} must be a non-negative integer, got {raw!r}",
                           parameter=name)
    return int(raw)


@router.get("/tiles/{layer_name}/{z}/{x}/{y}.mvt", summary="A vector tile (Mapbox Vector Tile) of one layer",
            response_class=Response,
            responses={200: {"content": {MVT: {}}, "description": "the tile (may be empty)"},
                       204: {"description": "z outside the layer's zoom range: nothing to draw"},
                       304: {"description": "not modified (If-None-Match)"},
                       400: {"description": "z, x or y off the grid (problem+json)"},
                       404: {"description": "unknown layer (problem+json)"}})
async def tile_route(
    request: Request,
    layer_name: Annotated[str, Path(description=_LAYER_DOC)],
    z: Annotated[str, Path(description=f"zoom 0–{MAX_ZOOM}")],
    x: Annotated[str, Path(description="column 0–2^z−1")],
    y: Annotated[str, Path(description="row 0–2^z−1 (XYZ: 0 at the north)")],
) -> Response:
    # async, and no connection unless the tile must be rendered: a cached tile is bytes in memory
    # (TileCache.peek, while the cache follows the applied change sets), with no thread hop.
    lay = layer(layer_name)
    zi, xi, yi = _int(z, "z"), _int(x, "x"), _int(y, "y")
    check_tile(zi, xi, yi)
    if not in_range(lay, zi):
        return Response(status_code=204, headers={"Cache-Control": "public, max-age=86400"})
    cache = tile_cache(request)
    tile = cache.peek(lay, zi, xi, yi)
    if tile is None:
        tile = await run_in_threadpool(_render, request, cache, lay, zi, xi, yi)
    headers = {"ETag": tile.etag, "Cache-Control": CACHE_CONTROL}
    if tile.etag in (request.headers.get("if-none-match") or ""):
        return Response(status_code=304, headers=headers)
    return Response(tile.data, media_type=MVT, headers=headers)


def _render(request: Request, cache: TileCache, lay, z: int, x: int, y: int):
    if cache.following:
        # the versions come from the primary's NOTIFY: render there, so that a tile kept under a
        # version never shows rows older than it (a replica may lag behind the notice)
        with _request_connection(request) as conn:
            return cache.get(conn, lay, z, x, y)
    reads = get_read_conn(request)  # a replica's snapshot, its change sets included
    conn = next(reads)
    try:
        return cache.get(conn, lay, z, x, y)
    finally:
        reads.close()


@router.get("/tiles/{layer_name}.json", summary="TileJSON 3.0.0 of one layer")
def tilejson_route(request: Request, layer_name: Annotated[str, Path(description=_LAYER_DOC)]) -> JSONResponse:
    body = tilejson(layer(layer_name), str(request.base_url).rstrip("/"))
    return JSONResponse(body, headers={"Cache-Control": "public, max-age=3600"})


@router.get("/tiles", summary="The tile layers, each with its TileJSON link")
def layers_route(request: Request) -> dict:
    base = str(request.base_url).rstrip("/")
    return {"layers": [{"id": n, "title": lay.title, "minzoom": lay.minzoom, "maxzoom": lay.maxzoom,
                        "tilejson": f"{base}/tiles/{n}.json"} for n, lay in LAYERS.items()]}
