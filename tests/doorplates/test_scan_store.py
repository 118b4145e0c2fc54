"""The scan store (registry/serving/store.py, api/scan_store.py): every live plate's answer composed
ahead and served only while it is made of the row a scan reads now. Answers byte for byte what the
API composes; a change (address, street, division, facility, plate status) is composed again at
the next scan; a store built for another base URL or by other code, or a token other than the
stored one, is never served."""
from __future__ import annotations

import os

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from typer.testing import CliRunner

from api.scan_store import build, composer_digest
from registry.doorplates import revoke_plate
from registry.serving import store as scan_store

from waiting import eventually

JSON = {"Accept": "application/json"}
HTML = {"Accept": "text/html"}


@pytest.fixture()
def conn(committed_conn):
    return committed_conn


@pytest.fixture()
def url(committed_engine) -> str:
    return committed_engine.url.render_as_string(hide_password=False)


def _client(committed_engine, settings, **update):
    from api.app import create_app

    return TestClient(create_app(settings.model_copy(update=update), engine=committed_engine))


def _ready(client, token: str) -> None:
    """Until the read path's reference data is held (a scan's row is then completed in process, as
    the store's build completes it): the first scans load it."""
    path = client.app.state.read_path
    assert eventually(lambda: client.get(f"/p/{token}").status_code and path.cache.listening
                      and path.reference.ready), "the read path never held its reference data"


def _same(a, b) -> None:
    assert (a.status_code, a.content) == (b.status_code, b.content)
    for h in ("content-type", "cache-control", "x-content-type-options"):
        assert a.headers.get(h) == b.headers.get(h)


def _scan(client, token: str, headers) -> object:
    client.app.state.read_path.cache.clear()  # a render-cache miss each time: the store is what is asked
    return client.get(f"/p/{token}", headers=headers)


def test_should_serve_each_stored_answer_byte_for_byte_as_composed(conn, committed_engine, app_settings, url,
                                                                  tmp_path, make_address, make_facility,
                                                                  plate_for):
    make_facility("婚姻登记处", "吴兴区婚姻登记处", 120.0885, 30.8935, phone="0572-1234567")
    tokens = [plate_for(make_address(street="存储路", number=f"{n}号", lon=120.088 + n * 1e-4))[1] for n in (1, 2, 3)]
    conn.commit()
    report = build(url, tmp_path, base_url=app_settings.public_base_url, processes=1)
    assert report.plates >= 3 and (tmp_path / "current").is_symlink()
    with _client(committed_engine, app_settings) as plain, \
            _client(committed_engine, app_settings, scan_store_dir=tmp_path) as stored:
        _ready(plain, tokens[0])
        _ready(stored, tokens[0])
        store = stored.app.state.read_path.store
        store.served = store.stale = store.absent = 0
        for token in tokens:
            for headers in (JSON, HTML):
                _same(_scan(stored, token, headers), _scan(plain, token, headers))
        assert store.served == 6 and store.stale == 0
        # the thank-you page is not stored: composed, the same as without a store
        _same(_scan(stored, tokens[0] + "?reported=true", HTML), _scan(plain, tokens[0] + "?reported=true", HTML))
        assert store.served == 6


def test_should_compose_again_what_changed_after_the_build(conn, committed_engine, app_settings, url, tmp_path,
                                                          make_address, make_facility, plate_for, place):
    street_plate = plate_for(make_address(street="旧名路", number="5号"))
    edited_address = make_address(street="编辑路", number="6号")
    _, edited, _ = plate_for(edited_address)
    revoked_id, revoked, _ = plate_for(make_address(street="编辑路", number="7号"))
    far = plate_for(make_address(street="远方路", number="8号", lon=120.30, lat=30.70))[1]
    conn.commit()
    build(url, tmp_path, base_url=app_settings.public_base_url, processes=1)
    with _client(committed_engine, app_settings, scan_store_dir=tmp_path) as client:
        _ready(client, far)
        store = client.app.state.read_path.store
        store.served = store.stale = store.absent = 0
        for token in (street_plate[1], edited, revoked, far):
            assert _scan(client, token, JSON).status_code == 200
        assert store.served == 4
        conn.execute(text("UPDATE place_names SET name = '新名路' WHERE id = "
                          "(SELECT street_id FROM addresses WHERE id = "
                          "(SELECT address_id FROM doorplates WHERE id = :p))"), {"p": street_plate[0]})
        conn.execute(text("UPDATE addresses SET number = '66号', version = version + 1 WHERE id = :a"),
                     {"a": edited_address})
        revoke_plate(conn, revoked_id, reason="被盗 stolen", actor="tests")
        make_facility("集中治丧点", "远方治丧点", 120.3001, 30.7001)
        conn.commit()
        assert eventually(lambda: "新名路" in _scan(client, street_plate[1], JSON).json()["address"]["text"])
        assert "新名路" in _scan(client, street_plate[1], HTML).text
        assert eventually(lambda: _scan(client, edited, JSON).json()["address"]["number"] == "66号")
        assert eventually(lambda: _scan(client, revoked, JSON).status_code == 410)
        assert _scan(client, revoked, HTML).status_code == 410
        assert eventually(lambda: "远方治丧点" in _scan(client, far, JSON).text)
        assert store.stale >= 5  # each of them read, fingerprinted, and composed instead


