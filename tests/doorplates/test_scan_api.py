"""The scan `GET /p/{token}`: the current address, pinyin, divisions, navigation and services, as JSON
or HTML; forged, garbled, revoked and replaced plates answered as such; public vs agency views."""
from urllib.parse import urlsplit

from sqlalchemy import text

from registry.doorplates import plate_code, replace_plate, retire_key, revoke_plate, rotate_key, sign
from registry.doorplates.scans import ScanCounter, scan_counts, today

JSON = {"Accept": "application/json"}
HTML = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}


def _path(url):
    return urlsplit(url).path


def test_should_answer_the_scan_with_the_documented_json_shape(client, make_address, make_facility, plate_for,
                                                               place):
    a = make_address(number="12号")
    make_facility("居家养老服务照料中心", "近处照料中心", 120.0890, 30.8930, phone="0572-1234567")
    make_facility("居家养老服务照料中心", "远处照料中心", 120.2000, 30.9500)
    make_facility("幸福邻里中心", "邻里中心", 120.0880, 30.8960)
    make_facility("儿童之家", "已关闭的儿童之家", 120.0881, 30.8931, status="retired")
    pid, token, url = plate_for(a)

    res = client.get(_path(url), headers=JSON)
    assert res.status_code == 200 and res.headers["content-type"] == "application/json"
    body = res.json()
    assert set(body) == {"plate", "address", "plate_text", "navigation", "services", "report_url"}
    assert body["plate"] == {"id": pid, "code": plate_code(pid), "kind": "door", "kind_name": "门牌",
                             "verified": True}
    addr = body["address"]
    assert addr["id"] == a
    assert addr["text"] == f"浙江省湖州市{place.county}{place.township}人民路12号"
    assert addr["pinyin"].endswith("Renmin Lu 12 Hao") and addr["pinyin"].startswith("Zhejiang Sheng Huzhou Shi")
    assert [d["level"] for d in addr["divisions"]] == ["province", "city", "county", "township", "village"]
    assert addr["divisions"][3]["name"] == place.township and addr["divisions"][4]["code"] == place.village_code
    assert addr["divisions"][1]["pinyin"] == "Huzhou Shi"
    assert addr["location"]["crs"] == "EPSG:4490"
    assert body["plate_text"] == {"name": "人民路", "pinyin": "Renmin Lu", "number": "12号"}
    nav = body["navigation"]
    assert nav["amap"].startswith("https://uri.amap.com/marker?position=") and "coordinate=gaode" in nav["amap"]
    assert nav["baidu"].startswith("https://api.map.baidu.com/marker?location=") and "bd09ll" in nav["baidu"]
    assert nav["geo"].startswith("geo:30.893000,120.088000")
    # GCJ-02 and BD-09 are offset from WGS84 by a few hundred metres, in the known directions
    assert 0.003 < nav["gcj02"][0] - 120.088 < 0.008 and -0.004 < nav["gcj02"][1] - 30.893 < 0.0
    assert nav["bd09"][0] > nav["gcj02"][0] and nav["bd09"][1] > nav["gcj02"][1]
    services = body["services"]
    assert [s["name"] for s in services] == ["近处照料中心", "邻里中心"]  # nearest of each category, nearest first
    assert 80 < services[0]["distance_m"] < 110 and services[0]["phone"] == "0572-1234567"
    assert 300 < services[1]["distance_m"] < 360
    assert body["report_url"] == url + "/report"


def test_should_show_the_public_only_the_address_and_services(client, make_address, plate_for):
    _, _, url = plate_for(make_address())
    body = client.get(_path(url), headers=JSON).json()
    assert "status" not in body["plate"] and "history" not in body["plate"] and "scans" not in body["plate"]
    assert "registered_text" not in body["address"]


def test_should_show_an_agency_key_the_plates_status_and_history(client, conn, make_address, plate_for, agency):
    a = make_address()
    pid, _, url = plate_for(a)
    conn.execute(text("UPDATE doorplates SET status='active' WHERE id=:i"), {"i": pid})
    body = client.get(_path(url), headers={**JSON, **agency}).json()
    plate = body["plate"]
    assert plate["status"] == "active" and plate["address_id"] == a
    assert [h["status"] for h in plate["history"]] == ["issued", "active"]
    assert plate["scans"]["total"] >= 0 and plate["open_reports"] == 0
    assert body["address"]["status"] == "active"


