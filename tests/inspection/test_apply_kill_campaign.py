"""`registry changes apply` of an approved inspection change set (a re-surveyed township line:
faces moved between villages and townships, an address re-parented, a marker moved and
re-conditioned, the round's records) killed with SIGKILL at 20 checkpoints along its progress
(tests/faults_campaign.py): the registry is each time exactly as before or as after, and the
re-run completes with the state after."""
from __future__ import annotations

import os

import pytest
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url

import faults_campaign as fc
from registry.changes import approve

from .conftest import township_line
from .helpers import address_in_face, edited_package, propose


@pytest.fixture()
def approved_inspection(inspection_city, tmp_path):
    """A copy of the inspection city holding one approved inspection change set: (admin URL, database, id)."""
    base = make_url(inspection_city.url)
    admin = base.set(database="postgres").render_as_string(hide_password=False)
    name = f"{base.database}_kill"
    inspection_city.engine.dispose()  # CREATE DATABASE … TEMPLATE wants nobody connected
    fc.copy_database(admin, base.database, name)
    url = base.set(database=name).render_as_string(hide_password=False)
    eng = create_engine(url)
    try:
        with eng.begin() as conn:
            line = township_line(conn)
            path, old, new, _ = edited_package(conn, line, tmp_path)
            address_in_face(conn, old, new)
            cs = propose(conn, path).change_set_id
            approve(conn, cs, actor="editor-b")
    finally:
        eng.dispose()
    yield admin, name, cs
    fc.drop_database(admin, name, wait=False)


def test_should_leave_the_registry_before_or_after_when_an_inspection_apply_is_killed(approved_inspection,
                                                                                     tmp_path):
    admin, template, cs = approved_inspection
    work = f"{template}_w{os.getpid()}"
    url = make_url(admin).set(database=work).render_as_string(hide_password=False)
    report = fc.run_campaign(admin, template, work, url, ["changes", "apply", str(cs), "--actor", "editor-c"],
                             tmp_path, points=fc.POINTS, timed=fc.TIMED)
    print(f"inspection apply: {report.summary()}")
    assert report.points_passed >= 20, report.summary()
    assert len(report.results) == min(fc.POINTS, report.points_passed) + fc.TIMED, report.summary()
    assert {r.state for r in report.results} == {"before", "after"}