def test_should_leave_a_store_of_another_base_url_or_other_code_unused(conn, committed_engine, app_settings, url,
                                                                      tmp_path, make_address, plate_for, caplog):
    _, token, _ = plate_for(make_address(number="9号"))
    conn.commit()
    build(url, tmp_path, base_url="https://mp.example.gov.cn", processes=1)
    with _client(committed_engine, app_settings, scan_store_dir=tmp_path) as client:
        _ready(client, token)
        store = client.app.state.read_path.store
        assert store.generation is None
        assert _scan(client, token, JSON).json()["report_url"].startswith(app_settings.public_base_url)
        assert store.served == 0
    assert "was built for https://mp.example.gov.cn" in caplog.text
    meta_path = tmp_path / os.readlink(tmp_path / "current") / "meta.json"
    meta = meta_path.read_text().replace("https://mp.example.gov.cn", app_settings.public_base_url)
    meta_path.write_text(meta.replace(composer_digest(), "0" * 32))
    opened = scan_store.ScanStore(tmp_path, base_url=app_settings.public_base_url, composer=composer_digest())
    assert opened.generation is None and "built by other code" in caplog.text


def test_should_build_the_same_store_in_two_processes_as_in_one(conn, url, app_settings, tmp_path, make_address,
                                                               plate_for):
    for n in range(10, 14):
        plate_for(make_address(number=f"{n}号"))
    conn.commit()
    one = build(url, tmp_path / "one", base_url=app_settings.public_base_url, processes=1).path
    two = build(url, tmp_path / "two", base_url=app_settings.public_base_url, processes=2).path
    for name in ("ids.npy", "checks.npy", "offsets.npy", "answers.bin", "dict-json.bin", "dict-html.bin"):
        assert (one / name).read_bytes() == (two / name).read_bytes(), name


def _generation(root, *, plate_id: int, row: dict, token: str, bodies: tuple[bytes, bytes], base_url="http://x"):
    dictionaries = {"json": b'{"plate": ', "html": b"<html>"}
    writer = scan_store.GenerationWriter(root, {"base_url": base_url, "composer": "c"}, dictionaries)
    packed = [scan_store.Packer(dictionaries[v])(b) for v, b in zip(scan_store.VARIANTS, bodies)]
    writer.add_part(np.array([plate_id]), np.array([[scan_store.fingerprint(row), scan_store.token_digest(token)]],
                                                    dtype=np.uint64),
                    np.array([[len(p) for p in packed]]), b"".join(packed))
    return writer.publish()


def test_should_answer_only_for_the_same_row_and_token(tmp_path):
    row = {"id": 7, "status": "active", "street_info": ["人民路", "Renmin Lu"]}
    _generation(tmp_path, plate_id=7, row=row, token="tok7", bodies=(b'{"plate": 7}', b"<html>7</html>"))
    store = scan_store.ScanStore(tmp_path, base_url="http://x", composer="c")
    assert store.answer(7, row, "tok7", html=False) == b'{"plate": 7}'
    assert store.answer(7, row, "tok7", html=True) == b"<html>7</html>"
    assert store.answer(7, dict(row, street_info=["新路", "Xin Lu"]), "tok7", html=False) is None
    assert store.answer(7, row, "another-valid-token", html=False) is None
    assert store.answer(8, dict(row, id=8), "tok7", html=False) is None
    assert (store.served, store.stale, store.absent) == (2, 2, 1)


def test_should_open_a_newly_published_generation_and_keep_the_one_before(tmp_path):
    row = {"id": 7}
    first = _generation(tmp_path, plate_id=7, row=row, token="t", bodies=(b"{1}", b"<1>"))
    store = scan_store.ScanStore(tmp_path, base_url="http://x", composer="c")
    assert store.answer(7, row, "t", html=False) == b"{1}"
    second = _generation(tmp_path, plate_id=7, row=row, token="t", bodies=(b"{2}", b"<2>"))
    assert store.answer(7, row, "t", html=False) == b"{1}"  # looked for again every RELOAD_CHECK_SECONDS
    store.refresh(force=True)
    assert store.answer(7, row, "t", html=False) == b"{2}"
    third = _generation(tmp_path, plate_id=7, row=row, token="t", bodies=(b"{3}", b"<3>"))
    assert not first.exists() and second.exists() and third.exists()  # a worker may still map the one before
    assert scan_store.status(tmp_path)["path"] == str(third)


