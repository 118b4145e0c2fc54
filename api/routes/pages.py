"""Pages for people: `/` (what the registry is and where to look) and `/map` (the registry's own
layers as vector tiles on a MapLibre GL JS map, a search box and a click for a feature's record).

MapLibre GL JS comes from the npm registry at set-up (`web/package.json`, `npm ci` in
scripts/setup-system.sh) and is served from `web/node_modules` by `/static/map/…`: no CDN, no
external base map, no remote glyphs or fonts (the map draws no text; names show in popups).
"""
from __future__ import annotations

from pathlib import Path as FsPath
from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from api.deps import DbConn, scope
from registry.change_map import change_set_features
from registry.errors import NotFound
from registry.keys import ApiKey
from registry.tiles import CENTER, LAYERS

router = APIRouter(include_in_schema=False)

_ROOT = FsPath(__file__).resolve().parent.parent.parent
WEB_DIR = _ROOT / "web"
MAPLIBRE_DIST = WEB_DIR / "node_modules" / "maplibre-gl" / "dist"
# The files /static/map/ serves, and where each comes from: nothing else under web/ is reachable.
STATIC_FILES = {
    "maplibre-gl.js": (MAPLIBRE_DIST / "maplibre-gl.js", "text/javascript"),
    "maplibre-gl.css": (MAPLIBRE_DIST / "maplibre-gl.css", "text/css"),
    "map.js": (WEB_DIR / "map.js", "text/javascript"),
    "map.css": (WEB_DIR / "map.css", "text/css"),
}

TEMPLATES = Environment(
    loader=FileSystemLoader(FsPath(__file__).resolve().parent.parent / "templates"),
    autoescape=select_autoescape(["html"]),
    auto_reload=False,
    trim_blocks=True,
    lstrip_blocks=True,
)


def _root(request: Request) -> str:
    return request.scope.get("root_path", "")


@router.get("/", response_class=HTMLResponse)
def landing_page(request: Request) -> HTMLResponse:
    html = TEMPLATES.get_template("index.html").render(root=_root(request), layers=LAYERS)
    return HTMLResponse(html)


@router.get("/map", response_class=HTMLResponse)
def map_page(request: Request) -> HTMLResponse:
    html = TEMPLATES.get_template("map.html").render(
        root=_root(request), layers=LAYERS, center=CENTER,
        maplibre_missing=not STATIC_FILES["maplibre-gl.js"][0].is_file())
    return HTMLResponse(html)


@router.get("/static/map/{name}")
def map_static(name: Annotated[str, Path()]) -> FileResponse:
    entry = STATIC_FILES.get(name)
    if entry is None or not entry[0].is_file():
        hint = "（MapLibre GL JS 未安装：运行 make setup / not installed: run make setup, which runs npm ci in web/）" \
            if name.startswith("maplibre") else ""
        raise NotFound(f"没有文件 {name!r}{hint} / no file {name!r}", parameter="name")
    path, media = entry
    return FileResponse(path, media_type=media, headers={"Cache-Control": "public, max-age=3600"})


@router.get("/map/change-sets/{change_set_id}.geojson", include_in_schema=True, tags=["map"],
            summary="An inspection change set's lines, markers and addresses before and after (scope: editor)")
def change_set_map(conn: DbConn, key: Annotated[ApiKey, scope("editor")],
                   change_set_id: Annotated[int, Path(ge=1)]) -> JSONResponse:
    return JSONResponse(change_set_features(conn, change_set_id), media_type="application/geo+json")
