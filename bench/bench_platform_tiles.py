"""Vector tiles at city scale: the densest z14 address tile, uncached and cached, over HTTP.

    .venv/bin/python bench/bench_platform_tiles.py --addresses 50000                # a small city
    .venv/bin/python bench/bench_platform_tiles.py --template registry_city_full    # the whole city

In a database of its own (dropped at the end unless --keep-db; bench_load.bench_city, as
bench_platform.py, which runs these figures too), against a real `registry serve` process:

1. uncached: before each request an empty `load_addresses` change set is applied (untimed; the
   server's cache hears of it by NOTIFY), so the server's tile cache drops the address layer and
   renders the tile again — the first request after a change;
2. cached: the same tile again and again;
3. baseline: `/healthz` of the same server (one `SELECT 1`): the stack's floor;
4. the tile's SQL alone (`registry.tiles.render_tile`, no HTTP), and a cached tile in process
   without a listener (`TileCache.get`: the per-request version check and the lookup).

Targets (the full city, issue 13): uncached ≤ 50 ms, cached ≤ 2 ms.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from sqlalchemy import text  # noqa: E402

from bench_load import add_city_arguments, bench_city  # noqa: E402
from bench_platform import _get, start_server  # noqa: E402  (one way to start and time a server)

TARGETS = {"uncached_ms": 50.0, "cached_ms": 2.0}
Z = 14

_DENSEST = text(f"""
    SELECT floor((ST_X(geom) + 180) / 360 * 2 ^ {Z})::int AS x,
           floor((1 - ln(tan(radians(ST_Y(geom))) + 1 / cos(radians(ST_Y(geom)))) / pi()) / 2 * 2 ^ {Z})::int AS y,
           count(*) AS n
    FROM addresses WHERE status = 'active' GROUP BY 1, 2 ORDER BY n DESC LIMIT 1""")


def _stats(times: list[float]) -> tuple[float, float]:
    times = sorted(times)
    return statistics.median(times), times[int(0.95 * (len(times) - 1))]


def _bump(eng) -> None:
    """An applied change set of kind load_addresses: the address tiles are stale for every server."""
    from registry.changes import apply_change_set, open_change_set

    with eng.begin() as conn:
        cs = open_change_set(conn, kind="load_addresses", author="bench", source="bench: invalidate tiles")
        apply_change_set(conn, cs, actor="bench")


def bench_tiles(eng, base: str, repeat: int) -> dict:
    import mapbox_vector_tile

    from registry.tiles import LAYERS, TileCache, render_tile

    with eng.connect() as conn:
        x, y, n = conn.execute(_DENSEST).one()
    url = f"{base}/tiles/addresses/{Z}/{x}/{y}.mvt"
    _get(url)  # warm-up: connection pool, first plan
    uncached = []
    for _ in range(repeat):
        _bump(eng)
        time.sleep(0.3)  # untimed: the server's cache hears of the change set (NOTIFY) within ms
        ms, body = _get(url)
        uncached.append(ms)
    features = len(mapbox_vector_tile.decode(body)["addresses"]["features"])
    cached, healthz = [], []
    for _ in range(repeat * 5):  # interleaved, so that both see the same machine
        cached.append(_get(url)[0])
        healthz.append(_get(f"{base}/healthz")[0])
    sql, in_cache = [], []
    with eng.connect() as conn:
        for _ in range(repeat):
            t = time.perf_counter()
            render_tile(conn, LAYERS["addresses"], Z, x, y)
            sql.append((time.perf_counter() - t) * 1000)
        cache = TileCache()
        cache.get(conn, LAYERS["addresses"], Z, x, y)
        for _ in range(repeat * 5):  # a cached tile in process: the version check and the lookup
            t = time.perf_counter()
            cache.get(conn, LAYERS["addresses"], Z, x, y)
            in_cache.append((time.perf_counter() - t) * 1000)
        one = []
        for _ in range(repeat * 5):  # the floor of any statement: one round trip
            t = time.perf_counter()
            conn.execute(text("SELECT 1")).scalar_one()
            one.append((time.perf_counter() - t) * 1000)
    (u, u95), (c, c95), (h, h95), (s, _) = _stats(uncached), _stats(cached), _stats(healthz), _stats(sql)
    k, _ = _stats(in_cache)
    r1, _ = _stats(one)
    print(f"densest z{Z} address tile {Z}/{x}/{y}: {features} features ({n} doors), {len(body) / 1024:.1f} KiB", flush=True)
    print(f"  uncached: median {u:.1f} ms, p95 {u95:.1f} ms (target ≤ {TARGETS['uncached_ms']:.0f} ms); "
          f"its SQL alone {s:.1f} ms", flush=True)
    print(f"  cached:   median {c:.2f} ms, p95 {c95:.2f} ms (target ≤ {TARGETS['cached_ms']:.0f} ms); "
          f"in process, no HTTP (version check + lookup) {k:.2f} ms, a SELECT 1 {r1:.2f} ms", flush=True)
    print(f"  /healthz: median {h:.2f} ms, p95 {h95:.2f} ms → cached/healthz {c / h:.2f}, "
          f"uncached/healthz {u / h:.1f}", flush=True)
    return {"tile": f"{Z}/{x}/{y}", "features": features, "bytes": len(body), "uncached_ms": u,
            "uncached_p95_ms": u95, "cached_ms": c, "cached_p95_ms": c95, "tile_healthz_ms": h, "sql_ms": s,
            "cached_in_process_ms": k, "select1_ms": r1}


def wait_for_search(base: str) -> None:
    """The server loads its search index in a thread at start-up: it holds the GIL for seconds and
    would slow every request meanwhile; the first search waits for it."""
    t = time.perf_counter()
    _get(f"{base}/v1/search?q=%E6%B9%96%E5%B7%9E")
    print(f"search index ready in {time.perf_counter() - t:.1f} s (untimed)", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_city_arguments(ap)
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--port", type=int, default=0, help="the server's port (0: any free one)")
    args = ap.parse_args()

    proc = None
    try:
        with bench_city(args, f"registry_bench_tiles_{os.getpid()}") as (url, eng, n):
            proc, base = start_server(url, args.port)
            wait_for_search(base)
            results = {"addresses": n, **bench_tiles(eng, base, args.repeat)}
            print(json.dumps(results))
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=60)


if __name__ == "__main__":
    main()
