"""The shared gazetteer (registry/search/generation.py): one generation on disk mapped by every
process, built once, caught up and followed by each process, swapped on rebuild, its old files
removed once unused, rebuilt when broken; and batch matching over it in worker processes."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from sqlalchemy import text

from registry.search import SearchService, apply_changes, search
from registry.search.batch import formatted
from registry.search.generation import GenerationUnusable, SharedGazetteers, attach, changes_since, release

ROOT = Path(__file__).resolve().parents[2]

# One worker process: attach (or build), then answer "q<TAB>expected id" lines from stdin with the
# id it finds once the expected one appears (or the last top id after 10 s).
WORKER = r"""
import json, sys, time
from pathlib import Path
from sqlalchemy import create_engine
from registry.search import SearchService, apply_changes, search
svc = SearchService(create_engine(sys.argv[1]), directory=Path(sys.argv[2])).start()
gaz = svc.get(120)
print(json.dumps({"generation": gaz.generation.path.name, "pid": __import__("os").getpid()}), flush=True)
for line in sys.stdin:
    q, want = line.rstrip("\n").split("\t")
    deadline, got = time.monotonic() + 10, None
    while time.monotonic() < deadline:
        res = search(svc.get(), q, limit=1)["results"]
        got = res[0]["id"] if res else None
        if got == int(want):
            break
        time.sleep(0.02)
    print(json.dumps({"id": got}), flush=True)
