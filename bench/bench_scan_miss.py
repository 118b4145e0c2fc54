"""What a render-cache miss of the public scan costs (issue 11): before and after, in one run.

    .venv/bin/python bench/bench_scan_miss.py --database-url postgresql+psycopg://registry@127.0.0.1:55432/registry_city_full

Before: the full SCAN_SQL (facilities by PostGIS KNN, the division chain by a recursive CTE, the
street and compound by subqueries) and `view.compose` of the baseline revision (`--baseline`: its
registry/ and data/ taken from git and run in a process of their own). After:
`registry.serving.scan.scan_row` on a real ReadPath (the slim statement, completed from the
reference data held in process) and the work tree's `view.compose`.

Printed, per miss over the same random plates: the CPU time in process of each step (decoding the
row's JSON, completing the row, compose; best of 5 passes), the PostgreSQL execution time of each
statement (EXPLAIN ANALYZE of the prepared statement on a generic plan, as the pool prepares it), and
the wall time of reading the row on the pool (noisy on a shared machine). On the way it checks that
before and after give the same bodies byte for byte for every plate, and counts the scans the
reference data left to the full statement. Read only: nothing is written to the database.

The cold cost (`--cold-baseline`, another revision, by default the one before the miss was made cheaper
in CPU): a miss of a worker that has just started sees its per-name and per-text caches and the facility
grid's cells empty, and 1.6M distinct addresses in service make most misses such. For each of the two
revisions, in fresh processes (`--cold-runs` each, alternating; the medians printed): the reference data loaded from the rows read here (its load's
own background work done, as in a worker up a moment), then one pass over the plates (the first: every
cache as cold as it comes) and the best of 5 warm passes, each miss completing the row, composing and
encoding the body. Use `--plates 20000` or more: the first pass is cold only over many distinct plates.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import pickle
import shutil
import random
import statistics
import subprocess
import sys
import tempfile
import time

import orjson
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

BASELINE = "34a90c5"  # the scan before the reference data (issue 11, item 1)
COLD_BASELINE = "1fd9a27"  # the miss before its CPU was cut (issue 11: compose and the reference data)


BASELINE_SCRIPT = """
import orjson, pickle, sys, time
from registry.doorplates import view
rows = pickle.load(open(sys.argv[1], "rb"))
common = {"base_url": "https://example.org", "token": "t", "token_for": lambda pid, key: "x"}
best = float("inf")
for _ in range(5):
    t = time.process_time()
    for r in rows:
        view.compose(r, **common)
    best = min(best, time.process_time() - t)
scans = [view.compose(r, **common) for r in rows]
pickle.dump({"file": view.__file__, "cpu": best / len(rows),
             "bodies": [(s.state, orjson.dumps(s.body), s.replacement) for s in scans]}, open(sys.argv[2], "wb"))
"""


def baseline_compose(rev: str, rows: list[dict]) -> dict:
    """compose of the baseline revision (its registry/ and data/, from git) over `rows`, in a
    process of its own: its CPU time per row and the bodies it writes."""
    work = tree_of(rev)
    (work / "rows.pkl").write_bytes(pickle.dumps(rows))
    env = {**os.environ, "PYTHONPATH": str(work)}
    subprocess.run([sys.executable, "-c", BASELINE_SCRIPT, str(work / "rows.pkl"), str(work / "out.pkl")],
                   check=True, env=env, cwd=str(work))
    out = pickle.loads((work / "out.pkl").read_bytes())
    assert out["file"].startswith(str(work)), out["file"]  # the baseline's code, not the work tree's
    shutil.rmtree(work)
    return out


COLD_SCRIPT = """
import asyncio, hashlib, orjson, pickle, sys, time
from registry.doorplates import view
from registry.serving import reference as r
data = pickle.load(open(sys.argv[1], "rb"))
rows = {r.DIVISIONS_SQL: data["div"], r.PLACES_SQL: data["pl"], r.FACILITIES_SQL: data["fac"]}
common = {"base_url": "https://example.org", "token": "t", "token_for": lambda pid, key: "x"}

async def fetch(sql, params):
    return rows[sql]

async def main():
    ref = r.Reference(fetch)
    ref.listening = True
    ref.load()
    while not ref.ready or any(not t.done() for t in ref._tasks.values()):
        await asyncio.sleep(0.01)
    digest, fallbacks = hashlib.sha256(), 0

    def one(slim):
        row = ref.row(slim)
        if row is None:
            return None
        scan = view.compose(row, **common)
        return orjson.dumps([scan.state, scan.body, scan.replacement])

    t = time.process_time()
    for slim in data["slim"]:
        one(slim)
    cold = time.process_time() - t
    for slim in data["slim"]:  # the bodies (warm: the digest is not timed)
        body = one(slim)
        fallbacks += body is None
        digest.update(body or b"None")
    warm = float("inf")
    for _ in range(5):
        t = time.process_time()
        for slim in data["slim"]:
            one(slim)
        warm = min(warm, time.process_time() - t)
    n = len(data["slim"])
    pickle.dump({"file": view.__file__, "cold": cold / n, "warm": warm / n, "digest": digest.hexdigest(),
                 "fallbacks": fallbacks}, open(sys.argv[2], "wb"))