def test_should_refuse_parts_out_of_plate_order_and_leave_current_as_it_was(tmp_path):
    _generation(tmp_path, plate_id=7, row={"id": 7}, token="t", bodies=(b"{}", b"<>"))
    before = os.readlink(tmp_path / "current")
    writer = scan_store.GenerationWriter(tmp_path, {}, {"json": b"", "html": b""})
    writer.add_part(np.array([5, 6]), np.zeros((2, 2), np.uint64), np.zeros((2, 2)), b"")
    with pytest.raises(scan_store.StoreError, match="ascending plate id order"):
        writer.add_part(np.array([6]), np.zeros((1, 2), np.uint64), np.zeros((1, 2)), b"")
    writer.abandon()
    assert os.readlink(tmp_path / "current") == before and not writer.path.exists()


def test_should_build_and_report_the_store_from_the_command_line(conn, url, app_settings, tmp_path, monkeypatch,
                                                                 make_address, plate_for):
    from loaders.cli import app as cli
    from registry.settings import get_settings

    plate_for(make_address(number="20号"))
    conn.commit()
    monkeypatch.setenv("REGISTRY_DATABASE_URL", url)
    monkeypatch.delenv("REGISTRY_SCAN_STORE_DIR", raising=False)
    get_settings.cache_clear()
    try:
        runner = CliRunner()
        missing = runner.invoke(cli, ["plates", "scan-store", "build"])
        assert missing.exit_code == 2 and "REGISTRY_SCAN_STORE_DIR" in missing.output
        assert runner.invoke(cli, ["plates", "scan-store", "status", "--dir", str(tmp_path)]).exit_code == 1
        built = runner.invoke(cli, ["plates", "scan-store", "build", "--dir", str(tmp_path), "--processes", "1"])
        assert built.exit_code == 0, built.output
        assert "plates stored" in built.output
        shown = runner.invoke(cli, ["plates", "scan-store", "status", "--dir", str(tmp_path)])
        assert shown.exit_code == 0 and "served by this API" in shown.output
        (tmp_path / os.readlink(tmp_path / "current") / "meta.json").unlink()  # a generation damaged by hand
        broken = runner.invoke(cli, ["plates", "scan-store", "status", "--dir", str(tmp_path)])
        assert broken.exit_code == 1 and "meta.json" in broken.output and "Traceback" not in broken.output
    finally:
        get_settings.cache_clear()


def test_should_serve_without_a_store_whose_files_are_cut_short(tmp_path, caplog):
    path = _generation(tmp_path, plate_id=7, row={"id": 7}, token="t", bodies=(b"{}", b"<>"))
    with open(path / "answers.bin", "r+b") as f:
        f.truncate(1)
    store = scan_store.ScanStore(tmp_path, base_url="http://x", composer="c")
    assert store.generation is None and store.answer(7, {"id": 7}, "t", html=False) is None
    assert "do not fit together" in caplog.text


def test_should_open_an_empty_store(tmp_path):
    writer = scan_store.GenerationWriter(tmp_path, {"base_url": "http://x", "composer": "c"}, {"json": b"", "html": b""})
    writer.publish()
    store = scan_store.ScanStore(tmp_path, base_url="http://x", composer="c")
    assert store.generation is not None and store.answer(1, {"id": 1}, "t", html=True) is None


def test_should_read_the_rows_in_the_read_pools_time_zone(url, monkeypatch):
    # the row's timestamps are written in the session's time zone: a build in another one would
    # fingerprint every row differently from the workers (and the store would never be served)
    from api.scan_store import _Composer
    from registry.serving.pool import TIME_ZONE

    monkeypatch.setenv("PGTZ", "UTC")  # what a client's environment may ask libpq for
    composer = _Composer(url, "http://x")
    with composer._connect() as c:
        assert c.execute("SHOW TimeZone").fetchone()[0] == TIME_ZONE


def test_should_say_at_shutdown_how_much_it_served_and_when_to_rebuild(tmp_path, caplog):
    import logging

    row = {"id": 7}
    _generation(tmp_path, plate_id=7, row=row, token="t", bodies=(b"{}", b"<>"))
    store = scan_store.ScanStore(tmp_path, base_url="http://x", composer="c")
    store.answer(7, row, "t", html=False)
    store.answer(7, {"id": 7, "changed": True}, "t", html=False)
    store.answer(8, {"id": 8}, "t", html=False)
    with caplog.at_level(logging.INFO, logger="registry.serving.store"):
        store.close()
    assert "1 of 3 misses served from it, 1 recomposed" in caplog.text
    assert "rebuild it" in caplog.text