svc.stop()
"""


def _new_address(conn, name: str) -> int:
    v = conn.execute(text("""
        SELECT v.id, v.parent_id, t.parent_id AS county FROM divisions v JOIN divisions t ON t.id = v.parent_id
        WHERE v.level = 'village' AND v.nbs_code LIKE '330502%' ORDER BY v.id LIMIT 1
    """)).one()
    sid = conn.execute(text("INSERT INTO place_names (category, name, division_id, county_id) "
                            "VALUES ('road', :n, :t, :c) RETURNING id"),
                       {"n": name, "t": v.parent_id, "c": v.county}).scalar_one()
    return conn.execute(text("""
        INSERT INTO addresses (division_id, street_id, number, number_main, full_text, code, local_seq, geom)
        VALUES (:v, :s, '8号', 8, :ft, :code, 99999998, ST_SetSRID(ST_MakePoint(120.1, 30.9), 4490)) RETURNING id
    """), {"v": v.id, "s": sid, "ft": f"浙江省湖州市吴兴区{name}8号", "code": f"S{uuid.uuid4().hex[:18]}"}).scalar_one()


@pytest.fixture(scope="module")
def gen_dir(tmp_path_factory) -> Path:
    """One REGISTRY_GAZETTEER_DIR for the module: the first test builds the generation, the
    others attach to it (a build is the costly part)."""
    return tmp_path_factory.mktemp("gazetteer")


def _fresh_name() -> str:
    digits = "一二三四五六七八九"
    return "共享" + "".join(digits[int(c, 16) % 9] for c in uuid.uuid4().hex[:3]) + "路"


def test_should_share_one_generation_between_two_processes_and_both_see_a_later_change(city, gen_dir):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [subprocess.Popen([sys.executable, "-c", WORKER, city.url, str(gen_dir)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True, env=env, cwd=ROOT) for _ in range(2)]
    try:
        hello = [json.loads(p.stdout.readline()) for p in procs]
        assert hello[0]["generation"] == hello[1]["generation"]  # one generation, mapped by both
        root = SharedGazetteers(city.engine, gen_dir).root
        assert [p.name for p in root.glob("g-*")] == [hello[0]["generation"]]  # built once
        meta = json.loads((root / hello[0]["generation"] / "meta.json").read_text())
        assert meta["built_by"] in {h["pid"] for h in hello}
        name = _fresh_name()
        with city.engine.begin() as conn:
            aid = _new_address(conn, name)
        for p in procs:
            p.stdin.write(f"吴兴区{name}8号\t{aid}\n")
            p.stdin.flush()
        assert [json.loads(p.stdout.readline())["id"] for p in procs] == [aid, aid]
    finally:
        for p in procs:
            p.stdin.close()
        for p in procs:
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()


def test_should_catch_up_with_a_change_committed_after_the_generation_was_built(city, gen_dir):
    shared = SharedGazetteers(city.engine, gen_dir)
    gaz = shared.obtain()
    name = _fresh_name()
    with city.engine.begin() as conn:
        aid = _new_address(conn, name)
    with city.engine.connect() as conn:
        changes, stale = changes_since(conn, gaz.snapshot)
        conn.rollback()
    assert not stale and aid in changes["addresses"] and changes["place_names"]
    with city.engine.connect() as conn:  # what SearchService does on attaching
        apply_changes(gaz, conn, changes)
        conn.rollback()
    try:
        res = search(gaz, f"吴兴区{name}8号", limit=1)["results"]
        assert res and res[0]["id"] == aid
    finally:
        release(gaz)


def _found_by_former_name(gaz, name: str, place_id: int) -> bool:
    return any(r["kind"] == "place" and r["id"] == place_id
               and any(f["name"] == name for f in r["match"].get("former_names", ()))
               for r in search(gaz, name, limit=5)["results"])


def test_should_not_find_a_place_by_an_alias_deleted_after_the_generation_was_built(city, gen_dir):
    """A deleted row leaves no row changed after the snapshot: a process attaching to the
    generation still drops the alias when it catches up."""
    from registry.db.tables import place_name_aliases

    shared = SharedGazetteers(city.engine, gen_dir)
    gaz = shared.obtain()
    try:
        with city.engine.connect() as conn:  # a former name of one place only, named by nothing else
            rows = conn.execute(text("""
                SELECT a.* FROM place_name_aliases a JOIN place_names p ON p.id = a.place_name_id
                WHERE p.status = 'active' AND a.kind = 'former'
                  AND NOT EXISTS (SELECT 1 FROM place_names o WHERE o.name = a.name)
                  AND NOT EXISTS (SELECT 1 FROM place_name_aliases o WHERE o.name = a.name AND o.id <> a.id)
                ORDER BY a.id LIMIT 20""")).mappings().all()
            conn.rollback()
        alias = next(dict(r) for r in rows if _found_by_former_name(gaz, r["name"], r["place_name_id"]))
        path = gaz.generation.path
    finally:
        release(gaz)
    with city.engine.begin() as conn:
        conn.execute(text("DELETE FROM place_name_aliases WHERE id = :id"), {"id": alias["id"]})
    svc = SearchService(city.engine, directory=gen_dir)  # a worker starting now: it attaches and catches up
    try:
        attached = svc.get(60)
        assert attached.generation.path == path  # caught up, not rebuilt
        assert not _found_by_former_name(attached, alias["name"], alias["place_name_id"])
    finally:
        svc.stop()
        with city.engine.begin() as conn:  # the city as it was, for the other tests
            conn.execute(place_name_aliases.insert().values(**alias))


def test_should_publish_a_new_generation_on_a_bulk_change_and_remove_the_old_one(city, gen_dir):
    svc = SearchService(city.engine, directory=gen_dir).start()
    try:
        first = svc.get(60).generation.path
        with city.engine.begin() as conn:  # what a statement changing > 500 rows announces
            conn.execute(text("SELECT pg_notify('registry_search', 'addresses:*')"))
        deadline = time.monotonic() + 60
        while svc.get().generation.path == first and time.monotonic() < deadline:
            time.sleep(0.05)
        second = svc.get().generation.path
        assert second != first and (second / "meta.json").exists()
        while first.exists() and time.monotonic() < deadline:  # removed right after the swap
            time.sleep(0.05)
        assert not first.exists()  # nobody maps it any more
        assert (svc.shared.root / "current").read_text().strip() == second.name
    finally:
        svc.stop()


def test_should_rebuild_a_corrupt_or_missing_generation_instead_of_failing(city, gen_dir):
    shared = SharedGazetteers(city.engine, gen_dir)
    gaz = shared.obtain()
    path, n = gaz.generation.path, len(gaz.addresses)
    release(gaz)
    import shutil

    for name, damage in (("text.bin", lambda f: f.truncate(10)), ("packed.npy", lambda f: f.truncate(200)),
                         ("objects.pickle", lambda f: f.truncate(50)), ("meta.json", lambda f: f.truncate(5))):
        copy = gen_dir / f"g-damaged-{name}"
        shutil.copytree(path, copy)
        with open(copy / name, "r+b") as f:
            damage(f)
        with pytest.raises(GenerationUnusable):
            attach(copy, city.engine)
    shutil.rmtree(path)  # the published generation gone: rebuilt, not crashed on
    rebuilt = shared.obtain()
    assert rebuilt.generation.path.exists() and len(rebuilt.addresses) == n
    release(rebuilt)
    shared.clean()  # the damaged copies too
    assert [p.name for p in shared.root.glob("g-*")] == [rebuilt.generation.path.name]


def test_should_match_a_batch_in_worker_processes_exactly_as_one_process_does(city, city_gaz, gen_dir):
    shared = SharedGazetteers(city.engine, gen_dir)
    gaz = shared.obtain()
    try:
        store = city_gaz.addresses
        texts = [store.text(i)[1] for i in range(0, len(store.ids), 7)][:300]
        rows = texts + [t.replace("号", "") for t in texts[:100]] + [t[6:].replace("路", "街") for t in texts[:100]]
        rows += ["", "不存在的地方", "x" * 300]
        single = [r for recs in formatted(city_gaz, rows, "records", processes=1) for r in recs]
        pooled = [r for recs in formatted(gaz, rows, "records", processes=2) for r in recs]
        assert pooled == single
    finally:
        release(gaz)


def test_should_remove_the_generations_of_a_dropped_database_after_a_build(city, gen_dir):
    shared = SharedGazetteers(city.engine, gen_dir)
    from registry.search.generation import database_key

    dropped = gen_dir / database_key(city.engine, "registry_dropped_long_ago")
    (dropped / "g-20260101T000000-1-000001").mkdir(parents=True)
    other_server = gen_dir / "otherhost-5432-registry_dropped_long_ago"  # not this server's to judge
    (other_server / "g-20260101T000000-1-000001").mkdir(parents=True)
    (shared.root / "current").unlink(missing_ok=True)  # the next obtain() builds
    gaz = shared.obtain()
    try:
        assert not dropped.exists()
        assert other_server.exists() and shared.root.exists()
    finally:
        release(gaz)
