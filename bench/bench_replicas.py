"""Replicas and failures, measured: a primary and a streaming replica of this bench's own (temporary
folders, ports 55440-55449, the schema and the reference divisions), two APIs on them served by
uvicorn in threads — one reading from the replica (its search following `search_changes`), one on
the primary only (its search on LISTEN/NOTIFY: the baseline) — then:

1. freshness: a road committed on the primary, the time until each API's search finds it;
2. read latency of `GET /v1/divisions/{code}` through the replica and through the primary;
3. the primary SIGKILLed under 4 clients: reads' statuses and slowest answer, a write's 503 time;
   then the replica killed too (every answer a fast 503); both restarted: the time until ten 200s
   in a row, the API never restarted.

    .venv/bin/python bench/bench_replicas.py --changes 20
"""
from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import tempfile
import threading
import time
import uuid
from pathlib import Path

import httpx
import psycopg

from registry.db.cluster import ManagedCluster
from registry.db.replica import ReplicaCluster, port_free
from registry.settings import get_settings

from servers import serve_in_thread  # bench/ is on sys.path when run as a script

FAST = {"shared_buffers": "64MB", "fsync": "off", "synchronous_commit": "off", "full_page_writes": "off",
        "max_connections": "60", "logging_collector": "off"}


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * q))]


def new_name() -> str:
    return "测速" + "".join("零一二三四五六七八九"[int(c, 16) % 10] for c in uuid.uuid4().hex[:6]) + "路"


def add_road(primary: ManagedCluster, name: str) -> None:
    with psycopg.connect(primary._libpq("registry"), autocommit=True) as c:
        d, county = c.execute("SELECT v.id, c.id FROM divisions v JOIN divisions t ON t.id = v.parent_id "
                              "JOIN divisions c ON c.id = t.parent_id WHERE v.level = 'village' "
                              "ORDER BY v.id LIMIT 1").fetchone()
        c.execute("INSERT INTO place_names (category, name, division_id, county_id) VALUES ('road', %s, %s, %s)",
                  (name, d, county))


def pid_of(data_dir: Path) -> int:
    return int((data_dir / "postmaster.pid").read_text().split()[0])


