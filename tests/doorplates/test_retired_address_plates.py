"""A plate follows its address: an address retired by a real load (`--retire-missing`) suspends its
live plates in the same change set; the scan page then says plainly that the address is retired
(410 `address-retired`, no ✓); `plates show` reports it; a later load listing the door again brings
the plate back as it was, with the same printed token."""
import json
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).parent.parent / "loaders"))
sys.path.insert(0, str(Path(__file__).parent))

from loader_helpers import (BOX_A, BOX_B, COUNTY, IN_A, TOWNSHIP, VILLAGE_A, VILLAGE_B, addr, box, flat,  # noqa: E402
                            load, load_kind, write_csv, write_gis)

from registry.doorplates import activate_plate, get_plate, issue_plates, live_plate_for  # noqa: E402

JSON = {"Accept": "application/json"}
HTML = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}


@pytest.fixture()
def geography(conn, tmp_path):
    """Two communities with polygons and the road and compound the rows name (through the loaders)."""
    polygons = write_gis(tmp_path / "villages.geojson", [{"code": VILLAGE_A, "name": "龙庭社区"},
                                                         {"code": VILLAGE_B, "name": "衣裳街社区"}],
                         driver="GeoJSON", crs="EPSG:4326", geometry=[box(BOX_A), box(BOX_B)])
    assert load_kind(conn, "divisions", polygons).updated == 2
    places = write_csv(tmp_path / "places.csv", [
        {"name": "人民路", "category": "road", "county_code": COUNTY, "township_code": TOWNSHIP,
         "wkt": "LINESTRING(120.021 30.850, 120.039 30.850)"},
        {"name": "凤凰小区", "category": "compound", "county_code": COUNTY, "village_code": VILLAGE_A,
         "wkt": "POINT(120.026 30.850)"},
    ], header=["name", "category", "county_code", "township_code", "village_code", "wkt"])
    assert load_kind(conn, "place-names", places).inserted == 2
    return tmp_path


def _address_id(conn, number, room=""):
    return conn.execute(text("SELECT id FROM addresses WHERE number = :n AND room = :r"),
                        {"n": number, "r": room}).scalar_one()


def _plate(conn, pid):
    return conn.execute(text("SELECT status, reason, change_set_id, address_id, version FROM doorplates WHERE id = :i"),
                        {"i": pid}).mappings().one()


def _issue_one(conn, ring, address_id, kind="door"):
    issue_plates(conn, actor="tests", address_id=address_id, kind=kind)
    pid = live_plate_for(conn, address_id, kind)
    key_id = conn.execute(text("SELECT key_id FROM doorplates WHERE id = :i"), {"i": pid}).scalar_one()
    return pid, ring.token_for(conn, pid, key_id)


def test_should_suspend_the_plate_of_an_address_retired_by_a_load_in_the_same_change_set(
        conn, client, geography, ring):
    tmp = geography
    first = load(conn, write_csv(tmp / "a.csv", [addr(number="12号"), addr(number="14号", lon=IN_A[0] + 0.001)]))
    assert first.inserted == 2
    retired_id = _address_id(conn, "12号")
    pid, token = _issue_one(conn, ring, retired_id)
    activate_plate(conn, pid, actor="tests")  # on the wall

    report = load(conn, write_csv(tmp / "b.csv", [addr(number="14号", lon=IN_A[0] + 0.001)]), retire_missing=True)

    assert report.retired == 1
    assert report.plates == {"plates_suspended": 1}
    assert "门牌暂停 plates suspended 1" in report.summary()
    plate = _plate(conn, pid)
    assert plate["status"] == "suspended" and plate["change_set_id"] == report.change_set_id
    assert "地址已注销" in plate["reason"]
    counts = conn.execute(text("SELECT counts FROM change_sets WHERE id = :i"), {"i": report.change_set_id}).scalar_one()
    assert counts["retired"] == 1 and counts["plates_suspended"] == 1

    # the scan: JSON says so, with a 410 like a revoked plate; the token still verifies
    res = client.get(f"/p/{token}", headers=JSON)
    assert res.status_code == 410 and res.headers["content-type"].startswith("application/problem+json")
    body = res.json()
    assert body["type"].endswith(":address-retired")
    assert body["plate_status"] == "suspended" and body["address_status"] == "retired"
    assert body["address"]["id"] == retired_id and body["address"]["status"] == "retired"
    assert "地址已注销" in body["detail"] and "retired" in body["detail"]

    page = client.get(f"/p/{token}", headers=HTML)
    assert page.status_code == 410
    assert "✓" not in page.text and "真实门牌" not in page.text
    assert 'id="retired"' in page.text and "地址已注销" in page.text
    assert "导航到这里" not in page.text  # no directions to a retired door
    assert 'action="/p/' in page.text  # a citizen can still say the door is there

    # what `plates show` prints
    shown = get_plate(conn, pid)
    assert shown["status"] == "suspended" and shown["address_status"] == "retired"
    assert shown["status_name"] == "暂停（地址已注销）"
    assert [h["status"] for h in shown["history"]][-2:] == ["active", "suspended"]


