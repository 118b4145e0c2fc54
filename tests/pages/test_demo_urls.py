"""`registry demo urls`, what `make demo` prints last: every link answers, the scan URL is a real plate's."""
from __future__ import annotations

from urllib.parse import urlsplit

from loaders.demo_cli import demo_links
from registry.doorplates import issue_plates


def test_should_print_links_that_all_answer_after_the_city_is_issued(client, conn, township_address, indexed):
    ids = [township_address("330502001", n) for n in (1, 2, 3)]
    indexed()
    result = issue_plates(conn, actor="tests", division="330500", source="tests")  # the whole city
    assert result.issued >= 3
    links = dict(demo_links(conn, "http://127.0.0.1:8000", "https://dz.example.gov.cn"))
    scan = links["门牌扫码页 / a doorplate's scan page"]
    assert scan.startswith("https://dz.example.gov.cn/p/")
    search = next(url for label, url in links.items() if label.startswith("搜索"))
    assert links["该地址 / that address (GeoJSON)"] == f"http://127.0.0.1:8000/v1/addresses/{ids[0]}"
    for label, url in links.items():
        parts = urlsplit(url)
        r = client.get(parts.path + (f"?{parts.query}" if parts.query else ""))
        assert r.status_code == 200, (label, url, r.status_code)
    assert "人民路1号" in client.get(urlsplit(scan).path).text
    assert set(links) >= {"首页 / landing page", "地图 / map", "OGC API – Features", "API 文档 / API docs"}
    assert "%E4%BA%BA%E6%B0%91%E8%B7%AF1%E5%8F%B7" in search  # 人民路1号, encoded
    parts = urlsplit(search)
    found = client.get(f"{parts.path}?{parts.query}").json()["results"]
    assert found and found[0]["id"] == ids[0]  # the search finds the plate's own door


def test_should_leave_out_the_scan_url_before_any_plate_is_issued(conn):
    labels = [label for label, _ in demo_links(conn, "http://127.0.0.1:8000", "http://127.0.0.1:8000")]
    assert labels == ["首页 / landing page", "地图 / map", "OGC API – Features", "矢量瓦片 / vector tiles",
                      "API 文档 / API docs"]
