"""What a rate-limit check costs on the request path, and what the shared store costs behind it:
the memory store (exact, one process), the leased PostgreSQL store (`LeasedBuckets`: a local
lease, settled in the background), and one settlement transaction of the PostgreSQL store for a
batch of buckets (what the background thread pays every REGISTRY_RATE_LIMIT_SYNC_SECONDS).
Runs on a scratch database of the configured server (created and dropped).

    .venv/bin/python bench/bench_ratelimit.py --checks 5000 --clients 1000
"""
from __future__ import annotations

import argparse
import statistics
import time

from sqlalchemy import create_engine
from sqlalchemy.engine import make_url

from api.ratelimit import AnonymousLimiter, LeasedBuckets, MemoryBuckets, PostgresStore
from registry.db.engine import resolve_database_url
from registry.settings import get_settings


def _times(fn, n: int, clients: int) -> list[float]:
    out = []
    for i in range(n):
        t0 = time.perf_counter()
        fn("GET", "/p/AAAAAAAAAAAA", f"198.51.100.{i % clients}")
        out.append(time.perf_counter() - t0)
    return out


def _report(name: str, xs: list[float]) -> None:
    xs = sorted(xs)
    print(f"{name:<34} p50 {xs[len(xs) // 2] * 1e6:8.1f} µs   p99 {xs[int(len(xs) * 0.99)] * 1e6:8.1f} µs   "
          f"mean {statistics.fmean(xs) * 1e6:8.1f} µs")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--checks", type=int, default=5000)
    ap.add_argument("--clients", type=int, default=1000)
    ap.add_argument("--batch", type=int, default=200, help="buckets in one settlement")
    args = ap.parse_args()
    settings = get_settings().model_copy(update={"rate_limit_public_per_minute": 10**6})
    url = make_url(resolve_database_url(settings))
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    scratch = "bench_ratelimit"
    with admin.connect() as c:
        c.exec_driver_sql(f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)')
        c.exec_driver_sql(f'CREATE DATABASE "{scratch}"')
    engine = create_engine(url.set(database=scratch), pool_size=5)
    try:
        mem = AnonymousLimiter(settings, store=MemoryBuckets())
        store = PostgresStore(lambda: engine)
        leased = LeasedBuckets(store, interval=settings.rate_limit_sync_seconds, share=settings.rate_limit_lease_share)
        pg = AnonymousLimiter(settings, store=leased)
        pg.check("GET", "/", "warm-up")
        leased.settle()
        _report("memory", _times(mem.check, args.checks, args.clients))
        before = store.exchanges
        t0 = time.perf_counter()
        _report("leased postgres (request path)", _times(pg.check, args.checks, args.clients))
        wall = time.perf_counter() - t0
        time.sleep(3 * settings.rate_limit_sync_seconds)
        print(f"{'':<34} {store.exchanges - before} settlements in the background for {args.checks:,} checks "
              f"in {wall:.2f} s")
        leased.close()
        out = []
        for r in range(20):
            items = [(f"public:bench-{r}-{i}", 1.0, 10, 300) for i in range(args.batch)]
            t0 = time.perf_counter()
            store.exchange(items)
            out.append(time.perf_counter() - t0)
        _report(f"one settlement of {args.batch} buckets", out)
    finally:
        engine.dispose()
        with admin.connect() as c:
            c.exec_driver_sql(f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)')
        admin.dispose()


if __name__ == "__main__":
    main()
