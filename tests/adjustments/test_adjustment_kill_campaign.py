"""`registry adjust merge` (和孚镇 into 千金镇: 25 villages moved and re-coded, their addresses
re-derived with their old codes kept resolving, the township abolished with its successor)
killed with SIGKILL at 20 checkpoints along its progress (tests/faults_campaign.py): the registry
is each time exactly as before or as after, and the re-run completes — from the state before it
merges, from the state after it is refused (和孚镇 is abolished) and changes nothing."""
from __future__ import annotations

import os

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

import faults_campaign as fc

MERGED, INTO = "330503106", "330503107"  # 和孚镇, 千金镇 (南浔区), NBS 2023


@pytest.fixture()
def townships_with_addresses(database_url, engine, reference):
    """A copy of the session database (the reference divisions) with doors in both townships."""
    base = make_url(database_url)
    admin = base.set(database="postgres").render_as_string(hide_password=False)
    name = f"{base.database}_kill_adj"
    engine.dispose()  # CREATE DATABASE … TEMPLATE wants nobody connected to the session database
    fc.copy_database(admin, base.database, name)
    url = base.set(database=name).render_as_string(hide_password=False)
    eng = create_engine(url)
    try:
        with eng.begin() as conn:
            villages = conn.execute(text("""
                SELECT v.id, v.nbs_code AS code, v.name, t.name AS township FROM divisions v
                JOIN divisions t ON t.id = v.parent_id WHERE t.nbs_code IN (:a, :b) AND v.status = 'active'
                ORDER BY v.nbs_code"""), {"a": MERGED, "b": INTO}).all()
            for v in villages[::6]:
                for n in range(1, 21):
                    conn.execute(text("""
                        INSERT INTO addresses (division_id, number, number_main, full_text, code, local_seq, geom)
                        VALUES (:d, :num, :n, :full, :code, :n, ST_SetSRID(ST_MakePoint(120.2, 30.8), 4490))"""),
                        {"d": v.id, "num": f"{n}号", "n": n, "full": f"湖州市南浔区{v.township}{v.name}{n}号",
                         "code": f"{v.code}{n:08d}"})
    finally:
        eng.dispose()
    yield admin, name
    fc.drop_database(admin, name, wait=False)


def test_should_leave_the_registry_before_or_after_when_an_adjustment_is_killed(townships_with_addresses,
                                                                               tmp_path):
    admin, template = townships_with_addresses
    work = f"{template}_w{os.getpid()}"
    url = make_url(admin).set(database=work).render_as_string(hide_password=False)
    args = ["adjust", "merge", MERGED, "--into", INTO, "--authority", "nbs2023", "--effective", "2026-03-01",
            "--approval-ref", "浙政函〔2026〕7号", "--actor", "tests"]
    report = fc.run_campaign(admin, template, work, url, args, tmp_path, points=fc.POINTS,
                             timed=fc.TIMED, after_rerun_exits=(1,))
    print(f"adjust merge: {report.summary()}")
    assert report.points_passed >= 20, report.summary()
    assert len(report.results) == min(fc.POINTS, report.points_passed) + fc.TIMED, report.summary()
    assert {r.state for r in report.results} == {"before", "after"}
    first_after = next(i for i, r in enumerate(report.results) if r.state == "after")
    assert "abolished" in (tmp_path / f"kill_{first_after:02d}.log").read_text()  # the re-run's refusal
