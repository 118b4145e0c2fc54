"""On the generated city (data/generate + loaders/city.py): the bench's query classes, freshness
through LISTEN/NOTIFY, the batch command line and the spec anchors."""
from __future__ import annotations

import csv
import sys
import time
import uuid
from collections import defaultdict
from pathlib import Path

import pytest
from sqlalchemy import text

from registry.search import SearchService, search
from registry.search.cli import match_file

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from search_queries import CLASSES, Generator  # noqa: E402  (the bench's own query generator)


def _top(gaz, q):
    res = search(gaz, q, limit=5)["results"]
    return res[0] if res else None


@pytest.mark.parametrize("q,address", [
    ("吴兴区爱山街道人民路123号", "浙江省湖州市吴兴区爱山街道人民路123号"),
    ("吴兴人民路12-1号", "浙江省湖州市吴兴区爱山街道人民路12-1号"),
    ("南浔区人民路123号", None), ("长兴人民路123号", None),
    ("吴兴区凤凰小区5幢2单元301室", None),
])
def test_should_find_the_anchor_addresses_of_the_generated_city(city_gaz, q, address):
    first = _top(city_gaz, q)
    assert first is not None and first["kind"] == "address" and first["score"] >= 0.95, first
    if address:
        assert first["address"] == address


def test_should_find_natural_village_doors_of_digang(city_gaz):
    s = city_gaz.addresses
    digang = city_gaz.division_by_code("330503106202")
    rows = s.select("village", digang.id)
    assert rows, "the generator puts natural-village doors in 荻港村"
    code, full = s.text(rows[0][0])
    first = _top(city_gaz, full.replace("浙江省湖州市", ""))
    assert first["id"] == int(s.ids[rows[0][0]])


def test_should_reach_the_recall_of_the_bench_on_every_class(city_gaz):
    queries = Generator(city_gaz, seed=11).generate(12)
    assert {q.cls for q in queries} >= set(CLASSES) - {"former"}
    hits: dict[str, list[bool]] = defaultdict(list)
    misses = []
    for bq in queries:
        res = search(city_gaz, bq.q, limit=5)["results"]
        ok = bool(res) and (res[0]["kind"], res[0]["id"]) == (bq.kind, bq.id)
        hits[bq.cls].append(ok)
        if not ok:
            misses.append((bq.cls, bq.q, res[0]["address"] if res else None))
    overall = sum(sum(v) for v in hits.values()) / sum(len(v) for v in hits.values())
    assert overall >= 0.97, misses
    for cls, v in hits.items():
        assert sum(v) / len(v) >= 0.8, (cls, misses)


# --- freshness ------------------------------------------------------------------------------------
_POOL = "甲乙丙丁戊己庚辛壬癸子丑寅卯辰巳午未申酉戌亥松柏梅兰竹菊琴棋书画"


def _fresh_name(prefix: str) -> str:
    """A street name never used before, without digits (digits in a name read as a door number)."""
    n = uuid.uuid4().int
    chars = []
    for _ in range(4):
        n, k = divmod(n, len(_POOL))
        chars.append(_POOL[k])
    return prefix + "".join(chars) + "路"