def test_should_call_a_forged_plate_forged_never_an_unknown_error(client, conn, make_address, plate_for, base_url):
    pid, token, _ = plate_for(make_address())
    key_id = conn.execute(text("SELECT key_id FROM doorplates WHERE id=:i"), {"i": pid}).scalar_one()
    forged = sign(pid, key_id, b"not the registry's secret".ljust(32, b"!"))
    res = client.get(f"/p/{forged}", headers=JSON)
    assert res.status_code == 400 and res.headers["content-type"].startswith("application/problem+json")
    problem = res.json()
    assert problem["type"].endswith(":invalid-signature") and problem["parameter"] == "token"
    page = client.get(f"/p/{forged}", headers=HTML)
    assert page.status_code == 400 and "无法验证此门牌" in page.text


def test_should_call_a_garbled_token_garbled(client):
    res = client.get("/p/not-a-token!", headers=JSON)
    assert res.status_code == 400 and res.json()["type"].endswith(":invalid-token")
    assert res.json()["parameter"] == "token"
    page = client.get("/p/xyz", headers=HTML)
    assert page.status_code == 400 and "无法识别的二维码" in page.text


def test_should_answer_a_revoked_plate_as_revoked(client, conn, make_address, plate_for):
    pid, _, url = plate_for(make_address())
    revoke_plate(conn, pid, reason="地址注销", actor="tests")
    res = client.get(_path(url), headers=JSON)
    assert res.status_code == 410
    body = res.json()
    assert body["type"].endswith(":plate-revoked") and body["plate_status"] == "revoked"
    assert body["plate"]["id"] == pid and "address" not in body
    page = client.get(_path(url), headers=HTML)
    assert page.status_code == 410 and "此门牌已注销" in page.text


def test_should_answer_a_replaced_plate_with_the_plate_that_replaced_it(client, conn, make_address, plate_for,
                                                                         base_url):
    a = make_address()
    pid, _, url = plate_for(a)
    new = replace_plate(conn, pid, reason="褪色", actor="tests")
    newer = replace_plate(conn, new["id"], reason="被撞坏", actor="tests")
    res = client.get(_path(url), headers=JSON)
    assert res.status_code == 410
    body = res.json()
    assert body["type"].endswith(":plate-replaced") and body["plate_status"] == "replaced"
    assert body["replaced_by"]["id"] == new["id"] and body["replaced_by"]["code"] == new["code"]
    assert body["replaced_by"]["current"]["id"] == newer["id"]  # followed to the plate in use now
    assert new["code"] in body["detail"]
    follow = client.get(_path(body["replaced_by"]["url"]), headers=JSON)
    assert follow.status_code == 200 and follow.json()["plate"]["id"] == newer["id"]
    page = client.get(_path(url), headers=HTML)
    assert page.status_code == 410 and "此门牌已被替换" in page.text and newer["code"] in page.text


def test_should_resolve_a_renumbered_address_to_its_current_number(client, conn, make_address, plate_for, place):
    a = make_address(number="12号")
    _, _, url = plate_for(a)
    conn.execute(text("UPDATE addresses SET number='14号', number_main=14, full_text=replace(full_text,'12号','14号') "
                      "WHERE id=:a"), {"a": a})
    body = client.get(_path(url), headers=JSON).json()
    assert body["address"]["id"] == a and body["address"]["number"] == "14号"
    assert body["address"]["text"].endswith("人民路14号") and body["plate_text"]["number"] == "14号"
    assert body["address"]["pinyin"].endswith("Renmin Lu 14 Hao")


def test_should_resolve_after_the_township_was_merged_into_another(client, conn, make_address, plate_for, place):
    a = make_address()
    _, _, url = plate_for(a)
    other = conn.execute(text("""
        SELECT id, name FROM divisions WHERE level='township' AND parent_id=:county AND id<>:t AND status='active'
        ORDER BY nbs_code LIMIT 1"""), {"county": place.county_id, "t": place.township_id}).one()
    # 区划调整: the old township is abolished, its villages re-parented to the neighbour, which is renamed
    conn.execute(text("UPDATE divisions SET parent_id=:new WHERE id=:v"), {"new": other.id, "v": place.village_id})
    conn.execute(text("UPDATE divisions SET status='abolished' WHERE id=:t"), {"t": place.township_id})
    conn.execute(text("UPDATE divisions SET name='合并后街道' WHERE id=:i"), {"i": other.id})
    body = client.get(_path(url), headers=JSON).json()
    assert body["address"]["id"] == a
    chain = [d["name"] for d in body["address"]["divisions"]]
    assert "合并后街道" in chain and place.township not in chain
    assert body["address"]["text"] == f"浙江省湖州市{place.county}合并后街道人民路12号"
    assert "Hebinghou Jiedao" in body["address"]["pinyin"]


