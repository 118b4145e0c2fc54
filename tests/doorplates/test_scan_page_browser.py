"""The scan page in a real headless Chromium at 360 px wide: the address, its pinyin and the
navigation links are there, nothing overflows sideways, nothing is loaded from outside, and the
report form works."""
import threading
from urllib.parse import urlsplit

import pytest

from live_server import CHROMEDRIVER, CHROMIUM, serve

pytestmark = pytest.mark.skipif(
    not (CHROMIUM and CHROMEDRIVER), reason="chromium / chromium-driver missing: run scripts/setup-system.sh")

@pytest.fixture()
def live_url(conn, engine, app_settings):
    """The app served by uvicorn on 127.0.0.1, its requests inside the test's transaction."""
    from api.app import create_app
    from api.deps import get_conn

    app = create_app(app_settings, engine=engine)
    lock = threading.Lock()

    def _conn():
        with lock:  # one connection: one request at a time
            yield conn

    app.dependency_overrides[get_conn] = _conn
    with serve(app) as url:
        yield url


@pytest.fixture()
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=360,760", "--lang=zh-CN", "--no-first-run", "--disable-extensions"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                           {"width": 360, "height": 760, "deviceScaleFactor": 2, "mobile": True})
    driver.set_page_load_timeout(20)
    yield driver
    driver.quit()


def test_should_render_the_scan_page_readably_at_360_px(browser, live_url, make_address, make_facility,
                                                        plate_for, place, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    make_facility("居家养老服务照料中心", "爱山街道居家养老服务照料中心", 120.0890, 30.8935, phone="0572-2012345")
    make_facility("儿童之家", "南街社区儿童之家", 120.0860, 30.8910)
    _, token, url = plate_for(make_address(number="12-1号", building="5幢", unit="2单元", room="301室"))
    browser.get(live_url + urlsplit(url).path)

    assert browser.execute_script("return window.innerWidth") == 360
    assert browser.find_element(By.ID, "address").text == f"浙江省湖州市{place.county}{place.township}人民路12-1号5幢2单元301室"
    assert browser.find_element(By.ID, "address-pinyin").text.endswith("Renmin Lu 12-1 Hao 5 Zhuang 2 Danyuan 301 Shi")
    assert browser.find_element(By.ID, "plate-number").text == "301室"
    chain = [li.text for li in browser.find_elements(By.CSS_SELECTOR, "#divisions li")]
    assert chain[:2] == ["浙江省", "湖州市"] and place.township in chain
    links = {i: browser.find_element(By.ID, i).get_attribute("href") for i in ("nav-amap", "nav-baidu", "nav-geo")}
    assert links["nav-amap"].startswith("https://uri.amap.com/marker?position=")
    assert links["nav-baidu"].startswith("https://api.map.baidu.com/marker?location=")
    assert links["nav-geo"].startswith("geo:30.89")
    for i in links:
        box = browser.find_element(By.ID, i).rect
        assert box["width"] > 100 and box["height"] >= 40  # a thumb-sized button
    services = browser.find_element(By.ID, "services").text
    assert "爱山街道居家养老服务照料中心" in services and "米" in services

    # nothing overflows sideways, and every element fits the 360 px viewport
    assert browser.execute_script("return document.documentElement.scrollWidth") <= 360
    wide = browser.execute_script("""
        return [...document.querySelectorAll('body *')]
          .filter(e => { const r = e.getBoundingClientRect(); return r.width && (r.right > 360.5 || r.left < -0.5); })
          .map(e => e.tagName + '#' + e.id + '.' + e.className);""")
    assert wide == []
    # readable: body text at least 14 px, no external resources fetched
    assert float(browser.execute_script(
        "return parseFloat(getComputedStyle(document.getElementById('address')).fontSize)")) >= 16
    resources = browser.execute_script("return performance.getEntriesByType('resource').map(r => r.name)")
    assert [r for r in resources if not r.startswith(live_url)] == []
    browser.save_screenshot(str(tmp_path / "scan-360.png"))

    # the report form, as a citizen would use it
    browser.find_element(By.CSS_SELECTOR, "input[name=kind][value=faded]").click()
    browser.find_element(By.ID, "report-text").send_keys("门牌褪色，看不清号码")
    browser.find_element(By.CSS_SELECTOR, "#report button[type=submit]").click()
    WebDriverWait(browser, 10).until(lambda b: "reported=true" in b.current_url)
    assert browser.current_url.endswith(f"/p/{token}?reported=true#report")
    thanks = WebDriverWait(browser, 10).until(lambda b: b.find_element(By.CSS_SELECTOR, ".thanks"))
    assert "已收到您的报告" in thanks.text


def test_should_tell_a_browser_that_a_forged_plate_is_forged(browser, live_url):
    from selenium.webdriver.common.by import By

    browser.get(live_url + "/p/AQHC2AkqVSv1rB_6MQ")
    assert "无法验证此门牌" in browser.find_element(By.ID, "invalid").text or \
        "无法识别" in browser.find_element(By.ID, "invalid").text
    assert browser.execute_script("return document.documentElement.scrollWidth") <= 360
