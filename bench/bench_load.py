"""Address loading at city scale: the loader against PostgreSQL's own COPY.

    .venv/bin/python bench/bench_load.py                        # 200,000 addresses
    .venv/bin/python bench/bench_load.py --addresses 1600000    # the whole city

In a database of its own (created on the managed cluster, or on REGISTRY_DATABASE_URL's server,
dropped at the end unless --keep-db), with the real divisions and the generated city's polygons
and place names loaded first (untimed), it measures:

1. first load: `registry load addresses addresses.csv` into the empty registry (a subprocess,
   so its peak RSS is the loader's own), indexes and foreign keys included;
2. re-load of the same file, unchanged;
3. a correction file of 10,000 rows into the full registry (9,000 moved points, 1,000 new doors);
4. the baseline, in the same run: PostgreSQL's COPY of the same rows (the addresses table as
   loaded) into a bare table, plus the same indexes (every index the addresses table has).
It prints each figure, the ratio first load / baseline, and the loader's peak RSS.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import Engine, create_engine, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

TARGETS = {"first": 60.0, "reload": 45.0, "correction": 3.0, "ratio": 2.5, "rss_mb": 1536}


def city_dir(args) -> Path:
    if args.city:
        return Path(args.city)
    out = ROOT / "var" / "bench" / f"city-{args.addresses}-seed{args.seed}"
    if not (out / "manifest.json").exists():
        print(f"generating {args.addresses:,} addresses into {out} …", flush=True)
        t = time.perf_counter()
        # in a process of its own, so that this one stays small while it starts the loaders
        subprocess.run([sys.executable, "-m", "loaders.cli", "generate", "--addresses", str(args.addresses),
                        "--seed", str(args.seed), "--out", str(out)], cwd=ROOT, check=True,
                       stdout=subprocess.DEVNULL)
        print(f"  generated in {time.perf_counter() - t:.1f} s", flush=True)
    return out


def make_database(name: str) -> str:
    from registry.db.engine import resolve_database_url
    from registry.db.migrate import upgrade
    from registry.settings import Settings

    base = make_url(resolve_database_url(Settings()))
    admin = create_engine(base.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        c.exec_driver_sql(f"CREATE DATABASE \"{name}\" TEMPLATE template0 ENCODING 'UTF8' LOCALE 'C.UTF-8'")
    admin.dispose()
    url = base.set(database=name).render_as_string(hide_password=False)
    upgrade(url)
    return url


def copy_database(name: str, template: str, tries: int = 60) -> str:
    """A new database `name` made as `CREATE DATABASE … TEMPLATE template` (PostgreSQL copies it
    only while nobody is connected to the template: retried every 5 s), then migrated to head."""
    from registry.db.engine import resolve_database_url
    from registry.db.migrate import upgrade
    from registry.settings import Settings

    base = make_url(resolve_database_url(Settings()))
    admin = create_engine(base.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as c:
            c.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            for attempt in range(tries):
                try:
                    c.exec_driver_sql(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
                    break
                except Exception as exc:  # noqa: BLE001  ("source database is being accessed by other users")
                    if "being accessed" not in str(exc) or attempt == tries - 1:
                        raise
                    print(f"  {template} is in use; retrying in 5 s …", flush=True)
                    time.sleep(5)
    finally:
        admin.dispose()
    url = base.set(database=name).render_as_string(hide_password=False)
    upgrade(url)
    return url


def add_city_arguments(ap) -> None:
    """The options of a bench that runs on a whole city in a database of its own."""
    ap.add_argument("--addresses", type=int, default=50_000, help="generated city size (without --template)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--city", help="a generated city folder (default: var/bench/city-N-seedS, generated)")
    ap.add_argument("--template", help="copy this database (e.g. registry_city_full, the loaded full city) "
                                       "instead of loading a generated city")
    ap.add_argument("--keep-db", action="store_true")


@contextmanager
def bench_city(args, name: str) -> Iterator[tuple[str, Engine, int]]:
    """(url, engine, active addresses) of a database of the bench's own holding a city: a copy of
    --template, or a new database with the reference and the generated city loaded (untimed).
    Dropped at the end unless --keep-db."""
    t = time.perf_counter()
    if args.template:
        url = copy_database(name, args.template)
    else:
        from loaders.city import load_city
        from loaders.reference import load_reference

        city = city_dir(args)
        url = make_database(name)
    eng = create_engine(url)
    try:
        if not args.template:
            with eng.begin() as conn:
                load_reference(conn, actor="bench")
            load_city(eng, city, actor="bench")
        with eng.connect() as conn:
            conn.execute(text("ANALYZE"))
            n = conn.execute(text("SELECT count(*) FROM addresses WHERE status = 'active'")).scalar_one()
        how = f"copied from {args.template}" if args.template else "loaded"
        print(f"city {how}: {n:,} addresses in {time.perf_counter() - t:.0f} s (untimed)", flush=True)
        yield url, eng, n
    finally:
        eng.dispose()
        if args.keep_db:
            print(f"kept database: {url}")
        else:
            drop_database(url)


def drop_database(url: str) -> None:
    base = make_url(url)
    admin = create_engine(base.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.exec_driver_sql(f'DROP DATABASE IF EXISTS "{base.database}" WITH (FORCE)')
    admin.dispose()


def prerequisites(url: str, city: Path) -> None:
    from loaders.reference import load_reference
    from loaders.run import FileOptions, load_entities_file
    from registry.loading.entities import EntityOptions

    eng = create_engine(url)
    t = time.perf_counter()
    with eng.begin() as conn:
        load_reference(conn, actor="bench")
    for kind, layer in (("divisions", "townships"), ("divisions", "villages"), ("place-names", "place_names")):
        with eng.begin() as conn:
            load_entities_file(conn, city / "city.gpkg", kind, FileOptions(layer=layer),
                               EntityOptions(source=f"bench:{layer}", actor="bench", code_authority="nbs2023"))
    eng.dispose()
    print(f"prerequisites (divisions, polygons, place names): {time.perf_counter() - t:.1f} s (untimed)", flush=True)


def run_loader(url: str, path: Path, *extra: str) -> tuple[float, float, str]:
    """(wall seconds, peak RSS MB, output) of `registry load addresses` in a subprocess."""
    env = dict(os.environ, REGISTRY_DATABASE_URL=url, REGISTRY_LOG_LEVEL="INFO")
    rejects = path.with_name(f"{path.stem}.bench-rejects.csv")
    cmd = [sys.executable, "-m", "loaders.cli", "load", "addresses", str(path), "--crs", "EPSG:4490",
           "--code-authority", "nbs2023", "--reject-file", str(rejects), *extra]
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    peak = [0]
    watcher = threading.Thread(target=_watch_hwm, args=(proc, peak), daemon=True)
    watcher.start()
    out = proc.stdout.read()
    proc.wait()
    wall = time.perf_counter() - t
    watcher.join()
    rejects.unlink(missing_ok=True)
    if proc.returncode != 0:
        raise SystemExit(f"loader failed:\n{out}")
    return wall, peak[0] / 1024, out


def _watch_hwm(proc: subprocess.Popen, peak: list) -> None:
    """The loader's own peak RSS: VmHWM of its process, sampled until it exits. (ru_maxrss of a
    child would include this process's size at fork time.)"""
    status = Path(f"/proc/{proc.pid}/status")
    while proc.poll() is None:
        try:
            for line in status.read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peak[0] = max(peak[0], int(line.split()[1]))
        except (OSError, ValueError):
            pass
        time.sleep(0.05)


