"""The scan's fast path (async pool, render cache) answers what the slow path answers, byte for
byte, and keeps every promise: a change committed elsewhere shows at the next scan, revoked and
replaced plates are 410, scans are counted, and /healthz says when the database is down."""
import time

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from registry.doorplates import replace_plate, revoke_plate

from waiting import eventually

JSON = {"Accept": "application/json"}
HTML = {"Accept": "text/html"}


@pytest.fixture()
def scratch_engine(committed_engine):
    return committed_engine


@pytest.fixture()
def conn(committed_conn):
    """The builders write to the plate database and the test commits: the pool's connections see it."""
    return committed_conn


@pytest.fixture()
def slow(scratch_engine, app_settings):
    """The same app on the slow path (an overridden connection, as the suite's other tests use)."""
    from api.app import create_app
    from api.deps import get_conn

    app = create_app(app_settings, engine=scratch_engine)

    def _conn():
        with scratch_engine.connect() as c:
            yield c
            c.commit()

    app.dependency_overrides[get_conn] = _conn
    with TestClient(app) as client:
        yield client


def _listening(client) -> None:
    """Wait until the render cache follows the notifications (its listener connects in the background)."""
    client.get("/healthz")
    deadline = time.monotonic() + 10
    while not client.app_state.read_path.cache.listening:
        assert time.monotonic() < deadline, "the render cache never listened"
        time.sleep(0.02)



def _same(a, b) -> None:
    assert a.status_code == b.status_code
    assert a.content == b.content
    for h in ("content-type", "cache-control", "x-content-type-options"):
        assert a.headers.get(h) == b.headers.get(h)


def test_should_answer_every_plate_state_byte_for_byte_as_the_slow_path(conn, fast, slow, make_address, plate_for,
                                                                       make_facility):
    make_facility("婚姻登记处", "吴兴区婚姻登记处", 120.0885, 30.8935, phone="0572-1234567")
    _, ok, _ = plate_for(make_address(number="1号"))
    replaced_id, replaced, _ = plate_for(make_address(number="2号"))
    revoked_id, revoked, _ = plate_for(make_address(number="3号"))
    suspended_address = make_address(number="4号")
    _, suspended, _ = plate_for(suspended_address)
    replace_plate(conn, replaced_id, reason="损坏 damaged", actor="tests")
    revoke_plate(conn, revoked_id, reason="被盗 stolen", actor="tests")
    conn.execute(text("UPDATE addresses SET status = 'retired' WHERE id = :a"), {"a": suspended_address})
    conn.commit()
    _listening(fast)
    for token, status in ((ok, 200), (replaced, 410), (revoked, 410), (suspended, 410)):
        for headers in (JSON, HTML):
            for query in ("", "?reported=true"):
                first = fast.get(f"/p/{token}{query}", headers=headers)  # rendered
                cached = fast.get(f"/p/{token}{query}", headers=headers)  # from the render cache
                assert first.status_code == status
                _same(first, slow.get(f"/p/{token}{query}", headers=headers))
                _same(cached, first)
    assert len(fast.app_state.read_path.cache) == 16
    for bad in ("AQ" + ok[2:-1] + ("A" if ok[-1] != "A" else "B"), "garbled!"):
        for headers in (JSON, HTML):
            _same(fast.get(f"/p/{bad}", headers=headers), slow.get(f"/p/{bad}", headers=headers))


def test_should_show_a_change_committed_elsewhere_at_the_next_scan(conn, fast, make_address, plate_for,
                                                                     scratch_engine):
    address = make_address(street="青铜路", number="8号")
    plate_id, token, _ = plate_for(address)
    conn.commit()
    _listening(fast)
    assert "青铜路" in fast.get(f"/p/{token}", headers=JSON).json()["address"]["text"]
    assert "青铜路" in fast.get(f"/p/{token}", headers=HTML).text  # both variants cached now
    with scratch_engine.begin() as other:  # another connection, committed: a NOTIFY at commit
        other.execute(text("UPDATE place_names SET name = '白银路' WHERE id = "
                           "(SELECT street_id FROM addresses WHERE id = :a)"), {"a": address})
    assert eventually(lambda: "白银路" in fast.get(f"/p/{token}", headers=JSON).json()["address"]["text"])
    assert "白银路" in fast.get(f"/p/{token}", headers=HTML).text
    with scratch_engine.begin() as other:
        revoke_plate(other, plate_id, reason="被盗 stolen", actor="tests")
    assert eventually(lambda: fast.get(f"/p/{token}", headers=JSON).status_code == 410)
    assert fast.get(f"/p/{token}", headers=HTML).status_code == 410