def test_should_serve_html_to_a_browser_with_the_address_pinyin_and_links(client, make_address, make_facility,
                                                                         plate_for, agency):
    make_facility("幸福邻里中心", "爱山幸福邻里中心", 120.0890, 30.8935)
    _, token, url = plate_for(make_address(number="12-1号", building="5幢", unit="2单元"), kind="unit")
    res = client.get(_path(url), headers=HTML)
    assert res.status_code == 200 and res.headers["content-type"].startswith("text/html")
    page = res.text
    assert "人民路12-1号5幢2单元" in page and "Renmin Lu 12-1 Hao 5 Zhuang 2 Danyuan" in page
    assert 'id="nav-amap" href="https://uri.amap.com/' in page and 'href="geo:' in page
    assert "爱山幸福邻里中心" in page and f'action="/p/{token}/report"' in page
    assert "<script" not in page and "http-equiv" not in page
    for attr in ('src="http', "url(http", '<link rel="stylesheet"'):
        assert attr not in page  # no external resources
    assert "门牌状态（内部）" not in page
    assert "门牌状态（内部）" in client.get(_path(url), headers={**HTML, **agency}).text


def test_should_escape_every_registry_text_on_the_html_page(client, make_address, make_facility, plate_for):
    # names come from editors and agencies' files: markup in one is shown as text, never run
    hostile = '<img src=x onerror="alert(1)">'
    make_facility("幸福邻里中心", f"邻里{hostile}中心", 120.0890, 30.8935, phone="0572&'<b>")
    _, token, url = plate_for(make_address(street=f"路{hostile}", number="7号", building="1&2幢"))
    page = client.get(_path(url), headers=HTML).text
    assert "<img" not in page and "<b>" not in page and 'onerror="' not in page
    assert "路&lt;img src=x onerror=&#34;alert(1)&#34;&gt;" in page
    assert "邻里&lt;img src=x onerror=&#34;alert(1)&#34;&gt;中心" in page
    assert "0572&amp;&#39;&lt;b&gt;" in page and "1&amp;2幢" in page
    assert f'action="/p/{token}/report"' in page  # the page's own markup is not escaped


def test_should_count_scans_per_plate_and_day(client, conn, make_address, plate_for):
    pid, _, url = plate_for(make_address())
    for _ in range(3):
        assert client.get(_path(url), headers=JSON).status_code == 200
    client.get(_path(url), headers=HTML)
    counts = scan_counts(conn, pid)
    assert counts["total"] == 4 and counts["days"] == [{"day": today().isoformat(), "count": 4}]
    columns = set(conn.execute(text("SELECT * FROM doorplate_scans LIMIT 0")).keys())
    assert columns == {"plate_id", "day", "count"}  # nothing about who scanned


def test_should_buffer_scan_counts_in_memory_and_flush_them_in_one_upsert(conn, make_address, plate_for):
    p1, _, _ = plate_for(make_address(number="1号"))
    p2, _, _ = plate_for(make_address(number="2号"))
    counter = ScanCounter(interval=60)  # no engine: nothing flushes by itself
    for pid in (p1, p1, p2):
        counter.hit(pid)
    assert counter.pending() == {(p1, today()): 2, (p2, today()): 1}
    assert scan_counts(conn, p1)["total"] == 0
    assert counter.flush(conn) == 2 and counter.pending() == {}
    counter.hit(p1)
    counter.flush(conn)
    assert scan_counts(conn, p1)["total"] == 3 and scan_counts(conn, p2)["total"] == 1


