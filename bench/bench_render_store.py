"""What a persistent render store of the public scan holds and saves (issue 11).

    .venv/bin/python bench/bench_render_store.py                  # the full city (registry_city_full)
    .venv/bin/python bench/bench_render_store.py --plates 5000 --database-url URL
    .venv/bin/python bench/bench_render_store.py --scan-store var/bench/scan-store-full   # and the real store

The scan rows of bench/bench_serving.py that miss the render cache stay far below their goals (60 % /
50 % of a trivial endpoint) because each miss is composed: the row completed from the reference data,
the nearest facilities, the navigation links, the JSON or the page. The one design that skips that
work is a store of every plate's finished answer outside the workers. This bench gives what such a
store would weigh and what a miss served from it could cost, so that the choice is made on figures:

- through the whole app in this process (its lifespan, read path and request log as `registry
  serve` runs them, 32 requests at once), the CPU of a miss (the event loop's thread only: the app's
  background threads — the search gazetteer's load, the health checks — are no request's work) and of a hit of the render cache, JSON
  and HTML, over the same plates (random live plates, each scanned once as a miss, then once as a
  hit, after a thousand others warmed the per-name caches), and of the plate's own read;
- the answers' sizes raw, deflated (zlib 9), and packed as the scan store packs them (zstd with a
  dictionary trained on the first tenth of the answers, the rest measured), the time to unpack one,
  and the store's size for every live plate of the database at that rate.

A miss served from such a store would cost about a hit plus the plate's read (which a miss pays
already: its row's version decides whether the stored answer is still today's) plus one unpack.
Building it costs a composed miss of each answer for every live plate, printed as CPU minutes.

With `--scan-store DIR` (a store built by `registry plates scan-store build` for this database;
registry/serving/store.py) the same plates are scanned again through an app serving it: its misses'
CPU beside the composed ones, how many answers it served, and whether every answer is the same
bytes. Nothing is written; nothing here is run by the tests.
"""
from __future__ import annotations

import argparse
import asyncio
import logging
import os
import random
import sys
import time
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench_serving import HTML, asgi_scope, samples  # noqa: E402 (bench/ is on sys.path when run as a script)

FULL_CITY = "postgresql+psycopg://registry@127.0.0.1:55432/registry_city_full"
DICTIONARY_SHARE = 0.10  # the answers the dictionary is made of (not measured)
IN_FLIGHT = 32  # requests at once, as bench_serving's 32 connections
WARM_PLATES = 1000  # scanned first (not measured): the per-chain caches and the facility grid's cells filled


async def _answers(app, paths: list[str], accept: str) -> tuple[list[bytes], float]:
    """Each path asked once through the app, IN_FLIGHT at a time (as wrk's connections keep a worker
    busy: the misses of one turn of the event loop share their read): the answers' bodies in the
    paths' order and the mean CPU µs a request."""
    bodies: list[bytes] = [b""] * len(paths)

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def one(i: int, path: str) -> None:
        async def send(message):
            if message["type"] == "http.response.start" and message["status"] != 200:
                raise SystemExit(f"a scan answered {message['status']}")
            if message["type"] == "http.response.body":
                bodies[i] = message["body"]

        await app(asgi_scope(path, accept), receive, send)

    t0 = time.thread_time()
    for start in range(0, len(paths), IN_FLIGHT):
        await asyncio.gather(*(one(i, paths[i]) for i in range(start, min(start + IN_FLIGHT, len(paths)))))
    return bodies, (time.thread_time() - t0) / len(paths) * 1e6


async def _reads(read_path, paths: list[str]) -> float:
    """The mean CPU µs of the plate's own read (the slim statement, IN_FLIGHT plates a turn, as the
    misses share it), which a miss served from a store would still pay: its row's version decides
    whether the stored answer is today's."""
    from registry.doorplates.tokens import parse

    ids = [parse(p.removeprefix("/p/")).plate_id for p in paths]
    t0 = time.thread_time()
    for start in range(0, len(ids), IN_FLIGHT):
        await asyncio.gather(*(read_path.plate_reads.row(i) for i in ids[start:start + IN_FLIGHT]))
    return (time.thread_time() - t0) / len(ids) * 1e6


async def _settled(reference) -> None:
    """Until the reference data's loads and warm-ups are over (~1 s of CPU at the full city, done once
    by a worker at start): otherwise the first measured pass pays them, ~250 µs a request."""
    while reference.loading:
        await asyncio.sleep(0.05)


async def _measure(url: str, paths: list[str], store_dir: Path | None = None) -> dict:
    from api.app import create_app
    from registry.log_setup import StderrHandler
    from registry.settings import get_settings

    os.environ["REGISTRY_DATABASE_URL"] = url
    settings = get_settings().model_copy(update={"database_url": url, "rate_limit_public_per_minute": 10**9,
                                                 "scan_cache_entries": 2 * len(paths) + 100,
                                                 "scan_store_dir": store_dir})
    app = create_app(settings)
    access = logging.getLogger("registry.access")  # the request log written, as `registry serve` does
    handler = StderrHandler(open(os.devnull, "w"), hold_seconds=settings.log_hold_seconds)
    access.addHandler(handler)
    access.setLevel(logging.INFO)
    out: dict = {}
    try:
        async with app.router.lifespan_context(app):
            # the reference data loaded and its per-name caches warm, as in a worker that has served a while
            for accept in ("application/json", HTML):
                await _answers(app, paths[:WARM_PLATES], accept)
            await _settled(app.state.read_path.reference)
            rest = paths[WARM_PLATES:]
            for name, accept in (("JSON", "application/json"), ("HTML", HTML)):
                bodies, miss = await _answers(app, rest, accept)
                _, hit = await _answers(app, rest, accept)
                out[name] = {"bodies": bodies, "miss_us": miss, "hit_us": hit}
            out["read_us"] = await _reads(app.state.read_path, rest)
            store = app.state.read_path.store
            if store is not None:
                out["store"] = {"served": store.served, "stale": store.stale, "absent": store.absent}
    finally:
        access.removeHandler(handler)
        handler.close()
    return out


