"""A generated city loaded on the state before the real adjustments lives through them
(`registry load city` on a registry loaded with `--before-adjustments`): a database of its own,
a 2,000-address city, a plate issued before the adjustments, then the adjustments carried through
and the rest of the city loaded on today's state."""
from __future__ import annotations

import pytest
from sqlalchemy import text

from city_databases import reference_database

MOVED_TO_DONGQIAN = "330503001"


@pytest.fixture(scope="module")
def city_engine(database_url):
    with reference_database(database_url, "city_before", adjust=False) as eng:
        yield eng


def _addresses(conn) -> dict[int, tuple]:
    return {r.id: r for r in conn.execute(text("""
        SELECT a.id, a.code, a.full_text, v.full_name AS village, t.name AS township,
               coalesce(a.building, a.unit, a.room, '') = '' AS door
        FROM addresses a JOIN divisions v ON v.id = a.division_id JOIN divisions t ON t.id = v.parent_id
        WHERE a.status = 'active'""")).all()}


@pytest.fixture(scope="module")
def carried(city_engine, tmp_path_factory):
    """The city's first pass on the before-state, plates issued there, then the adjustments and the
    second pass (what `load_city` does in one call, split to issue plates in between)."""
    from data.generate import generate_city
    from loaders.city import load_city
    from loaders.reference import carry_through_observed_adjustments
    from registry.doorplates import KeyRing, issue_plates, live_plate_for

    city = generate_city(tmp_path_factory.mktemp("city") / "city", addresses=2000, seed=1)
    first = load_city(city_engine, city.out_dir, actor="tests", carry_through=False)
    with city_engine.begin() as conn:
        before = _addresses(conn)
        jiuguan = next(r for r in sorted(before.values()) if r.township == "旧馆镇" and r.door)
        moved = sorted(r for r in before.values() if r.township == "南浔镇" and r.village in _dongqian_villages(conn))
        moved = sorted(moved, key=lambda r: not r.door)
        ring, tokens = KeyRing(ttl=0), {}
        for address_id in (jiuguan.id, moved[0].id):
            issue_plates(conn, actor="tests", address_id=address_id, kind="door")
            plate = live_plate_for(conn, address_id, "door")
            key_id = conn.execute(text("SELECT key_id FROM doorplates WHERE id = :id"), {"id": plate}).scalar_one()
            tokens[address_id] = ring.token_for(conn, plate, key_id)
    with city_engine.begin() as conn:
        adjustments = carry_through_observed_adjustments(conn, actor="tests")
        through = _addresses(conn)
    second = load_city(city_engine, city.out_dir, actor="tests")
    with city_engine.connect() as conn:
        final = _addresses(conn)
    return dict(city=city, first=first, second=second, before=before, through=through, final=final,
                jiuguan=jiuguan, moved=moved, tokens=tokens, adjustments=adjustments)


def _dongqian_villages(conn) -> set[str]:
    import csv

    from loaders.reference import ADJUSTMENTS_FILE, REFERENCE_DIR

    with open(REFERENCE_DIR / ADJUSTMENTS_FILE, encoding="utf-8", newline="") as f:
        return {r["village"] for r in csv.DictReader(f)
                if r["township_2023_code"] == MOVED_TO_DONGQIAN and r["township_before"] == "南浔镇"}


def test_should_load_the_city_on_the_before_state_and_keep_every_address_and_id_through_the_adjustments(carried):
    assert len(carried["adjustments"]) == 3
    assert carried["jiuguan"] and carried["moved"], "the small city has addresses in 旧馆镇 and in moved villages"
    assert set(carried["through"]) == set(carried["before"])
    jiuguan = carried["through"][carried["jiuguan"].id]
    assert jiuguan.township == "旧馆街道" and "旧馆街道" in jiuguan.full_text
    assert set(carried["before"]) <= set(carried["final"])


def test_should_load_the_rest_of_the_city_on_todays_state(carried):
    # the first pass left what the before-state lacks (东迁街道, 康乾街道, their new communities)
    first = {r.step.name: r.report for r in carried["first"] if r.report is not None}
    assert first["addresses"].rejected > 0
    assert len(carried["final"]) == 2000
    steps = {r.step.name for r in carried["second"]}
    assert "boundary lines and markers" in steps


def test_should_recode_the_addresses_of_the_villages_of_dongqian_and_keep_their_old_codes(carried, city_engine):
    from registry.addresses import resolve_address_code

    with city_engine.connect() as conn:
        for old in carried["moved"]:
            now = carried["through"][old.id]
            assert now.township == "东迁街道" and now.code.startswith(MOVED_TO_DONGQIAN)
            assert now.code != old.code
            assert resolve_address_code(conn, old.code) == old.id
            assert resolve_address_code(conn, now.code) == old.id


def test_should_scan_a_plate_issued_before_the_adjustments_to_todays_address(carried, city_engine, settings):
    from fastapi.testclient import TestClient

    from api.app import create_app

    app = create_app(settings.model_copy(update={"key_cache_seconds": 0.0, "doorplate_scan_flush_seconds": 0.0}),
                     engine=city_engine)
    jiuguan = carried["jiuguan"]
    with TestClient(app) as client:
        page = client.get(f"/p/{carried['tokens'][jiuguan.id]}", headers={"Accept": "application/json"}).json()
    assert page["address"]["text"].endswith(carried["final"][jiuguan.id].full_text.removeprefix("浙江省湖州市"))
    assert "旧馆街道" in page["address"]["text"]
    assert "旧馆镇" in page["address"]["printed_text"]


def test_should_find_an_address_by_its_former_township_name(carried, city_engine):
    from registry.search.engine import search
    from registry.search.loading import load_gazetteer

    jiuguan = carried["jiuguan"]
    with city_engine.connect() as conn:
        gaz = load_gazetteer(conn)
    village = jiuguan.village.removesuffix("村委会").removesuffix("社区居委会")
    top = search(gaz, f"南浔区旧馆镇{village}", limit=1)["results"][0]
    assert top["name"].startswith(village) and "旧馆街道" in str(top)
    hits = search(gaz, carried["before"][jiuguan.id].full_text.removeprefix("浙江省湖州市"), limit=3)["results"]
    assert jiuguan.id in [h.get("id") for h in hits]


def test_should_skip_the_whole_city_on_a_second_load(carried, city_engine):
    from loaders.city import load_city

    with city_engine.connect() as conn:
        sets = conn.execute(text("SELECT count(*) FROM change_sets")).scalar_one()
    again = load_city(city_engine, carried["city"].out_dir, actor="tests")
    assert all(r.adjusted is None for r in again)
    with city_engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM change_sets")).scalar_one() == sets
        assert len(_addresses(conn)) == 2000
