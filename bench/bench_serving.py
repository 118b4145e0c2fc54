"""Serving at the machine's limit (issue 11): the registry's hot public endpoints against a trivial
FastAPI endpoint, with one and with two uvicorn workers, in one run.

    .venv/bin/python bench/bench_serving.py --database-url postgresql+psycopg://registry@127.0.0.1:55432/registry_city_full
    .venv/bin/python bench/bench_serving.py                  # a small city of its own (50,000 addresses)

For each worker count it starts `registry serve --workers N` (as `make demo` runs it) and the trivial
app (bench/trivial_app.py, `{"ok": true}`) with the same uvicorn options (loaders/cli.py
SERVE_OPTIONS) and worker count, waits until both are idle (the gazetteer loaded), and drives each
with `wrk -t2 -c32 -d8s` and a Lua script that rotates through many real plates, coordinates and
queries taken from the database (not one hot URL): 300,000 plates by default, each wrk thread
walking a slice of its own, more than a row scans (the report says when a row asked a plate twice),
so that the scan rows measure the render cache's misses as 1.6M plates in service would; two more
rows (no goal) scan 300 popular plates, answered from the cache. The trivial endpoint is measured before and after
the registry's endpoints; its mean is the baseline. Printed per endpoint: req/s, share of the trivial
endpoint, p50 and p99, non-2xx answers, the machine's CPU steal during the row (/proc/stat: on a
shared virtual machine the hypervisor may keep a third of the CPU under load); then the 2-worker/1-worker ratio and the resident memory
after start (RSS and PSS summed over the worker processes, from /proc). The issue's goals stand
beside each figure (met / not met); nothing is asserted.

The anonymous rate limit stays on (its check is part of the hot path) with a limit no bench reaches
(REGISTRY_RATE_LIMIT_PUBLIC_PER_MINUTE=1e9): every request here comes from 127.0.0.1. The log
stays at its default level, so the request log (registry.access) is written as in service.
Needs `wrk` (Debian: `apt-get install wrk`; scripts/setup-system.sh lists it).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench_doorplates import wait_idle  # noqa: E402 (bench/ is on sys.path when run as a script)
from bench_load import city_dir, drop_database, make_database, prerequisites, run_loader  # noqa: E402

GOALS = {"scan JSON": 0.60, "scan HTML": 0.50, "reverse": 0.40, "healthz": 0.70, "search": 0.60}
# Informational rows (no goal of the issue's): the scan of a few popular plates, answered from the
# render cache; the rows above rotate through more plates than a run requests, so nearly every
# scan there is a cache miss, as with 1.6M plates in service.
MISS_ROWS = ("scan JSON", "scan HTML")  # each scan a plate not asked before (see --plates)
HOT_ROWS = ("scan JSON, 300 hot plates", "scan HTML, 300 hot plates")
HOT_PLATES = 300
P99_GOAL_MS = 20.0
SCALE_GOAL = 1.6
HTML = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
LUA = """
local paths = {%(paths)s}
local n = #paths
local threads = 0
setup = function(thread)
  thread:set("slice", threads)
  threads = threads + 1
end
local i = 0
init = function(args)
  -- each thread walks a slice of its own in order: no path is asked twice until a thread wraps
  i = math.floor(slice * n / %(threads)d)
end
request = function()
  i = i %% n + 1
  return wrk.format("GET", paths[i], {["Accept"] = "%(accept)s"})
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT {\\"requests\\": %%d, \\"us\\": %%d, \\"p50\\": %%d, \\"p99\\": %%d, " ..
    "\\"status\\": %%d, \\"socket\\": %%d}\\n", summary.requests, summary.duration, latency:percentile(50),
    latency:percentile(99), e.status, e.connect + e.read + e.write + e.timeout))
end
"""


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# --- the database ---------------------------------------------------------------------------------
def small_city(args) -> str:
    """A database of its own: the generated city's divisions, place names and addresses, plates issued."""
    from sqlalchemy import create_engine

    from registry.doorplates import issue_plates

    args.city, args.seed = None, 1
    city = city_dir(args)
    url = make_database("bench_serving")
    prerequisites(url, city)
    wall, _, _ = run_loader(url, city / "addresses.csv")
    engine = create_engine(url)
    with engine.begin() as conn:
        issued = issue_plates(conn, actor="bench", division="330500", source="bench").issued
    with engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("VACUUM ANALYZE")
    engine.dispose()
    log(f"small city: {args.addresses:,} addresses loaded in {wall:.0f} s, {issued:,} plates issued")
    return url


