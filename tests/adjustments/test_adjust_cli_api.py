"""`registry adjust …` and POST/GET /v1/adjustments: one change set each, the editor scope, clear
errors that change nothing."""
from __future__ import annotations


import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from cli_engine import on_test_connection
from registry.keys import create_key


@pytest.fixture()
def cli(conn, monkeypatch):
    import loaders.adjust_cli

    on_test_connection(monkeypatch, conn, loaders.adjust_cli)
    from loaders.cli import app

    return lambda *args: CliRunner().invoke(app, ["adjust", *args])


def _count(conn, table="division_adjustments"):
    return conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()


def test_should_rename_from_the_command_line_with_the_approval_ref(conn, cli, village, make_address):
    v = village("和孚镇")
    a = make_address(v, 4)
    result = cli("rename", v.township_code, "--authority", "nbs2023", "--name", "和孚街道",
                 "--approval-ref", "浙政函〔2026〕3号", "--effective", "2026-05-01")
    assert result.exit_code == 0, result.output
    assert "浙政函〔2026〕3号" in result.output and "rename" in result.output
    assert "和孚街道" in conn.execute(text("SELECT full_text FROM addresses WHERE id = :a"), {"a": a}).scalar_one()
    then = cli("division", v.code, "--as-of", "2026-04-01")
    assert then.exit_code == 0 and '"name": "和孚镇"' in then.output
    listed = cli("list")
    assert "浙政函〔2026〕3号" in listed.output


def test_should_record_an_unknown_document_as_an_upper_bound_from_the_command_line(conn, cli, village):
    v = village("千金镇")
    result = cli("rename", v.township_code, "--authority", "nbs2023", "--name", "千金街道",
                 "--known-in-force-by", "2026-06-30")
    assert result.exit_code == 0, result.output
    assert "upper bound" in result.output and "none" in result.output
    row = conn.execute(text("SELECT approval_ref, effective_on, known_in_force_by FROM division_adjustments "
                            "ORDER BY id DESC LIMIT 1")).one()
    assert row.approval_ref is None and row.effective_on is None and str(row.known_in_force_by) == "2026-06-30"


def test_should_refuse_a_transfer_of_an_unknown_village_and_change_nothing(conn, cli, village):
    n = _count(conn)
    result = cli("transfer", "330503999999", "--to", village("千金镇").township_code, "--authority", "nbs2023",
                 "--effective", "2026-05-01")
    assert result.exit_code == 1 and "330503999999" in result.output
    assert _count(conn) == n


def test_should_need_the_editor_scope_to_apply_an_adjustment(conn, client, village):
    v = village("和孚镇")
    body = {"kind": "rename", "code": v.township_code, "authority": "nbs2023", "name": "和孚街道",
            "effective": "2026-05-01", "approval_ref": "浙政函〔2026〕4号"}
    assert client.post("/v1/adjustments", json=body).status_code == 401 or \
        client.post("/v1/adjustments", json=body).status_code == 403
    agency = {"X-API-Key": create_key(conn, agency="公安局", scopes=["agency"]).secret}
    assert client.post("/v1/adjustments", json=body, headers=agency).status_code == 403
    editor = {"X-API-Key": create_key(conn, agency="湖州市民政局", scopes=["editor"]).secret}
    r = client.post("/v1/adjustments", json=body, headers=editor)
    assert r.status_code == 201, r.text
    assert r.json()["kind"] == "rename" and r.json()["approval_ref"] == "浙政函〔2026〕4号"
    listed = client.get("/v1/adjustments", params={"division": v.township_code, "authority": "nbs2023"}).json()
    assert listed["adjustments"][0]["approval_ref"] == "浙政函〔2026〕4号"


def test_should_answer_a_bad_adjustment_with_a_problem_naming_the_field(conn, client, village):
    editor = {"X-API-Key": create_key(conn, agency="湖州市民政局", scopes=["editor"]).secret}
    v = village("和孚镇")
    n = _count(conn)
    r = client.post("/v1/adjustments", json={"kind": "rename", "code": v.township_code, "authority": "nbs2023",
                                             "name": "和孚街道"}, headers=editor)
    assert r.status_code == 400 and r.json()["parameter"] == "effective"
    r = client.post("/v1/adjustments", json={"kind": "split", "code": v.township_code, "authority": "nbs2023",
                                             "effective": "2026-05-01",
                                             "parts": [{"name": "甲", "code": "330503009", "villages": [v.code]},
                                                       {"name": "和孚镇", "code": v.township_code,
                                                        "villages": []}]}, headers=editor)
    assert r.status_code == 400 and "未分配" in r.json()["detail"]
    assert _count(conn) == n
