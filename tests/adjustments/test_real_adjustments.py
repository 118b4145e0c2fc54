"""The three real township adjustments of data/reference/township_adjustments_observed.csv, as the
reference load records them: the state before, the adjustments (in force by 2023-06-30, no 批复文号),
and today's state exactly as NBS 2023 / MCA 2025."""
from __future__ import annotations

from sqlalchemy import text

from registry.search.engine import search
from registry.search.loading import load_gazetteer

ZHULIANG = "330503002200"  # 祝良村委会, 旧馆街道 (NBS 2023)


def test_should_record_the_three_adjustments_with_an_honest_upper_bound(conn, client):
    rows = client.get("/v1/adjustments").json()["adjustments"]
    real = [a for a in rows if a["known_in_force_by"] == "2023-06-30"]
    assert len(real) == 3
    assert {a["kind"] for a in real} == {"rename", "transfer"}
    assert all(a["approval_ref"] is None and a["date_is_upper_bound"] and "批复文号" in a["note"] for a in real)
    kinds = conn.execute(text("""
        SELECT c.kind, c.status, c.approval_ref FROM change_sets c JOIN division_adjustments a ON a.change_set_id = c.id
        WHERE a.known_in_force_by = DATE '2023-06-30'""")).all()
    assert {tuple(k) for k in kinds} == {("adjustment", "applied", None)}


def test_should_answer_the_township_of_zhuliang_before_and_after(client):
    then = client.get(f"/v1/divisions/{ZHULIANG}", params={"as_of": "2023-01-01"}).json()
    assert then["name"] == "祝良村" and then["parents"][-1]["name"] == "旧馆镇"
    assert then["codes"]["nbs2023"] is None  # the older code is unknown: none invented
    now = client.get(f"/v1/divisions/{ZHULIANG}").json()
    assert now["parents"][-1]["name"] == "旧馆街道"
    assert client.get(f"/v1/divisions/{ZHULIANG}", params={"as_of": "2024-01-01"}).json()["parents"][-1]["name"] \
        == "旧馆街道"


def test_should_show_jiuguan_as_it_was_and_say_its_old_code_is_unknown(client):
    then = client.get("/v1/divisions/330503002", params={"as_of": "2023-01-01"}).json()
    assert then["name"] == "旧馆镇" and then["codes"] == {"nbs2023": None, "mca2025": None}
    assert then["as_of"]["start_unknown"] is True and len(then["children"]) == 14
    now = client.get("/v1/divisions/330503002").json()
    assert now["name"] == "旧馆街道" and now["changes"][0]["kind"] == "rename"
    assert now["changes"][0]["known_in_force_by"] == "2023-06-30"


def test_should_show_dongqian_not_yet_set_up_before_and_its_villages_under_nanxun(client):
    r = client.get("/v1/divisions/330503001", params={"as_of": "2023-01-01"})
    assert r.status_code == 404 and r.json()["parameter"] == "as_of"
    village = client.get("/v1/divisions/330503001200", params={"as_of": "2023-01-01"}).json()  # 江蒋漾村
    assert village["parents"][-1]["name"] == "南浔镇"
    assert len(client.get("/v1/divisions/330503001").json()["children"]) == 32


def test_should_keep_todays_divisions_exactly_as_the_reference_lists(conn):
    counts = dict(conn.execute(text("SELECT level, count(*) FROM divisions WHERE status = 'active' "
                                    "GROUP BY level")).all())
    assert counts == {"province": 1, "city": 1, "county": 5, "township": 72, "village": 1301}


def test_should_find_zhuliang_by_its_former_township_name(conn):
    gaz = load_gazetteer(conn)
    top = search(gaz, "南浔区旧馆镇祝良村", limit=1)["results"][0]
    assert top["kind"] == "division" and top["name"] == "祝良村"
    assert "旧馆街道" in str(top)


def test_should_answer_as_of_from_the_command_line(conn):
    from typer.testing import CliRunner

    from loaders.cli import app

    result = CliRunner().invoke(app, ["adjust", "division", "--help"])
    assert result.exit_code == 0 and "--as-of" in result.output


def test_should_filter_search_by_a_former_village_code(conn, village, make_address):
    from datetime import date

    from registry import adjustments as adj

    v, target = village("和孚镇"), village("千金镇")
    make_address(v, 21, street="荻港路")
    adj.transfer(conn, [v.code], to=target.township_code, authority="nbs2023", actor="tests",
                 dating=adj.Dating(approval_ref="浙政函〔2026〕9号", effective=date(2026, 3, 1)))
    gaz = load_gazetteer(conn)
    readings = gaz.code_readings(v.code)  # the old code, carried before the transfer
    assert [r.division_id for r in readings] == [v.id]


def test_should_find_a_moved_village_under_its_former_township(conn):
    gaz = load_gazetteer(conn)
    lianhe = conn.execute(text("SELECT id FROM divisions WHERE nbs_code = '330521005203'")).scalar_one()
    top = search(gaz, "德清县乾元镇联合村", limit=1)["results"][0]  # 联合村 is now under 康乾街道
    assert (top["kind"], top["id"]) == ("division", lianhe)