def test_should_drop_every_render_when_the_listener_loses_its_connection(conn, fast, make_address, plate_for,
                                                                          scratch_engine):
    _, token, _ = plate_for(make_address(number="9号"))
    conn.commit()
    _listening(fast)
    fast.get(f"/p/{token}", headers=JSON)
    cache = fast.app_state.read_path.cache
    assert len(cache) >= 1
    with scratch_engine.begin() as other:  # notifications may be missed while it is gone
        other.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                           "WHERE application_name = 'registry-listener' AND datname = current_database()"))
    assert eventually(lambda: len(cache) == 0 and not cache.listening, 5) or len(cache) == 0
    _listening(fast)  # and it listens again
    fast.get(f"/p/{token}", headers=JSON)
    assert len(cache) == 1


def test_should_count_scans_on_the_fast_path(conn, fast, make_address, plate_for, scratch_engine):
    plate_id, token, _ = plate_for(make_address(number="10号"))
    conn.commit()
    for headers in (JSON, HTML, JSON):
        assert fast.get(f"/p/{token}", headers=headers).status_code == 200
    with scratch_engine.connect() as c:  # REGISTRY_DOORPLATE_SCAN_FLUSH_SECONDS=0: written per scan
        assert c.execute(text("SELECT sum(count) FROM doorplate_scans WHERE plate_id = :p"),
                         {"p": plate_id}).scalar_one() == 3


def test_should_report_a_database_that_is_down(app_settings):
    from api.app import create_app

    closed = create_engine("postgresql+psycopg://registry@127.0.0.1:8139/registry")  # nothing listens there
    with TestClient(create_app(app_settings, engine=closed)) as client:
        res = client.get("/healthz")
        assert res.status_code == 503
        assert res.headers["content-type"].startswith("application/problem+json")
        assert res.json()["type"].endswith("database-unavailable")
    closed.dispose()


def test_should_report_a_database_that_is_up_with_the_age_of_its_check(fast):
    body = fast.get("/healthz").json()
    assert body["status"] == "ok" and body["database"] == "ok" and 0 <= body["checked_ms_ago"] < 5000


def test_should_never_cache_an_agency_view_nor_show_it_to_the_public(conn, fast, make_address, plate_for, agency):
    _, token, _ = plate_for(make_address(number="11号"))
    conn.commit()
    _listening(fast)
    seen = fast.get(f"/p/{token}", headers={**JSON, **agency}).json()
    assert "history" in seen["plate"] and "scans" in seen["plate"]
    public = fast.get(f"/p/{token}", headers=JSON).json()
    assert "history" not in public["plate"] and "registered_text" not in public["address"]
    assert "history" in fast.get(f"/p/{token}", headers={**JSON, **agency}).json()["plate"]
    assert [k for k in fast.app_state.read_path.cache._entries if token in k[0]] == [(f"/p/{token}", False, False)]


def test_should_show_a_renamed_division_at_the_next_scan(conn, fast, make_address, plate_for, scratch_engine, place):
    _, token, _ = plate_for(make_address(number="12号"))
    conn.commit()
    _listening(fast)
    assert place.township in fast.get(f"/p/{token}", headers=JSON).json()["address"]["text"]
    rename = text("UPDATE divisions SET name = :n WHERE id = :id")
    with scratch_engine.begin() as other:
        other.execute(rename, {"n": "青山街道", "id": place.township_id})
    try:
        assert eventually(lambda: "青山街道" in fast.get(f"/p/{token}", headers=JSON).json()["address"]["text"])
    finally:
        with scratch_engine.begin() as other:
            other.execute(rename, {"n": place.township, "id": place.township_id})
