"""A realistic request mix against `registry serve --workers 2`, the primary and (when there is one)
a streaming replica on this machine; then the same mix while the replica is stopped mid-run.

    .venv/bin/python bench/bench_load_mix.py --addresses 20000              # a small city of its own
    .venv/bin/python bench/bench_load_mix.py --template registry_city_full  # a copy of the full city
    .venv/bin/python bench/bench_load_mix.py --addresses 20000 --replica off

The mix (issue 14, item 6), drawn in a fixed shuffled order:
- 70 % doorplate scans, `GET /p/{token}`, half as JSON (`Accept: application/json`), half as the
  HTML page, over plates sampled from the database;
- 20 % searches: `/v1/search?q=` (15 %) and `/v1/autocomplete?q=` (5 %), with queries generated
  from the data by bench/search_queries.py's fixed error model (typos, pinyin, numerals …) and
  autocomplete prefixes of them;
- 8 % GIS: `/ogc/collections/addresses/items?bbox=…&limit=100` (a ~300 m box around an address)
  and `/tiles/addresses/{z}/{x}/{y}.mvt` (z14–16 tiles holding addresses), half each;
- 2 % batch: `POST /v1/match?format=json` of 20 CSV rows with an agency key.

The database is the bench's own (scans are counted and a key is created, so it is written to):
a generated city loaded with `registry load city` and plates issued (`--addresses`), or a copy of
a read-only database made with `CREATE DATABASE … TEMPLATE` (`--template`, which waits until
nobody is connected to it), or one given with `--database-url` that the bench may write to. It
is dropped at the end unless `--keep-db`.

Replica: with `--replica auto` (the default) the bench uses `registry db replica start|stop|status`
and `REGISTRY_REPLICA_URLS` when that command exists, else it runs on the primary alone; the mode
is printed either way. The failover run stops the replica a third of the way in (`registry db
replica stop`), then starts it again at two thirds, and reports the errors and the time from the
stop to the last failed request (the recovery time).

The load generator is its own process: asyncio keep-alive connections (uvloop when installed, the
HTTP/1.1 reader of bench/httpload.py), closed loop, `--connections` of them. Its CPU time is printed
next to the server's (the server's process group, the workers included): it must cost much less.
An error is a 5xx, a 429, a 4xx where none is expected (410 of a retired plate is an answer), a
reset connection or a request over `--timeout`. Nothing here is run by the tests.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import servers  # noqa: E402 (bench/ is on sys.path when run as a script)
from servers import REGISTRY, group_cpu_seconds, stop_server  # noqa: E402
from httpload import read_response  # noqa: E402

BENCH_DB = "registry_bench_loadmix"
WAL_SLOT = "bench_loadmix_wal"  # see Replica._hold_wal
# kind -> share of the requests (issue 14: scans 70 %, searches 20 %, items/tiles 8 %, batch 2 %)
MIX = {"scan_json": 0.35, "scan_html": 0.35, "search": 0.15, "autocomplete": 0.05, "items": 0.04, "tiles": 0.04,
       "batch": 0.02}
GROUPS = {"scans": ("scan_json", "scan_html"), "searches": ("search", "autocomplete"), "gis": ("items", "tiles"),
          "batch": ("batch",)}
BATCH_ROWS = 20
BUCKET_S = 0.25  # the failover timeline's resolution
START_LIMIT_S = 900  # the first start on a city builds its shared gazetteer (minutes on a busy machine)
HTML_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


def log(msg: str) -> None:
    print(msg, flush=True)


# --- the load generator (its own process) -------------------------------------------------------------
def _is_error(kind: str, status: int) -> bool:
    if status >= 500 or status == 429:
        return True
    if kind.startswith("scan"):
        return status >= 400 and status != 410  # a retired address's plate answers 410: an answer
    return status >= 400 and not (kind == "tiles" and status == 404)


async def _connection(host: str, port: int, schedule: list[tuple[int, bytes]], kinds: list[str], start: float,
                      deadline: float, offset: int, timeout: float, out: dict) -> None:
    lat = out["lat"]
    errs = out["errors"]
    timeline = out["timeline"]
    i = offset
    reader = writer = None
    while time.perf_counter() < deadline:
        k, req = schedule[i % len(schedule)]
        i += 1
        kind = kinds[k]
        t0 = time.perf_counter()
        err = None
        try:
            if writer is None:
                reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
            writer.write(req)
            status, _ = await asyncio.wait_for(read_response(reader), timeout)
            if _is_error(kind, status):
                err = str(status)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as exc:
            err = type(exc).__name__
        except asyncio.TimeoutError:
            err = "timeout"
        t1 = time.perf_counter()
        b = int((t0 - start) / BUCKET_S)
        row = timeline.setdefault(b, [0, 0, 0.0])
        row[2] = max(row[2], t1 - t0)
        if err is None:
            lat[k].append(t1 - t0)
            row[0] += 1
        else:
            errs.setdefault(kind, {}).setdefault(err, 0)
            errs[kind][err] += 1
            row[1] += 1
            if not err.isdigit() and writer is not None:  # the connection is gone: open a new one
                writer.close()
                reader = writer = None
                await asyncio.sleep(0.05)
    if writer is not None:
        writer.close()


async def _run(spec: dict) -> dict:
    kinds = spec["kinds"]
    schedule = [(k, r.encode("latin-1")) for k, r in spec["schedule"]]
    if spec["warmup"]:
        sink = {"lat": [[] for _ in kinds], "errors": {}, "timeline": {}}
        t = time.perf_counter()
        await asyncio.gather(*(_connection(spec["host"], spec["port"], schedule, kinds, t, t + spec["warmup"],
                                           c * 9973 + 5, spec["timeout"], sink) for c in range(spec["connections"])))
    out = {"lat": [[] for _ in kinds], "errors": {}, "timeline": {}}
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    start = time.perf_counter()
    Path(spec["started"]).write_text(str(time.time()))  # the bench times its replica stop from this
    await asyncio.gather(*(_connection(spec["host"], spec["port"], schedule, kinds, start, start + spec["seconds"],
                                       c * 7919, spec["timeout"], out) for c in range(spec["connections"])))
    elapsed = time.perf_counter() - start
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    return {"elapsed": elapsed, "client_cpu_s": (cpu1.ru_utime + cpu1.ru_stime) - (cpu0.ru_utime + cpu0.ru_stime),
            "lat": out["lat"], "errors": out["errors"],
            "timeline": sorted((b, ok, bad, worst) for b, (ok, bad, worst) in out["timeline"].items())}


def loadgen_main(spec_path: str) -> None:
    spec = json.loads(Path(spec_path).read_text())
    if spec["host"] != "127.0.0.1":
        raise SystemExit("the load generator only targets this machine (127.0.0.1)")
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    Path(spec["result"]).write_text(json.dumps(asyncio.run(_run(spec))))


# --- the database ---------------------------------------------------------------------------------------
def _admin_url() -> tuple[str, object]:
    from sqlalchemy.engine import make_url

    from registry.db.engine import resolve_database_url
    from registry.settings import Settings

    base = make_url(resolve_database_url(Settings()))
    return base.set(database="postgres").render_as_string(hide_password=False), base


def make_database(args) -> tuple[str, bool]:
    """(URL of the bench's database, whether the bench made it and drops it)."""
    from sqlalchemy import create_engine, text

    if args.database_url:
        return args.database_url, False
    admin_url, base = _admin_url()
    url = base.set(database=BENCH_DB).render_as_string(hide_password=False)
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as c:
            exists = c.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": BENCH_DB}).first()
            if exists and args.reuse:
                log(f"database: reusing {BENCH_DB}")
                return url, True
            c.exec_driver_sql(f'DROP DATABASE IF EXISTS "{BENCH_DB}" WITH (FORCE)')
            if args.template:
                t0 = time.monotonic()
                while True:  # CREATE … TEMPLATE needs the template without other sessions: wait for a gap
                    try:
                        c.exec_driver_sql(f'CREATE DATABASE "{BENCH_DB}" TEMPLATE "{args.template}" '
                                          "STRATEGY FILE_COPY")
                        break
                    except Exception as exc:  # noqa: BLE001 (psycopg's ObjectInUse, wrapped)
                        if "being accessed by other users" not in str(exc) or time.monotonic() - t0 > args.template_wait:
                            raise
                        time.sleep(0.5)
                log(f"database: {BENCH_DB} copied from {args.template} in {time.monotonic() - t0:.0f} s")
                return url, True
            c.exec_driver_sql(f"CREATE DATABASE \"{BENCH_DB}\" TEMPLATE template0 ENCODING 'UTF8' LOCALE 'C.UTF-8'")
    finally:
        admin.dispose()
    load_small_city(url, args)
    return url, True


def load_small_city(url: str, args) -> None:
    from sqlalchemy import create_engine, text

    from bench_load import city_dir
    from loaders.city import load_city
    from loaders.reference import load_reference
    from registry.db.migrate import upgrade
    from registry.doorplates import issue_plates

    upgrade(url)
    city = city_dir(argparse.Namespace(city=None, addresses=args.addresses, seed=args.seed))
    t0 = time.perf_counter()
    eng = create_engine(url)
    try:
        with eng.begin() as conn:
            load_reference(conn, actor="bench", adjust=False)  # as `make demo`: the city lives through them
        load_city(eng, city, actor="bench")
        with eng.begin() as conn:
            issued = issue_plates(conn, actor="bench", division="330500", source="bench").issued
        with eng.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("VACUUM ANALYZE")
            n = conn.execute(text("SELECT count(*) FROM addresses WHERE status = 'active'")).scalar_one()
    finally:
        eng.dispose()
    log(f"database: {n:,} addresses loaded with `load city` and {issued:,} plates issued in "
        f"{time.perf_counter() - t0:.0f} s (untimed)")


def drop_database(url: str) -> None:
    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url

    admin_url, _ = _admin_url()
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.exec_driver_sql(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)')
    admin.dispose()
    from registry.settings import Settings

    for folder in Settings().gazetteer_dir.glob(f"*-{make_url(url).database}"):  # its shared search gazetteer
        shutil.rmtree(folder, ignore_errors=True)


# --- the requests -------------------------------------------------------------------------------------
def _tile_of(lon: float, lat: float, z: int) -> tuple[int, int, int]:
    n = 2 ** z
    x = int((lon + 180.0) / 360.0 * n)
    y = int((1.0 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2.0 * n)
    return z, x, y


def build_requests(url: str, port: int, key: str, args) -> tuple[dict[str, list[str]], dict]:
    """Raw HTTP/1.1 requests per kind, and what they were drawn from."""
    from sqlalchemy import create_engine, text

    from bench_doorplates import sample_paths
    from registry.search.loading import load_gazetteer
    from search_queries import Generator

    rng = random.Random(args.seed)
    host = f"127.0.0.1:{port}"

    def get(path: str, accept: str = "application/json") -> str:
        return f"GET {path} HTTP/1.1\r\nHost: {host}\r\nAccept: {accept}\r\nUser-Agent: bench-load-mix\r\n\r\n"

    t0 = time.perf_counter()
    plates = sample_paths(url, args.plates)
    eng = create_engine(url)
    with eng.connect() as conn:
        gaz = load_gazetteer(conn)
        conn.rollback()
        points = conn.execute(text("""
            SELECT ST_X(geom), ST_Y(geom) FROM addresses TABLESAMPLE SYSTEM (10)
            WHERE status = 'active' LIMIT :n"""), {"n": args.places}).all()
    eng.dispose()
    queries = [q.q for q in Generator(gaz, seed=args.seed + 6).generate(args.queries_per_class)]
    del gaz
    rng.shuffle(queries)
    prefixes = []
    for q in queries:
        n = rng.randint(2, min(8, max(2, len(q))))
        prefixes.append(q[:n])
    quote = urllib.parse.quote
    d = 0.0015  # about 150 m each way
    reqs = {
        "scan_json": [get(p) for p in plates],
        "scan_html": [get(p, HTML_ACCEPT) for p in plates],
        "search": [get(f"/v1/search?q={quote(q)}") for q in queries],
        "autocomplete": [get(f"/v1/autocomplete?q={quote(p)}") for p in prefixes],
        "items": [get(f"/ogc/collections/addresses/items?bbox={x - d:.6f},{y - d:.6f},{x + d:.6f},{y + d:.6f}"
                      f"&limit=100", "application/geo+json") for x, y in points],
        "tiles": [get("/tiles/addresses/{}/{}/{}.mvt".format(*_tile_of(x, y, rng.choice((14, 15, 16)))),
                      "application/vnd.mapbox-vector-tile") for x, y in points],
    }
    batches = []
    for b in range(max(1, len(queries) // BATCH_ROWS * 2)):
        rows = rng.sample(queries, min(BATCH_ROWS, len(queries)))
        body = ("地址\r\n" + "".join(r.replace('"', "") + "\r\n" for r in rows)).encode()
        head = (f"POST /v1/match?format=json HTTP/1.1\r\nHost: {host}\r\nX-API-Key: {key}\r\n"
                f"Content-Type: text/csv; charset=utf-8\r\nContent-Length: {len(body)}\r\n"
                "User-Agent: bench-load-mix\r\n\r\n")
        batches.append(head + body.decode("latin-1"))
    reqs["batch"] = batches
    drawn = {"plates": len(plates), "queries": len(queries), "places": len(points), "batches": len(batches),
             "seconds": time.perf_counter() - t0}
    return reqs, drawn


def schedule_of(reqs: dict[str, list[str]], n: int, seed: int) -> tuple[list[str], list[tuple[int, str]]]:
    """A fixed interleaving with exactly the mix's shares: n requests, shuffled once."""
    rng = random.Random(seed)
    kinds = list(MIX)
    out: list[tuple[int, str]] = []
    for k, kind in enumerate(kinds):
        pool = reqs[kind]
        for j in range(round(MIX[kind] * n)):
            out.append((k, pool[j % len(pool)] if j < len(pool) else rng.choice(pool)))
    rng.shuffle(out)
    return kinds, out


def agency_key(url: str) -> str:
    from sqlalchemy import create_engine

    from registry.keys import create_key

    eng = create_engine(url)
    with eng.begin() as conn:
        key = create_key(conn, agency="bench-load-mix", scopes=["agency"], rate_limit_per_minute=1_000_000,
                         note="bench/bench_load_mix.py").secret
    eng.dispose()
    return key


# --- the replica (H5's `registry db replica`, when it exists) -------------------------------------------------
class Replica:
    """The streaming replica through `registry db replica start|stop|status` (a replica of its own
    name, removed at the end when the bench made it) and its URL for the API."""

    NAME = "loadmix"

    def __init__(self, mode: str, port: int, database: str) -> None:
        from registry.settings import Settings

        self.mode = mode
        self.port = port
        self.database = database
        self.cli = subprocess.run([REGISTRY, "db", "replica", "--help"], capture_output=True,
                                  cwd=ROOT).returncode == 0
        self.routing = "replica_urls" in Settings.model_fields and (ROOT / "registry" / "db" / "routing.py").exists()
        self.url: str | None = None
        self.started_here = False

    def _run(self, *words: str, check: bool = True) -> subprocess.CompletedProcess:
        res = subprocess.run([REGISTRY, "db", "replica", *words, "--name", self.NAME], capture_output=True, text=True,
                             cwd=ROOT)
        if check and res.returncode != 0:
            raise RuntimeError(f"registry db replica {' '.join(words)}: {res.stderr.strip() or res.stdout.strip()}")
        return res

    def why_not(self) -> str | None:
        if self.mode == "off":
            return "--replica off"
        if not self.cli:
            return "`registry db replica` does not exist yet"
        if not self.routing:
            return "the API has no replica routing yet (registry/db/routing.py)"
        return None

    def start(self, primary_url: str) -> str | None:
        why = self.why_not()
        if why:
            if self.mode == "on":
                raise SystemExit(f"--replica on: {why}")
            return None
        self.started_here = True  # the replica of the bench's own name is the bench's: removed at the end
        self._hold_wal(True)
        if self._run("status", check=False).returncode != 0:  # exit 3: not running
            self._start()
        _, base = _admin_url()
        self.url = base.set(port=self.port, database=self.database).render_as_string(hide_password=False)
        self.wait_caught_up(primary_url)
        return self.url

    def wait_caught_up(self, primary_url: str, limit: float = 300.0) -> float:
        """Wait until the replica has replayed the primary's WAL as of now (the bench's database included)."""
        from sqlalchemy import create_engine, text

        t0 = time.monotonic()
        prim = create_engine(primary_url)
        with prim.connect() as c:
            target = c.execute(text("SELECT pg_current_wal_lsn()")).scalar_one()
        prim.dispose()
        _, base = _admin_url()
        rep = create_engine(base.set(port=self.port, database="postgres"))
        try:
            while time.monotonic() - t0 < limit:
                try:
                    with rep.connect() as c:
                        if c.execute(text("SELECT pg_last_wal_replay_lsn() >= CAST(:t AS pg_lsn)"),
                                     {"t": target}).scalar_one():
                            return time.monotonic() - t0
                except Exception:  # noqa: BLE001 (still starting)
                    pass
                time.sleep(0.5)
        finally:
            rep.dispose()
        raise SystemExit(f"the replica did not catch up with the primary within {limit:.0f} s")

    def _hold_wal(self, hold: bool) -> None:
        """Keep the primary's WAL from the bench's start while its replica runs, with a physical
        replication slot that nothing streams from, dropped at the end. `registry db replica` uses
        no slot and the primary keeps no WAL (wal_keep_size 0): on this shared cluster, where other
        sessions' DROP DATABASE force checkpoints every few seconds, a fresh standby asked for the
        segment after its base backup and found it removed, and never caught up."""
        from sqlalchemy import create_engine, text

        admin_url, _ = _admin_url()
        eng = create_engine(admin_url, isolation_level="AUTOCOMMIT")
        with eng.connect() as c:
            if c.execute(text("SELECT 1 FROM pg_replication_slots WHERE slot_name = :n"), {"n": WAL_SLOT}).first():
                c.execute(text("SELECT pg_drop_replication_slot(:n)"), {"n": WAL_SLOT})
            if hold:
                c.execute(text("SELECT pg_create_physical_replication_slot(:n, true)"), {"n": WAL_SLOT})
        eng.dispose()

    def stop(self) -> float:
        t = time.perf_counter()
        self._run("stop")
        return time.perf_counter() - t

    def _start(self) -> None:
        res = self._run("start", "--port", str(self.port), check=False)
        if res.returncode != 0 and self._run("status", check=False).returncode != 0:
            # (pg_ctl may give up waiting while the standby still replays; it is running when status says so)
            raise RuntimeError(f"registry db replica start: {res.stderr.strip()[-400:]}")

    def restart(self) -> float:
        t = time.perf_counter()
        self._start()
        return time.perf_counter() - t

    def close(self, keep: bool = False) -> None:
        if self.started_here:
            if not keep:
                self._run("stop", "--remove", check=False)
            self._hold_wal(False)


# --- the server -------------------------------------------------------------------------------------------
def start_server(url: str, port: int, workers: int, replica_url: str | None, pool_size: int) -> subprocess.Popen:
    env = {"REGISTRY_DATABASE_URL": url, "REGISTRY_LOG_LEVEL": "WARNING",
           # one client address stands for a city of phones here: its bucket is counted (the cost
           # stays in the figures) but set far above what it sends
           "REGISTRY_RATE_LIMIT_PUBLIC_PER_MINUTE": "100000000", "REGISTRY_POOL_SIZE": str(pool_size)}
    if replica_url:
        env["REGISTRY_REPLICA_URLS"] = replica_url
    return servers.start_server([REGISTRY, "serve", "--host", "127.0.0.1", "--port", str(port), "--workers",
                                 str(workers)], port, env=env, ready_path="/v1/search?q=%E6%B9%96%E5%B7%9E",
                                limit=START_LIMIT_S)


# --- a run --------------------------------------------------------------------------------------------------
def run_mix(port: int, kinds: list[str], schedule: list[tuple[int, str]], args, tmp: Path, proc: subprocess.Popen,
            during=None) -> dict:
    spec = tmp / "spec.json"
    result = tmp / "result.json"
    started = tmp / "started"
    for p in (result, started):
        p.unlink(missing_ok=True)
    seconds = args.failover_seconds if during else args.seconds
    spec.write_text(json.dumps({"host": "127.0.0.1", "port": port, "kinds": kinds, "schedule": schedule,
                                "connections": args.connections, "seconds": seconds, "warmup": args.warmup,
                                "timeout": args.timeout, "result": str(result), "started": str(started)}))
    gen = subprocess.Popen([sys.executable, __file__, "--_loadgen", str(spec)], cwd=ROOT)
    while not started.exists():
        if gen.poll() is not None:
            raise RuntimeError("the load generator failed")
        time.sleep(0.05)
    t_start = float(started.read_text() or time.time())
    server_cpu0 = group_cpu_seconds(proc.pid)
    events = during(t_start) if during else {}
    gen.wait(timeout=seconds + args.warmup + 120)
    server_cpu = group_cpu_seconds(proc.pid) - server_cpu0
    if gen.returncode != 0:
        raise RuntimeError("the load generator failed")
    out = json.loads(result.read_text())
    out["server_cpu_s"] = server_cpu
    out["loadavg_1m"] = os.getloadavg()[0]  # the machine is shared: how busy it was, in the figures
    out["events"] = events
    return out


def server_memory(pgid: int) -> dict:
    """RSS and PSS (shared pages divided among the processes that map them: the memory-mapped
    gazetteer counts once) of the server's processes, in MB, from /proc/PID/smaps_rollup."""
    procs = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            if int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[2]) != pgid:
                continue
            fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:])
        except (OSError, ValueError, IndexError):
            continue
        procs.append({"pid": int(pid), "rss_mb": int(fields["Rss"].split()[0]) / 1024,
                      "pss_mb": int(fields["Pss"].split()[0]) / 1024})
    procs.sort(key=lambda r: -r["rss_mb"])
    return {"processes": procs, "pss_total_mb": sum(r["pss_mb"] for r in procs)}


def _pct(xs: list[float], p: float) -> float:
    return xs[min(len(xs) - 1, int(p * len(xs)))] * 1000 if xs else float("nan")


def summarize(res: dict) -> dict:
    kinds = list(MIX)
    elapsed = res["elapsed"]
    rows = {}
    for name, members in [(k, (k,)) for k in kinds] + [(f"[{g}]", m) for g, m in GROUPS.items()]:
        lat = sorted(x for k in members for x in res["lat"][kinds.index(k)])
        errs = sum(n for k in members for n in res["errors"].get(k, {}).values())
        rows[name] = {"ok": len(lat), "errors": errs, "rps": len(lat) / elapsed, "p50_ms": _pct(lat, 0.50),
                      "p99_ms": _pct(lat, 0.99)}
    total_ok = sum(len(x) for x in res["lat"])
    total_err = sum(n for e in res["errors"].values() for n in e.values())
    return {"rows": rows, "ok": total_ok, "errors": total_err, "rps": total_ok / elapsed, "elapsed": elapsed,
            "error_kinds": res["errors"], "client_cpu_s": res["client_cpu_s"], "server_cpu_s": res["server_cpu_s"],
            "loadavg_1m": res["loadavg_1m"]}


def print_summary(title: str, s: dict) -> None:
    log(f"\n== {title} ==")
    log(f"{'kind':<14} {'ok':>7} {'req/s':>7} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}")
    for name, r in s["rows"].items():
        log(f"{name:<14} {r['ok']:>7} {r['rps']:>7.1f} {r['p50_ms']:>8.1f} {r['p99_ms']:>8.1f} {r['errors']:>7}")
    log(f"{'all':<14} {s['ok']:>7} {s['rps']:>7.1f} {'':>8} {'':>8} {s['errors']:>7}   in {s['elapsed']:.1f} s")
    if s["errors"]:
        log(f"errors by kind: {json.dumps(s['error_kinds'], ensure_ascii=False)}")
    share = s["client_cpu_s"] / s["server_cpu_s"] if s["server_cpu_s"] else float("nan")
    log(f"CPU: server {s['server_cpu_s']:.1f} s (all workers; PostgreSQL not counted), load generator "
        f"{s['client_cpu_s']:.1f} s = {share:.0%} of the server's; load average {s['loadavg_1m']:.1f} on "
        f"{os.cpu_count()} cores at the end")


def failover_figures(res: dict, ev: dict) -> dict:
    """Errors, the slowest request and throughput around the replica's stop, from the timeline."""
    timeline = res["timeline"]
    stop_at, down_at = ev["stop_at"], ev["down_at"]
    restart_at = ev.get("restart_at", float("inf"))
    t_of = lambda b: b * BUCKET_S  # noqa: E731
    failed = [(t_of(b), bad) for b, _, bad, _ in timeline if bad and t_of(b) >= stop_at - BUCKET_S]
    while_down = [(t, n) for t, n in failed if t < restart_at]
    last = max((t for t, _ in while_down), default=None)
    phases = {}
    for name, lo, hi in (("before", 0.0, stop_at), ("stopping", stop_at, down_at), ("down", down_at, restart_at),
                         ("after_restart", restart_at, float("inf"))):
        rows = [r for r in timeline if lo <= t_of(r[0]) < hi]
        span = min(hi, res["elapsed"]) - lo
        if span > 0 and rows:
            phases[name] = {"ok_per_s": sum(r[1] for r in rows) / span, "worst_ms": max(r[3] for r in rows) * 1000}
    return {**ev, "errors_while_down": sum(n for _, n in while_down),
            "errors_after_restart": sum(n for t, n in failed if t >= restart_at),
            "recovery_s": (last + BUCKET_S - stop_at) if last is not None else 0.0, "phases": phases}


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--_loadgen":
        loadgen_main(sys.argv[2])
        return
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--addresses", type=int, default=20_000, help="a generated city of this size (default)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--template", help="copy this database (e.g. registry_city_full) instead of loading a city")
    ap.add_argument("--template-wait", type=float, default=600.0, help="seconds to wait for the template to be free")
    ap.add_argument("--database-url", help="a database with plates issued that the bench may write to")
    ap.add_argument("--reuse", action="store_true", help="keep the bench database of an earlier --keep-db run")
    ap.add_argument("--keep-db", action="store_true")
    ap.add_argument("--replica", choices=("auto", "on", "off"), default="auto")
    ap.add_argument("--replica-port", type=int, default=55460)
    ap.add_argument("--keep-replica", action="store_true", help="leave the bench's replica (`loadmix`) in place")
    ap.add_argument("--port", type=int, default=8240)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--pool-size", type=int, default=12, help="REGISTRY_POOL_SIZE per worker")
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--seconds", type=float, default=20.0, help="measured seconds of each run")
    ap.add_argument("--warmup", type=float, default=3.0)
    ap.add_argument("--timeout", type=float, default=10.0, help="a request slower than this is an error")
    ap.add_argument("--plates", type=int, default=5_000)
    ap.add_argument("--places", type=int, default=2_000, help="addresses the bboxes and tiles are drawn around")
    ap.add_argument("--queries-per-class", type=int, default=15)
    ap.add_argument("--failover-seconds", type=float, default=60.0, help="measured seconds of the failover run")
    ap.add_argument("--skip-failover", action="store_true")
    args = ap.parse_args()

    url, made = make_database(args)
    from sqlalchemy.engine import make_url

    replica = Replica(args.replica, args.replica_port, make_url(url).database)
    proc = None
    figures: dict = {}
    try:
        with tempfile.TemporaryDirectory(prefix="bench-load-mix-") as d:
            tmp = Path(d)
            key = agency_key(url)
            reqs, drawn = build_requests(url, args.port, key, args)
            log(f"requests: {drawn['plates']:,} plates, {drawn['queries']:,} search queries, {drawn['places']:,} "
                f"places for bboxes and tiles, {drawn['batches']} batches of {BATCH_ROWS} rows "
                f"({drawn['seconds']:.0f} s to draw)")
            kinds, schedule = schedule_of(reqs, 20_000, args.seed)
            replica_url = replica.start(url)
            mode = (f"primary + streaming replica ({replica_url.rsplit('@', 1)[-1]}) via REGISTRY_REPLICA_URLS"
                    if replica_url else f"primary only ({replica.why_not()})")
            log(f"mode: {mode}")
            t0 = time.perf_counter()
            proc = start_server(url, args.port, args.workers, replica_url, args.pool_size)
            log(f"server: `registry serve --workers {args.workers}` on 127.0.0.1:{args.port} answered a search after "
                f"{time.perf_counter() - t0:.0f} s; {args.connections} keep-alive connections, {args.seconds:.0f} s "
                f"measured after {args.warmup:.0f} s of warm-up")
            steady = summarize(run_mix(args.port, kinds, schedule, args, tmp, proc))
            print_summary(f"steady mix — {mode}", steady)
            figures["steady"] = steady
            mem = figures["memory"] = server_memory(proc.pid)
            log("memory: " + ", ".join(f"{r['rss_mb']:.0f}" for r in mem["processes"]) + " MB RSS per server process; "
                f"PSS of them all {mem['pss_total_mb']:.0f} MB (shared pages counted once)")
            if replica_url and not args.skip_failover:
                def during(t_start: float) -> dict:
                    total = args.failover_seconds
                    ev: dict = {}
                    time.sleep(max(0.0, t_start + total / 3 - time.time()))
                    ev["stop_at"] = time.time() - t_start
                    replica.stop()  # pg_ctl stop -m fast: returns once the standby is down
                    ev["down_at"] = time.time() - t_start
                    time.sleep(max(0.0, t_start + 2 * total / 3 - time.time()))
                    if time.time() - t_start < total - 5:
                        ev["restart_at"] = time.time() - t_start
                        replica.restart()
                        ev["up_at"] = time.time() - t_start
                    return ev

                res = run_mix(args.port, kinds, schedule, args, tmp, proc, during)
                fo = summarize(res)
                fo["failover"] = failover_figures(res, res["events"])
                print_summary(f"the same mix for {args.failover_seconds:.0f} s, the replica stopped at 1/3 "
                              "(`registry db replica stop`) and started again at 2/3", fo)
                f = fo["failover"]
                when = ", ".join(f"{k} {f[k]:.1f} s" for k in ("stop_at", "down_at", "restart_at", "up_at") if k in f)
                log(f"failover: {when}; {f['errors_while_down']} failed requests from the stop to the restart, "
                    f"{f['errors_after_restart']} after; recovery (stop → last failed request) {f['recovery_s']:.2f} s")
                for name, ph in f["phases"].items():
                    log(f"  {name:<14} {ph['ok_per_s']:6.1f} ok req/s, slowest request {ph['worst_ms']:.0f} ms")
                figures["failover"] = fo
            elif not args.skip_failover:
                log("\nfailover: skipped (no replica in this mode)")
    finally:
        if proc is not None:
            stop_server(proc)
        replica.close(keep=args.keep_replica)
        if made and not args.keep_db:
            drop_database(url)
    figures["mode"] = mode
    print(json.dumps(figures, default=str))


if __name__ == "__main__":
    main()
