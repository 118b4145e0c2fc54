"""Shared gazetteer bench (issue 11, items 2 and 3): start-up, memory of 1 and 2 API workers over
one generation, memory after bulk reloads, and batch matching over HTTP on 1 and 2 cores.

    .venv/bin/python bench/bench_gazetteer.py --database-url postgresql+psycopg://registry@127.0.0.1:55432/DB

DB must be writable (an agency key is created, and each bulk reload is a real statement moving
600 addresses by 0.1 mm, which the triggers announce as `addresses:*`): a copy of the full city, e.g.
`CREATE DATABASE mine TEMPLATE registry_city_full`. Servers are API subprocesses on
--port, with REGISTRY_GAZETTEER_DIR a fresh folder (the first start builds the generation, the
later ones attach to it): uvicorn with `registry serve`'s app and options. Memory is read from
/proc/<pid>/smaps_rollup of each worker: RSS counts
the mapped pages a worker touched (shared ones in every worker), PSS shares them out, USS is the
private part. "1 core" is the server under `taskset -c 0` (the batch then runs in one process);
"2 cores" is the same server free to use both (the batch forks one matching process per core;
they inherit the mapped generation). Accuracy is recall@1 of the batch against the bench's query
set (bench/search_queries.py: every query names exactly one record). Nothing here runs in tests.
"""
from __future__ import annotations

import argparse
import csv
import io
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

GOALS = {"batch_rows_s": 8000, "two_workers_mb": 1200}


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def smaps(pid: int) -> dict[str, float]:
    """RSS, PSS, USS (private clean + dirty) and the shared part, in MB."""
    out = {"rss": 0.0, "pss": 0.0, "uss": 0.0, "shared": 0.0}
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            key, *rest = line.split()
            if not rest or not rest[0].isdigit():
                continue
            mb = int(rest[0]) / 1024
            if key == "Rss:":
                out["rss"] = mb
            elif key == "Pss:":
                out["pss"] = mb
            elif key in ("Private_Clean:", "Private_Dirty:"):
                out["uss"] += mb
            elif key in ("Shared_Clean:", "Shared_Dirty:"):
                out["shared"] += mb
    except OSError:
        pass
    return out


def mapped_generations(pid: int) -> set[str]:
    """The generation folders a process maps (its /proc/<pid>/maps)."""
    try:
        lines = Path(f"/proc/{pid}/maps").read_text().splitlines()
    except OSError:
        return set()
    return {Path(line.split()[-1]).parent.name for line in lines if line.endswith("/packed.npy")}


def workers_of(pid: int) -> list[int]:
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return []
    return [int(c) for c in children if b"spawn_main" in Path(f"/proc/{c}/cmdline").read_bytes()]


class Server:
    def __init__(self, url: str, port: int, workers: int, gazetteer_dir: Path, cores: str | None = None) -> None:
        env = dict(os.environ, REGISTRY_DATABASE_URL=url, REGISTRY_GAZETTEER_DIR=str(gazetteer_dir),
                   REGISTRY_LOG_LEVEL="WARNING", REGISTRY_RATE_LIMIT_PUBLIC_PER_MINUTE="0")
        # `registry serve` runs uvicorn with these options; the worker health check is given more than
        # uvicorn's 5 s, which a spawned worker needs just to start on a busy machine
        run = (f"import uvicorn; uvicorn.run('api.main:app', host='127.0.0.1', port={port}, workers={workers}, "
               "log_level='warning', access_log=False, timeout_worker_healthcheck=120)")
        cmd = [sys.executable, "-c", run]
        if cores:
            cmd = ["taskset", "-c", cores, *cmd]
        from sqlalchemy.engine import make_url

        from registry.search.generation import database_key

        self.port, self.workers, self.dir = port, workers, gazetteer_dir
        self.key = database_key(type("E", (), {"url": make_url(url)})())
        self.t0 = time.perf_counter()
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env=env, start_new_session=True, stdout=subprocess.DEVNULL,
                                     stderr=open(gazetteer_dir.parent / f"server-{port}.log", "ab"))

    def pids(self) -> list[int]:
        return workers_of(self.proc.pid) or [self.proc.pid]

    def current(self) -> str | None:
        try:
            return (self.dir / self.key / "current").read_text().strip()
        except OSError:
            return None

    def wait_attached(self, generation: str | None = None, timeout: float = 900) -> float:
        """Seconds until every worker maps the published generation (or `generation`) and no other."""
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("the server exited (see its log next to the gazetteer folder)")
            want = generation or self.current()
            pids = self.pids()
            if want and len(pids) == self.workers and all(mapped_generations(p) == {want} for p in pids):
                return time.perf_counter() - self.t0
            time.sleep(0.1)
        raise RuntimeError("the workers did not attach in time")

    def memory(self) -> list[dict[str, float]]:
        return [smaps(p) for p in self.pids()]

    def stop(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(30)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def post_match(port: int, key: str, body: bytes) -> tuple[float, bytes]:
    req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/match?column={urllib.parse.quote('地址')}", data=body, method="POST", headers={"Content-Type": "text/csv", "X-API-Key": key})
    t0 = time.perf_counter()
    with urllib.request.urlopen(req, timeout=1200) as r:
        data = r.read()
    return time.perf_counter() - t0, data


def csv_body(rows: list[str]) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["地址"])
    for q in rows:
        w.writerow([q])
    return buf.getvalue().encode()


