"""`/` and `/map` as served: every link of the landing page answers, the map page's files are local."""
from __future__ import annotations

import re

from api.routes.pages import STATIC_FILES


def test_should_link_the_map_the_docs_and_the_ogc_landing_page_from_the_landing_page(client):
    r = client.get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    html = r.text
    assert "湖州市地名地址库" in html and "Huzhou place-name and address registry" in html
    for href in ('href="/map"', 'href="/docs"', 'href="/ogc"', 'href="/tiles"'):
        assert href in html


def test_should_resolve_every_link_of_the_landing_page(client, indexed):
    indexed()
    links = re.findall(r'href="([^"]+)"', client.get("/").text)
    assert len(links) >= 12
    for link in links:
        r = client.get(link.replace("&amp;", "&"))
        assert r.status_code == 200, (link, r.status_code, r.text[:300])


def test_should_serve_the_map_page_with_its_scripts_from_the_app(client):
    html = client.get("/map").text
    refs = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert "/static/map/maplibre-gl.js" in refs and "/static/map/map.js" in refs
    assert [ref for ref in refs if ref.startswith(("http:", "https:", "//"))] == []  # no CDN
    for ref in refs:
        assert client.get(ref).status_code == 200, ref
    assert client.get("/static/map/maplibre-gl.js").headers["content-type"].startswith("text/javascript")
    assert "MapLibre GL JS 未安装" not in html


def test_should_not_serve_any_other_file_of_the_web_folder(client):
    for name in ("package.json", "..%2Fpyproject.toml", "node_modules"):
        r = client.get(f"/static/map/{name}")
        assert r.status_code == 404 and r.headers["content-type"].startswith("application/problem+json")
    assert set(STATIC_FILES) == {"maplibre-gl.js", "maplibre-gl.css", "map.js", "map.css"}


def test_should_reference_no_remote_url_in_the_map_script():
    text = STATIC_FILES["map.js"][0].read_text(encoding="utf-8")
    assert not re.search(r"https?://", text)
    assert not re.search(r"\b(glyphs|sprite)\s*:", text)  # the style names no glyph or sprite URL
