"""The change feed (registry/feed.py, GET /v1/changes, registry changes feed): after a load it lists
the loaded entities as created, a correction as modified / moved / retired, merges with their
successors; paged with next links; agency scope."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).parents[1] / "loaders"))

from loader_helpers import IN_A, VILLAGE_A, addr, load, write_csv  # noqa: E402

from registry.errors import InvalidQuery, NotFound  # noqa: E402
from registry.feed import changes  # noqa: E402
from registry.settings import get_settings  # noqa: E402


def _last_applied(conn) -> int:
    return conn.execute(text("SELECT max(id) FROM change_sets WHERE status = 'applied'")).scalar_one()


def _all(conn, **kwargs) -> list[dict]:
    out, page = [], changes(conn, **kwargs)
    while True:
        out += page["change_sets"]
        if page["next"] is None:
            return out
        page = changes(conn, limit=kwargs.get("limit"), **page["next"])


def _by_type(sets: list[dict], type_: str) -> dict[int, str]:
    return {e["id"]: e["action"] for cs in sets for e in cs["entities"] if e["type"] == type_}


@pytest.fixture()
def loaded(conn, tmp_path):
    """Three doors loaded in one change set, then a correction: one moved, one renumbered, one retired."""
    before = _last_applied(conn)
    rows = [addr(number=f"{n}号", lon=IN_A[0] + n * 1e-4) for n in (1, 2, 3)]
    first = load(conn, write_csv(tmp_path / "a.csv", rows), create_places=True)
    assert first.inserted == 3, first.issues
    after_first = _last_applied(conn)
    ids = dict(conn.execute(text("SELECT number, id FROM addresses WHERE division_id = "
                                 "(SELECT id FROM divisions WHERE nbs_code = :v)"), {"v": VILLAGE_A}).all())
    return {"before": before, "first": after_first, "ids": ids, "tmp": tmp_path}


def test_should_list_the_entities_a_load_created(conn, loaded):
    sets = _all(conn, since=str(loaded["before"]))
    assert [cs["id"] for cs in sets] == [loaded["first"]]
    cs = sets[0]
    assert cs["kind"].startswith("load") and cs["complete"] and cs["applied_at"]
    assert _by_type(sets, "address") == {i: "created" for i in loaded["ids"].values()}
    assert "created" in _by_type(sets, "place_name").values()  # the street the load created


def test_should_list_a_correction_as_moved_modified_and_retired(conn, loaded):
    ids = loaded["ids"]
    conn.execute(text("UPDATE addresses SET geom = ST_SetSRID(ST_MakePoint(120.0299, 30.8499), 4490), "
                      "change_set_id = :cs WHERE id = :i"), {"cs": loaded["first"], "i": ids["1号"]})
    cs = conn.execute(text("INSERT INTO change_sets (kind, status, author, applied_at) VALUES "
                           "('inspection', 'applied', 'tests', clock_timestamp()) RETURNING id")).scalar_one()
    conn.execute(text("UPDATE addresses SET full_text = full_text || '（更正）', change_set_id = :cs WHERE id = :i"),
                 {"cs": cs, "i": ids["2号"]})
    conn.execute(text("UPDATE addresses SET status = 'retired', change_set_id = :cs WHERE id = :i"),
                 {"cs": cs, "i": ids["3号"]})
    conn.execute(text("UPDATE addresses SET geom = ST_SetSRID(ST_MakePoint(120.0251, 30.8501), 4490), "
                      "change_set_id = :cs WHERE id = :i"), {"cs": cs, "i": ids["1号"]})
    sets = _all(conn, since=str(loaded["first"]))
    assert [s["id"] for s in sets] == [cs]
    assert _by_type(sets, "address") == {ids["1号"]: "moved", ids["2号"]: "modified", ids["3号"]: "retired"}
    # by time: everything applied after the first load's time
    applied = conn.execute(text("SELECT applied_at FROM change_sets WHERE id = :i"), {"i": loaded["first"]}).scalar_one()
    assert [s["id"] for s in _all(conn, since=applied.isoformat())] == [cs]


def test_should_name_the_successor_of_a_merged_division(conn, loaded):
    a, b = conn.execute(text("SELECT id FROM divisions WHERE level = 'village' AND status = 'active' "
                             "ORDER BY id LIMIT 2")).scalars()
    cs = conn.execute(text("INSERT INTO change_sets (kind, status, author, applied_at) VALUES "
                           "('adjustment', 'applied', 'tests', clock_timestamp()) RETURNING id")).scalar_one()
    adj = conn.execute(text("INSERT INTO division_adjustments (change_set_id, kind, effective_on) "
                            "VALUES (:cs, 'merge', '2026-01-01') RETURNING id"), {"cs": cs}).scalar_one()
    conn.execute(text("UPDATE divisions SET status = 'abolished', change_set_id = :cs WHERE id = :a"), {"cs": cs, "a": a})
    conn.execute(text("UPDATE divisions SET name = name, full_name = full_name || '（合并）', change_set_id = :cs "
                      "WHERE id = :b"), {"cs": cs, "b": b})
    conn.execute(text("INSERT INTO division_successors VALUES (:a, :b, :adj)"), {"a": a, "b": b, "adj": adj})
    [page] = _all(conn, since=str(loaded["first"]))
    got = {e["id"]: e for e in page["entities"]}
    assert got[a]["action"] == "merged" and got[a]["successors"] == [b]
    assert got[b]["action"] == "modified" and page["adjustment"] == "merge"


def test_should_page_by_entities_with_a_cursor_and_lose_nothing(conn, loaded):
    whole = _by_type(_all(conn, since=str(loaded["before"])), "address")
    first = changes(conn, since=str(loaded["before"]), limit=2)
    assert first["numberReturned"] == 2 and "cursor" in first["next"]
    assert first["change_sets"][0]["complete"] is False
    paged = _all(conn, since=str(loaded["before"]), limit=2)
    assert _by_type(paged, "address") == whole
    seen = [(e["type"], e["id"]) for cs in paged for e in cs["entities"]]
    assert len(seen) == len(set(seen))


def test_should_refuse_a_bad_since_cursor_or_limit(conn):
    for kwargs, err, parameter in (({"since": "last week"}, InvalidQuery, "since"),
                                   ({"since": "999999999"}, NotFound, "since"),
                                   ({"cursor": "1:99:0"}, InvalidQuery, "cursor"),
                                   ({"limit": 0}, InvalidQuery, "limit")):
        with pytest.raises(err) as e:
            changes(conn, **kwargs)
        assert e.value.parameter == parameter


def test_should_serve_the_feed_to_agency_keys_with_next_links(client, conn, loaded):
    from registry.keys import create_key

    assert client.get("/v1/changes").status_code in (401, 403)
    key = create_key(conn, agency="统计局", scopes=["agency"]).secret
    r = client.get("/v1/changes", params={"since": loaded["before"], "limit": 2}, headers={"X-API-Key": key})
    assert r.status_code == 200
    body = r.json()
    ids = {e["id"] for cs in body["change_sets"] for e in cs["entities"] if e["type"] == "address"}
    while body["next"]:
        assert {"rel": "next", "href": body["next"], "type": "application/json"} in body["links"]
        body = client.get(body["next"], headers={"X-API-Key": key}).json()
        ids |= {e["id"] for cs in body["change_sets"] for e in cs["entities"] if e["type"] == "address"}
    assert ids == set(loaded["ids"].values())
    bad = client.get("/v1/changes", params={"since": "yesterday"}, headers={"X-API-Key": key})
    assert bad.status_code == 400 and bad.json()["parameter"] == "since"


def test_should_write_the_feed_as_json_lines_from_the_command_line(database_url, monkeypatch, reference, tmp_path):
    from loaders.cli import app

    monkeypatch.setenv("REGISTRY_DATABASE_URL", database_url)
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, ["changes", "feed", "-o", str(tmp_path / "feed"), "--page-size", "500"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    sets = [json.loads(line) for line in (tmp_path / "feed" / "change_sets.jsonl").read_text().splitlines()]
    entities = [json.loads(line) for line in (tmp_path / "feed" / "entities.jsonl").read_text().splitlines()]
    assert sets and len({s["id"] for s in sets}) == len(sets)  # a change set split over pages is written once
    divisions = {e["id"] for e in entities if e["type"] == "division"}
    assert len(divisions) >= 1 + 5 + 72  # the reference load: city, counties, townships …
    assert (tmp_path / "feed" / "next_since").read_text().strip() == str(sets[-1]["id"])
