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


def same_body(a, b) -> bool:
    return a.state == b.state and a.body == b.body and a.replacement == b.replacement


async def pg_times(pool, sql: str, ids: list[int]) -> list[float]:
    """Execution time (s) of `sql` prepared with a generic plan, per plate id."""
    out = []
    async with pool.connection(primary=True) as conn:
        await conn.execute("SET plan_cache_mode = force_generic_plan")
        await conn.execute("PREPARE bench_stmt(bigint) AS " + sql.replace("%s", "$1"))
        try:
            for pid in ids[:20]:
                await conn.execute(f"EXECUTE bench_stmt({pid})")
            for pid in ids:
                cur = await conn.execute(f"EXPLAIN (ANALYZE, TIMING OFF, SUMMARY ON) EXECUTE bench_stmt({pid})")
                line = next(r[0] for r in await cur.fetchall() if r[0].startswith("Execution Time"))
                out.append(float(line.split()[2]) / 1000)
        finally:
            await conn.execute("DEALLOCATE bench_stmt")
            await conn.execute("RESET plan_cache_mode")
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

        for pid in ids[:50]:  # warm: connections, prepared statements, the candidate cells
            await full(pid)
            await scan_row(path, pid)
        before_row, before_compose, after_row, after_compose = [], [], [], []
        differ = missing = 0
        fallbacks = ref.fallbacks
        for pid in ids:
            t0 = time.perf_counter()
            row = await full(pid)
            t1 = time.perf_counter()
            if row is None:
                missing += 1
                continue
            old_scan = old.compose(row, **common)
            t2 = time.perf_counter()
            new_row = await scan_row(path, pid)
            t3 = time.perf_counter()
            new_scan = view.compose(new_row, **common)
            t4 = time.perf_counter()
            before_row.append(t1 - t0)
            before_compose.append(t2 - t1)
            after_row.append(t3 - t2)
            after_compose.append(t4 - t3)
            differ += not same_body(old_scan, new_scan)
        print(f"{len(before_row)} plates ({missing} ids without a plate), {differ} bodies differ, "
              f"{ref.fallbacks - fallbacks} scans left to the full statement")
        t = time.perf_counter()
        for pid in ids:
            await path.pool.fetchone(view.SLIM_SQL, (pid,), primary=True)
        slim_trip = (time.perf_counter() - t) / len(ids)
        pg_before = await pg_times(path.pool, old.SCAN_SQL, ids[:300])
        pg_after = await pg_times(path.pool, view.SLIM_SQL, ids[:300])

        print("\nper miss                       before (SCAN_SQL, baseline compose)            after (slim + reference, compose)")
        print(f"PostgreSQL execution   {stats(pg_before)}   |  {stats(pg_after)}")
        print(f"scan_row (wall)        {stats(before_row)}   |  {stats(after_row)}")
        print(f"compose                {stats(before_compose)}   |  {stats(after_compose)}")
        both_b = [a + b for a, b in zip(before_row, before_compose)]
        both_a = [a + b for a, b in zip(after_row, after_compose)]
        print(f"scan_row + compose     {stats(both_b)}   |  {stats(both_a)}")
        print(f"\nafter: the slim statement's round trip alone {slim_trip * 1000:.3f} ms (mean); scan_row's "
              f"in-process part ≈ {(statistics.fmean(after_row) - slim_trip) * 1000:.3f} ms; "
              f"ratio before/after of scan_row + compose: {statistics.fmean(both_b) / statistics.fmean(both_a):.2f}")
    finally:
        await path.close()


if __name__ == "__main__":
    asyncio.run(main())
