"""`registry load addresses` killed with SIGKILL at 20 checkpoints along its own progress (every
batch of rows streamed, each phase and statement of validation and apply, the change set, just
before and after COMMIT; tests/faults_campaign.py): the registry is each time exactly as before
or as after, and the re-run completes with the state after.

The load inserts, updates and retires: the template already holds doors 1号–200号 of a street in
a village of its own; the file has 51号–300号, moved a little (updated) and new (inserted), and
`--retire-missing` retires 1号–50号. test_committed_loads.py pauses a load at two points to show
its transaction open and its writes invisible; this campaign kills it everywhere else."""
from __future__ import annotations

import os

import pytest
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url

import faults_campaign as fc
from loader_helpers import inside, survey, write_csv

VILLAGE = "330502003007"  # 安定书院社区, 爱山街道: no other loader test loads there
STREET = "断点一路"


@pytest.fixture()
def loaded_template(database_url, engine, reference, tmp_path):
    """A copy of the session database (the reference divisions) with doors 1号–200号 loaded:
    (admin URL, name, URL)."""
    base = make_url(database_url)
    admin = base.set(database="postgres").render_as_string(hide_password=False)
    name = f"{base.database}_kill_load"
    engine.dispose()  # CREATE DATABASE … TEMPLATE wants nobody connected to the session database
    fc.copy_database(admin, base.database, name)
    url = base.set(database=name).render_as_string(hide_password=False)
    eng = create_engine(url)
    try:
        first = survey(eng, tmp_path / "first.csv", VILLAGE, STREET, 200)
    finally:
        eng.dispose()
    fc.warm()
    code = fc.run_cli(url, ["load", "addresses", str(first), "--crs", "EPSG:4490", "--create-places"],
                      log=tmp_path / "first.log")
    assert code == 0, (tmp_path / "first.log").read_text()
    yield admin, name, url
    fc.drop_database(admin, name, wait=False)


def test_should_leave_the_registry_before_or_after_when_a_load_is_killed(loaded_template, tmp_path):
    admin, template, template_url = loaded_template
    eng = create_engine(template_url)
    try:
        x, y = inside(eng, VILLAGE)
    finally:
        eng.dispose()
    rows = [{"division_code": VILLAGE, "street": STREET, "number": f"{i}号", "lon": f"{x + (i % 50) * 1e-6:.7f}",
             "lat": f"{y + (i // 50) * 1e-6 + (3e-6 if i <= 200 else 0):.7f}"} for i in range(51, 301)]
    path = write_csv(tmp_path / "second.csv", rows, header=["division_code", "street", "number", "lon", "lat"])
    work = f"{template}_w{os.getpid()}"
    url = make_url(admin).set(database=work).render_as_string(hide_password=False)
    report = fc.run_campaign(admin, template, work, url,
                             ["load", "addresses", str(path), "--crs", "EPSG:4490", "--retire-missing"],
                             tmp_path, points=fc.POINTS, timed=fc.TIMED,
                             env={"REGISTRY_LOADER_BATCH_ROWS": "25"})
    print(f"load addresses: {report.summary()}")
    assert report.points_passed >= 20, report.summary()
    assert len(report.results) == min(fc.POINTS, report.points_passed) + fc.TIMED, report.summary()
    assert {r.state for r in report.results} == {"before", "after"}
