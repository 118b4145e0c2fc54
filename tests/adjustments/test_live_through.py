"""Addresses, plates and search built on the state before the real adjustments live through them:
a database of its own, the reference loaded with adjust=False, a few addresses with plates in 旧馆镇
and in the villages that went to 东迁街道, then the real adjustments carried through."""
from __future__ import annotations

import pytest
from sqlalchemy import text

from city_databases import reference_database
from registry.text import compose_address


@pytest.fixture(scope="module")
def before_engine(database_url):
    with reference_database(database_url, "before", adjust=False) as eng:
        yield eng


def _village(conn, township: str, village: str):
    return conn.execute(text("""
        SELECT v.id, v.name, t.name AS township FROM divisions v JOIN divisions t ON t.id = v.parent_id
        WHERE t.name = :t AND v.full_name = :v"""), {"t": township, "v": village}).one()


def _address(conn, v, number: int) -> int:
    seq = number
    return conn.execute(text("""
        INSERT INTO addresses (division_id, group_no, number, number_main, full_text, code, local_seq, geom)
        VALUES (:d, '2组', :n, :m, :t, :c, :q, ST_SetSRID(ST_MakePoint(120.45, 30.85), 4490)) RETURNING id"""),
        {"d": v.id, "n": f"{number}号", "m": number, "c": f"{v.id}{seq:08d}", "q": seq,
         "t": compose_address(county="南浔区", township=v.township, village=v.name, group="2组",
                              number=f"{number}号")}).scalar_one()


def test_should_carry_addresses_and_plates_through_the_real_adjustments(before_engine, settings):
    from fastapi.testclient import TestClient

    from api.app import create_app
    from api.deps import get_conn
    from loaders.reference import carry_through_observed_adjustments
    from registry.doorplates import KeyRing, issue_plates, live_plate_for
    from registry.search.engine import search
    from registry.search.loading import load_gazetteer

    with before_engine.connect() as conn:
        trans = conn.begin()
        zhuliang = _village(conn, "旧馆镇", "祝良村委会")
        jiangjiang = _village(conn, "南浔镇", "江蒋漾村委会")
        a, b = _address(conn, zhuliang, 5), _address(conn, jiangjiang, 7)
        ring, tokens = KeyRing(ttl=0), {}
        for address_id in (a, b):
            issue_plates(conn, actor="tests", address_id=address_id, kind="door")
            plate = live_plate_for(conn, address_id, "door")
            key_id = conn.execute(text("SELECT key_id FROM doorplates WHERE id = :id"), {"id": plate}).scalar_one()
            tokens[address_id] = ring.token_for(conn, plate, key_id)
        before = conn.execute(text("SELECT id, full_text FROM addresses ORDER BY id")).all()
        carry_through_observed_adjustments(conn, actor="tests")
        after = conn.execute(text("SELECT id, full_text, code FROM addresses ORDER BY id")).all()
        assert [r.id for r in after] == [r.id for r in before]
        assert after[0].full_text == "浙江省湖州市南浔区旧馆街道祝良村2组5号"
        assert after[0].code == "330503002200" + after[0].code[-8:]
        assert after[1].full_text == "浙江省湖州市南浔区东迁街道江蒋漾村2组7号"
        assert after[1].code.startswith("330503001200")
        gaz = load_gazetteer(conn)
        hit = search(gaz, "南浔区旧馆镇祝良村2组5号", limit=1)["results"][0]
        assert hit["id"] == a
        app = create_app(settings.model_copy(update={"key_cache_seconds": 0.0,
                                                     "doorplate_scan_flush_seconds": 0.0}), engine=before_engine)

        def _conn():
            yield conn

        app.dependency_overrides[get_conn] = _conn
        with TestClient(app) as client:
            page = client.get(f"/p/{tokens[a]}", headers={"Accept": "application/json"}).json()
            assert page["address"]["text"].endswith("旧馆街道祝良村2组5号")
            assert page["address"]["printed_text"].endswith("旧馆镇祝良村2组5号")
            then = client.get(f"/v1/addresses/{b}", params={"as_of": "2023-01-01"})
            assert then.status_code == 404  # the address was registered after that day
        trans.rollback()


def _cli(monkeypatch, conn, *args):
    from contextlib import contextmanager

    from typer.testing import CliRunner

    import loaders.adjust_cli
    from loaders.cli import app

    @contextmanager
    def begin():
        with conn.begin_nested():
            yield conn

    monkeypatch.setattr(loaders.adjust_cli, "engine", lambda: type("E", (), {"begin": staticmethod(begin),
                                                                          "connect": staticmethod(begin)})())
    return CliRunner().invoke(app, ["adjust", *args])


def test_should_apply_the_observed_adjustments_from_the_command_line(before_engine, monkeypatch):
    with before_engine.connect() as conn:
        trans = conn.begin()
        result = _cli(monkeypatch, conn, "observed")
        assert result.exit_code == 0, result.output
        assert "2023-06-30" in result.output
        assert conn.execute(text("SELECT count(*) FROM divisions WHERE name IN ('旧馆街道', '东迁街道', '康乾街道') "
                                 "AND status = 'active'")).scalar_one() == 3
        trans.rollback()


def test_should_refuse_the_observed_adjustments_twice(conn, monkeypatch):
    result = _cli(monkeypatch, conn, "observed")  # the session's registry is already adjusted
    assert result.exit_code == 1 and "adjust=False" in result.output
