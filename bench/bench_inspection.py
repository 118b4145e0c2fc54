"""Inspection figures: a whole county's field package out, a package with 1,000 edited features
back in (read + validate + diff), the apply, and the longest doorplate scan during the apply.

    .venv/bin/python bench/bench_inspection.py                      # 1.6M synthetic addresses (the full city)
    .venv/bin/python bench/bench_inspection.py --addresses 20000    # smaller, faster
    .venv/bin/python bench/bench_inspection.py --reuse              # keep the database of a previous run

It works in its own database (`registry_bench_inspection` on the managed cluster, or on the server
of REGISTRY_DATABASE_URL): migrated, the reference loaded, a city generated and loaded by
`loaders.city` (which derives the county and township lines and the markers), plates issued,
round 4 opened. Then:
1. export: `export_package` + `write_package` (GeoPackage) of the county with the most markers;
2. edit with pyogrio (as a field team's GIS would): markers moved a few metres and re-conditioned,
   township lines' middles shifted, reference objects re-measured, until `--edits` features;
3. load: `read_package` + `propose_package` (validation + diff + the proposed change set);
4. apply: approve, then `apply_reviewed` in one transaction, while a `registry serve` answers
   scans of `/p/{token}` (the plates of the addresses being re-parented first, then random ones)
   from a load generator in its own process; the scans' max and p99 during the apply are printed
   against a run of the same load before it.
Goals (issue 9): each step ≤ 10 s at the full city; scans keep answering during the apply.
Nothing here is run by the tests.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from httpload import keepalive_client  # noqa: E402

BENCH_DB = "registry_bench_inspection"
ROUND = 4
GOAL_S = 10.0


def log(msg: str) -> None:
    print(msg, flush=True)


# --- load generator (its own process) ----------------------------------------------------------------
async def _load(spec: dict) -> dict:
    requests = [r.encode() for r in spec["requests"]]
    latencies: list[float] = []
    errors: list[int] = []
    end = time.perf_counter() + spec["seconds"]
    await asyncio.gather(*(keepalive_client("127.0.0.1", spec["port"], requests, end, latencies, errors, k * 131,
                                            is_error=lambda s: s >= 500 or s in (400, 404))
                           for k in range(spec["concurrency"])))
    latencies.sort()
    pct = (lambda p: latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000 if latencies else float("nan"))
    return {"requests": len(latencies), "p50_ms": pct(0.5), "p99_ms": pct(0.99), "max_ms": pct(1.0),
            "errors": len(errors)}


def loadgen_main(spec_path: str) -> None:
    print(json.dumps(asyncio.run(_load(json.loads(Path(spec_path).read_text())))))


def start_load(port: int, paths: list[str], seconds: float, concurrency: int, tmp: Path) -> subprocess.Popen:
    spec = tmp / f"load-{time.monotonic_ns()}.json"
    reqs = [f"GET {p} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAccept: application/json\r\n\r\n" for p in paths]
    spec.write_text(json.dumps({"port": port, "requests": reqs, "seconds": seconds, "concurrency": concurrency}))
    return subprocess.Popen([sys.executable, __file__, "--_loadgen", str(spec)], stdout=subprocess.PIPE, text=True)


def finish_load(proc: subprocess.Popen) -> dict:
    out, _ = proc.communicate(timeout=900)
    return json.loads(out.strip().splitlines()[-1])


# --- the database ------------------------------------------------------------------------------------
def bench_url() -> tuple[str, str]:
    from sqlalchemy.engine import make_url

    from registry.db.cluster import ManagedCluster
    from registry.settings import Settings

    settings = Settings()
    if settings.database_url:
        base = make_url(settings.database_url)
        return (base.set(database=BENCH_DB).render_as_string(hide_password=False),
                base.set(database="postgres").render_as_string(hide_password=False))
    cluster = ManagedCluster(settings)
    cluster.start()
    return cluster.url(BENCH_DB), cluster.url("postgres")


def prepare(args, tmp: Path) -> str:
    from sqlalchemy import create_engine, text

    from data.generate import generate_city
    from loaders.city import load_city
    from loaders.reference import load_reference
    from registry.db.migrate import upgrade
    from registry.doorplates import issue_plates
    from registry.inspection import create_round

    url, admin_url = bench_url()
    if not args.reuse:
        admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as c:
            c.exec_driver_sql(f'DROP DATABASE IF EXISTS "{BENCH_DB}" WITH (FORCE)')
            c.exec_driver_sql(f"CREATE DATABASE \"{BENCH_DB}\" TEMPLATE template0 ENCODING 'UTF8' LOCALE 'C.UTF-8'")
        admin.dispose()
    upgrade(url)
    engine = create_engine(url)
    with engine.begin() as conn:
        fresh = conn.execute(text("SELECT count(*) FROM divisions")).scalar_one() == 0
        if fresh:
            load_reference(conn, actor="bench")
        have = conn.execute(text("SELECT count(*) FROM addresses")).scalar_one()
    if have == 0:
        t0 = time.perf_counter()
        city = tmp / "city"
        generate_city(city, addresses=args.addresses, seed=args.seed)
        load_city(engine, city, actor="bench")
        log(f"city: {args.addresses:,} addresses generated and loaded (lines and markers derived) "
            f"in {time.perf_counter() - t0:.0f} s")
        with engine.begin() as conn:
            issue_plates(conn, actor="bench", division="330500", source="bench")
    with engine.begin() as conn:
        if not conn.execute(text("SELECT 1 FROM inspection_rounds WHERE number = :n"), {"n": ROUND}).first():
            create_round(conn, ROUND, year=2024, year_to=2026, scope="bench", actor="bench")
        counts = conn.execute(text("""SELECT (SELECT count(*) FROM addresses), (SELECT count(*) FROM boundary_lines
            WHERE status = 'active'), (SELECT count(*) FROM boundary_markers WHERE status = 'active')""")).one()
    log(f"database {BENCH_DB}: {counts[0]:,} addresses, {counts[1]:,} lines, {counts[2]:,} markers")
    engine.dispose()
    return url


# --- the steps ---------------------------------------------------------------------------------------
def bench_export(url: str, tmp: Path) -> tuple[Path, dict]:
    from sqlalchemy import create_engine, text

    from loaders.field_package import write_package
    from registry.inspection import export_package

    engine = create_engine(url)
    with engine.connect() as conn:
        county = conn.execute(text("""
            SELECT coalesce(c.mca_code, c.nbs_code) FROM divisions c
            JOIN boundary_lines l ON c.id IN (l.left_division_id, l.right_division_id)
                 OR c.id IN (SELECT parent_id FROM divisions WHERE id IN (l.left_division_id, l.right_division_id))
            JOIN boundary_markers m ON m.boundary_line_id = l.id
            WHERE c.level = 'county' GROUP BY c.id ORDER BY count(*) DESC LIMIT 1""")).scalar_one()
        t0 = time.perf_counter()
        pkg = export_package(conn, ROUND, division_code=county)
        t1 = time.perf_counter()
        path = tmp / "county.gpkg"
        write_package(pkg, path)
        t2 = time.perf_counter()
    engine.dispose()
    fig = {"county": county, "lines": int(pkg.info["lines"]), "markers": int(pkg.info["markers"]),
           "reference_objects": int(pkg.info["reference_objects"]), "query_s": t1 - t0, "write_s": t2 - t1,
           "export_s": t2 - t0, "size_kib": path.stat().st_size // 1024}
    log(f"export: county {county}: {fig['lines']:,} lines, {fig['markers']:,} markers, "
        f"{fig['reference_objects']:,} reference objects → {fig['size_kib']:,} KiB GeoPackage in {fig['export_s']:.2f} s "
        f"(query {fig['query_s']:.2f} s, write {fig['write_s']:.2f} s)")
    return path, fig


def edit_package(path: Path, edits: int, seed: int) -> dict:
    """Edit `edits` features with pyogrio, as a field team would."""
    import math

    import pyogrio
    import shapely

    rng = random.Random(seed)

    def offset(x, y, east, north):
        return x + east / (111_320.0 * math.cos(math.radians(y))), y + north / 111_132.0

    lines = pyogrio.read_dataframe(path, layer="lines")
    markers = pyogrio.read_dataframe(path, layer="markers")
    refs = pyogrio.read_dataframe(path, layer="reference_objects")
    done = {"lines": 0, "markers": 0, "reference_objects": 0}
    # A tenth of the edits are township lines re-surveyed (their middle shifted 15 m); a line on a
    # county line or the city's edge is left alone, as the validator would refuse it.
    want_lines = max(1, edits // 100)
    for i in range(len(lines)):
        if done["lines"] >= want_lines:
            break
        g = lines.geometry[i]
        if lines["level"][i] != "township" or not isinstance(lines["right_code"][i], str) \
                or isinstance(lines["county_ln"][i], str) or len(g.geoms) != 1 or len(g.geoms[0].coords) < 8:
            continue
        c = list(g.geoms[0].coords)
        lines.loc[i, "geometry"] = shapely.MultiLineString(
            [[c[0]] + [offset(x, y, 0, 15) for x, y in c[1:-1]] + [c[-1]]])
        done["lines"] += 1
    order = list(range(len(markers)))
    rng.shuffle(order)
    for i in order[: max(0, edits - done["lines"])]:
        g = markers.geometry[i]
        markers.loc[i, "geometry"] = shapely.Point(*offset(g.x, g.y, rng.uniform(-5, 5), rng.uniform(-5, 5)))
        markers.loc[i, "condition"] = rng.choice(["intact", "damaged", "worn", "displaced"])
        done["markers"] += 1
    for i in range(max(0, edits - done["lines"] - done["markers"])):
        if i >= len(refs):
            break
        refs.loc[i, "bearing"] = (float(refs["bearing"][i]) + 1.0) % 360
        done["reference_objects"] += 1
    for name, frame in (("lines", lines), ("markers", markers), ("reference_objects", refs)):
        pyogrio.write_dataframe(frame, path, layer=name, driver="GPKG", layer_options={"OVERWRITE": "YES"})
    done["total"] = sum(done.values())
    log(f"edit (pyogrio): {done['lines']} lines re-surveyed, {done['markers']} markers moved/re-conditioned, "
        f"{done['reference_objects']} reference objects re-measured = {done['total']:,} edited features")
    return done


def bench_load(url: str, path: Path) -> dict:
    from sqlalchemy import create_engine

    from loaders.field_package import read_package
    from registry.inspection import propose_package

    engine = create_engine(url)
    t0 = time.perf_counter()
    pkg = read_package(path)
    t1 = time.perf_counter()
    with engine.begin() as conn:
        result = propose_package(conn, pkg, ROUND, actor="bench")
    t2 = time.perf_counter()
    engine.dispose()
    if not result.ok:
        for p in result.problems[:20]:
            log(f"  problem: [{p.rule}] {p.layer} {p.feature}: {p.message}")
        raise SystemExit(f"the edited package has {len(result.problems)} problems")
    log(f"load: read {t1 - t0:.2f} s + validate and diff {t2 - t1:.2f} s = {t2 - t0:.2f} s → change set "
        f"{result.change_set_id}: {json.dumps(result.counts, ensure_ascii=False)}")
    return {"read_s": t1 - t0, "validate_diff_s": t2 - t1, "load_s": t2 - t0, "change_set_id": result.change_set_id,
            "counts": result.counts}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(url: str, port: int) -> subprocess.Popen:
    import urllib.request

    env = {**os.environ, "REGISTRY_DATABASE_URL": url, "REGISTRY_LOG_LEVEL": "WARNING"}
    proc = subprocess.Popen([str(ROOT / ".venv" / "bin" / "registry"), "serve", "--port", str(port)], cwd=ROOT,
                            env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
                if r.status == 200:
                    return proc
        except OSError:
            time.sleep(0.5)
    os.killpg(proc.pid, signal.SIGTERM)
    raise RuntimeError("registry serve did not start")


def scan_paths(url: str, change_set_id: int, n: int) -> tuple[list[str], int]:
    from sqlalchemy import create_engine, text

    from registry.doorplates import KeyRing

    engine = create_engine(url)
    ring = KeyRing(ttl=3600)
    with engine.connect() as conn:
        moving = conn.execute(text("""
            SELECT p.id, p.key_id FROM change_sets c,
                 jsonb_array_elements(c.details -> 'lines') l, jsonb_array_elements(l -> 'addresses') a
            JOIN doorplates p ON p.address_id = (a ->> 'id')::bigint AND p.status IN ('issued', 'active')
            WHERE c.id = :c"""), {"c": change_set_id}).all()
        others = conn.execute(text("""SELECT id, key_id FROM doorplates TABLESAMPLE SYSTEM (5)
            WHERE status IN ('issued', 'active') LIMIT :n"""), {"n": n}).all()
        rows = list(moving) + list(others)
        paths = [f"/p/{ring.token_for(conn, r.id, r.key_id)}" for r in rows[: max(n, len(moving))]]
    engine.dispose()
    return paths, len(moving)


def bench_apply(url: str, change_set_id: int, args, tmp: Path) -> dict:
    from sqlalchemy import create_engine

    from registry.changes import apply_reviewed, approve

    port = _free_port()
    paths, n_moving = scan_paths(url, change_set_id, args.tokens)
    server = start_server(url, port)
    try:
        time.sleep(2)
        base = finish_load(start_load(port, paths, args.window, args.concurrency, tmp))
        log(f"scans before the apply ({args.concurrency} connections, {args.window:.0f} s): "
            f"p50 {base['p50_ms']:.1f} ms, p99 {base['p99_ms']:.1f} ms, max {base['max_ms']:.1f} ms, "
            f"{base['errors']} errors")
        engine = create_engine(url)
        with engine.begin() as conn:
            approve(conn, change_set_id, actor="bench-approver")
        load = start_load(port, paths, args.window, args.concurrency, tmp)
        time.sleep(1.0)
        t0 = time.perf_counter()
        with engine.begin() as conn:
            cs, _ = apply_reviewed(conn, change_set_id, actor="bench-applier")
        apply_s = time.perf_counter() - t0
        during = finish_load(load)
        t0 = time.perf_counter()
        with engine.begin() as conn:
            _, again = apply_reviewed(conn, change_set_id, actor="bench-applier")
        again_s = time.perf_counter() - t0
        engine.dispose()
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
    log(f"apply: {apply_s:.2f} s, one transaction: {json.dumps(cs.counts, ensure_ascii=False)}; "
        f"again: {again_s:.3f} s (applied now: {again})")
    log(f"scans during the apply ({len(paths)} plates, {n_moving} of them on addresses being re-parented): "
        f"p50 {during['p50_ms']:.1f} ms, p99 {during['p99_ms']:.1f} ms, longest {during['max_ms']:.1f} ms, "
        f"{during['errors']} errors")
    return {"apply_s": apply_s, "again_s": again_s, "scans_before": base, "scans_during": during,
            "plates_reparented": n_moving}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--addresses", type=int, default=1_600_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--edits", type=int, default=1000, help="edited features in the package")
    ap.add_argument("--reuse", action="store_true", help="keep the database of a previous run")
    ap.add_argument("--tokens", type=int, default=2000, help="plates scanned")
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--window", type=float, default=8.0, help="seconds of scanning, before and during the apply")
    ap.add_argument("--_loadgen")
    args = ap.parse_args()
    if args._loadgen:
        loadgen_main(args._loadgen)
        return
    with tempfile.TemporaryDirectory(prefix="bench-insp-") as t:
        tmp = Path(t)
        url = prepare(args, tmp)
        path, exp = bench_export(url, tmp)
        edits = edit_package(path, args.edits, args.seed)
        load = bench_load(url, path)
        app = bench_apply(url, load["change_set_id"], args, tmp)
    ok = lambda s: "ok" if s <= GOAL_S else "OVER"  # noqa: E731
    log(f"summary (goal ≤ {GOAL_S:.0f} s each): export {exp['export_s']:.2f} s {ok(exp['export_s'])}; "
        f"load+validate+diff of {edits['total']:,} edits {load['load_s']:.2f} s {ok(load['load_s'])}; "
        f"apply {app['apply_s']:.2f} s {ok(app['apply_s'])}; longest scan during apply "
        f"{app['scans_during']['max_ms']:.0f} ms (before: {app['scans_before']['max_ms']:.0f} ms)")


if __name__ == "__main__":
    main()