def start_after_kill(start, limit: float = 30.0) -> None:
    deadline = time.monotonic() + limit
    while True:
        try:
            return start()
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--changes", type=int, default=20, help="roads committed for the freshness figure")
    ap.add_argument("--reads", type=int, default=300, help="GETs per API for the latency figure")
    args = ap.parse_args()

    from api.app import create_app
    from loaders.reference import load_reference
    from registry.db.engine import make_engine
    from registry.db.migrate import upgrade

    ports = [p for p in range(55440, 55450) if port_free(p)][:2]
    root = Path(tempfile.mkdtemp(prefix="bench-replicas-", dir="/tmp"))
    os.chmod(root, 0o755)
    base = get_settings().model_copy(update={"data_dir": root / "pgdata", "pg_port": ports[0],
                                             "rate_limit_public_per_minute": 0, "rate_limit_report_per_minute": 0})
    primary = ManagedCluster(base, conf=FAST, sync=False)
    replica = ReplicaCluster(base, "b", primary=primary, root=root / "replicas", conf=FAST)
    try:
        t0 = time.perf_counter()
        primary.start()
        primary.ensure_database("registry")
        upgrade(primary.url())
        eng = make_engine(base, url=primary.url(), pool_size=1)
        with eng.begin() as conn:
            load_reference(conn, actor="bench")
        eng.dispose()
        replica.start(ports[1])
        print(f"primary :{primary.port} + replica :{replica.port} ready in {time.perf_counter() - t0:.1f} s")

        with psycopg.connect(primary._libpq("registry")) as c:
            code = c.execute("SELECT nbs_code FROM divisions WHERE level = 'township' ORDER BY id LIMIT 1").fetchone()[0]
        on_replica = create_app(base.model_copy(update={"database_url": primary.url(),
                                                        "replica_urls": (replica.url(),),
                                                        "replica_check_seconds": 0.5}))
        on_primary = create_app(base.model_copy(update={"database_url": primary.url()}))
        with serve_in_thread(on_replica) as url_r, serve_in_thread(on_primary) as url_p, \
                httpx.Client(base_url=url_r, timeout=60) as cr, httpx.Client(base_url=url_p, timeout=60) as cp:
            on_replica.state.search.get(timeout=120)
            on_primary.state.search.get(timeout=120)

            # 1. freshness
            delays = {"replica (polls search_changes)": [], "primary (LISTEN/NOTIFY, baseline)": []}
            for _ in range(args.changes):
                name = new_name()
                add_road(primary, name)
                t = time.perf_counter()
                pending = {"replica (polls search_changes)": cr, "primary (LISTEN/NOTIFY, baseline)": cp}
                while pending:
                    for label, client in list(pending.items()):
                        if name in client.get("/v1/search", params={"q": name, "limit": 5}).text:
                            delays[label].append(time.perf_counter() - t)
                            del pending[label]
                    if time.perf_counter() - t > 30:
                        raise SystemExit(f"{name} not found after 30 s by {list(pending)}")
                    time.sleep(0.01)
            print(f"\n1. commit on the primary → found by the API's search ({args.changes} roads)")
            for label, xs in delays.items():
                print(f"   {label:<36} p50 {pct(xs, .5) * 1000:7.0f} ms   max {max(xs) * 1000:7.0f} ms")
            ratio = statistics.median(delays["replica (polls search_changes)"]) / \
                statistics.median(delays["primary (LISTEN/NOTIFY, baseline)"])
            print(f"   ratio of medians replica/baseline: {ratio:.1f}×")

            # 2. read latency
            print(f"\n2. GET /v1/divisions/{code}, {args.reads} sequential requests")
            figures = {}
            for label, client in (("through the replica", cr), ("on the primary (baseline)", cp)):
                xs = []
                for _ in range(args.reads):
                    t = time.perf_counter()
                    assert client.get(f"/v1/divisions/{code}").status_code == 200
                    xs.append(time.perf_counter() - t)
                figures[label] = xs
                print(f"   {label:<36} p50 {pct(xs, .5) * 1000:6.1f} ms   p99 {pct(xs, .99) * 1000:6.1f} ms")

            # 3. failures under load
            results: list[tuple[float, float, int]] = []
            stop = threading.Event()

            def load() -> None:
                with httpx.Client(base_url=url_r, timeout=60) as c:
                    while not stop.is_set():
                        t = time.perf_counter()
                        r = c.get(f"/v1/divisions/{code}")
                        results.append((time.perf_counter(), time.perf_counter() - t, r.status_code))

            workers = [threading.Thread(target=load, daemon=True) for _ in range(4)]
            for w in workers:
                w.start()
            time.sleep(1.0)
            t_kill = time.perf_counter()
            os.kill(pid_of(primary.data_dir), signal.SIGKILL)
            time.sleep(0.5)
            t = time.perf_counter()
            write = cr.post("/p/NOTATOKEN/report", json={"kind": "wrong"})
            write_s = time.perf_counter() - t
            time.sleep(2.0)
            t_kill2 = time.perf_counter()
            os.kill(pid_of(replica.data_dir), signal.SIGKILL)
            time.sleep(2.0)
            t_restart = time.perf_counter()
            start_after_kill(primary.start)
            start_after_kill(replica.start)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                tail = [s for at, _, s in results if at > t_restart][-10:]
                if len(tail) == 10 and all(s == 200 for s in tail):
                    break
                time.sleep(0.05)
            t_ok = next((at for at, _, s in reversed(results) if s != 200), t_restart)
            stop.set()
            for w in workers:
                w.join(30)

            def phase(a: float, b: float) -> str:
                xs = [(d, s) for at, d, s in results if a <= at < b]
                statuses = sorted({s for _, s in xs})
                return (f"{len(xs):5d} answers, statuses {statuses}, slowest {max(d for d, _ in xs) * 1000:6.0f} ms"
                        if xs else "no answers")
            print("\n3. SIGKILL under 4 clients reading through the replica-backed API")
            print(f"   primary killed, replica up:          {phase(t_kill, t_kill2)}")
            print(f"   a write meanwhile:                   {write.status_code} in {write_s * 1000:.0f} ms, "
                  f"Retry-After {write.headers.get('retry-after')}")
            print(f"   both killed:                         {phase(t_kill2, t_restart)}")
            print(f"   restart → last non-200 answer:       {max(0.0, t_ok - t_restart):.1f} s "
                  f"(both clusters restarted, API not)")
            print(f"   all answers: statuses {sorted({s for _, _, s in results})}, "
                  f"slowest {max(d for _, d, _ in results) * 1000:.0f} ms")
    finally:
        for stop_cluster in (replica.remove, primary.stop):
            try:
                stop_cluster()
            except Exception:
                pass
        for data in (root / "replicas" / "b", root / "pgdata"):
            if (data / "postmaster.pid").exists():
                try:
                    os.kill(pid_of(data), signal.SIGKILL)
                except (ProcessLookupError, ValueError):
                    pass
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