def _wait_for(service, q, predicate, timeout=3.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        res = search(service.get(), q, limit=3)["results"]
        if predicate(res):
            return res
        time.sleep(0.02)
    raise AssertionError(f"{q!r} did not change within {timeout} s")


@pytest.fixture()
def service(city):
    svc = SearchService(city.engine).start()
    svc.get(timeout=60)
    yield svc
    svc.stop()


def _new_street(conn, name):
    v = conn.execute(text("""
        SELECT v.id, v.parent_id, t.parent_id AS county FROM divisions v JOIN divisions t ON t.id = v.parent_id
        WHERE v.level = 'village' AND v.nbs_code LIKE '330502%' ORDER BY v.id LIMIT 1
    """)).one()
    sid = conn.execute(text("""
        INSERT INTO place_names (category, name, division_id, county_id) VALUES ('road', :n, :t, :c) RETURNING id
    """), {"n": name, "t": v.parent_id, "c": v.county}).scalar_one()
    aid = conn.execute(text("""
        INSERT INTO addresses (division_id, street_id, number, number_main, full_text, code, local_seq, geom)
        VALUES (:v, :s, '8号', 8, :ft, :code, 99999999, ST_SetSRID(ST_MakePoint(120.1, 30.9), 4490)) RETURNING id
    """), {"v": v.id, "s": sid, "ft": f"浙江省湖州市吴兴区{name}8号", "code": f"T{uuid.uuid4().hex[:18]}"}).scalar_one()
    return sid, aid


def test_should_find_a_street_committed_by_another_connection_within_a_second(service, city):
    name = _fresh_name("新开")
    with city.engine.begin() as conn:
        sid, aid = _new_street(conn, name)
    res = _wait_for(service, f"吴兴区{name}8号", lambda r: bool(r) and r[0]["id"] == aid, timeout=2.0)
    assert res[0]["kind"] == "address" and res[0]["match"]["partial"] is False


def test_should_forget_a_retired_address_and_learn_a_renamed_street(service, city):
    name = _fresh_name("旧名")
    with city.engine.begin() as conn:
        sid, aid = _new_street(conn, name)
    _wait_for(service, f"{name}8号", lambda r: bool(r) and r[0]["id"] == aid)
    new_name = name.replace("旧名", "新名")
    with city.engine.begin() as conn:
        conn.execute(text("UPDATE place_names SET name = :n WHERE id = :i"), {"n": new_name, "i": sid})
        conn.execute(text("INSERT INTO place_name_aliases (place_name_id, name, kind) VALUES (:i, :n, 'former')"),
                     {"i": sid, "n": name})
    res = _wait_for(service, f"{name}8号", lambda r: bool(r) and r[0].get("match", {}).get("former_names"))
    assert res[0]["id"] == aid and res[0]["match"]["former_names"][0]["current"] == new_name
    with city.engine.begin() as conn:
        conn.execute(text("UPDATE addresses SET status = 'retired' WHERE id = :i"), {"i": aid})
    _wait_for(service, f"{new_name}8号", lambda r: all(x["kind"] != "address" or x["id"] != aid for x in r))


def test_should_not_announce_a_change_that_was_rolled_back(service, city):
    name = _fresh_name("回滚")
    with city.engine.connect() as conn:
        trans = conn.begin()
        _new_street(conn, name)
        trans.rollback()
    time.sleep(0.3)
    res = search(service.get(), f"{name}8号")["results"]
    assert all(name not in (r.get("address") or "") for r in res)


# --- the command line -------------------------------------------------------------------------------
def test_should_match_a_csv_file_from_the_command_line(city, city_gaz, tmp_path):
    infile = tmp_path / "in.csv"
    rows = ["吴兴区爱山街道人民路123号", "吳興人民路12-1號", "火星基地99号"]
    with open(infile, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(["编号", "地址"])
        w.writerows([[i, r] for i, r in enumerate(rows)])
    seen = []
    summary = match_file(city.engine, infile, "地址", tmp_path / "out.csv", lambda s, d, t: seen.append((d, t)))
    out = list(csv.DictReader(open(tmp_path / "out.csv", encoding="utf-8-sig")))  # written with a BOM
    assert [r["地址"] for r in out] == rows and [r["编号"] for r in out] == ["0", "1", "2"]
    assert out[0]["address"] == "浙江省湖州市吴兴区爱山街道人民路123号"
    assert out[1]["address"] == "浙江省湖州市吴兴区爱山街道人民路12-1号"
    assert out[2]["low_confidence"] == "true" or out[2]["id"] == ""
    assert seen[-1] == (3, 3) and "3 行" in summary


def test_should_refuse_a_missing_column_from_the_command_line(city, tmp_path):
    from registry.errors import InvalidQuery

    infile = tmp_path / "in.csv"
    infile.write_text("名称\n人民路\n", encoding="utf-8")
    with pytest.raises(InvalidQuery) as exc:
        match_file(city.engine, infile, "地址", None)
    assert exc.value.parameter == "column"
