"""/docs and /redoc work with no network: Swagger UI and ReDoc are served by the app itself, and
a real headless Chromium, cut off from everything but 127.0.0.1, renders the operations."""
from __future__ import annotations

from pathlib import Path

import pytest
from fastapi import FastAPI

from live_server import CHROMEDRIVER, CHROMIUM, needs_browser, serve

SHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"


@pytest.fixture()
def app(engine, app_settings) -> FastAPI:
    from api.app import create_app

    return create_app(app_settings, engine=engine)




@pytest.fixture()
def offline_browser():
    """Chromium whose only reachable host is 127.0.0.1: everything else goes to a proxy on a
    closed port (loopback bypasses a proxy by default), and the CDNs are blocked outright too."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1280,1400", "--no-first-run", "--disable-extensions",
                "--proxy-server=http://127.0.0.1:9", "--disable-background-networking"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.execute_cdp_cmd("Network.enable", {})
    driver.execute_cdp_cmd("Network.setBlockedURLs", {"urls": [
        "*cdn.jsdelivr.net*", "*unpkg.com*", "*fastapi.tiangolo.com*", "*fonts.googleapis.com*", "*cdnjs*"]})
    driver.set_page_load_timeout(20)
    yield driver
    driver.quit()


def _operations(driver) -> list[str]:
    return driver.execute_script("""
        return [...document.querySelectorAll('.opblock .opblock-summary-path')]
          .map(e => e.getAttribute('data-path') || e.textContent.replace(/\\u200b/g, ''));""")


def _wait_for(driver, condition, seconds: float = 20):
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        return WebDriverWait(driver, seconds).until(condition)
    except TimeoutException:
        return None


def test_should_serve_the_docs_pages_and_their_assets_from_the_app(app):
    from fastapi.testclient import TestClient

    with TestClient(app) as client:
        page = client.get("/docs")
        assert page.status_code == 200 and "/docs-static/swagger-ui-bundle.js" in page.text
        assert "cdn.jsdelivr.net" not in page.text and "unpkg.com" not in page.text
        for asset in ("swagger-ui-bundle.js", "swagger-ui.css", "redoc.standalone.js", "favicon.png"):
            res = client.get(f"/docs-static/{asset}")
            assert res.status_code == 200 and len(res.content) > 1000, asset
        redoc = client.get("/redoc")
        assert redoc.status_code == 200 and "/docs-static/redoc.standalone.js" in redoc.text
        assert "fonts.googleapis.com" not in redoc.text and "cdn.jsdelivr.net" not in redoc.text
        assert "/docs" not in client.get("/openapi.json").json()["paths"]


@needs_browser
def test_should_render_the_operations_in_docs_with_the_network_off(app, offline_browser):
    with serve(app) as url:
        offline_browser.get(url + "/docs")
        found = _wait_for(offline_browser, lambda d: "/v1/divisions/{code}" in _operations(d))
        SHOTS.mkdir(parents=True, exist_ok=True)
        offline_browser.save_screenshot(str(SHOTS / "docs-offline.png"))
        assert found, f"Swagger UI did not render; operations seen: {_operations(offline_browser)}"
        assert "/v1/match" in _operations(offline_browser)
        resources = offline_browser.execute_script("return performance.getEntriesByType('resource').map(r => r.name)")
        assert resources and [r for r in resources if not r.startswith(url)] == []

        offline_browser.get(url + "/redoc")
        rendered = _wait_for(offline_browser, lambda d: d.execute_script(
            "return [...document.querySelectorAll('h2')].some(h => h.textContent.includes('A division by its'))"))
        offline_browser.save_screenshot(str(SHOTS / "redoc-offline.png"))
        assert rendered, "ReDoc did not render the operations"


@needs_browser
def test_the_browser_is_really_offline_cdn_docs_stay_blank(offline_browser):
    """The control: FastAPI's own /docs (Swagger UI from the CDN) renders nothing in this browser,
    so the test above passes because the files are local, not because the network was up."""
    plain = FastAPI(title="control")

    @plain.get("/v1/divisions/{code}")
    def division(code: str) -> dict:
        return {"code": code}

    with serve(plain) as url:
        offline_browser.get(url + "/docs")
        assert _wait_for(offline_browser, lambda d: _operations(d), seconds=5) is None
        assert _operations(offline_browser) == []
