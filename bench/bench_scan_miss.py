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
    work = Path(tempfile.mkdtemp(prefix="bench_scan_miss_"))
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev, "registry", "data"],
                             check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(work)], input=archive, check=True)
    (work / "rows.pkl").write_bytes(pickle.dumps(rows))
    env = {**os.environ, "PYTHONPATH": str(work)}
    subprocess.run([sys.executable, "-c", BASELINE_SCRIPT, str(work / "rows.pkl"), str(work / "out.pkl")],
                   check=True, env=env, cwd=str(work))
    out = pickle.loads((work / "out.pkl").read_bytes())
    assert out["file"].startswith(str(work)), out["file"]  # the baseline's code, not the work tree's
    shutil.rmtree(work)
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
    args = parser.parse_args()

    from registry.doorplates import view
    from registry.serving import ReadPath
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
        ids = [rng.randint(1, top) for _ in range(args.plates)]
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
    finally:
        await path.close()


if __name__ == "__main__":
    asyncio.run(main())
