"""The hot-path front (api/front.py) answers the anonymous scan, /healthz, reverse and search exactly
as the routes behind it do, leaves whatever it does not recognize to them, and stays inside the
app's middleware: the request log names the route, the anonymous rate limit counts its answers."""
import logging
import time

import pytest
from fastapi.testclient import TestClient

from api.front import HotPathFront

JSON = {"Accept": "application/json"}
HTML = {"Accept": "text/html"}


def _app(engine, settings, *, front: bool):
    from api.app import create_app

    app = create_app(settings, engine=engine)
    if not front:  # the same app without the front: every request goes through FastAPI's routing
        app.user_middleware = [m for m in app.user_middleware if m.cls is not HotPathFront]
    return app


@pytest.fixture()
def conn(committed_conn):
    """The builders write to the committed plate database and the test commits: the apps' own
    connections (the read pool) see the rows."""
    return committed_conn


@pytest.fixture()
def both(committed_engine, app_settings):
    with TestClient(_app(committed_engine, app_settings, front=True)) as front, \
            TestClient(_app(committed_engine, app_settings, front=False)) as routes:
        yield front, routes


def _search_ready(client) -> None:
    client.get("/v1/search", params={"q": "人民路"})  # the first search waits for the gazetteer
    deadline = time.monotonic() + 60
    while not client.app.state.search.ready:
        assert time.monotonic() < deadline, "the gazetteer never loaded"
        time.sleep(0.05)


def _same(a, b) -> None:
    assert (a.status_code, a.headers.get("content-type")) == (b.status_code, b.headers.get("content-type"))
    assert a.content == b.content, (a.content[:300], b.content[:300])


def test_should_answer_hot_reads_as_the_routes_do(conn, both, make_address, plate_for):
    front, routes = both
    address = make_address(street="青铜路", number="21号")
    _, token, _ = plate_for(address)
    conn.commit()
    _search_ready(front)
    _search_ready(routes)
    lon, lat = 120.0885, 30.8935
    cases = [
        (f"/p/{token}", JSON), (f"/p/{token}", HTML), (f"/p/{token}?reported=true", HTML),
        (f"/p/{token}?reported=yes", JSON),  # not one the front reads: FastAPI's bool rule answers
        ("/p/AQgarbled!", JSON), ("/p/AQgarbled!", HTML), (f"/p/{token[:-2]}", JSON),
        (f"/v1/reverse?lon={lon}&lat={lat}", JSON), (f"/v1/reverse?lon={lon}&lat={lat}&radius=5000", JSON),
        ("/v1/reverse?lon=120.1&lat=91", JSON), ("/v1/reverse?lon=abc&lat=30", JSON),
        ("/v1/reverse?lon=120.1", JSON), ("/v1/reverse?lon=120.1&lat=30.9&lat=31", JSON),
        ("/v1/reverse?lon=1e2&lat=30.9", JSON), ("/v1/reverse?lon=120.1&lat=30.9&radius=-1", JSON),
        ("/v1/search?q=%E9%9D%92%E9%93%9C%E8%B7%AF21%E5%8F%B7", JSON), ("/v1/search?q=&limit=5", JSON),
        ("/v1/search?q=%E9%9D%92%E9%93%9C%E8%B7%AF&limit=999", JSON),
    ]
    statuses = []
    for path, headers in cases:
        answer = front.get(path, headers=headers)
        _same(answer, routes.get(path, headers=headers))
        statuses.append(answer.status_code)
    assert statuses[:3] == [200, 200, 200] and statuses[7:9] == [200, 200] and statuses[15] == 200
    assert "青铜路21号" in front.get(f"/p/{token}", headers=JSON).json()["address"]["text"]
    a, b = front.get("/healthz").json(), routes.get("/healthz").json()
    assert a.keys() == b.keys() and a["status"] == b["status"] == "ok"


def test_should_log_the_route_of_a_hot_read_without_its_token_or_query(conn, both, make_address, plate_for, caplog):
    front, _ = both
    _, token, _ = plate_for(make_address(number="22号"))
    conn.commit()
    with caplog.at_level(logging.INFO, logger="registry.access"):
        assert front.get(f"/p/{token}", headers=JSON).status_code == 200
        assert front.get("/v1/reverse?lon=120.0885&lat=30.8935").status_code == 200
        assert front.get("/healthz").status_code == 200
    lines = [r.getMessage() for r in caplog.records if r.name == "registry.access"]
    for route in ("GET /p/{token} 200", "GET /v1/reverse 200", "GET /healthz 200"):
        assert any(line.startswith(route) for line in lines), lines
    assert token not in "\n".join(lines) and "30.8935" not in "\n".join(lines)


def test_should_count_hot_reads_against_the_anonymous_rate_limit(committed_engine, app_settings, conn,
                                                                  make_address, plate_for):
    _, token, _ = plate_for(make_address(number="23号"))
    conn.commit()
    limited = app_settings.model_copy(update={"rate_limit_public_per_minute": 3, "rate_limit_backend": "memory"})
    with TestClient(_app(committed_engine, limited, front=True)) as client:
        statuses = [client.get(f"/p/{token}", headers=JSON).status_code for _ in range(5)]
    assert statuses[:3] == [200, 200, 200] and statuses[3:] == [429, 429]