def test_should_print_the_suspended_status_from_plates_show(conn, geography, ring, monkeypatch):
    from typer.testing import CliRunner

    from cli_engine import on_test_connection

    from loaders import plates_cli

    load(conn, write_csv(geography / "a.csv", [addr(number="12号"), addr(number="14号", lon=IN_A[0] + 0.001)]))
    pid, _ = _issue_one(conn, ring, _address_id(conn, "12号"))
    load(conn, write_csv(geography / "b.csv", [addr(number="14号", lon=IN_A[0] + 0.001)]), retire_missing=True)

    on_test_connection(monkeypatch, conn, plates_cli)
    out = CliRunner().invoke(plates_cli.plates_app, ["show", str(pid)])
    assert out.exit_code == 0, out.output
    shown = json.loads(out.output)
    assert shown["status"] == "suspended" and shown["address_status"] == "retired"
    assert "地址已注销" in shown["reason"]


def test_should_bring_the_plate_back_when_a_load_lists_the_address_again(conn, client, geography, ring):
    tmp = geography
    rows = [addr(number="12号"), addr(number="14号", lon=IN_A[0] + 0.001)]
    load(conn, write_csv(tmp / "a.csv", rows))
    address_id = _address_id(conn, "12号")
    pid, token = _issue_one(conn, ring, address_id)
    activate_plate(conn, pid, actor="tests")
    load(conn, write_csv(tmp / "b.csv", rows[1:]), retire_missing=True)
    assert _plate(conn, pid)["status"] == "suspended"

    back = load(conn, write_csv(tmp / "c.csv", rows))

    assert back.updated == 1 and back.plates == {"plates_restored": 1}
    plate = _plate(conn, pid)
    assert plate["status"] == "active" and plate["reason"] is None and plate["change_set_id"] == back.change_set_id
    assert _address_id(conn, "12号") == address_id  # same address id, same plate, same printed token
    res = client.get(f"/p/{token}", headers=JSON)
    assert res.status_code == 200 and res.json()["plate"]["id"] == pid
    assert "✓ 真实门牌" in client.get(f"/p/{token}", headers=HTML).text


def test_should_move_a_building_plate_to_another_flat_of_the_building_instead_of_suspending_it(
        conn, geography, ring):
    tmp = geography
    rows = [flat(room="301室"), flat(room="302室", lon=IN_A[0] + 0.0012)]
    load(conn, write_csv(tmp / "a.csv", rows))
    first, second = _address_id(conn, "", "301室"), _address_id(conn, "", "302室")
    building, _ = _issue_one(conn, ring, first, kind="building")
    flat_plate, _ = _issue_one(conn, ring, first, kind="flat")
    assert _plate(conn, building)["address_id"] == first  # the building's representative address

    report = load(conn, write_csv(tmp / "b.csv", rows[1:]), retire_missing=True)

    assert report.plates == {"plates_suspended": 1, "plates_moved": 1}
    assert _plate(conn, flat_plate)["status"] == "suspended"
    moved = _plate(conn, building)
    assert moved["status"] == "issued" and moved["address_id"] == second  # the building is still there


def test_should_suspend_a_building_plate_with_its_last_flat_and_bring_it_back_with_any(conn, geography, ring):
    tmp = geography
    rows = [flat(room="301室"), flat(room="302室", lon=IN_A[0] + 0.0012)]
    load(conn, write_csv(tmp / "a.csv", rows))
    first, second = _address_id(conn, "", "301室"), _address_id(conn, "", "302室")
    building, _ = _issue_one(conn, ring, first, kind="building")
    activate_plate(conn, building, actor="tests")
    # the whole building goes (another door of the village keeps the village in the file's scope)
    report = load(conn, write_csv(tmp / "b.csv", [addr(number="99号")]), retire_missing=True)
    assert report.retired == 2 and _plate(conn, building)["status"] == "suspended"

    back = load(conn, write_csv(tmp / "c.csv", [addr(number="99号"), rows[1]]))  # only 302室 comes back

    assert back.plates.get("plates_restored") == 1
    plate = _plate(conn, building)
    assert plate["status"] == "active" and plate["address_id"] == second


def test_should_not_retire_the_doors_a_retiring_load_itself_adds(conn, geography):
    load(conn, write_csv(geography / "a.csv", [addr(number="12号")]))
    report = load(conn, write_csv(geography / "b.csv", [addr(number="14号", lon=IN_A[0] + 0.001)]),
                  retire_missing=True)
    assert (report.inserted, report.retired) == (1, 1)
    status = dict(conn.execute(text("SELECT number, status FROM addresses")).all())
    assert status == {"12号": "retired", "14号": "active"}


