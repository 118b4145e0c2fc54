"""The free-text search's per-query cost (issue 11), per query class, before and after, in one run.

    .venv/bin/python bench/bench_search_cost.py                          # the full city, HEAD vs the work tree
    .venv/bin/python bench/bench_search_cost.py --baseline 34a90c5       # an older engine as the baseline
    .venv/bin/python bench/bench_search_cost.py --per-class 60 --profile unknown_street

It reads a database where `registry load city` ran (default: registry_city_full on the managed
cluster, read only) through its published gazetteer generation (memory-mapped as the API workers
map it; loaded from PostgreSQL when there is none). The query set is bench/search_queries.py's
fixed error model (every class, `ambiguous` on its own row) plus `serving`: what
bench/bench_serving.py sends (a door's text without province and city, half of them without the
county too). The set is generated once; each engine (the baseline revision exported with `git
archive`, and the work tree) answers it in its own subprocess, one after the other, twice (the
second pass is timed). Printed per class: count, mean, p50, p99 ms before and after, recall@1 and
the share of confident wrong answers before and after, and how many first answers changed.
Nothing here is run by the tests.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FULL_CITY = "postgresql+psycopg://registry@127.0.0.1:55432/registry_city_full"


from bench_search import log, pct  # noqa: E402 (bench/ is on sys.path when run as a script)


def open_gazetteer(url: str, directory: str | None = None):
    """The published generation of the database (read only), or a load from PostgreSQL."""
    from sqlalchemy import create_engine

    from registry.search.generation import SharedGazetteers, attach
    from registry.settings import Settings

    engine = create_engine(url)
    t0 = time.perf_counter()
    path = SharedGazetteers(engine, Path(directory or Settings().gazetteer_dir)).current()
    gaz = None
    if path is not None:
        try:
            gaz = attach(path, engine)
        except Exception as exc:  # noqa: BLE001 - any unusable generation: load instead
            log(f"generation {path} unusable ({exc}): loading from PostgreSQL")
    if gaz is None:
        from registry.search.loading import load_gazetteer

        with engine.connect() as c:
            gaz = load_gazetteer(c)
            c.rollback()
    import gc

    gc.collect()
    gc.freeze()
    log(f"gazetteer {'attached' if path else 'loaded'} in {time.perf_counter() - t0:.1f} s")
    return gaz, engine


def serving_queries(gaz, n: int, seed: int = 11) -> list[dict]:
    """bench_serving's search paths: a door's text less 浙江省湖州市, half of them less the county."""
    import numpy as np

    rnd = random.Random(seed)
    s = gaz.addresses
    alive = np.flatnonzero(s.alive)
    rows = np.random.default_rng(seed).choice(alive, size=min(n, len(alive)), replace=False)
    out = []
    for i in rows.tolist():
        rec = s.record(i)
        q = rec["full_text"].removeprefix("浙江省").removeprefix("湖州市")
        cut = max(q.find("区", 0, 4), q.find("县", 0, 4))
        if rnd.random() < 0.5 and cut > 0:
            q = q[cut + 1:]
        out.append({"cls": "serving", "q": q, "kind": "address", "id": int(rec["id"])})
    return out


def make_queries(gaz, per_class: int, seed: int) -> list[dict]:
    sys.path.insert(0, str(ROOT / "bench"))
    from search_queries import Generator

    qs = [{"cls": q.cls, "q": q.q, "kind": q.kind, "id": q.id} for q in Generator(gaz, seed=seed).generate(per_class)]
    return qs + serving_queries(gaz, per_class)


# --- one engine, in its own process ---------------------------------------------------------------
def worker(spec_path: str, out_path: str) -> None:
    # the engine under test is the one in the working directory (run_engine: the exported
    # baseline or the work tree); importing bench_search put this checkout first on sys.path
    sys.path.insert(0, os.getcwd())
    spec = json.loads(Path(spec_path).read_text())
    gaz, engine = open_gazetteer(spec["url"], spec["gazetteer_dir"])
    import registry
    from registry.search import search

    if not Path(registry.__file__).resolve().is_relative_to(Path.cwd().resolve()):
        raise SystemExit(f"the engine came from {registry.__file__}, not from {Path.cwd()}")
    queries = spec["queries"]
    # CPU time of this thread: the machine is shared, and wall time would measure the neighbours
    clock = time.perf_counter_ns if spec["wall"] else time.thread_time_ns
    rows = []
    for rep in range(2):  # the first pass warms the caches (pinyin, the label codes …)
        times = []
        for bq in queries:
            t0 = clock()
            body = search(gaz, bq["q"], limit=5)  # what the route and the front call
            times.append((clock() - t0) / 1e6)
            if rep:
                res = body["results"]
                top = [f"{r['kind']}:{r['id']}" for r in res]
                rows.append({"hit1": bool(top) and top[0] == f"{bq['kind']}:{bq['id']}",
                             "confident": bool(res) and not res[0]["low_confidence"], "top": top,
                             "score": res[0]["score"] if res else None})
    # the whole answer, for a byte comparison
    bodies = [json.dumps(search(gaz, bq["q"], limit=5), ensure_ascii=False, sort_keys=True)
              for bq in queries[:: spec["body_every"]]]
    profile = None
    if spec.get("profile"):
        import cProfile
        import io
        import pstats

        pr = cProfile.Profile()
        chosen = [bq for bq in queries if bq["cls"] in spec["profile"]]
        pr.enable()
        for bq in chosen:
            search(gaz, bq["q"], limit=5)
        pr.disable()
        buf = io.StringIO()
        pstats.Stats(pr, stream=buf).sort_stats("cumulative").print_stats(30)
        pstats.Stats(pr, stream=buf).sort_stats("tottime").print_stats(30)
        profile = buf.getvalue()
    Path(out_path).write_text(json.dumps({"rows": rows, "times": times, "bodies": bodies, "profile": profile}))
    engine.dispose()


def run_engine(src: Path, spec_path: Path, label: str) -> dict:
    out = spec_path.with_name(f"out-{label}.json")
    env = dict(os.environ, PYTHONPATH=str(src), REGISTRY_LOG_LEVEL="WARNING")
    t0 = time.perf_counter()
    subprocess.run([sys.executable, str(Path(__file__).resolve()), "--_worker", str(spec_path), str(out)],
                   env=env, check=True, cwd=src)
    log(f"{label}: {time.perf_counter() - t0:.0f} s")
    return json.loads(out.read_text())


def export(rev: str, into: Path) -> Path:
    """The registry package (and the data it reads) as of a revision, for the baseline engine."""
    dest = into / "base"
    dest.mkdir()
    archive = subprocess.run(["git", "archive", rev, "registry", "data/reference"], cwd=ROOT, capture_output=True,
                             check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    return dest


# --- the report -----------------------------------------------------------------------------------
def report(queries: list[dict], before: dict, after: dict, base_label: str, wall: bool) -> None:
    classes = list(dict.fromkeys(q["cls"] for q in queries))
    by: dict[str, list[int]] = defaultdict(list)
    for k, q in enumerate(queries):
        by[q["cls"]].append(k)
    by["all"] = list(range(len(queries)))
    print()
    print(f"search cost per class — {len(queries):,} queries; before = {base_label}, after = work tree "
          f"(ms per search(q, limit=5) in process, "
          f"{'wall' if wall else 'CPU'} time, the second of two passes)")
    head = (f"{'class':<16} {'n':>5} | {'mean':>6} {'p50':>6} {'p99':>7} | {'mean':>6} {'p50':>6} {'p99':>7} | "
            f"{'rec@1':>6} {'rec@1':>6} | {'c.wrong':>7} {'c.wrong':>7} | {'changed':>7}")
    print(f"{'':<16} {'':>5} | {'before':^21} | {'after':^21} | {'before/after':^13} | {'before/after':^15} |")
    print(head)
    for cls in classes + ["all"]:
        idx = by[cls]
        cells = []
        for res in (before, after):
            t = [res["times"][k] for k in idx]
            cells.append(f"{sum(t) / len(t):>6.2f} {pct(t, .5):>6.2f} {pct(t, .99):>7.2f}")
        r1 = [sum(res["rows"][k]["hit1"] for k in idx) / len(idx) for res in (before, after)]
        cw = [sum(res["rows"][k]["confident"] and not res["rows"][k]["hit1"] for k in idx) / len(idx)
              for res in (before, after)]
        changed = sum(before["rows"][k]["top"][:1] != after["rows"][k]["top"][:1] for k in idx)
        print(f"{cls:<16} {len(idx):>5} | {cells[0]} | {cells[1]} | {r1[0]:>6.3f} {r1[1]:>6.3f} | "
              f"{cw[0]:>7.2%} {cw[1]:>7.2%} | {changed:>7}")
    same = sum(a == b for a, b in zip(before["bodies"], after["bodies"]))
    print(f"answers of search(limit=5) byte-identical: {same} of {len(after['bodies'])} (every "
          f"{max(1, len(queries) // max(1, len(after['bodies'])))}th query)")
    tb, ta = sum(before["times"]), sum(after["times"])
    print(f"total engine time: before {tb / 1000:.2f} s, after {ta / 1000:.2f} s ({tb / max(ta, 1e-9):.2f}× faster)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--database-url", default=FULL_CITY)
    ap.add_argument("--baseline", default="HEAD", help="the revision whose engine is the baseline (git archive)")
    ap.add_argument("--per-class", type=int, default=200)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--body-every", type=int, default=3, help="compare the whole answer of every Nth query")
    ap.add_argument("--profile", nargs="*", default=[], help="classes to profile (cProfile) in the work tree")
    ap.add_argument("--after-only", action="store_true", help="skip the baseline (a quick look while developing)")
    ap.add_argument("--show-changed", type=int, default=0, help="print this many queries whose answer changed")
    ap.add_argument("--wall", action="store_true", help="wall-clock time instead of the thread's CPU time")
    ap.add_argument("--_worker", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args._worker:
        worker(*args._worker)
        return
    sys.path.insert(0, str(ROOT))
    gaz, engine = open_gazetteer(args.database_url)
    t0 = time.perf_counter()
    # the set depends on the data and the generator only: kept for the next run
    cache = ROOT / "var" / "bench" / f"search_cost_queries-{gaz.snapshot}-{args.per_class}-{args.seed}.json"
    cache = cache.with_name(cache.name.replace("/", "_").replace(":", "_"))
    if cache.exists():
        queries = json.loads(cache.read_text())
    else:
        queries = make_queries(gaz, args.per_class, args.seed)
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_text(json.dumps(queries, ensure_ascii=False))
    log(f"{len(queries):,} queries in {time.perf_counter() - t0:.0f} s")
    from registry.search.generation import release

    release(gaz)
    engine.dispose()
    del gaz
    with tempfile.TemporaryDirectory(prefix="bench_search_cost-") as tmp:
        spec = Path(tmp) / "spec.json"
        from registry.settings import Settings

        spec.write_text(json.dumps({"url": args.database_url, "gazetteer_dir": str(Settings().gazetteer_dir),
                                    "queries": queries, "body_every": args.body_every, "wall": args.wall,
                                    "profile": args.profile}, ensure_ascii=False))
        after = run_engine(ROOT, spec, "after")
        before = after if args.after_only else run_engine(export(args.baseline, Path(tmp)), spec, "before")
    if after.get("profile"):
        print(after["profile"])
    report(queries, before, after, "(none)" if args.after_only else args.baseline, args.wall)
    if args.show_changed:
        shown = 0
        for k, q in enumerate(queries):
            b, a = before["rows"][k], after["rows"][k]
            if b["top"][:1] != a["top"][:1] and shown < args.show_changed:
                shown += 1
                print(f"  changed [{q['cls']}] {q['q']!r}: {b['top'][:1]} {b['score']} -> {a['top'][:1]} {a['score']}"
                      f" (want {q['kind']}:{q['id']})")


if __name__ == "__main__":
    main()