def samples(url: str, n: int, plates: int | None = None) -> dict[str, list[str]]:
    """Real request paths from the database: `plates` plates (default n), n points near doors, the
    doors' own names."""
    from sqlalchemy import create_engine, text

    from registry.doorplates import KeyRing

    rnd = random.Random(11)
    engine = create_engine(url)
    ring = KeyRing(ttl=3600)
    with engine.connect() as conn:
        want = plates or n
        held = conn.execute(text("SELECT reltuples FROM pg_class WHERE oid = 'doorplates'::regclass")).scalar_one()
        percent = min(100.0, 100.0 * 1.5 * want / max(1.0, held))  # the pages that hold about 1.5× enough
        plates = conn.execute(text(f"""
            SELECT id, key_id FROM doorplates TABLESAMPLE SYSTEM ({percent:.4f}) WHERE status IN ('issued','active')
            LIMIT :n
        """), {"n": want}).all()
        if len(plates) < want // 4:  # a small table: TABLESAMPLE finds too few
            plates = conn.execute(text("SELECT id, key_id FROM doorplates WHERE status IN ('issued','active') "
                                       "ORDER BY random() LIMIT :n"), {"n": want}).all()
        rnd.shuffle(plates)  # TABLESAMPLE gives whole pages: neighbours' plates in a row
        tokens = [f"/p/{ring.token_for(conn, r.id, r.key_id)}" for r in plates]
        doors = conn.execute(text("""
            SELECT ST_X(geom) AS lon, ST_Y(geom) AS lat, full_text FROM addresses TABLESAMPLE SYSTEM (5)
            WHERE status = 'active' LIMIT :n
        """), {"n": n}).all()
        if len(doors) < n // 4:
            doors = conn.execute(text("SELECT ST_X(geom) AS lon, ST_Y(geom) AS lat, full_text FROM addresses "
                                      "WHERE status = 'active' ORDER BY random() LIMIT :n"), {"n": n}).all()
    engine.dispose()
    if not tokens or not doors:
        raise SystemExit("the database has no issued plates or no active addresses: `registry plates issue` first")
    reverse = [f"/v1/reverse?lon={d.lon + rnd.uniform(-2e-4, 2e-4):.6f}&lat={d.lat + rnd.uniform(-2e-4, 2e-4):.6f}"
               for d in doors]
    # what a citizen types: the door without the province and city, half of them without the county too
    queries = []
    for d in doors:
        q = d.full_text.removeprefix("浙江省").removeprefix("湖州市")
        cut = max(q.find("区", 0, 4), q.find("县", 0, 4))
        if rnd.random() < 0.5 and cut > 0:
            q = q[cut + 1:]
        queries.append("/v1/search?limit=5&q=" + urllib.parse.quote(q))
    return {"tokens": tokens, "reverse": reverse, "search": queries}


# --- the stack in process ----------------------------------------------------------------------------
def asgi_scope(path: str, accept: str = "application/json") -> dict:
    """An anonymous GET of `path` (no query string) from 127.0.0.1, as uvicorn hands it to the app."""
    return {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
            "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
            "headers": [(b"host", b"127.0.0.1"), (b"accept", accept.encode())],
            "client": ("127.0.0.1", 5555), "server": ("127.0.0.1", 8100)}