def test_should_refuse_to_issue_a_plate_for_a_retired_address(conn, geography, ring):
    from registry.errors import Conflict

    load(conn, write_csv(geography / "a.csv", [addr(number="12号"), addr(number="14号", lon=IN_A[0] + 0.001)]))
    retired = _address_id(conn, "12号")
    load(conn, write_csv(geography / "b.csv", [addr(number="14号", lon=IN_A[0] + 0.001)]), retire_missing=True)
    with pytest.raises(Conflict, match="已注销"):
        issue_plates(conn, actor="tests", address_id=retired)


def test_should_not_suspend_anything_on_a_dry_run(conn, geography, ring):
    tmp = geography
    load(conn, write_csv(tmp / "a.csv", [addr(number="12号"), addr(number="14号", lon=IN_A[0] + 0.001)]))
    pid, _ = _issue_one(conn, ring, _address_id(conn, "12号"))
    before = _plate(conn, pid)
    report = load(conn, write_csv(tmp / "b.csv", [addr(number="14号", lon=IN_A[0] + 0.001)]), retire_missing=True,
                  dry_run=True)
    assert report.retired == 1 and report.change_set_id is None
    assert _plate(conn, pid) == before


def test_should_refuse_to_activate_or_replace_a_suspended_plate_but_allow_revoking_it(conn, geography, ring):
    from registry.doorplates import replace_plate, revoke_plate
    from registry.errors import Conflict

    tmp = geography
    load(conn, write_csv(tmp / "a.csv", [addr(number="12号"), addr(number="14号", lon=IN_A[0] + 0.001)]))
    pid, _ = _issue_one(conn, ring, _address_id(conn, "12号"))
    load(conn, write_csv(tmp / "b.csv", [addr(number="14号", lon=IN_A[0] + 0.001)]), retire_missing=True)
    with pytest.raises(Conflict, match="地址已注销"):
        activate_plate(conn, pid, actor="tests")
    with pytest.raises(Conflict, match="地址已注销"):
        replace_plate(conn, pid, reason="重做", actor="tests")
    assert revoke_plate(conn, pid, reason="门已拆除", actor="tests")["status"] == "revoked"


def test_should_show_a_plate_whose_address_was_retired_by_hand_as_retired(client, conn, make_address, plate_for):
    # a path that retires an address without follow_addresses still never shows it as valid
    a = make_address()
    _, _, url = plate_for(a)
    conn.execute(text("UPDATE addresses SET status = 'retired' WHERE id = :a"), {"a": a})
    res = client.get(urlsplit(url).path, headers=JSON)
    assert res.status_code == 410 and res.json()["type"].endswith(":address-retired")


def test_should_show_an_agency_the_suspended_plates_status_and_history(client, conn, make_address, plate_for, agency):
    from registry.doorplates import follow_addresses

    a = make_address()
    pid, _, url = plate_for(a)
    conn.execute(text("UPDATE addresses SET status = 'retired' WHERE id = :a"), {"a": a})
    follow_addresses(conn, "SELECT CAST(:a AS bigint)", change_set_id=None, params={"a": a})
    page = client.get(urlsplit(url).path, headers={**HTML, **agency})
    assert page.status_code == 410 and 'id="plate-status"' in page.text and "suspended" in page.text
    body = client.get(urlsplit(url).path, headers={**JSON, **agency}).json()
    assert body["plate"]["status"] == "suspended" and body["address"]["status"] == "retired"
    assert body["plate"]["history"][-1]["status"] == "suspended"


# --- the page in a real headless Chromium (skipped without chromium / chromedriver) ------------------
from test_scan_page_browser import CHROMEDRIVER, CHROMIUM, browser, live_url  # noqa: E402,F401


@pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER), reason="chromium / chromium-driver missing")
def test_should_show_a_phone_the_retired_banner_and_no_check_mark(browser, live_url, conn, make_address, plate_for):
    from selenium.webdriver.common.by import By

    a = make_address()
    pid, _, url = plate_for(a)
    conn.execute(text("UPDATE addresses SET status = 'retired' WHERE id = :a"), {"a": a})
    from registry.doorplates import follow_addresses

    assert follow_addresses(conn, "SELECT CAST(:a AS bigint)", change_set_id=None, params={"a": a}).suspended == 1
    browser.get(live_url + urlsplit(url).path)
    banner = browser.find_element(By.ID, "retired")
    assert "地址已注销" in banner.text and banner.is_displayed()
    assert "✓" not in browser.find_element(By.TAG_NAME, "body").text
    assert browser.find_elements(By.ID, "verified") == [] and browser.find_elements(By.ID, "nav-amap") == []
    assert browser.execute_script("return document.documentElement.scrollWidth") <= 360
