"""The map page in a real headless Chromium (WebGL through SwiftShader): the registry's tiles are
requested and drawn, a search typed in the box shows a result and flies there, a click on a door
shows its popup with its public record. Nothing is fetched from outside the app."""
from __future__ import annotations

import os
import shutil

import pytest
from sqlalchemy import text

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")

pytestmark = pytest.mark.skipif(
    not (CHROMIUM and CHROMEDRIVER), reason="chromium / chromium-driver missing: run scripts/setup-system.sh")


def _doors(conn, township_address) -> list[dict]:
    """Five doors on 人民路 in 月河街道 (吴兴区), 40 m apart along a parallel."""
    ids = [township_address("330502001", n) for n in range(1, 6)]
    for i, aid in enumerate(ids):
        conn.execute(text("UPDATE addresses SET geom = ST_SetSRID(ST_MakePoint(:lon, 30.8725), 4490) WHERE id = :i"),
                     {"lon": 120.0880 + i * 0.0004, "i": aid})
    return [dict(r) for r in conn.execute(text(
        "SELECT id, full_text, ST_X(geom) AS lon, ST_Y(geom) AS lat FROM addresses WHERE id = ANY(:ids) ORDER BY id"),
        {"ids": ids}).mappings()]


def _wait(browser, script: str, timeout: float = 30):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(browser, timeout, poll_frequency=0.2).until(lambda b: b.execute_script(script))


def test_should_draw_the_registry_tiles_find_a_door_and_show_its_popup(browser, live_app, conn, township_address,
                                                                        tmp_path):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    app, url, index_now = live_app
    doors = _doors(conn, township_address)
    index_now()
    target = doors[2]
    browser.get(f"{url}/map#16/{target['lat']}/{target['lon']}")
    assert browser.execute_script("return !!document.querySelector('#map canvas')")
    assert _wait(browser, "return window.registryMap && window.registryMap.isStyleLoaded() && "
                          "window.registryMap.areTilesLoaded()")
    want = sorted(d["id"] for d in doors)
    drawn = _wait(browser, "const ids = new Set(registryMap.queryRenderedFeatures({layers: ['addresses']}).map(f => f.id));"
                           f"return {want}.every(i => ids.has(i)) && [...ids]")
    assert set(want) <= set(drawn)

    # the tiles came from the app's tile endpoint, and nothing came from elsewhere
    seen = app.state.seen_paths
    assert any(p.startswith("/tiles/addresses/16/") and p.endswith(".mvt") for p in seen)
    assert {f"/tiles/{name}.json" for name in ("counties", "addresses", "boundary_lines")} <= set(seen)
    assert app.state.tile_cache.misses >= 1
    resources = browser.execute_script("return performance.getEntriesByType('resource').map(r => r.name)")
    assert [r for r in resources if not r.startswith(url)] == []

    # a click on a door: its popup, then its public record
    x, y = browser.execute_script(
        "const p = registryMap.project([arguments[0], arguments[1]]); return [p.x, p.y];", target["lon"], target["lat"])
    canvas = browser.find_element(By.CSS_SELECTOR, "#map canvas")
    size = canvas.size
    ActionChains(browser).move_to_element_with_offset(canvas, int(x - size["width"] / 2),
                                                      int(y - size["height"] / 2)).click().perform()
    popup = _wait(browser, "return document.querySelector('.maplibregl-popup .popup')", 10)
    assert popup.get_attribute("data-layer") == "addresses"
    assert popup.get_attribute("data-id") == str(target["id"])
    _wait(browser, "return document.querySelector('.maplibregl-popup .record').textContent.includes('人民路')", 10)
    assert target["full_text"] in popup.text
    shot = tmp_path / "map-click.png"
    browser.save_screenshot(str(shot))

    # a search typed in the box: a suggestion list, then results on Enter, and the map flies there
    box = browser.find_element(By.ID, "q")
    box.send_keys("人民路")
    _wait(browser, "return !document.getElementById('suggestions').hidden", 10)
    assert "人民路" in browser.find_element(By.ID, "suggestions").text
    box.send_keys("1号", Keys.ENTER)
    first = _wait(browser, "return document.querySelector('#results li.result')", 10)
    assert "人民路1号" in first.text
    _wait(browser, "return !registryMap.isMoving()", 15)
    lon, lat = browser.execute_script("const c = registryMap.getCenter(); return [c.lng, c.lat];")
    assert abs(lon - doors[0]["lon"]) < 0.001 and abs(lat - doors[0]["lat"]) < 0.001
    browser.save_screenshot(str(tmp_path / "map-search.png"))

    # the whole city at z8.5: the five counties of the reference divisions, from the counties tiles
    browser.execute_script("registryMap.jumpTo({center: [119.95, 30.75], zoom: 8.5})")
    # the new tiles arrive over a few frames: poll until the render settles on five names (or time out)
    names = _wait(browser, "const n = new Set(registryMap.queryRenderedFeatures({layers: ['counties-fill']})"
                           ".map(f => f.properties.name)); return n.size >= 5 && registryMap.areTilesLoaded() && [...n]",
                  30)
    assert {"吴兴区", "南浔区", "德清县", "长兴县", "安吉县"} <= set(names)
    browser.save_screenshot(str(tmp_path / "map-city.png"))
    if os.environ.get("REGISTRY_TEST_SCREENSHOTS"):  # keep them to look at
        for name in ("map-click.png", "map-search.png", "map-city.png"):
            shutil.copy(tmp_path / name, os.path.join(os.environ["REGISTRY_TEST_SCREENSHOTS"], name))


def test_should_draw_a_proposed_change_set_in_the_editor_view(browser, live_app, conn, proposal, tmp_path):
    from selenium.webdriver.common.by import By

    from registry.keys import create_key

    app, url, index_now = live_app
    index_now()
    key = create_key(conn, agency="界线科", scopes=["editor"]).secret
    browser.get(f"{url}/map?change_set={proposal['cs']}")
    _wait(browser, "return window.registryMap && registryMap.isStyleLoaded()")
    panel = browser.find_element(By.ID, "changeset")
    assert panel.is_displayed()
    panel.find_element(By.NAME, "key").send_keys(key)
    panel.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    status = _wait(browser, "const s = document.querySelector('#changeset .status');"
                            "return s.textContent.includes('inspection') && s.textContent", 15)
    assert f"变更集 / change set {proposal['cs']}" in status and "移位界桩 / moved markers 1" in status
    _wait(browser, "return !registryMap.isMoving() && registryMap.areTilesLoaded()", 15)
    drawn = _wait(browser, "return registryMap.queryRenderedFeatures({layers: ['cs-line-before', 'cs-line-after', "
                           "'cs-points']}).map(f => f.properties.role)", 15)
    assert {"line_before", "line_after", "marker_after", "marker_added"} <= set(drawn)
    browser.save_screenshot(str(tmp_path / "map-change-set.png"))
    if os.environ.get("REGISTRY_TEST_SCREENSHOTS"):
        shutil.copy(tmp_path / "map-change-set.png", os.path.join(os.environ["REGISTRY_TEST_SCREENSHOTS"],
                                                                 "map-change-set.png"))