asyncio.run(main())
"""


def tree_of(rev: str | None) -> Path:
    """A directory holding registry/ and data/ of `rev` (git archive), or the work tree for None."""
    if rev is None:
        return ROOT
    work = Path(tempfile.mkdtemp(prefix="bench_scan_miss_"))
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev, "registry", "data"],
                             check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(work)], input=archive, check=True)
    return work


def cold_and_warm(rev: str | None, reference_rows: dict) -> dict:
    """COLD_SCRIPT on `rev`'s code (the work tree's for None) in a fresh process."""
    tree = tree_of(rev)
    with tempfile.TemporaryDirectory(prefix="bench_scan_miss_cold_") as tmp:
        (Path(tmp) / "in.pkl").write_bytes(pickle.dumps(reference_rows))
        env = {**os.environ, "PYTHONPATH": str(tree)}
        subprocess.run([sys.executable, "-c", COLD_SCRIPT, f"{tmp}/in.pkl", f"{tmp}/out.pkl"],
                       check=True, env=env, cwd=str(tree))
        out = pickle.loads((Path(tmp) / "out.pkl").read_bytes())
    assert out["file"].startswith(str(tree)), out["file"]  # that revision's code
    if rev is not None:
        shutil.rmtree(tree)
    return out


def stats(values: list[float]) -> str:
    ms = sorted(v * 1000 for v in values)
    p99 = ms[int(len(ms) * 0.99)]
    return f"median {statistics.median(ms):6.3f} ms  mean {statistics.fmean(ms):6.3f} ms  p99 {p99:6.3f} ms"


def old_row_json(row: dict) -> list:
    """The full row as SCAN_SQL's one JSON column carries it (what the driver decodes)."""
    return list(row.values())


