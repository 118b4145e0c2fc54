"""The inspection workflow over HTTP: upload → proposed change set, list/show, approve, apply,
reject; editor scope; a stale change set is a 409 naming the entity."""
from __future__ import annotations

import io
import zipfile

import pytest
from sqlalchemy import text

from . import edit
from .conftest import ROUND, township_line
from .helpers import edited_package, export


@pytest.fixture()
def line(cconn):
    return township_line(cconn)


def _upload(cclient, key, path, name=None):
    with open(path, "rb") as fh:
        return cclient.post(f"/v1/inspections/{ROUND}/packages", headers={"X-API-Key": key},
                            files={"file": (name or path.name, fh, "application/octet-stream")})


@pytest.fixture()
def uploaded(cconn, cclient, editor_key, line, tmp_path):
    path, *_ = edited_package(cconn, line, tmp_path)
    r = _upload(cclient, editor_key, path)
    assert r.status_code == 201, r.text
    return r.json()["change_set_id"]


def test_should_turn_an_uploaded_package_into_a_proposed_change_set(cclient, editor_key, uploaded):
    r = cclient.get(f"/v1/change-sets/{uploaded}", headers={"X-API-Key": editor_key})
    body = r.json()
    assert body["status"] == "proposed" and body["kind"] == "inspection"
    assert body["counts"]["markers_moved"] == 1 and body["counts"]["lines_resurveyed"] == 1
    assert body["details"]["lines"][0]["area_to_left_m2"] + body["details"]["lines"][0]["area_to_right_m2"] > 0
    listed = cclient.get("/v1/change-sets?kind=inspection&status=proposed", headers={"X-API-Key": editor_key}).json()
    assert uploaded in [c["id"] for c in listed["change_sets"]]


def test_should_answer_a_bad_package_with_every_problem_and_store_nothing(cconn, cclient, editor_key, line, tmp_path):
    path = export(cconn, line, tmp_path / "field.gpkg")
    frame = edit.read(path, "markers")
    frame.loc[0, "condition"] = "broken"
    frame.loc[1, "number"] = "JZ-001"
    edit.write(path, "markers", frame)
    before = cconn.execute(text("SELECT count(*) FROM change_sets")).scalar()
    r = _upload(cclient, editor_key, path)
    assert r.status_code == 422 and r.headers["content-type"].startswith("application/problem+json")
    rules = {p["rule"] for p in r.json()["problems"]}
    assert {"bad_value", "marker_number_format"} <= rules
    assert cconn.execute(text("SELECT count(*) FROM change_sets")).scalar() == before


def test_should_accept_a_zipped_shapefile_folder(cconn, cclient, editor_key, line, tmp_path):
    export(cconn, line, tmp_path / "field.shp")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for f in (tmp_path / "field").iterdir():
            zf.write(f, f"field/{f.name}")
    zpath = tmp_path / "field.zip"
    zpath.write_bytes(buf.getvalue())
    r = _upload(cclient, editor_key, zpath)
    assert r.status_code == 201, r.text
    assert r.json()["counts"]["lines_resurveyed"] == 0


def test_should_approve_and_apply_recording_the_keys(cclient, editor_key, uploaded):
    h = {"X-API-Key": editor_key}
    assert cclient.post(f"/v1/change-sets/{uploaded}/approve", headers=h).json()["status"] == "approved"
    r = cclient.post(f"/v1/change-sets/{uploaded}/apply", headers=h)
    assert r.status_code == 200 and r.json()["status"] == "applied" and r.json()["applied_now"] is True
    assert r.json()["approved_by"].startswith("界线科") and r.json()["applied_by"].startswith("界线科")
    again = cclient.post(f"/v1/change-sets/{uploaded}/apply", headers=h)
    assert again.status_code == 200 and again.json()["applied_now"] is False


def test_should_refuse_to_apply_before_approval_with_a_409(cclient, editor_key, uploaded):
    r = cclient.post(f"/v1/change-sets/{uploaded}/apply", headers={"X-API-Key": editor_key})
    assert r.status_code == 409


def test_should_answer_a_stale_change_set_with_a_409_naming_the_entity(cconn, cclient, editor_key, uploaded):
    h = {"X-API-Key": editor_key}
    cclient.post(f"/v1/change-sets/{uploaded}/approve", headers=h)
    mid = cconn.execute(text("SELECT (details -> 'markers' -> 0 ->> 'id')::bigint FROM change_sets WHERE id = :i"),
                        {"i": uploaded}).scalar()
    cconn.execute(text("UPDATE boundary_markers SET material = '混凝土（改）' WHERE id = :i"), {"i": mid})
    r = cclient.post(f"/v1/change-sets/{uploaded}/apply", headers=h)
    assert r.status_code == 409
    assert r.json()["entity"] == f"boundary_markers:{mid}" and "界桩" in r.json()["detail"]


def test_should_reject_with_a_reason(cclient, editor_key, uploaded):
    r = cclient.post(f"/v1/change-sets/{uploaded}/reject", headers={"X-API-Key": editor_key},
                     json={"reason": "联检记录表缺签字"})
    assert r.status_code == 200 and r.json()["status"] == "rejected" and r.json()["rejected_by"].startswith("界线科")


@pytest.mark.parametrize("method,path", [
    ("post", "/v1/change-sets/{id}/approve"), ("post", "/v1/change-sets/{id}/apply"),
    ("post", "/v1/change-sets/{id}/reject"), ("get", "/v1/change-sets/{id}"), ("get", "/v1/change-sets"),
])
def test_should_need_the_editor_scope(cclient, agency_key, uploaded, method, path):
    r = getattr(cclient, method)(path.format(id=uploaded), headers={"X-API-Key": agency_key})
    assert r.status_code == 403


def test_should_need_the_editor_scope_to_upload(cconn, cclient, agency_key, line, tmp_path):
    path = export(cconn, line, tmp_path / "field.gpkg")
    assert _upload(cclient, agency_key, path).status_code == 403


def test_should_list_rounds_and_the_records_written_by_apply(cclient, editor_key, uploaded):
    h = {"X-API-Key": editor_key}
    assert ROUND in [r["number"] for r in cclient.get("/v1/inspections/rounds", headers=h).json()["rounds"]]
    cclient.post(f"/v1/change-sets/{uploaded}/approve", headers=h)
    cclient.post(f"/v1/change-sets/{uploaded}/apply", headers=h)
    records = cclient.get(f"/v1/inspections/{ROUND}/records", headers=h).json()["records"]
    assert any(r["finding"] == "displaced" for r in records)
    assert any(r["finding"] == "line_discrepancy" for r in records)
