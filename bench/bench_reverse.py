"""Reverse geocoding's in-process cost (issue 11, item 1): `registry.serving.reverse.reverse_answer`
with the statements (the nearest address's id from memory, then one statement for its row, its
distance and the divisions) against the answer from memory (no statement), on the same points in
one run, and how many points memory answered and whether each answer is the statements' one.

    .venv/bin/python bench/bench_reverse.py --database-url postgresql+psycopg://registry@127.0.0.1:55432/registry_city_full

Read only: the gazetteer is the shared generation under REGISTRY_GAZETTEER_DIR (attached, or built
there once), the read path is the API's (its pool, its listener and the division polygons read by
it). Points: next to a door (most requests) and anywhere over the city's box, radii 50/200/1000 m.
Nothing here runs in tests; the figures are wall-clock on a shared machine.
"""
from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
from sqlalchemy import create_engine  # noqa: E402

from registry.search.freshness import SearchService  # noqa: E402
from registry.serving import ReadPath  # noqa: E402
from registry.serving.reverse import reverse_answer  # noqa: E402
from registry.settings import get_settings  # noqa: E402

RADII = (50.0, 200.0, 1000.0)


def points(store, n: int, seed: int) -> list[tuple[float, float, float]]:
    rng = random.Random(seed)
    ok = np.flatnonzero(np.isfinite(np.asarray(store.lon)))
    lon, lat = np.asarray(store.lon), np.asarray(store.lat)
    box = (float(lon[ok].min()), float(lat[ok].min()), float(lon[ok].max()), float(lat[ok].max()))
    out = []
    for i in range(n):
        if i % 4:  # next to a door
            j = int(ok[rng.randrange(len(ok))])
            out.append((float(lon[j]) + rng.uniform(-0.001, 0.001), float(lat[j]) + rng.uniform(-0.001, 0.001),
                        rng.choice(RADII)))
        else:
            out.append((rng.uniform(box[0], box[2]), rng.uniform(box[1], box[3]), rng.choice(RADII)))
    return out


def same(a: dict, b: dict) -> bool:
    """Equal answers; two doors at one point (flats) are either of them, as in PostGIS."""
    if a == b:
        return True
    if a["address"] and b["address"] and a["address"]["id"] != b["address"]["id"]:
        def strip(d: dict) -> dict:
            return {**d, "address": {k: v for k, v in d["address"].items() if k not in ("id", "address", "code")}}
        return strip(a) == strip(b)
    return False


async def run(url: str, n: int, seed: int) -> None:
    settings = get_settings()
    engine = create_engine(url)
    search = SearchService(engine)
    t0 = time.perf_counter()
    gaz = await asyncio.to_thread(search.get, 600.0)
    print(f"gazetteer: {len(gaz.addresses.ids):,} addresses in {time.perf_counter() - t0:.1f} s")
    path = await ReadPath(settings, url).ensure()
    try:
        memory = path.reverse_memory
        t0 = time.perf_counter()
        while memory.areas is None or not path.nearest.ready_for(gaz.addresses):  # polygons and grid
            await reverse_answer(path, search, 120.1, 30.87, 200.0)
            await asyncio.sleep(0.05)
            if time.perf_counter() - t0 > 120:
                raise SystemExit("reverse memory not ready after 120 s")
        print(f"reverse memory ready in {time.perf_counter() - t0:.1f} s: {len(memory.areas):,} polygons, "
              f"distance {'exact' if memory.distance_exact else 'NOT exact'}")
        pts = points(gaz.addresses, n, seed)
        for lon, lat, radius in pts[:50]:  # warm: prepared statements, caches
            await reverse_answer(path, search, lon, lat, radius, memory=False)
            await reverse_answer(path, search, lon, lat, radius)
        timings: dict[str, list[float]] = {"statements": [], "memory": []}
        answers: dict[str, list[dict]] = {"statements": [], "memory": []}
        before = memory.answered
        for lon, lat, radius in pts:  # interleaved, so that both see the same machine load
            for name, use in (("statements", False), ("memory", True)):
                t = time.perf_counter()
                answers[name].append(await reverse_answer(path, search, lon, lat, radius, memory=use))
                timings[name].append(time.perf_counter() - t)
        from_memory = memory.answered - before
        wrong = sum(not same(m, s) for m, s in zip(answers["memory"], answers["statements"]))
        print(f"\n{n:,} points (3 in 4 next to a door), radii {', '.join(f'{r:g}' for r in RADII)} m")
        print(f"{'reverse_answer':<28} {'mean µs':>9} {'p50 µs':>9} {'p99 µs':>9}")
        for name, label in (("statements", "before (statements)"), ("memory", "after (memory first)")):
            ts = sorted(timings[name])
            print(f"{label:<28} {statistics.fmean(ts) * 1e6:>9.0f} {ts[len(ts) // 2] * 1e6:>9.0f} "
                  f"{ts[int(len(ts) * 0.99)] * 1e6:>9.0f}")
        ratio = statistics.fmean(timings["statements"]) / statistics.fmean(timings["memory"])
        print(f"\nanswered from memory: {from_memory:,} of {n:,} ({from_memory / n:.1%}); "
              f"declined by memory (boundary, ties, unknown division): {memory.declined:,}")
        print(f"answers different from the statements': {wrong}")
        print(f"in-process cost: {ratio:.1f}x less with memory")
    finally:
        await path.close()
        await asyncio.to_thread(search.stop)
        engine.dispose()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--database-url", required=True)
    ap.add_argument("--points", type=int, default=3000)
    ap.add_argument("--seed", type=int, default=11)
    args = ap.parse_args()
    asyncio.run(run(args.database_url, args.points, args.seed))


if __name__ == "__main__":
    main()