def test_should_flush_the_counts_of_a_night_that_spans_midnight_to_each_day(conn, make_address, plate_for):
    from datetime import timedelta

    from registry.doorplates.scans import add_counts

    p1, _, _ = plate_for(make_address(number="1号"))
    p2, _, _ = plate_for(make_address(number="2号"))
    yesterday = today() - timedelta(days=1)
    add_counts(conn, {(p1, yesterday): 5, (p1, today()): 2, (p2, today()): 1})
    add_counts(conn, {(p1, today()): 1})
    assert scan_counts(conn, p1) == {"total": 8, "days": [{"day": yesterday.isoformat(), "count": 5},
                                                          {"day": today().isoformat(), "count": 3}]}
    assert scan_counts(conn, p2)["total"] == 1


def test_should_keep_printed_codes_of_an_old_key_working_after_rotation(client, conn, make_address, plate_for):
    pid, token, url = plate_for(make_address())
    old_key = conn.execute(text("SELECT key_id FROM doorplates WHERE id=:i"), {"i": pid}).scalar_one()
    rotate_key(conn, actor="tests")
    assert client.get(_path(url), headers=JSON).status_code == 200
    retire_key(conn, old_key, actor="tests")
    res = client.get(_path(url), headers=JSON)
    assert res.status_code == 400 and res.json()["type"].endswith(":invalid-signature")


def test_should_not_find_a_validly_signed_token_for_a_plate_that_does_not_exist(client, conn, ring):
    key = rotate_key(conn, actor="tests")
    token = ring.token_for(conn, 2**27, key.id)
    res = client.get(f"/p/{token}", headers=JSON)
    assert res.status_code == 404 and res.json()["parameter"] == "token"


def test_should_write_a_rural_door_and_a_compound_flat_by_the_place_name_rules(client, conn, make_address,
                                                                              plate_for, place):
    hamlet = conn.execute(text("""
        INSERT INTO place_names (category, name, division_id, county_id) VALUES ('natural_village', '钱家浜', :v, :c)
        RETURNING id"""), {"v": place.village_id, "c": place.county_id}).scalar_one()
    compound = conn.execute(text("""
        INSERT INTO place_names (category, name, pinyin, division_id, county_id)
        VALUES ('compound', '凤凰小区', 'Fenghuang Xiaoqu', :v, :c) RETURNING id"""),
        {"v": place.village_id, "c": place.county_id}).scalar_one()
    rural = make_address(street=None, compound_id=hamlet, group_no="3组", number="12号")
    flat = make_address(street=None, compound_id=compound, number="", building="5幢", unit="2单元", room="301室")
    _, _, rural_url = plate_for(rural)
    _, _, flat_url = plate_for(flat)

    body = client.get(urlsplit(rural_url).path, headers=JSON).json()
    assert body["address"]["natural_village"] == "钱家浜" and body["address"]["compound"] is None
    assert "钱家浜3组12号" in body["address"]["text"]
    assert body["address"]["pinyin"].endswith("Qianjiabang 3 Zu 12 Hao")
    assert body["plate_text"] == {"name": "钱家浜", "pinyin": "Qianjiabang", "number": "3组12号"}

    body = client.get(urlsplit(flat_url).path, headers=JSON).json()
    assert body["address"]["text"].endswith("凤凰小区5幢2单元301室")
    assert body["address"]["pinyin"].endswith("Fenghuang Xiaoqu 5 Zhuang 2 Danyuan 301 Shi")
    assert body["plate"]["kind"] == "flat"
    assert body["plate_text"] == {"name": "凤凰小区5幢2单元", "pinyin": "Fenghuang Xiaoqu 5 Zhuang 2 Danyuan",
                                  "number": "301室"}


def test_should_show_a_building_or_unit_plate_the_address_down_to_its_own_level(client, make_address, plate_for):
    flat = make_address(number="12号", building="5幢", unit="2单元", room="301室")
    _, _, building_url = plate_for(flat, kind="building")
    _, _, unit_url = plate_for(flat, kind="unit")
    building = client.get(urlsplit(building_url).path, headers=JSON).json()
    assert building["plate"]["kind"] == "building" and building["plate"]["kind_name"] == "楼牌"
    assert building["address"]["text"].endswith("人民路12号5幢") and building["address"]["room"] is None
    assert building["plate_text"] == {"name": "人民路12号", "pinyin": "Renmin Lu 12 Hao", "number": "5幢"}
    unit = client.get(urlsplit(unit_url).path, headers=JSON).json()
    assert unit["address"]["text"].endswith("人民路12号5幢2单元") and unit["address"]["unit"] == "2单元"
    assert unit["plate_text"]["number"] == "2单元"
