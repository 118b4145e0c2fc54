"""What a render-cache miss of the public scan costs (issue 11): before and after, in one run.

    .venv/bin/python bench/bench_scan_miss.py --database-url postgresql+psycopg://registry@127.0.0.1:55432/registry_city_full

Before: the full SCAN_SQL (facilities by PostGIS KNN, the division chain by a recursive CTE, the
street and compound by subqueries) composed by the baseline revision's `view.compose` (loaded from
git, `--baseline`). After: `registry.serving.scan.scan_row` on a real ReadPath (the slim statement
completed from the reference data held in process) and today's `view.compose`.

Printed, per miss over the same random plates: the PostgreSQL execution time of each statement
(EXPLAIN ANALYZE of the prepared statement on a generic plan, as psycopg prepares it), the wall time
of reading the row in process (round trip, driver, completion), of compose, and of both. It checks on
the way that both rows compose to the same body for every plate (and counts the scans the reference
data left to the full statement). Read only: nothing is written to the database.
"""
from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

BASELINE = "34a90c5"  # the scan before the reference data (issue 11, item 1)


def baseline_view(rev: str):
    """registry/doorplates/view.py as it was at `rev`, imported as a module of its own."""
    source = subprocess.run(["git", "-C", str(ROOT), "show", f"{rev}:registry/doorplates/view.py"],
                            check=True, capture_output=True, text=True).stdout
    path = Path(tempfile.mkdtemp()) / "baseline_view.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("baseline_view", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def stats(values: list[float]) -> str:
    ms = sorted(v * 1000 for v in values)
    return f"median {statistics.median(ms):6.3f} ms  mean {statistics.fmean(ms):6.3f} ms  p99 {ms[int(len(ms) * 0.99)]:6.3f} ms"


def old_row_json(row: dict) -> list:
    """The full row as SCAN_SQL's one JSON column carries it (what the driver decodes)."""
    return list(row.values())


def same_body(a, b) -> bool:
    return a.state == b.state and a.body == b.body and a.replacement == b.replacement


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

    old = baseline_view(args.baseline)
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

        async def full(pid):
            return old.scan_row(await path.pool.fetchone(old.SCAN_SQL, (pid,), primary=True))

        for pid in ids[:50]:  # warm: connections, prepared statements, the candidate cells, the caches
            await full(pid)
            await scan_row(path, pid)
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
        differ = sum(not same_body(old.compose(a, **common), view.compose(b, **common))
                     for a, b in zip(before_rows, after_rows))
        print(f"{len(before_rows)} plates, {differ} bodies differ between before and after, "
              f"{left} scans left to the full statement by the reference data")

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
            "driver: JSON row decoded": (cpu(json.loads, full_json), cpu(json.loads, slim_json)),
            "row completed in process": (0.0, cpu(ref.row, slim_rows)),
            "compose": (cpu(lambda r: old.compose(r, **common), before_rows),
                        cpu(lambda r: view.compose(r, **common), after_rows)),
        }
        pg_before = await pg_times(path.primary, old.SCAN_SQL, ids[:300])
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
        print(f"\nwall time of reading the row (round trip on the pool; noisy on a shared machine)")
        print(f"  before {stats(before_wall)}")
        print(f"  after  {stats(after_wall)}")
    finally:
        await path.close()


if __name__ == "__main__":
    asyncio.run(main())
