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
"2 cores" is the same server free to use both (the batch forks one matching process per core for
the rows the engine answers; they inherit the mapped generation).

Batch matching (issue 11, item 3) is measured on two lists of --rows rows each, distinct rows (so
that the batch's de-duplication gains nothing): (a) the error model's rows (bench/search_queries.py,
every class, many unknown streets and typos); (b) an agency's list: the stored standard texts of
random live addresses (half of them written without 浙江省湖州市) with --variant-share of its rows
(default 10 %) drawn from (a). Beside each figure: recall@1 against the one record every row
names, the share of confident wrong answers (low_confidence false and not that record), the
server's CPU seconds (its process and its matching processes) and the machine's idle share during
the request — on a machine shared with other work a second core may simply not be free. The
baseline of the same run is the engine alone in this process (registry.search.batch.match_rows:
row by row, no exact path, one core) on a sample of each list.

    --template registry_city_full   the bench makes its own copy (CREATE DATABASE … TEMPLATE, waiting
                                    until nobody is connected to the template) and drops it at the end
    --batch-only                    only the batch part (no cold start, memory or reloads)
"""
from __future__ import annotations

import argparse
import contextlib
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


def server_cpu(pid: int) -> float:
    """CPU seconds of a process and its children (waited-for ones included), from /proc."""
    total = 0
    try:
        children = [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        children = []
    for p in [pid, *children]:
        try:
            f = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(f[11]) + int(f[12]) + int(f[13]) + int(f[14])
    return total / os.sysconf("SC_CLK_TCK")


def machine_ticks() -> tuple[int, int]:
    """(idle, total) jiffies of all cores."""
    vals = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return vals[3] + vals[4], sum(vals)


def agency_list(gaz, error_rows: list[str], expected: list[tuple[str, int]], n: int, share: float,
                seed: int) -> tuple[list[str], list[tuple[str, int]]]:
    """n distinct rows: stored standard texts of random live addresses (every other one without
    浙江省湖州市) and `share` of them error-model rows, shuffled."""
    import random

    import numpy as np

    rng = random.Random(seed)
    s = gaz.addresses
    k = min(int(n * share), len(error_rows))
    picked = rng.sample(range(len(error_rows)), k)
    rows = [error_rows[i] for i in picked]
    exp = [expected[i] for i in picked]
    seen = set(rows)
    alive = np.flatnonzero(s.alive)
    for i in np.random.default_rng(seed).permutation(alive).tolist():
        if len(rows) >= n:
            break
        full = s.text(i)[1]
        text = full[6:] if len(rows) % 2 else full
        if text in seen or s.by_text(full) != i:  # a text two doors share names neither of them
            continue
        seen.add(text)
        rows.append(text)
        exp.append(("address", int(s.ids[i])))
    order = list(range(len(rows)))
    rng.shuffle(order)
    return [rows[i] for i in order], [exp[i] for i in order]


def judge(output: bytes, expected: list[tuple[str, int]]) -> tuple[float, float]:
    """(recall@1, share of confident wrong answers) of a batch's CSV output."""
    rows = list(csv.DictReader(io.StringIO(output.decode("utf-8"))))
    ok = wrong = 0
    for r, (kind, eid) in zip(rows, expected):
        right = r["kind"] == kind and r["id"] == str(eid)
        ok += right
        wrong += (not right) and r["id"] != "" and r["low_confidence"] == "false"
    n = max(len(expected), 1)
    return ok / n, wrong / n


def timed_batch(s: "Server", key: str, body: bytes, rows: int, expected) -> dict:
    idle0, tot0 = machine_ticks()
    c0 = server_cpu(s.proc.pid)
    dt, out = post_match(s.port, key, body)
    cpu = server_cpu(s.proc.pid) - c0
    idle1, tot1 = machine_ticks()
    recall, wrong = judge(out, expected)
    return {"rows_s": rows / dt, "seconds": dt, "cpu": cpu, "idle": (idle1 - idle0) / max(tot1 - tot0, 1),
            "recall": recall, "wrong": wrong, "out": out}


def engine_alone(gaz, rows: list[str]) -> float:
    """Rows a CPU second of the engine alone, row by row in this process (the baseline)."""
    from registry.search.batch import match_rows

    t0 = time.process_time()
    for _ in match_rows(gaz, rows):
        pass
    return len(rows) / max(time.process_time() - t0, 1e-9)


def fmt_batch(r: dict) -> str:
    return (f"{r['rows_s']:8,.0f} rows/s  recall@1 {r['recall']:.4f}  confident wrong {r['wrong']:.2%}  "
            f"server CPU {r['cpu']:.1f} s in {r['seconds']:.1f} s ({r['cpu'] / r['seconds']:.2f} cores), "
            f"machine idle {r['idle']:.0%}")


@contextlib.contextmanager
def own_copy(database_url: str, template: str, wait_s: float = 900):
    """The URL of a new database copied from `template` (CREATE DATABASE … TEMPLATE needs nobody
    connected to the template: retried until then), dropped afterwards."""
    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import OperationalError

    base = make_url(database_url)
    name = f"bench_gazetteer_{os.getpid()}"
    admin = create_engine(base.set(database="postgres").render_as_string(hide_password=False),
                          isolation_level="AUTOCOMMIT")
    deadline = time.monotonic() + wait_s
    try:
        while True:
            try:
                with admin.connect() as c:
                    c.exec_driver_sql(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
                break
            except OperationalError as exc:
                if "being accessed" not in str(exc) or time.monotonic() > deadline:
                    raise
                log(f"{template} is in use; waiting to copy it")
                time.sleep(5)
        log(f"copied {template} to {name}")
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as c:
            c.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--database-url", required=True,
                    help="a writable copy of the city, or (with --template) any database of its server")
    ap.add_argument("--template", help="copy this database (e.g. registry_city_full) and work on the copy")
    ap.add_argument("--port", type=int, default=8140)
    ap.add_argument("--rows", type=int, default=20_000, help="rows per batch request")
    ap.add_argument("--variant-share", type=float, default=0.10,
                    help="share of the agency list's rows drawn from the error model")
    ap.add_argument("--reloads", type=int, default=3)
    ap.add_argument("--batch-only", action="store_true", help="only the batch part")
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    with contextlib.ExitStack() as stack:
        url = stack.enter_context(own_copy(args.database_url, args.template)) if args.template else args.database_url
        run(args, url)


def run(args, url: str) -> None:
    from sqlalchemy import create_engine, text

    from registry.keys import create_key
    from registry.search.generation import SharedGazetteers, release
    from search_queries import Generator

    work = Path(tempfile.mkdtemp(prefix="bench-gazetteer-", dir=ROOT / "var"))
    gdir = work / "gazetteer"
    gdir.mkdir()
    engine = create_engine(url)
    with engine.begin() as c:
        key = create_key(c, agency="bench-gazetteer", scopes=["agency"], rate_limit_per_minute=1_000_000).secret
    results: dict[str, object] = {}
    try:
        if not args.batch_only:
            # 1 worker, cold: it builds the generation
            s = Server(url, args.port, 1, gdir)
            try:
                results["start_cold_1"] = s.wait_attached()
                time.sleep(2)
                results["mem_1"] = s.memory()
                log(f"1 worker, cold start (builds the generation): {results['start_cold_1']:.1f} s; "
                    f"{fmt_mem(results['mem_1'])}")
            finally:
                s.stop()
        # the query sets, from the generation the server built (attached here: no load; built here
        # with --batch-only)
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
        agency, agency_expected = agency_list(gaz, rows, expected, args.rows, args.variant_share, args.seed)
        log(f"query sets: {len(rows)} error-model rows, {len(agency)} agency rows "
            f"({time.perf_counter() - t0:.0f} s)")
        # samples spread over the lists (the error model's rows come class by class)
        step = max(2, len(rows) // 3000)
        spread = rows[::step][:3000]
        mean, p50, p99 = engine_profile(gaz, spread)
        results["engine"] = (mean, p50, p99)
        log(f"engine per row (match_one, one process, {len(spread)} rows of every class): mean {mean:.3f} ms, p50 {p50:.3f}, p99 {p99:.2f} "
            f"→ {1000 / mean:,.0f} rows/s per core")
        sample = min(2000, len(rows))
        # rows the profile above did not see (the caches it warmed would flatter the baseline)
        unseen = [q for i, q in enumerate(rows) if i % step]
        results["alone_errors"] = engine_alone(gaz, unseen[:: max(1, len(unseen) // sample)][:sample])
        results["alone_agency"] = engine_alone(gaz, agency[:: max(1, len(agency) // sample)][:sample])
        log(f"baseline, the engine alone row by row in process (one core, {sample} rows): error model "
            f"{results['alone_errors']:,.0f} rows/CPU-s, agency list {results['alone_agency']:,.0f} rows/CPU-s")
        release(gaz)
        del gaz
        body = csv_body(rows)
        agency_body = csv_body(agency)

        if not args.batch_only:
            memory_and_reloads(args, url, gdir, key, body, rows, expected, engine, results, text)

        # 1 core vs 2 cores, one API worker warmed by a first batch (lazy dictionaries loaded)
        for name, cores in (("1", "0"), ("2", None)):
            s = Server(url, args.port, 1, gdir, cores=cores)
            try:
                s.wait_attached()
                post_match(s.port, key, csv_body(rows[:500]))
                for lst, b, n, exp in (("errors", body, len(rows), expected),
                                       ("agency", agency_body, len(agency), agency_expected)):
                    r = timed_batch(s, key, b, n, exp)
                    results[f"batch_{lst}_{name}"] = r
                    log(f"batch over HTTP, {lst}, {name} core(s): {fmt_batch(r)}")
            finally:
                s.stop()
        same = all(results[f"batch_{lst}_1"]["out"] == results[f"batch_{lst}_2"]["out"] for lst in ("errors", "agency"))
        log(f"1-core and 2-core outputs identical: {same}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
        with engine.begin() as c:
            c.execute(text("DELETE FROM api_keys WHERE agency = 'bench-gazetteer'"))
        engine.dispose()

    if not args.batch_only:
        two = results["mem_2"]
        print("\nshared gazetteer (issue 11)")
        print(f"  start-up, 1 worker building the generation   {results['start_cold_1']:8.1f} s")
        print(f"  start-up, 2 workers attaching                 {results['start_warm_2']:8.1f} s")
        print(f"  memory, 1 worker                              {fmt_mem(results['mem_1'])}")
        print(f"  memory, 2 workers                             {fmt_mem(two)}  (goal ≤ {GOALS['two_workers_mb']} MB)")
        print(f"  memory, 2 workers after a batch               {fmt_mem(results['mem_2_after_batch'])}")
        for k in range(args.reloads):
            print(f"  memory, 2 workers after bulk reload {k + 1}        {fmt_mem(results[f'mem_reload_{k + 1}'])}")
        bw = results["batch_2w"]
        print(f"  batch over HTTP, 2 workers, first batch       {bw[0]:8,.0f} rows/s  recall@1 {bw[1]:.4f}")
    mean, p50, p99 = results["engine"]
    print(f"\nbatch matching over HTTP (issue 11, item 3; {args.rows:,} distinct rows a request, goal ≥ "
          f"{GOALS['batch_rows_s']:,} rows/s)")
    print(f"  engine per row (every class): mean {mean:.3f} ms, p50 {p50:.3f} ms, p99 {p99:.2f} ms ({1000 / mean:,.0f} rows/s a core)")
    for lst, label, alone in (("errors", "error model", "alone_errors"),
                              ("agency", f"agency list ({1 - args.variant_share:.0%} standard texts, "
                                         f"{args.variant_share:.0%} error model)", "alone_agency")):
        print(f"  {label}; baseline, the engine alone in process: {results[alone]:,.0f} rows/CPU-s")
        for name in ("1", "2"):
            r = results[f"batch_{lst}_{name}"]
            per_cpu = r["rows_s"] * r["seconds"] / r["cpu"]
            print(f"    {name} core{'s' if name == '2' else ' '}  {fmt_batch(r)}  (×{r['rows_s'] / results[alone]:.1f} "
                  f"the baseline; a row costs the server ×{results[alone] / per_cpu:.2f} the CPU of the engine alone)")
        r1, r2 = results[f"batch_{lst}_1"], results[f"batch_{lst}_2"]
        print(f"    2 cores / 1 core ×{r2['rows_s'] / r1['rows_s']:.2f}; rows a server CPU-second "
              f"{r1['rows_s'] * r1['seconds'] / r1['cpu']:,.0f} (1 core), {r2['rows_s'] * r2['seconds'] / r2['cpu']:,.0f} "
              f"(2 cores; the forked matching processes' first-touched pages included)")
    print(f"  outputs identical on 1 and 2 cores            {same}")


def memory_and_reloads(args, url, gdir, key, body, rows, expected, engine, results, text) -> None:
    """2 workers, warm: both attach to the published generation; then bulk reloads."""
    s = Server(url, args.port, 2, gdir)
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


if __name__ == "__main__":
    main()