def stack_cost(url: str, n: int = 3000) -> dict[str, float]:
    """CPU µs per request through the ASGI app in this process (no network, no server): the trivial
    app's endpoint, and a no-op route added last to the registry's app (after every router, as far
    down as a route can be) with its middleware, key check and rate limit (the postgres store)."""
    import asyncio

    from sqlalchemy import create_engine

    import trivial_app
    from api.app import create_app
    from registry.settings import get_settings

    settings = get_settings().model_copy(update={"rate_limit_public_per_minute": 10**9,
                                                 "rate_limit_backend": "postgres"})
    app = create_app(settings)
    app.state.engine = create_engine(url, pool_size=2)

    @app.get("/__noop", include_in_schema=False)
    async def noop() -> dict:
        return {"ok": True}

    async def run(asgi, path: str) -> float:
        scope = asgi_scope(path)

        async def receive():
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message):
            if message["type"] == "http.response.start" and message["status"] != 200:
                raise SystemExit(f"{path}: {message['status']}")

        for _ in range(200):
            await asgi(dict(scope), receive, send)
        t0 = time.process_time()
        for _ in range(n):
            await asgi(dict(scope), receive, send)
        return (time.process_time() - t0) / n * 1e6

    async def both() -> dict[str, float]:
        import logging

        out = {"trivial": await run(trivial_app.app, "/ok"), "registry": await run(app, "/__noop")}
        access = logging.getLogger("registry.access")  # the request log on, as `registry serve` runs it
        from registry.log_setup import StderrHandler

        # the handler, format and batching of `registry serve`'s workers (log_setup.configure, api/main.py)
        handler = StderrHandler(open(os.devnull, "w"), hold_seconds=get_settings().log_hold_seconds)
        access.addHandler(handler)
        access.setLevel(logging.INFO)
        try:
            out["registry_logged"] = await run(app, "/__noop")
        finally:
            access.removeHandler(handler)
            access.setLevel(logging.NOTSET)
            handler.close()
        return out

    try:
        return asyncio.run(both())
    finally:
        if hasattr(app.state, "rate_buckets"):  # (not in the code before leased buckets)
            app.state.rate_buckets.close()
        app.state.engine.dispose()


# --- servers ---------------------------------------------------------------------------------------
def _wait_http(port: int, path: str, proc: subprocess.Popen, limit: float = 180.0) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the server on port {port} exited ({proc.returncode})")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise SystemExit(f"the server on port {port} did not answer {path}")


def start_registry(url: str, port: int, workers: int, scan_store: Path | None = None) -> subprocess.Popen:
    # as `make demo` runs it: the log at its default level (INFO: the request log on, to /dev/null here)
    env = {**os.environ, "REGISTRY_DATABASE_URL": url, "REGISTRY_RATE_LIMIT_PUBLIC_PER_MINUTE": str(10**9)}
    env.pop("REGISTRY_SCAN_STORE_DIR", None)
    if scan_store is not None:
        env["REGISTRY_SCAN_STORE_DIR"] = str(scan_store)
    env.pop("REGISTRY_LOG_LEVEL", None)
    cmd = [str(ROOT / ".venv" / "bin" / "registry"), "serve", "--host", "127.0.0.1", "--port", str(port),
           "--workers", str(workers)]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        _wait_http(port, "/healthz", proc, limit=600)
    except BaseException:
        stop(proc)
        raise
    return proc


def ensure_scan_store(url: str, root: Path) -> None:
    """A scan store at `root` this code serves for this database (built when it holds none)."""
    from api.scan_store import build, composer_digest
    from registry.serving.store import status, unserved_reason
    from registry.settings import get_settings

    base_url = get_settings().public_base_url
    meta = status(root)
    if meta is None or unserved_reason(meta, base_url=base_url, composer=composer_digest()) is not None:
        log(f"building the scan store in {root} (registry plates scan-store build) …")
        report = build(url, root, base_url=base_url)
        log(f"  {report.plates:,} plates stored ({report.left_out:,} left to compose) in {report.seconds:.0f} s, "
            f"{report.answer_bytes / 2**20:,.0f} MiB")
        meta = status(root)
    log(f"scan store {meta['path']}: {meta['plates']:,} plates, built {meta['built_at']} from {meta['database']}")


def start_trivial(port: int, workers: int, app: str = "app") -> subprocess.Popen:
    code = ("import uvicorn; from loaders.cli import SERVE_OPTIONS; "
            f"uvicorn.run('trivial_app:{app}', app_dir={str(ROOT / 'bench')!r}, host='127.0.0.1', port={port}, "
            f"workers={workers}, **SERVE_OPTIONS)")
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_http(port, "/ok", proc)
    except BaseException:
        stop(proc)
        raise
    return proc


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def worker_pids(proc: subprocess.Popen, workers: int) -> list[int]:
    """The processes serving requests: the process itself with one worker, else uvicorn's workers
    (children of the supervisor that are python, not multiprocessing's resource tracker)."""
    if workers == 1:
        return [proc.pid]
    pids = []
    for c in _children(proc.pid):
        try:
            cmdline = Path(f"/proc/{c}/cmdline").read_bytes()
        except OSError:
            continue
        if b"resource_tracker" not in cmdline:
            pids.append(c)
    return pids