def _deflated(bodies: list[bytes]) -> dict:
    """The answers' sizes packed as the scan store packs them (registry/serving/store.py: a zstd
    dictionary trained on the first tenth, the rest measured), beside plain zlib 9."""
    from registry.serving.store import Packer, Unpacker, train_dictionary

    cut = max(1, int(len(bodies) * DICTIONARY_SHARE))
    dictionary = train_dictionary(bodies[:cut])
    measured = bodies[cut:]
    pack, unpack = Packer(dictionary), Unpacker(dictionary)
    packed = [pack(b) for b in measured]
    t0 = time.thread_time()
    for p in packed:
        unpack(p)
    inflate = (time.thread_time() - t0) / len(packed) * 1e6
    n = len(measured)
    return {"raw": sum(map(len, measured)) / n, "zlib": sum(len(zlib.compress(b, 9)) for b in measured) / n,
            "dict": sum(map(len, packed)) / n, "inflate_us": inflate, "measured": n}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--database-url", default=FULL_CITY, help="a registry database with plates issued (read only)")
    ap.add_argument("--plates", type=int, default=5000,
                    help=f"random live plates: {WARM_PLATES:,} warm the caches, each of the rest is scanned as a miss "
                         "then a hit")
    ap.add_argument("--scan-store", type=Path, metavar="DIR",
                    help="a built scan store (registry plates scan-store build): the same plates are then also "
                         "scanned through an app serving it, and its misses measured")
    args = ap.parse_args()
    if args.plates < WARM_PLATES + 200:
        raise SystemExit(f"--plates: at least {WARM_PLATES + 200:,} ({WARM_PLATES:,} warm the caches; a tenth of "
                         "the rest makes the dictionary)")
    from sqlalchemy import create_engine, text

    paths = samples(args.database_url, 10, plates=args.plates)["tokens"]
    random.Random(5).shuffle(paths)
    engine = create_engine(args.database_url)
    with engine.connect() as conn:
        live = conn.execute(text("SELECT count(*) FROM doorplates WHERE status IN ('issued', 'active')")).scalar_one()
    engine.dispose()
    measured = asyncio.run(_measure(args.database_url, paths))
    served = asyncio.run(_measure(args.database_url, paths, args.scan_store)) if args.scan_store else None
    print(f"{len(paths) - WARM_PLATES:,} random live plates of {live:,}; CPU µs a request through the app in process "
          f"(lifespan, read path, request log), {IN_FLIGHT} at once; sizes in bytes an answer")
    print(f"{'answer':6} {'miss µs':>8} {'hit µs':>7} {'raw':>6} {'zlib':>6} {'dict':>6} {'unpack µs':>10} "
          f"{'store for every live plate':>27}")
    total = 0.0
    read = measured.pop("read_us")
    for name, m in measured.items():
        d = _deflated(m["bodies"])
        store = d["dict"] * live / 1e9
        total += store
        m["from_store_us"] = m["hit_us"] + read + d["inflate_us"]
        print(f"{name:6} {m['miss_us']:8.0f} {m['hit_us']:7.0f} {d['raw']:6.0f} {d['zlib']:6.0f} {d['dict']:6.0f} "
              f"{d['inflate_us']:10.1f} {store:24.2f} GB")
    print(f"both answers: {total:.2f} GB for {live:,} plates (zstd with a dictionary trained on a tenth of them, as "
          f"the scan store packs them; the reported=true variant of the page not counted)")
    print(f"the plate's own read (slim statement, {IN_FLIGHT} plates a turn): {read:.0f} µs CPU a plate")
    build = sum(m["miss_us"] for m in measured.values()) * live / 60e6
    print(f"building it: a composed JSON and HTML answer for each of {live:,} plates, {build:.0f} CPU minutes")
    for name, m in measured.items():
        print(f"{name} miss served from such a store ≈ hit + read + unpack = {m['from_store_us']:.0f} µs against "
              f"{m['miss_us']:.0f} µs composed (×{m['miss_us'] / m['from_store_us']:.1f} fewer CPU µs a miss)")
    if served is not None:
        counts = served.pop("store", None) or {}
        print(f"through an app serving the store {args.scan_store} (the same plates; its answers served "
              f"{counts.get('served', 0):,}, stale {counts.get('stale', 0):,}, absent {counts.get('absent', 0):,}):")
        for name in ("JSON", "HTML"):
            m, s = measured[name], served[name]
            same = sum(a == b for a, b in zip(m["bodies"], s["bodies"]))
            print(f"{name} miss {s['miss_us']:.0f} µs against {m['miss_us']:.0f} µs composed "
                  f"(×{m['miss_us'] / s['miss_us']:.1f}); hit {s['hit_us']:.0f} µs; {same:,} of {len(m['bodies']):,} "
                  f"answers byte-identical to the composed ones")


if __name__ == "__main__":
    main()
