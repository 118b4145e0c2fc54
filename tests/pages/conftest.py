"""Fixtures of the page tests: the app served by uvicorn for a real browser, headless Chromium,
and a proposed inspection change set with a line, a moved marker, a new marker and a door."""
from __future__ import annotations

import threading

import pytest
from sqlalchemy import text

from live_server import CHROMEDRIVER, CHROMIUM, serve
from registry.changes import open_change_set


@pytest.fixture()
def live_app(conn, engine, app_settings):
    """The app served by uvicorn on 127.0.0.1 (as tests/doorplates/test_scan_page_browser.py does),
    its requests inside the test's transaction and its search on a gazetteer of that transaction."""
    from api.app import create_app
    from api.deps import get_conn
    from api.routes.search import get_gazetteer
    from registry.search import StaticSource
    from registry.search.loading import load_gazetteer

    app = create_app(app_settings, engine=engine)
    lock = threading.Lock()

    def _conn():
        with lock:  # one connection: one request at a time
            yield conn

    app.dependency_overrides[get_conn] = _conn
    app.state.seen_paths = []  # what the browser asked the server for (tiles come from a web worker)

    @app.middleware("http")
    async def _record(request, call_next):
        app.state.seen_paths.append(request.url.path)
        return await call_next(request)

    source: dict = {}
    app.dependency_overrides[get_gazetteer] = lambda: source["gaz"]
    with serve(app) as url:
        def index_now():  # after the test has built its data
            with lock:
                source["gaz"] = StaticSource(load_gazetteer(conn))

        yield app, url, index_now


@pytest.fixture()
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    # WebGL without a GPU: ANGLE on SwiftShader (MapLibre needs WebGL 2)
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--use-angle=swiftshader",
                "--enable-unsafe-swiftshader", "--ignore-gpu-blocklist", "--window-size=1024,768",
                "--lang=zh-CN", "--no-first-run", "--disable-extensions"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


@pytest.fixture()
def proposal(conn, township_address):
    divs = conn.execute(text("SELECT id, name FROM divisions WHERE nbs_code IN ('330502', '330503') "
                             "ORDER BY nbs_code")).all()
    line = conn.execute(text("""
        INSERT INTO boundary_lines (level, name, left_division_id, right_division_id, code, status, geom)
        VALUES ('county', '吴兴区—南浔区线', :l, :r, '330502330503', 'active',
                ST_SetSRID(ST_GeomFromText('MULTILINESTRING((120.20 30.80, 120.20 30.90))'), 4490)) RETURNING id"""),
        {"l": divs[0].id, "r": divs[1].id}).scalar_one()
    marker = conn.execute(text("""
        INSERT INTO boundary_markers (number, boundary_line_id, serial, type_letter, status, geom)
        VALUES ('330502330503001Q', :line, 1, 'Q', 'active', ST_SetSRID(ST_MakePoint(120.20, 30.85), 4490))
        RETURNING id"""), {"line": line}).scalar_one()
    door = township_address("330502001", 7)
    hexes = conn.execute(text("""
        SELECT encode(ST_AsEWKB(ST_SetSRID(ST_GeomFromText('MULTILINESTRING((120.20 30.80, 120.21 30.85, 120.20 30.90))'), 4490)), 'hex'),
               encode(ST_AsBinary(ST_MakePoint(120.2003, 30.8501)), 'hex'),
               encode(ST_AsBinary(ST_MakePoint(120.205, 30.88)), 'hex')""")).one()
    details = {
        "round": 1, "lines": [{"id": line, "code": "330502330503", "version": 1, "level": "county",
                               "left": {"id": divs[0].id, "name": divs[0].name},
                               "right": {"id": divs[1].id, "name": divs[1].name},
                               "length_m_before": 11100.0, "length_m_after": 11250.0,
                               "area_to_left_m2": 75000.0, "area_to_right_m2": 0.0, "faces": [],
                               "addresses": [{"id": door, "code": "x", "from_village": "甲村", "to_village": "乙村"}],
                               "geom": hexes[0]}],
        "markers": [{"id": marker, "number": "330502330503001Q", "version": 1, "moved_m": 33.4, "geom": hexes[1],
                     "condition": ["intact", "displaced"]}],
        "markers_added": [{"number": "330502330503002Q", "line_id": line, "geom": hexes[2]}],
        "markers_removed": [], "base": {},
    }
    cs = open_change_set(conn, kind="inspection", author="tests", source="round 1", details=details)
    return {"cs": cs, "line": line, "marker": marker, "door": door}


@pytest.fixture()
def indexed(client, conn):
    """Search on a gazetteer of the test's transaction (not the app's own loader thread, which reads
    committed data and outlives the session database). Call it after building the data."""
    from api.routes.search import get_gazetteer
    from registry.search import StaticSource
    from registry.search.loading import load_gazetteer

    def _index():
        source = StaticSource(load_gazetteer(conn))
        client.app.dependency_overrides[get_gazetteer] = lambda: source

    return _index
