"""What an anonymous rate-limit check costs on the request path: the memory store, the PostgreSQL
store (one upsert on an UNLOGGED table, through the pool), and the thread hop the middleware
adds for it. Runs on a scratch database of the configured server (created and dropped).

    .venv/bin/python bench/bench_ratelimit.py --checks 5000 --clients 1000
"""
from __future__ import annotations

import argparse
import asyncio
import statistics
import time

from sqlalchemy import create_engine
from sqlalchemy.engine import make_url

from api.ratelimit import AnonymousLimiter, MemoryBuckets, PostgresBuckets
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
    print(f"{name:<28} p50 {xs[len(xs) // 2] * 1e6:8.1f} µs   p99 {xs[int(len(xs) * 0.99)] * 1e6:8.1f} µs   "
          f"mean {statistics.fmean(xs) * 1e6:8.1f} µs")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--checks", type=int, default=5000)
    ap.add_argument("--clients", type=int, default=1000)
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
        pg = AnonymousLimiter(settings, store=PostgresBuckets(lambda: engine))
        pg.check("GET", "/", "warm-up")
        _report("memory", _times(mem.check, args.checks, args.clients))
        _report("postgres", _times(pg.check, args.checks, args.clients))

        async def hop(method, path, client):
            from anyio import to_thread

            return await to_thread.run_sync(pg.check, method, path, client)

        async def run() -> list[float]:
            out = []
            for i in range(args.checks):
                t0 = time.perf_counter()
                await hop("GET", "/p/AAAAAAAAAAAA", f"198.51.100.{i % args.clients}")
                out.append(time.perf_counter() - t0)
            return out

        _report("postgres + thread hop", asyncio.run(run()))
    finally:
        engine.dispose()
        with admin.connect() as c:
            c.exec_driver_sql(f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)')
        admin.dispose()


if __name__ == "__main__":
    main()
