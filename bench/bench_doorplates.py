"""Doorplate speed figures: issuing for the whole city, printing 500 plates, and the scan under load.

    .venv/bin/python bench/bench_doorplates.py                     # 1.6M synthetic addresses
    .venv/bin/python bench/bench_doorplates.py --addresses 200000  # smaller, faster
    .venv/bin/python bench/bench_doorplates.py --reuse             # keep the database of a previous run

It works in its own database (`registry_bench_doorplates` on the managed cluster, or on the server of
REGISTRY_DATABASE_URL): migrated, the real reference divisions loaded, then N addresses on synthetic
streets and the civil-affairs facilities synthesized with set-based SQL. Point `--database-url` at a
database where `registry load city` ran to use the generated city instead.

The HTTP figures come from uvicorn in a subprocess on 127.0.0.1 and a bounded keep-alive load
generator (asyncio, its own process) with 32 concurrent connections for a fixed time: the trivial
endpoint (/healthz: one `SELECT 1`) and the scan as JSON and as HTML are measured in alternating
rounds, and the ratios are taken round by round (median). Goals (issue 5): JSON ≥ 70 % and HTML ≥ 60 %
of the trivial endpoint's throughput, JSON p99 ≤ 20 ms at 32 clients, issuing 1.6M ≤ 5 min,
500-plate PDF ≤ 30 s. Nothing here is run by the tests.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from httpload import keepalive_client  # noqa: E402 (bench/ is on sys.path when run as a script)
import servers  # noqa: E402
from servers import UVICORN, free_port, stop_server, wait_idle  # noqa: E402 (one way to start a server)

BENCH_DB = "registry_bench_doorplates"
GOALS = {"json_ratio": 0.70, "html_ratio": 0.60, "json_p99_ms": 20.0, "issue_s": 300.0, "print_s": 30.0}


# --- the load generator (runs in its own process) -----------------------------------------------------
def _doorplate_error(status: int) -> bool:
    # 410 (a replaced or revoked plate) is a correct answer, not an error.
    return status >= 500 or status in (400, 404)


async def _client(host: str, port: int, requests: list[bytes], deadline: float, max_requests: int,
                  latencies: list[float], errors: list[int], offset: int) -> None:
    await keepalive_client(host, port, requests, deadline, latencies, errors, offset,
                           max_requests=max_requests, is_error=_doorplate_error)


async def _load(host: str, port: int, requests: list[bytes], concurrency: int, seconds: float,
                warmup: float, max_requests: int) -> dict:
    if warmup:
        sink: list[float] = []
        end = time.perf_counter() + warmup
        await asyncio.gather(*(_client(host, port, requests, end, max_requests, sink, [], k * 997)
                               for k in range(concurrency)))
    latencies: list[float] = []
    errors: list[int] = []
    start = time.perf_counter()
    end = start + seconds
    await asyncio.gather(*(_client(host, port, requests, end, max_requests, latencies, errors, k * 7919)
                           for k in range(concurrency)))
    elapsed = time.perf_counter() - start
    latencies.sort()

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000 if latencies else float("nan")

    return {"requests": len(latencies), "rps": len(latencies) / elapsed, "p50_ms": pct(0.50),
            "p90_ms": pct(0.90), "p99_ms": pct(0.99), "max_ms": pct(1.0), "errors": len(errors)}


def loadgen_main(spec_path: str) -> None:
    spec = json.loads(Path(spec_path).read_text())
    if spec["host"] not in ("127.0.0.1", "localhost", "::1"):
        raise SystemExit("the load generator only targets this machine (127.0.0.1)")
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    requests = [r.encode("latin-1") for r in spec["requests"]]
    result = asyncio.run(_load(spec["host"], spec["port"], requests, spec["concurrency"], spec["seconds"],
                               spec["warmup"], spec["max_requests"]))
    print(json.dumps(result))


def run_load(port: int, paths: list[str], accept: str, *, concurrency: int, seconds: float, warmup: float,
             tmp: Path, max_requests: int = 2_000_000) -> dict:
    requests = [f"GET {p} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAccept: {accept}\r\nUser-Agent: bench\r\n\r\n"
                for p in paths]
    spec = tmp / "load.json"
    spec.write_text(json.dumps({"host": "127.0.0.1", "port": port, "requests": requests, "concurrency": concurrency,
                                "seconds": seconds or 600.0, "warmup": warmup, "max_requests": max_requests}))
    out = subprocess.run([sys.executable, __file__, "--_loadgen", str(spec)], capture_output=True, text=True,
                         timeout=(seconds or 600.0) + warmup + 60)
    if out.returncode != 0:
        raise RuntimeError(out.stderr)
    return json.loads(out.stdout.strip().splitlines()[-1])


# --- the database ----------------------------------------------------------------------------------------
def bench_url(args) -> tuple[str, str | None]:
    """(bench database URL, admin URL to create it or None when --database-url is given)."""
    from sqlalchemy.engine import make_url

    from registry.db.cluster import ManagedCluster
    from registry.settings import Settings

    if args.database_url:
        return args.database_url, None
    settings = Settings()
    if settings.database_url:
        base = make_url(settings.database_url)
        return (base.set(database=BENCH_DB).render_as_string(hide_password=False),
                base.set(database="postgres").render_as_string(hide_password=False))
    cluster = ManagedCluster(settings)
    cluster.start()
    return cluster.url(BENCH_DB), cluster.url("postgres")


WORDS = ("人民", "解放", "凤凰", "红旗", "青铜", "南街", "北门", "仁皇", "吉山", "爱山", "苕溪", "龙溪", "太湖", "碧浪",
         "长兴", "霞幕", "白鱼潭", "环城", "劳动", "健康", "和平", "东风", "西山", "金盖", "道场", "杨家埠", "八里店",
         "织里", "双林", "练市", "菱湖", "新市", "武康", "安吉", "孝丰", "递铺", "梅溪", "天子湖", "泗安", "洪桥")
GENERICS = ("路", "街", "巷", "大道", "弄", "路", "路", "街")
FACILITIES = (  # category, one per how many villages
    ("居家养老服务照料中心", 1), ("幸福邻里中心", 4), ("儿童之家", 1), ("社会工作站", 15), ("集中治丧点", 5),
    ("婚姻登记处", 200),
)


def prepare(args, log) -> str:
    from sqlalchemy import create_engine, text

    from loaders.reference import load_reference
    from registry.db.migrate import upgrade

    url, admin_url = bench_url(args)
    engine = create_engine(url)
    if admin_url and not args.reuse:
        admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as c:
            c.exec_driver_sql(f'DROP DATABASE IF EXISTS "{BENCH_DB}" WITH (FORCE)')
            c.exec_driver_sql(f"CREATE DATABASE \"{BENCH_DB}\" TEMPLATE template0 ENCODING 'UTF8' LOCALE 'C.UTF-8'")
        admin.dispose()
    upgrade(url)
    with engine.begin() as conn:
        have = conn.execute(text("SELECT count(*) FROM addresses")).scalar_one()
        if conn.execute(text("SELECT count(*) FROM divisions")).scalar_one() == 0:
            load_reference(conn, actor="bench")
    if have >= args.addresses or args.database_url:
        log(f"using {have:,} addresses already in {url.rsplit('/', 1)[-1]}")
        engine.dispose()
        return url
    t0 = time.perf_counter()
    with engine.begin() as conn:
        villages = conn.execute(text("SELECT count(*) FROM divisions WHERE level='village' AND status='active'")).scalar_one()
        per_village = -(-args.addresses // villages)
        conn.execute(text("""
            CREATE TEMP TABLE bench_villages ON COMMIT DROP AS
            SELECT v.id, coalesce(v.mca_code, v.nbs_code) AS code, t.id AS township_id, c.id AS county_id,
                   row_number() OVER (ORDER BY v.id) AS rn,
                   119.25 + ((row_number() OVER (ORDER BY v.id)) * 0.6180339887 % 1) * 1.25 AS cx,
                   30.40 + ((row_number() OVER (ORDER BY v.id)) * 0.7548776662 % 1) * 0.80 AS cy
            FROM divisions v JOIN divisions t ON t.id = v.parent_id JOIN divisions c ON c.id = t.parent_id
            WHERE v.level = 'village' AND v.status = 'active'
        """))
        conn.execute(text("""
            INSERT INTO place_names (category, name, division_id, county_id, status, source)
            SELECT 'road', (CAST(:words AS text[]))[1 + ((v.rn * 8 + s) % cardinality(CAST(:words AS text[])))]
                           || (CAST(:generics AS text[]))[1 + s],
                   v.township_id, v.county_id, 'active', 'bench:' || v.id || ':' || s
            FROM bench_villages v CROSS JOIN generate_series(0, 7) s
        """), {"words": list(WORDS), "generics": list(GENERICS)})
        conn.execute(text("""
            CREATE TEMP TABLE bench_streets ON COMMIT DROP AS
            SELECT p.id, p.name, split_part(p.source, ':', 2)::bigint AS village_id,
                   split_part(p.source, ':', 3)::int AS s
            FROM place_names p WHERE p.source LIKE 'bench:%'
        """))
        conn.execute(text("CREATE INDEX ON bench_streets (village_id, s)"))
        total = conn.execute(text("""
            INSERT INTO addresses (division_id, street_id, number, number_main, full_text, code, local_seq, status,
                                   geom, source)
            SELECT v.id, st.id, (g.k + 1) || '号', g.k + 1,
                   '浙江省湖州市' || c.name || t.name || st.name || (g.k + 1) || '号',
                   v.code || lpad((g.k + 1)::text, 8, '0'), g.k + 1, 'active',
                   ST_SetSRID(ST_MakePoint(v.cx + (random() - 0.5) * 0.03, v.cy + (random() - 0.5) * 0.03), 4490),
                   'bench'
            FROM bench_villages v
            JOIN divisions t ON t.id = v.township_id JOIN divisions c ON c.id = v.county_id
            CROSS JOIN generate_series(0, :per - 1) g(k)
            JOIN bench_streets st ON st.village_id = v.id AND st.s = g.k % 8
            WHERE (v.rn - 1) * :per + g.k < :n
        """), {"per": per_village, "n": args.addresses}).rowcount
        for category, every in FACILITIES:
            conn.execute(text("""
                INSERT INTO facilities (category, name, division_id, address_text, phone, status, geom, source)
                SELECT :cat, t.name || :cat || v.rn, v.id, NULL, '0572-' || lpad((2000000 + v.rn)::text, 7, '0'),
                       'active', ST_SetSRID(ST_MakePoint(v.cx + 0.004, v.cy - 0.003), 4490), 'bench'
                FROM bench_villages v JOIN divisions t ON t.id = v.township_id
                WHERE v.rn % :every = 0
            """), {"cat": category, "every": every})
    with engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("VACUUM ANALYZE")
    log(f"synthesized {total:,} addresses in {villages} villages in {time.perf_counter() - t0:.0f} s")
    engine.dispose()
    return url


# --- the figures ------------------------------------------------------------------------------------------
def bench_issue(url: str, log) -> dict:
    from sqlalchemy import create_engine, text

    from registry.doorplates import issue_plates

    engine = create_engine(url)
    with engine.connect() as conn:
        addresses = conn.execute(text("SELECT count(*) FROM addresses WHERE status='active'")).scalar_one()
        before = conn.execute(text("SELECT count(*) FROM doorplates")).scalar_one()
    t0 = time.perf_counter()
    with engine.begin() as conn:
        first = issue_plates(conn, actor="bench", division="330500", source="bench")
    first_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    with engine.begin() as conn:
        again = issue_plates(conn, actor="bench", division="330500", source="bench")
    again_s = time.perf_counter() - t0
    with engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("VACUUM ANALYZE doorplates")
    engine.dispose()
    log(f"issue, whole city: {first.issued:,} new plates ({before:,} existed) for {addresses:,} addresses in "
        f"{first_s:.1f} s; again (idempotent): {again.issued} new, {again.already:,} kept in {again_s:.1f} s")
    return {"addresses": addresses, "issued": first.issued, "existing_before": before, "issue_s": first_s,
            "reissue_s": again_s}


def bench_print(url: str, log, n: int, tmp: Path) -> dict:
    from sqlalchemy import create_engine, text

    from registry.settings import Settings

    engine = create_engine(url)
    with engine.connect() as conn:
        code = conn.execute(text("""
            SELECT coalesce(t.mca_code, t.nbs_code) FROM doorplates d JOIN addresses a ON a.id = d.address_id
            JOIN divisions v ON v.id = a.division_id JOIN divisions t ON t.id = v.parent_id
            WHERE d.status IN ('issued','active') GROUP BY 1 HAVING count(*) >= :n ORDER BY 1 LIMIT 1
        """), {"n": n}).scalar_one()
    engine.dispose()
    out = tmp / "plates.pdf"
    env = {**os.environ, "REGISTRY_DATABASE_URL": url}
    t0 = time.perf_counter()
    res = subprocess.run([str(ROOT / ".venv" / "bin" / "registry"), "plates", "print", "--division", code,
                          "--limit", str(n), "-o", str(out), "--force-local-url"],  # timing only: no plates
                         capture_output=True, text=True, env=env, cwd=ROOT)
    seconds = time.perf_counter() - t0
    if res.returncode != 0:
        raise RuntimeError(res.stderr)
    log(f"print: `registry plates print --division {code} --limit {n}` → {out.stat().st_size // 1024} KiB "
        f"in {seconds:.1f} s (whole command, start-up included)")
    return {"plates": n, "print_s": seconds, "pdf_kib": out.stat().st_size // 1024, "division": code,
            "base_url": Settings().public_base_url}


def start_server(url: str, workers: int, port: int, flush: float, pool_size: int = 10) -> subprocess.Popen:
    env = {"REGISTRY_DATABASE_URL": url, "REGISTRY_LOG_LEVEL": "WARNING",
           "REGISTRY_DOORPLATE_SCAN_FLUSH_SECONDS": str(flush), "REGISTRY_POOL_SIZE": str(pool_size)}
    cmd = [UVICORN, "api.main:app", "--host", "127.0.0.1", "--port", str(port),
           "--workers", str(workers), "--no-access-log", "--log-level", "warning"]
    return servers.start_server(cmd, port, env=env, quiet=False)


def sample_paths(url: str, n: int) -> list[str]:
    from sqlalchemy import create_engine, text

    from registry.doorplates import KeyRing

    engine = create_engine(url)
    ring = KeyRing(ttl=3600)
    with engine.connect() as conn:
        rows = conn.execute(text("""
            SELECT id, key_id FROM doorplates TABLESAMPLE SYSTEM (5) WHERE status IN ('issued','active') LIMIT :n
        """), {"n": n * 3}).all()
        rows = random.Random(5).sample(rows, min(n, len(rows)))
        paths = [f"/p/{ring.token_for(conn, r.id, r.key_id)}" for r in rows]
    engine.dispose()
    return paths


def bench_http(url: str, log, args, tmp: Path) -> dict:
    port = free_port()
    pool_size = args.pool_size or -(-args.concurrency // args.workers) + 2
    proc = start_server(url, args.workers, port, args.flush, pool_size)
    try:
        paths = sample_paths(url, args.tokens)
        waited = wait_idle(proc, log)
        log(f"http: server idle after {waited:.0f} s of start-up work; REGISTRY_POOL_SIZE={pool_size} per worker")
        # A server in service has its working set cached: scan every sampled plate once, untimed.
        t0 = time.perf_counter()
        run_load(port, paths, "application/json", concurrency=8, seconds=0.0, warmup=0.0, tmp=tmp,
                 max_requests=len(paths) + 16)
        log(f"http: warmed {len(paths):,} plates in {time.perf_counter() - t0:.0f} s")
        log(f"http: uvicorn --workers {args.workers} on 127.0.0.1:{port}; {len(paths):,} random plates; "
            f"{args.concurrency} connections, {args.seconds:.0f} s a round, {args.rounds} rounds")
        kinds = {
            "trivial": (["/healthz"], "application/json"),
            "json": (paths, "application/json"),
            "html": (paths, "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"),
        }
        results: dict[str, list[dict]] = {k: [] for k in kinds}
        for rnd in range(args.rounds):
            for kind, (p, accept) in kinds.items():
                r = run_load(port, p, accept, concurrency=args.concurrency, seconds=args.seconds,
                             warmup=args.warmup, tmp=tmp)
                results[kind].append(r)
                log(f"  round {rnd + 1} {kind:7s}: {r['rps']:7.0f} req/s  p50 {r['p50_ms']:5.1f} ms  "
                    f"p99 {r['p99_ms']:5.1f} ms  errors {r['errors']}")
    finally:
        stop_server(proc)
    json_ratios = [j["rps"] / t["rps"] for j, t in zip(results["json"], results["trivial"])]
    html_ratios = [h["rps"] / t["rps"] for h, t in zip(results["html"], results["trivial"])]
    summary = {
        "trivial_rps": statistics.median(r["rps"] for r in results["trivial"]),
        "json_rps": statistics.median(r["rps"] for r in results["json"]),
        "html_rps": statistics.median(r["rps"] for r in results["html"]),
        "json_ratio": statistics.median(json_ratios),
        "html_ratio": statistics.median(html_ratios),
        "json_p99_ms": statistics.median(r["p99_ms"] for r in results["json"]),
        "html_p99_ms": statistics.median(r["p99_ms"] for r in results["html"]),
        "trivial_p99_ms": statistics.median(r["p99_ms"] for r in results["trivial"]),
        "errors": sum(r["errors"] for rs in results.values() for r in rs),
        "workers": args.workers,
        "concurrency": args.concurrency,
    }
    return summary


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--_loadgen":
        loadgen_main(sys.argv[2])
        return
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--addresses", type=int, default=1_600_000, help="synthetic addresses (default: the city)")
    ap.add_argument("--database-url", help="use this database as it is (e.g. one with `registry load city`)")
    ap.add_argument("--reuse", action="store_true", help="keep the bench database of an earlier run")
    ap.add_argument("--workers", type=int, default=2, help="uvicorn worker processes")
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--seconds", type=float, default=8.0, help="measured seconds per round")
    ap.add_argument("--warmup", type=float, default=1.5)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--tokens", type=int, default=20_000, help="distinct plates scanned")
    ap.add_argument("--print-plates", type=int, default=500)
    ap.add_argument("--flush", type=float, default=2.0, help="scan-count flush interval (0 = UPSERT per scan)")
    ap.add_argument("--pool-size", type=int, default=0,
                    help="REGISTRY_POOL_SIZE per worker (default: enough for the connections, no overflow churn)")
    ap.add_argument("--skip", action="append", default=[], choices=["issue", "print", "http"])
    args = ap.parse_args()

    import tempfile

    def log(msg: str) -> None:
        print(msg, flush=True)

    figures: dict = {}
    with tempfile.TemporaryDirectory(prefix="bench-doorplates-") as d:
        tmp = Path(d)
        url = prepare(args, log)
        if "issue" not in args.skip:
            figures["issue"] = bench_issue(url, log)
        if "print" not in args.skip:
            figures["print"] = bench_print(url, log, args.print_plates, tmp)
        if "http" not in args.skip:
            figures["http"] = bench_http(url, log, args, tmp)

    print("\n== doorplates, summary ==")
    if "issue" in figures:
        f = figures["issue"]
        print(f"issue all plates : {f['issue_s']:6.1f} s for {f['addresses']:,} addresses "
              f"(goal ≤ {GOALS['issue_s']:.0f} s at 1.6M)  re-run {f['reissue_s']:.1f} s")
    if "print" in figures:
        f = figures["print"]
        print(f"print {f['plates']} plates : {f['print_s']:6.1f} s (goal ≤ {GOALS['print_s']:.0f} s)")
    if "http" in figures:
        f = figures["http"]
        print(f"trivial /healthz : {f['trivial_rps']:7.0f} req/s  p99 {f['trivial_p99_ms']:.1f} ms")
        print(f"scan as JSON     : {f['json_rps']:7.0f} req/s  = {f['json_ratio']:.0%} of trivial "
              f"(goal ≥ {GOALS['json_ratio']:.0%})  p99 {f['json_p99_ms']:.1f} ms (goal ≤ {GOALS['json_p99_ms']:.0f} ms)")
        print(f"scan as HTML     : {f['html_rps']:7.0f} req/s  = {f['html_ratio']:.0%} of trivial "
              f"(goal ≥ {GOALS['html_ratio']:.0%})  p99 {f['html_p99_ms']:.1f} ms")
        print(f"errors           : {f['errors']}  ({f['workers']} uvicorn workers, {f['concurrency']} connections)")
    print(json.dumps(figures, default=str))


if __name__ == "__main__":
    main()
