"""Division adjustments at scale: how long re-parenting N addresses takes.

    .venv/bin/python bench/bench_adjustments.py                      # 100,000 addresses
    .venv/bin/python bench/bench_adjustments.py --addresses 1600000  # the whole city in one township

In a database of its own (created on the managed cluster, or on REGISTRY_DATABASE_URL's server,
dropped at the end unless --keep-db), with the real divisions loaded, it puts N addresses (street
doors and rural doors) in the villages of 和孚镇 and 千金镇 (untimed), then times, each in its own
transaction: a rename of 和孚镇 (every address under it gets its text re-derived), a recode of it
(every address's code re-derived, the old ones kept in address_codes), a transfer of one village
to 千金镇, `move_addresses` of 10,000 addresses to another village, and a merge of the two
townships. It prints the seconds and the rows changed per second.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from sqlalchemy import create_engine, text  # noqa: E402

from bench_load import drop_database, make_database  # noqa: E402


def fill(engine, n: int) -> None:
    from loaders.reference import load_reference
    from registry.text import compose_address

    with engine.begin() as conn:
        load_reference(conn, actor="bench")
        villages = conn.execute(text("""
            SELECT v.id, v.name, v.nbs_code, t.id AS township_id, t.name AS township FROM divisions v
            JOIN divisions t ON t.id = v.parent_id WHERE t.name IN ('和孚镇', '千金镇') ORDER BY v.nbs_code""")).all()
        streets = {}
        for t in {(v.township_id, v.township) for v in villages}:
            streets[t[0]] = conn.execute(text("""
                INSERT INTO place_names (category, name, division_id, county_id)
                SELECT 'road', :n, :d, parent_id FROM divisions WHERE id = :d RETURNING id"""),
                {"n": f"{t[1][:2]}大道", "d": t[0]}).scalar_one()
        per = n // len(villages) + 1
        for vi, v in enumerate(villages):
            street_text = compose_address(county="南浔区", township=v.township, street=f"{v.township[:2]}大道", number="1号")
            rural = compose_address(county="南浔区", township=v.township, village=v.name, group="1组", number="1号")
            # numbers distinct across the villages, so that doors moved between them never collide
            conn.execute(text("""
                INSERT INTO addresses (division_id, street_id, group_no, number, number_main, full_text, code,
                                       local_seq, geom)
                SELECT :d, CASE WHEN g % 2 = 0 THEN :s END, CASE WHEN g % 2 = 1 THEN (g % 9 + 1) || '组' ELSE '' END,
                       (g + :off) || '号', g + :off,
                       CASE WHEN g % 2 = 0 THEN replace(:st, '1号', (g + :off) || '号')
                            ELSE replace(replace(:ru, '1组', (g % 9 + 1) || '组'), '1号', (g + :off) || '号') END,
                       :c || lpad(g::text, 8, '0'), g, ST_SetSRID(ST_MakePoint(120.3, 30.8), 4490)
                FROM generate_series(1, :per) g"""),
                {"d": v.id, "s": streets[v.township_id], "st": street_text, "ru": rural, "c": v.nbs_code, "per": per,
                 "off": vi * 1_000_000})
        conn.exec_driver_sql("ANALYZE addresses")
    print(f"  {per * len(villages):,} addresses in {len(villages)} villages of 和孚镇 and 千金镇", flush=True)


def timed(engine, label: str, fn) -> None:
    t = time.perf_counter()
    with engine.begin() as conn:
        rows = fn(conn)
    s = time.perf_counter() - t
    print(f"  {label:<44} {s:7.2f} s  {rows:>9,} rows  {rows / s if s else 0:>10,.0f} rows/s", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--addresses", type=int, default=100_000)
    ap.add_argument("--keep-db", action="store_true")
    args = ap.parse_args()
    from registry import adjustments as adj
    from registry.reparenting import move_addresses
    from registry.changes import open_change_set

    url = make_database(f"registry_bench_adjust_{os.getpid()}")
    engine = create_engine(url)
    try:
        fill(engine, args.addresses)
        when = adj.Dating(approval_ref="浙政函〔2026〕1号", effective=date.today())

        def township_code(conn, name):
            return conn.execute(text("SELECT nbs_code FROM divisions WHERE name = :n AND level = 'township'"),
                                {"n": name}).scalar_one()

        def under(conn, name):
            return conn.execute(text("""SELECT count(*) FROM addresses a JOIN divisions v ON v.id = a.division_id
                                        JOIN divisions t ON t.id = v.parent_id WHERE t.name = :n"""),
                                {"n": name}).scalar_one()

        timed(engine, "rename 和孚镇 → 和孚街道 (texts re-derived)", lambda c: adj.rename(
            c, township_code(c, "和孚镇"), name="和孚街道", dating=when, actor="bench",
            authority="nbs2023").counts["addresses"])
        timed(engine, "recode 和孚街道 → 330503009 (codes re-derived)", lambda c: adj.recode(
            c, township_code(c, "和孚街道"), new_code="330503009", dating=when, actor="bench",
            authority="nbs2023").counts["addresses"])

        def transfer(c):
            v = c.execute(text("SELECT v.nbs_code FROM divisions v JOIN divisions t ON t.id = v.parent_id "
                               "WHERE t.name = '和孚街道' ORDER BY v.nbs_code LIMIT 1")).scalar_one()
            return adj.transfer(c, [v], to=township_code(c, "千金镇"), dating=when, actor="bench",
                                authority="nbs2023").counts["addresses_rederived"]

        timed(engine, "transfer one village to 千金镇", transfer)

        def moves(c):
            target = c.execute(text("SELECT v.id FROM divisions v JOIN divisions t ON t.id = v.parent_id "
                                    "WHERE t.name = '千金镇' ORDER BY v.nbs_code DESC LIMIT 1")).scalar_one()
            ids = c.execute(text("SELECT a.id FROM addresses a JOIN divisions v ON v.id = a.division_id JOIN "
                                 "divisions t ON t.id = v.parent_id WHERE t.name = '和孚街道' AND a.street_id IS NOT NULL "
                                 "ORDER BY a.id "
                                 "LIMIT 10000")).scalars().all()
            cs = open_change_set(c, kind="edit", author="bench")
            return move_addresses(c, {i: target for i in ids}, change_set_id=cs)

        timed(engine, "move_addresses: 10,000 street doors elsewhere", moves)
        with engine.connect() as c:
            n = under(c, "和孚街道") + under(c, "千金镇")
        timed(engine, f"merge 和孚街道 into 千金镇 ({n:,} addresses)", lambda c: adj.merge(
            c, [township_code(c, "和孚街道")], into=township_code(c, "千金镇"), dating=when, actor="bench",
            authority="nbs2023").counts["addresses_rederived"])
    finally:
        engine.dispose()
        if not args.keep_db:
            drop_database(url)


if __name__ == "__main__":
    main()