def _details(out: str) -> None:
    for line in out.splitlines():
        if "inserted" in line:
            print("   " + line.strip())
        elif "timings:" in line:
            print("   " + line.split("timings:", 1)[1].strip())


def correction_file(url: str, out: Path, n: int = 10_000, seed: int = 7) -> Path:
    """9/10 existing doors moved by a few metres, 1/10 new doors on existing streets."""
    eng = create_engine(url)
    with eng.connect() as conn:
        ids = [r[0] for r in conn.execute(text(
            "SELECT id FROM addresses ORDER BY md5(id::text || :seed) LIMIT :n"), {"seed": str(seed), "n": int(n * 0.9)})]
        rows = conn.execute(text("""
            SELECT d.nbs_code, st.name AS street, CASE WHEN c.category = 'compound' THEN c.name END AS compound,
                   CASE WHEN c.category = 'natural_village' THEN c.name END AS natural_village, a.group_no,
                   a.number, a.building, a.unit, a.room, ST_X(a.geom) AS lon, ST_Y(a.geom) AS lat
            FROM addresses a JOIN divisions d ON d.id = a.division_id
            LEFT JOIN place_names st ON st.id = a.street_id LEFT JOIN place_names c ON c.id = a.compound_id
            WHERE a.id = ANY(:ids)"""), {"ids": ids}).all()
        new = conn.execute(text("""
            SELECT d.nbs_code, st.name AS street, ST_X(a.geom) AS lon, ST_Y(a.geom) AS lat
            FROM addresses a JOIN divisions d ON d.id = a.division_id JOIN place_names st ON st.id = a.street_id
            WHERE a.compound_id IS NULL ORDER BY a.id LIMIT :n"""), {"n": n - len(rows)}).all()
    eng.dispose()
    with open(out, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(["division_code", "street", "compound", "natural_village", "group", "number", "building", "unit",
                    "room", "lon", "lat"])
        for r in rows:  # moved by ~2 m
            w.writerow([r.nbs_code, r.street or "", r.compound or "", r.natural_village or "", r.group_no, r.number,
                        r.building, r.unit, r.room, f"{r.lon + 0.00002:.7f}", f"{r.lat:.7f}"])
        for i, r in enumerate(new):  # new doors: numbers far above the generated ones
            w.writerow([r.nbs_code, r.street, "", "", "", f"{9000 + i}号", "", "", "", f"{r.lon:.7f}",
                        f"{r.lat + 0.00001:.7f}"])
    return out


def baseline(url: str, work: Path) -> tuple[float, float, int]:
    """PostgreSQL's own COPY of the loaded rows into a bare table, then the same indexes."""
    import psycopg

    dump = work / "baseline.copy"
    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(dsn) as conn:
        with conn.cursor() as cur, open(dump, "wb") as f:
            with cur.copy("COPY addresses TO STDOUT") as copy:
                for block in copy:
                    f.write(block)
        indexes = conn.execute("""
            SELECT pg_get_indexdef(x.indexrelid) FROM pg_index x WHERE x.indrelid = 'addresses'::regclass""").fetchall()
        conn.execute("DROP TABLE IF EXISTS bench_bare")
        conn.execute("CREATE TABLE bench_bare (LIKE addresses)")
        conn.commit()
        t = time.perf_counter()
        with conn.cursor() as cur, open(dump, "rb") as f:
            with cur.copy("COPY bench_bare FROM STDIN") as copy:
                while block := f.read(1 << 20):
                    copy.write(block)
        conn.commit()
        copy_s = time.perf_counter() - t
        t = time.perf_counter()
        for (definition,) in indexes:
            d = definition.replace(" ON public.addresses ", " ON public.bench_bare ").replace(" ON addresses ",
                                                                                              " ON bench_bare ")
            name = d.split(" INDEX ", 1)[1].split(" ON ", 1)[0]
            conn.execute(d.replace(f" {name} ON ", f" bench_{name} ON ", 1))
        conn.commit()
        index_s = time.perf_counter() - t
        conn.execute("DROP TABLE bench_bare")
        conn.commit()
    dump.unlink()
    return copy_s, index_s, len(indexes)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--addresses", type=int, default=200_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--city", help="an already generated city folder (skips generation)")
    ap.add_argument("--keep-db", action="store_true")
    args = ap.parse_args()

    city = city_dir(args)
    csv_path = city / "addresses.csv"
    rows = json.loads((city / "manifest.json").read_text())["files"]["addresses.csv"]["rows"]
    url = make_database(f"bench_load_{os.getpid()}")
    work = ROOT / "var" / "bench"
    work.mkdir(parents=True, exist_ok=True)
    try:
        prerequisites(url, city)
        first, rss1, out = run_loader(url, csv_path)
        print(f"first load    {rows:>10,} rows  {first:7.1f} s  {rows / first:9,.0f} rows/s  peak RSS {rss1:6.0f} MB",
              flush=True)
        _details(out)
        reload_s, rss2, out = run_loader(url, csv_path)
        print(f"re-load       {rows:>10,} rows  {reload_s:7.1f} s  {rows / reload_s:9,.0f} rows/s  peak RSS {rss2:6.0f} MB",
              flush=True)
        _details(out)
        corr = correction_file(url, work / f"correction-{os.getpid()}.csv")
        corr_rows = sum(1 for _ in open(corr, encoding="utf-8")) - 1
        corr_s, rss3, out = run_loader(url, corr)
        print(f"correction    {corr_rows:>10,} rows  {corr_s:7.1f} s  peak RSS {rss3:6.0f} MB", flush=True)
        _details(out)
        corr.unlink()
        copy_s, index_s, n_idx = baseline(url, work)
        base = copy_s + index_s
        ratio = first / base
        print(f"baseline      COPY {copy_s:.1f} s + {n_idx} indexes {index_s:.1f} s = {base:.1f} s", flush=True)
        print(f"ratio         first load / baseline = {ratio:.2f}")
        print(f"peak RSS      {max(rss1, rss2, rss3):.0f} MB (loader process)")
        if rows >= 1_600_000:
            checks = [("first load", first, TARGETS["first"]), ("re-load", reload_s, TARGETS["reload"]),
                      ("correction", corr_s, TARGETS["correction"]), ("ratio", ratio, TARGETS["ratio"]),
                      ("peak RSS MB", max(rss1, rss2, rss3), TARGETS["rss_mb"])]
            for name, value, target in checks:
                print(f"  {'ok  ' if value <= target else 'OVER'} {name}: {value:.2f} (target ≤ {target})")
        print(f"machine load average at the end: {os.getloadavg()[0]:.1f} (2 cores: above 2 means contention)")
    finally:
        if args.keep_db:
            print(f"kept database: {url}")
        else:
            drop_database(url)


if __name__ == "__main__":
    main()