def recall_at_1(output: bytes, expected: list[tuple[str, int]]) -> float:
    rows = list(csv.DictReader(io.StringIO(output.decode("utf-8"))))
    ok = sum(1 for r, (kind, eid) in zip(rows, expected) if r["kind"] == kind and r["id"] == str(eid))
    return ok / max(len(expected), 1)


def fmt_mem(ms: list[dict[str, float]]) -> str:
    tot = {k: sum(m[k] for m in ms) for k in ("rss", "pss", "uss")}
    per = " + ".join(f"{m['rss']:.0f}" for m in ms)
    return (f"RSS {tot['rss']:.0f} MB ({per}), PSS {tot['pss']:.0f} MB, USS {tot['uss']:.0f} MB, "
            f"shared in each {statistics.mean(m['shared'] for m in ms):.0f} MB")


def engine_profile(gaz, queries: list[str]) -> tuple[float, float, float]:
    """(mean, p50, p99) ms per row of match_one in this process."""
    from registry.search.engine import match_one

    times = []
    for q in queries:
        t0 = time.perf_counter()
        try:
            match_one(gaz, q)
        except Exception:
            pass
        times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    return statistics.mean(times), times[len(times) // 2], times[int(len(times) * 0.99)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--database-url", required=True, help="a writable copy of the city (see above)")
    ap.add_argument("--port", type=int, default=8140)
    ap.add_argument("--rows", type=int, default=20_000, help="rows per batch request")
    ap.add_argument("--reloads", type=int, default=3)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()

    from sqlalchemy import create_engine, text

    from registry.keys import create_key
    from registry.search.generation import SharedGazetteers, release
    from search_queries import Generator

    work = Path(tempfile.mkdtemp(prefix="bench-gazetteer-", dir=ROOT / "var"))
    gdir = work / "gazetteer"
    gdir.mkdir()
    engine = create_engine(args.database_url)
    with engine.begin() as c:
        key = create_key(c, agency="bench-gazetteer", scopes=["agency"], rate_limit_per_minute=1_000_000).secret
    results: dict[str, object] = {}
    try:
        # 1 worker, cold: it builds the generation
        s = Server(args.database_url, args.port, 1, gdir)
        try:
            results["start_cold_1"] = s.wait_attached()
            time.sleep(2)
            results["mem_1"] = s.memory()
            log(f"1 worker, cold start (builds the generation): {results['start_cold_1']:.1f} s; {fmt_mem(results['mem_1'])}")
        finally:
            s.stop()
        # the query set, from the generation the server built (attached here: no load)
        shared = SharedGazetteers(engine, gdir)
        gaz = shared.obtain()
        t0 = time.perf_counter()
        per_class = max(args.rows // 20, 50)
        qs = Generator(gaz, seed=args.seed).generate(per_class)
        distinct: dict[str, tuple[str, int]] = {}
        for q in qs:
            distinct.setdefault(q.q, (q.kind, q.id))
        rows = list(distinct)[: args.rows]
        expected = [distinct[q] for q in rows]
        log(f"query set: {len(rows)} distinct rows ({time.perf_counter() - t0:.0f} s)")
        mean, p50, p99 = engine_profile(gaz, rows[:3000])
        results["engine"] = (mean, p50, p99)
        log(f"engine per row (match_one, one process, 3000 rows): mean {mean:.3f} ms, p50 {p50:.3f}, p99 {p99:.2f} "
            f"→ {1000 / mean:,.0f} rows/s per core")
        release(gaz)
        del gaz
        body = csv_body(rows)

        # 2 workers, warm: both attach to the published generation
        s = Server(args.database_url, args.port, 2, gdir)
        try:
            results["start_warm_2"] = s.wait_attached()
            time.sleep(2)
            results["mem_2"] = s.memory()
            log(f"2 workers, warm start (attach): {results['start_warm_2']:.1f} s; {fmt_mem(results['mem_2'])}")
            dt, out_w = post_match(s.port, key, body)  # to one of the two workers, maybe a cold one
            results["batch_2w"] = (len(rows) / dt, recall_at_1(out_w, expected))
            log(f"batch over HTTP, 2 workers (2 cores): {results['batch_2w'][0]:,.0f} rows/s, "
                f"recall@1 {results['batch_2w'][1]:.4f}")
            results["mem_2_after_batch"] = s.memory()
            log(f"2 workers after the batch: {fmt_mem(results['mem_2_after_batch'])}")
            for k in range(args.reloads):
                before = s.current()
                t0 = time.perf_counter()
                with engine.begin() as c:  # a bulk statement: > 500 rows, announced as addresses:*
                    # (a real change: a no-op update writes no version and announces nothing); 1e-9° is
                    # 0.1 mm, moved there and back
                    c.execute(text("UPDATE addresses SET geom = ST_Translate(geom, :dx, 0) WHERE id IN "
                                   "(SELECT id FROM addresses WHERE status <> 'retired' ORDER BY id LIMIT 600)"),
                              {"dx": 1e-9 if k % 2 == 0 else -1e-9})
                deadline = time.perf_counter() + 900
                while s.current() == before and time.perf_counter() < deadline:
                    time.sleep(0.2)
                s.wait_attached(s.current())
                took = time.perf_counter() - t0
                time.sleep(2)
                left = sorted(p.name for p in gdir.glob("*/g-*"))
                m = s.memory()
                results[f"mem_reload_{k + 1}"] = m
                log(f"bulk reload {k + 1}: new generation in {took:.1f} s, generations on disk {len(left)}; {fmt_mem(m)}")
        finally:
            s.stop()

        # 1 core vs 2 cores, one API worker warmed by a first batch (lazy dictionaries loaded)
        for name, cores in (("batch_1", "0"), ("batch_2", None)):
            s = Server(args.database_url, args.port, 1, gdir, cores=cores)
            try:
                s.wait_attached()
                post_match(s.port, key, csv_body(rows[:500]))
                dt, out = post_match(s.port, key, body)
                results[name] = (len(rows) / dt, recall_at_1(out, expected))
                results[name + "_out"] = out
                log(f"batch over HTTP, {'1 core' if cores else '2 cores'}: {results[name][0]:,.0f} rows/s, "
                    f"recall@1 {results[name][1]:.4f}")
            finally:
                s.stop()
        same = results["batch_1_out"] == results["batch_2_out"] == out_w
        log(f"1-core and 2-core outputs identical: {same}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
        with engine.begin() as c:
            c.execute(text("DELETE FROM api_keys WHERE agency = 'bench-gazetteer'"))
        engine.dispose()

    two = results["mem_2"]
    print("\nshared gazetteer (issue 11)")
    print(f"  start-up, 1 worker building the generation   {results['start_cold_1']:8.1f} s")
    print(f"  start-up, 2 workers attaching                 {results['start_warm_2']:8.1f} s")
    print(f"  memory, 1 worker                              {fmt_mem(results['mem_1'])}")
    print(f"  memory, 2 workers                             {fmt_mem(two)}  (goal ≤ {GOALS['two_workers_mb']} MB)")
    print(f"  memory, 2 workers after a batch               {fmt_mem(results['mem_2_after_batch'])}")
    for k in range(args.reloads):
        print(f"  memory, 2 workers after bulk reload {k + 1}        {fmt_mem(results[f'mem_reload_{k + 1}'])}")
    mean, p50, p99 = results["engine"]
    print(f"  engine per row: mean {mean:.3f} ms, p50 {p50:.3f} ms, p99 {p99:.2f} ms ({1000 / mean:,.0f} rows/s a core)")
    b1, b2 = results["batch_1"], results["batch_2"]
    print(f"  batch over HTTP, 1 core                       {b1[0]:8,.0f} rows/s  recall@1 {b1[1]:.4f}")
    print(f"  batch over HTTP, 2 cores                      {b2[0]:8,.0f} rows/s  recall@1 {b2[1]:.4f}  "
          f"(×{b2[0] / b1[0]:.2f}; goal ≥ {GOALS['batch_rows_s']:,})")
    bw = results["batch_2w"]
    print(f"  batch over HTTP, 2 workers, first batch       {bw[0]:8,.0f} rows/s  recall@1 {bw[1]:.4f}")
    print(f"  outputs identical on 1 and 2 cores            {same}")


if __name__ == "__main__":
    main()