def memory_mb(pids: list[int]) -> tuple[float, float]:
    """(RSS, PSS) summed over `pids`, in MB: RSS counts shared pages once per process, PSS shares them."""
    rss = pss = 0
    for pid in pids:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Rss:"):
                rss += int(line.split()[1])
            elif line.startswith("Pss:"):
                pss += int(line.split()[1])
    return rss / 1024, pss / 1024


def uses(pids: list[int], lib: str) -> bool:
    try:
        return all(lib in Path(f"/proc/{pid}/maps").read_text() for pid in pids)
    except OSError:
        return False


# --- wrk ---------------------------------------------------------------------------------------------
def cpu_times() -> tuple[int, int]:
    """(all, stolen) jiffies of the machine's CPUs since boot (/proc/stat): the hypervisor's steal
    is CPU this virtual machine was due and did not get."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    return sum(fields), fields[7]


def wrk(port: int, paths: list[str], accept: str, args, tmp: Path, seconds: float | None = None) -> dict:
    # one script per path list and Accept (the whole list: two rows may share their first plates)
    script = tmp / f"rotate-{hashlib.sha1(repr((paths, accept)).encode()).hexdigest()[:16]}.lua"
    if not script.exists():
        quoted = ",".join(json.dumps(p) for p in paths)  # JSON strings are Lua strings for these paths
        script.write_text(LUA % {"paths": quoted, "accept": accept, "threads": args.threads})
    duration = args.seconds if seconds is None else seconds
    cmd = ["wrk", f"-t{args.threads}", f"-c{args.connections}", f"-d{duration}s", "--timeout", "5s",
           "-s", str(script), f"http://127.0.0.1:{port}"]
    before = cpu_times()
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 60)
    after = cpu_times()
    line = next((x for x in out.stdout.splitlines() if x.startswith("RESULT ")), None)
    if line is None:
        raise SystemExit(f"wrk gave no result:\n{out.stdout}\n{out.stderr}")
    r = json.loads(line[7:])
    return {"rps": r["requests"] / (r["us"] / 1e6), "p50_ms": r["p50"] / 1000, "p99_ms": r["p99"] / 1000,
            "non2xx": r["status"], "socket_errors": r["socket"], "requests": r["requests"], "paths": len(paths),
            "steal": (after[1] - before[1]) / max(1, after[0] - before[0])}


def measure(url: str, workers: int, paths: dict[str, list[str]], args, tmp: Path) -> dict:
    reg_port, triv_port = args.port, args.port + 1
    trivial = start_trivial(triv_port, workers)
    try:
        registry = start_registry(url, reg_port, workers, args.scan_store)
    except BaseException:
        stop(trivial)
        raise
    try:
        t0 = time.monotonic()
        _wait_http(reg_port, paths["search"][0], registry, limit=900)  # the gazetteer is loaded
        waited = time.monotonic() - t0 + wait_idle(registry, log)
        pids = worker_pids(registry, workers)
        rss, pss = memory_mb(pids)
        triv_rss, _ = memory_mb(worker_pids(trivial, workers))
        stack = {lib: uses(pids, lib) for lib in ("uvloop", "httptools")}
        log(f"--workers {workers}: idle after {waited:.0f} s; {len(pids)} worker processes, RSS {rss:.0f} MB "
            f"(PSS {pss:.0f} MB; trivial app {triv_rss:.0f} MB); uvloop {stack['uvloop']}, httptools {stack['httptools']}")
        # the popular plates first, then JSON and HTML walk plates of their own: both miss
        hot, rest = paths["tokens"][:HOT_PLATES], paths["tokens"][HOT_PLATES:]
        half = len(rest) // 2
        kinds = {MISS_ROWS[0]: (rest[:half], "application/json"),
                 MISS_ROWS[1]: (rest[half:], HTML),
                 HOT_ROWS[0]: (hot, "application/json"),
                 HOT_ROWS[1]: (hot, HTML),
                 "reverse": (paths["reverse"], "application/json"), "healthz": (["/healthz"], "application/json"),
                 "search": (paths["search"], "application/json")}
        for name, (p, accept) in kinds.items():  # warm: the lazy state loaded, the hot plates cached
            if name not in MISS_ROWS:  # (their plates stay unasked: each row's scans miss)
                wrk(reg_port, p, accept, args, tmp, seconds=args.warmup)
        wrk(triv_port, ["/ok"], "application/json", args, tmp, seconds=args.warmup)
        rows = {"trivial (before)": wrk(triv_port, ["/ok"], "application/json", args, tmp)}
        log(f"  trivial (before): {rows['trivial (before)']['rps']:,.0f} req/s")
        for name, (p, accept) in kinds.items():
            rows[name] = wrk(reg_port, p, accept, args, tmp)
            log(f"  {name}: {rows[name]['rps']:,.0f} req/s, p99 {rows[name]['p99_ms']:.1f} ms")
        rows["trivial (after)"] = wrk(triv_port, ["/ok"], "application/json", args, tmp)
    finally:
        stop(registry)
        stop(trivial)
    quiet = start_trivial(triv_port, workers, "quiet")
    try:
        wrk(triv_port, ["/ok"], "application/json", args, tmp, seconds=args.warmup)
        rows["trivial, telemetry off"] = wrk(triv_port, ["/ok"], "application/json", args, tmp)
    finally:
        stop(quiet)
    base = (rows["trivial (before)"]["rps"] + rows["trivial (after)"]["rps"]) / 2
    return {"workers": workers, "rows": rows, "trivial_rps": base, "rss_mb": rss, "pss_mb": pss,
            "trivial_rss_mb": triv_rss, "uvloop": stack["uvloop"], "httptools": stack["httptools"]}


def _mark(ok: bool) -> str:
    return "met" if ok else "NOT met"


def report(results: list[dict], args, n_paths: dict[str, int]) -> None:
    print(f"\nwrk -t{args.threads} -c{args.connections} -d{args.seconds:g}s, Lua rotating through "
          f"{n_paths['tokens']:,} plates, {n_paths['reverse']:,} points, {n_paths['search']:,} queries; "
          f"`registry serve` vs bench/trivial_app.py, same uvicorn options and workers")
    print("scan store: " + (f"{args.scan_store} (REGISTRY_SCAN_STORE_DIR): a miss serves the stored answer when it "
                            "is made of the row it reads" if args.scan_store else
                            "none: every miss is composed (--scan-store DIR to serve with one)"))
    for res in results:
        print(f"\n--workers {res['workers']}  (trivial {{\"ok\": true}}: {res['trivial_rps']:,.0f} req/s, mean of "
              f"before {res['rows']['trivial (before)']['rps']:,.0f} and after {res['rows']['trivial (after)']['rps']:,.0f})")
        print(f"{'endpoint':<27}{'req/s':>9}{'share':>8}  {'goal':<14}{'p50 ms':>8}{'p99 ms':>8}  {'p99 ≤ 20 ms':<12}"
              f"{'non-2xx':>8}{'steal':>7}")
        for name, row in res["rows"].items():
            if name.startswith("trivial"):
                continue
            share = row["rps"] / res["trivial_rps"]
            goal = GOALS.get(name)
            verdict = f"≥{goal:.0%} {_mark(share >= goal)}" if goal else "(no goal)"
            p99 = _mark(row['p99_ms'] <= P99_GOAL_MS) if goal else ""
            print(f"{name:<27}{row['rps']:>9,.0f}{share:>7.0%}  {verdict:<14}"
                  f"{row['p50_ms']:>8.1f}{row['p99_ms']:>8.1f}  {p99:<12}"
                  f"{row['non2xx'] + row['socket_errors']:>8}{row['steal']:>7.0%}")
        t = res["rows"]["trivial (before)"]
        a = res["rows"]["trivial (after)"]
        print(f"{'trivial':<27}{res['trivial_rps']:>9,.0f}{1:>7.0%}  {'':<14}{t['p50_ms']:>8.1f}{t['p99_ms']:>8.1f}"
              f"  {'':<12}{'':>8}{(t['steal'] + a['steal']) / 2:>7.0%}")
        q = res["rows"]["trivial, telemetry off"]  # as the registry runs FastAPI: shown, not the baseline
        print(f"{'trivial, telemetry off':<27}{q['rps']:>9,.0f}{q['rps'] / res['trivial_rps']:>7.0%}  "
              f"{'(not the base)':<14}{q['p50_ms']:>8.1f}{q['p99_ms']:>8.1f}")
        for name in MISS_ROWS:
            row = res["rows"][name]
            repeats = max(0, row["requests"] - row["paths"]) / max(1, row["requests"])
            print(f"{name}: {row['requests']:,} scans of {row['paths']:,} distinct plates, "
                  + ("each plate asked once (each wrk thread walks a slice of its own)" if not repeats else
                     f"at least {repeats:.0%} asked again (render-cache hits): raise --plates"))
        print(f"memory after start: RSS {res['rss_mb']:,.0f} MB, PSS {res['pss_mb']:,.0f} MB (sum over "
              f"{res['workers']} worker process{'es' if res['workers'] > 1 else ''}; trivial app "
              f"{res['trivial_rss_mb']:,.0f} MB); uvloop {'yes' if res['uvloop'] else 'no'}, "
              f"httptools {'yes' if res['httptools'] else 'no'}")
    if len(results) == 2:
        one, two = results
        print(f"\n--workers {two['workers']} / --workers {one['workers']} (req/s ratio, goal ≥ {SCALE_GOAL}×)")
        for name in (*GOALS, "trivial"):
            a = one["trivial_rps"] if name == "trivial" else one["rows"][name]["rps"]
            b = two["trivial_rps"] if name == "trivial" else two["rows"][name]["rps"]
            print(f"{name:<27}{b / a:>6.2f}×  {'' if name == 'trivial' else _mark(b / a >= SCALE_GOAL)}")
    print(f"\nmachine load average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores (the client, wrk, "
          "shares them with the server); steal: the share of the machine's CPU time the hypervisor kept during "
          "the row (a row with more steal than the trivial one's is measured on less machine)")


def _whole_seconds(text: str) -> int:
    """wrk takes whole seconds (`-d0.5s` is refused): at least 1."""
    value = int(text) if text.strip().isdigit() else 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"whole seconds, at least 1 (wrk's unit): {text!r}")
    return value


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--database-url", help="an existing registry database with plates issued (read only)")
    ap.add_argument("--addresses", type=int, default=50_000, help="the small city's size when no URL is given")
    ap.add_argument("--workers", default="1,2", help="worker counts, comma-separated (default 1,2)")
    ap.add_argument("--seconds", type=_whole_seconds, default=8, help="each row's run, whole seconds (wrk's unit)")
    ap.add_argument("--warmup", type=_whole_seconds, default=2,
                    help="the warm-up of each row but the misses, whole seconds (it fills the hot plates' cache)")
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--samples", type=int, default=5000, help="distinct points and queries")
    ap.add_argument("--plates", type=int, default=300_000,
                    help="distinct plates (300 popular ones, then half for JSON, half for HTML): more than a row "
                         "scans, so that the scan rows measure the render cache's misses (a row that scanned more "
                         "says so)")
    ap.add_argument("--port", type=int, default=8100, help="the registry's port; the trivial app's is the next")
    ap.add_argument("--keep-db", action="store_true", help="keep the small city's database")
    ap.add_argument("--scan-store", type=Path, metavar="DIR",
                    help="serve with this scan store (REGISTRY_SCAN_STORE_DIR), built first when it holds none "
                         "or one this code does not serve: the miss rows then read stored answers")
    args = ap.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: `apt-get install wrk` (Debian/Ubuntu; scripts/setup-system.sh "
                         "lists it), or build it from https://github.com/wg/wrk")
    own = args.database_url is None
    url = args.database_url or small_city(args)
    try:
        if args.scan_store is not None:
            ensure_scan_store(url, args.scan_store)
        cost = stack_cost(url)
        log(f"in process: {cost['registry']:.0f} µs CPU a request through the registry's stack to a no-op route "
            f"({cost['registry_logged']:.0f} µs with the request log), {cost['trivial']:.0f} µs for the trivial app")
        paths = samples(url, args.samples, args.plates)
        with tempfile.TemporaryDirectory() as tmp:
            results = [measure(url, int(w), paths, args, Path(tmp)) for w in args.workers.split(",")]
        report(results, args, {k: len(v) for k, v in paths.items()})
        print(f"the stack in process (CPU a request, no network): a no-op route behind every router, middleware, "
              f"key check and rate limit {cost['registry']:.0f} µs, {cost['registry_logged']:.0f} µs with the request "
              f"log written; the trivial app {cost['trivial']:.0f} µs ({cost['trivial'] / cost['registry']:.0%}, "
              f"{cost['trivial'] / cost['registry_logged']:.0%})")
    finally:
        if own and not args.keep_db:
            drop_database(url)


if __name__ == "__main__":
    main()