async def pg_times(url: str, sql: str, ids: list[int]) -> list[float]:
    """Execution time (s) of `sql` prepared with a generic plan, per plate id (a connection of its own)."""
    import psycopg

    out = []
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        await conn.execute("SET plan_cache_mode = force_generic_plan")
        await conn.execute("PREPARE bench_stmt(bigint) AS " + sql.replace("%s", "$1"))
        for pid in ids[:20]:
            await conn.execute(f"EXECUTE bench_stmt({pid})")
        for pid in ids:
            cur = await conn.execute(f"EXPLAIN (ANALYZE, TIMING OFF, SUMMARY ON) EXECUTE bench_stmt({pid})")
            line = next(r[0] for r in await cur.fetchall() if r[0].startswith("Execution Time"))
            out.append(float(line.split()[2]) / 1000)
    return out


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default="postgresql+psycopg://registry@127.0.0.1:55432/registry_city_full")
    parser.add_argument("--plates", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--baseline", default=BASELINE, help="the git revision of the 'before' view.py")
    parser.add_argument("--cold-runs", type=int, default=3,
                        help="fresh processes per revision for the cold figure, alternating (the machine is shared)")
    parser.add_argument("--cold-baseline", default=COLD_BASELINE,
                        help="the git revision whose cold and warm miss (row completed, composed, encoded) "
                             "is set against the work tree's; 'none' to skip")
    args = parser.parse_args()

    from registry.doorplates import view
    from registry.serving import ReadPath
    from registry.serving.reference import DIVISIONS_SQL, FACILITIES_SQL, PLACES_SQL
    from registry.serving.scan import scan_row
    from registry.settings import Settings

    path = ReadPath(Settings(), args.database_url)
    await path.ensure()
    try:
        deadline = time.monotonic() + 30
        while not path.reference.listening:
            assert time.monotonic() < deadline, "the listener never listened"
            await asyncio.sleep(0.05)
        t = time.perf_counter()
        path.reference.load()
        while not path.reference.ready:
            assert time.monotonic() < deadline, "the reference data never loaded"
            await asyncio.sleep(0.005)
        loaded = time.perf_counter() - t
        ref = path.reference
        print(f"reference data loaded in {loaded * 1000:.0f} ms: {len(ref.chains)} divisions, "
              f"{len(ref.places)} place names, {len(ref.facilities)} facilities")

        top = (await path.pool.fetchone("SELECT max(id) FROM doorplates", primary=True))[0]
        rng = random.Random(args.seed)
        ids = rng.sample(range(1, top + 1), args.plates)  # distinct: each miss's own address
        common = {"base_url": "https://example.org", "token": "t", "token_for": lambda pid, key: "x"}

        async def full(pid):  # SCAN_SQL is the baseline's statement (unchanged)
            return view.scan_row(await path.pool.fetchone(view.SCAN_SQL, (pid,), primary=True))

        # warm: connections, prepared statements, the caches, and the facility grid's cells (a cell's
        # candidates are computed on its first use, about 0.05 ms once per cell for a worker's life)
        t = time.perf_counter()
        for pid in ids:
            await scan_row(path, pid)
        print(f"first pass over the plates (the grid's cells made): {(time.perf_counter() - t) / len(ids) * 1000:.3f} ms "
              f"per scan_row, {len(ref.facilities._cells)} cells")
        for pid in ids[:50]:
            await full(pid)
        # the rows, read once each way (wall time per read: round trip, driver, completion)
        before_rows, after_rows, slim_rows, before_wall, after_wall = [], [], [], [], []
        fallbacks = ref.fallbacks
        for pid in ids:
            t0 = time.perf_counter()
            row = await full(pid)
            t1 = time.perf_counter()
            new_row = await scan_row(path, pid)
            t2 = time.perf_counter()
            if row is None:
                continue
            slim_rows.append((await path.pool.fetchone(view.SLIM_SQL, (pid,), primary=True))[0])
            before_rows.append(row)
            after_rows.append(new_row)
            before_wall.append(t1 - t0)
            after_wall.append(t2 - t1)
        left = ref.fallbacks - fallbacks
        base = baseline_compose(args.baseline, before_rows)
        scans = [view.compose(r, **common) for r in after_rows]
        differ = sum((b[0], b[1], b[2]) != (n.state, orjson.dumps(n.body), n.replacement)
                     for b, n in zip(base["bodies"], scans))
        print(f"{len(before_rows)} plates, {differ} bodies differ between before (baseline compose of SCAN_SQL's row) "
              f"and after, {left} scans left to the full statement by the reference data")

        def cpu(fn, items) -> float:
            """CPU seconds per item of fn over items, best of 5 (the machine is shared)."""
            best = float("inf")
            for _ in range(5):
                t = time.process_time()
                for it in items:
                    fn(it)
                best = min(best, time.process_time() - t)
            return best / len(items)

        full_json = [json.dumps(old_row_json(r)) for r in before_rows]
        slim_json = [json.dumps(r) for r in slim_rows]
        py = {
            "driver: JSON row decoded": (cpu(orjson.loads, full_json), cpu(orjson.loads, slim_json)),
            "row completed in process": (0.0, cpu(ref.row, slim_rows)),
            "compose": (base["cpu"], cpu(lambda r: view.compose(r, **common), after_rows)),
        }
        pg_before = await pg_times(path.primary, view.SCAN_SQL, ids[:300])
        pg_after = await pg_times(path.primary, view.SLIM_SQL, ids[:300])

        print("\nper miss                          before        after   (CPU time in process, best of 5 passes)")
        ms = lambda v: f"{v * 1000:9.3f} ms"  # noqa: E731
        for name, (b, a) in py.items():
            print(f"  {name:30s} {ms(b)} {ms(a)}")
        tb, ta = sum(b for b, _ in py.values()), sum(a for _, a in py.values())
        print(f"  {'Python, all of the above':30s} {ms(tb)} {ms(ta)}   ratio {tb / ta:.2f}")
        print(f"  {'PostgreSQL execution (mean)':30s} {ms(statistics.fmean(pg_before))} {ms(statistics.fmean(pg_after))}"
              f"   ratio {statistics.fmean(pg_before) / statistics.fmean(pg_after):.2f}   (EXPLAIN ANALYZE, generic plan)")
        print(f"  {'PostgreSQL execution (median)':30s} {ms(statistics.median(pg_before))} {ms(statistics.median(pg_after))}")
        print("\nwall time of reading the row (round trip on the pool; noisy on a shared machine)")
        print(f"  before {stats(before_wall)}")
        print(f"  after  {stats(after_wall)}")

        if args.cold_baseline != "none":
            fetch = lambda sql: path.pool.fetchall(sql, primary=True)  # noqa: E731
            held = {"div": [tuple(r) for r in await fetch(DIVISIONS_SQL)],
                    "pl": [tuple(r) for r in await fetch(PLACES_SQL)],
                    "fac": [tuple(r) for r in await fetch(FACILITIES_SQL)], "slim": slim_rows}
            olds, news = [], []
            for _ in range(args.cold_runs):  # alternating: a busy spell of the machine hits both
                olds.append(cold_and_warm(args.cold_baseline, held))
                news.append(cold_and_warm(None, held))
            print(f"\nper miss, row completed + composed + encoded (CPU in a fresh process, {len(slim_rows)} "
                  f"distinct plates, median of {args.cold_runs} processes each): {args.cold_baseline} vs the work tree")
            us = lambda v: f"{v * 1e6:7.0f} µs"  # noqa: E731
            for what, label in (("cold", "cold (first pass)"), ("warm", "warm (best of 5)")):
                old = statistics.median(o[what] for o in olds)
                new = statistics.median(n[what] for n in news)
                runs = " ".join(f"{o[what] * 1e6:.0f}/{n[what] * 1e6:.0f}" for o, n in zip(olds, news))
                print(f"  {label:30s} {us(old)} {us(new)}   ratio {old / new:.2f}   (runs {runs})")
            same = "the same" if len({r["digest"] for r in olds + news}) == 1 else "DIFFERENT"
            print(f"  bodies {same} (sha256 of every body, {olds[0]['fallbacks']}/{news[0]['fallbacks']} left to the "
                  f"full statement)")
    finally:
        await path.close()


if __name__ == "__main__":
    asyncio.run(main())
