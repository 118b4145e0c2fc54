"""Division adjustments on synthetic townships built on the reference divisions: merge, split,
rename, recode, transfer — one change set each, nothing lost, ids kept, old names and codes
resolving, plates unchanged — and bad adjustments refused with nothing changed."""
from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import text

from registry import adjustments as adj
from registry.addresses import resolve_address_code
from registry.divisions import resolve_division_id
from registry.errors import InvalidQuery, NotFound
from registry.search.engine import search
from registry.search.loading import load_gazetteer

REF = adj.Dating(approval_ref="浙政函〔2026〕7号", effective=date(2026, 3, 1))
UPPER = adj.Dating(known_in_force_by=date(2026, 6, 30), note="来源未给出批复文号 / the source gives none")


def _snapshot(conn):
    return conn.execute(text("""
        SELECT a.id, a.code, a.full_text, a.division_id, p.id AS plate FROM addresses a
        LEFT JOIN doorplates p ON p.address_id = a.id ORDER BY a.id""")).all()


def _fill(village, make_address, plate_for, township, n_villages=2, per=3):
    ids, tokens = [], []
    for i in range(n_villages):
        v = village(township, i)
        for k in range(per):
            a = make_address(v, 10 + k)
            ids.append(a)
            tokens.append(plate_for(a))
    return ids, tokens


def _adjustment_rows(conn):
    return conn.execute(text("SELECT kind, approval_ref, effective_on, known_in_force_by FROM division_adjustments "
                             "ORDER BY id")).all()


def test_should_merge_two_townships_keeping_every_address_and_plate(conn, client, village, make_address,
                                                                    plate_for):
    hefu, qianjin = village("和孚镇"), village("千金镇")
    ids, tokens = _fill(village, make_address, plate_for, "和孚镇")
    more, more_tokens = _fill(village, make_address, plate_for, "千金镇", 1)
    before = _snapshot(conn)
    total_before = conn.execute(text("SELECT count(*) FROM addresses")).scalar_one()
    result = adj.merge(conn, [hefu.township_code, qianjin.township_code], into=qianjin.township_code,
                       dating=REF, actor="tests", authority="nbs2023")
    after = _snapshot(conn)
    assert conn.execute(text("SELECT count(*) FROM addresses")).scalar_one() == total_before
    assert [r.id for r in after] == [r.id for r in before]
    assert [r.plate for r in after] == [r.plate for r in before]
    moved = [r for r in after if r.id in ids]
    assert all("千金镇" in r.full_text and "和孚镇" not in r.full_text for r in moved)
    assert all(r.code.startswith(qianjin.township_code) for r in moved)
    for old in (r for r in before if r.id in ids):
        assert resolve_address_code(conn, old.code) == old.id  # old codes resolve
    status = conn.execute(text("SELECT status FROM divisions WHERE id = :id"), {"id": hefu.township_id}).scalar_one()
    assert status == "abolished"
    cs = conn.execute(text("SELECT kind, status, approval_ref FROM change_sets WHERE id = :id"),
                      {"id": result.change_set_id}).one()
    assert tuple(cs) == ("adjustment", "applied", "浙政函〔2026〕7号")
    assert _adjustment_rows(conn)[-1][:3] == ("merge", "浙政函〔2026〕7号", date(2026, 3, 1))
    # the old township's code answers with the successor and the change
    body = client.get(f"/v1/divisions/{hefu.township_code}", params={"authority": "nbs2023"}).json()
    assert body["status"] == "abolished" and body["successors"][0]["name"] == "千金镇"
    assert body["changes"][0]["kind"] == "merge" and body["changes"][0]["approval_ref"] == "浙政函〔2026〕7号"
    # old names searchable: the old township + village finds the village now under 千金镇
    gaz = load_gazetteer(conn)
    top = search(gaz, f"南浔区和孚镇{hefu.name}", limit=1)["results"][0]
    assert top["name"] == hefu.name or hefu.name in (top.get("address") or top.get("name", ""))
    # plates: the same token shows the new address, with the one printed on the plate before
    page = client.get(f"/p/{tokens[0]}", headers={"Accept": "application/json"}).json()
    assert "千金镇" in page["address"]["text"] and "和孚镇" in page["address"]["printed_text"]
    html = client.get(f"/p/{tokens[0]}", headers={"Accept": "text/html"}).text
    assert "千金镇" in html and "原：浙江省湖州市南浔区和孚镇" in html
    assert client.get(f"/p/{more_tokens[0]}", headers={"Accept": "application/json"}).json()["address"].get(
        "printed_text") is None  # a 千金镇 address: its text did not change


def test_should_split_a_township_by_villages(conn, village, make_address, plate_for):
    town = village("菱湖镇")
    villages = conn.execute(text("SELECT nbs_code FROM divisions WHERE parent_id = :t ORDER BY nbs_code"),
                            {"t": town.township_id}).scalars().all()
    ids, _ = _fill(village, make_address, plate_for, "菱湖镇", 3)
    before = {r.id: r for r in _snapshot(conn)}
    half = len(villages) // 2
    result = adj.split(conn, town.township_code, [
        adj.Part("菱湖镇", town.township_code, tuple(villages[half:])),
        adj.Part("菱北街道", "330503009", tuple(villages[:half]), mca_code="330503009"),
    ], dating=REF, actor="tests", authority="nbs2023")
    assert result.counts["divisions_created"] == 1
    after = {r.id: r for r in _snapshot(conn)}
    assert after.keys() == before.keys()
    for a in ids:
        row = conn.execute(text("SELECT v.nbs_code FROM addresses a JOIN divisions v ON v.id = a.division_id "
                                "WHERE a.id = :a"), {"a": a}).scalar_one()
        if after[a].code != before[a].code:
            assert after[a].code.startswith("330503009") and "菱北街道" in after[a].full_text
            assert resolve_address_code(conn, before[a].code) == a
        assert after[a].code.startswith(row)
    new_id, _ = resolve_division_id(conn, "330503009")
    assert conn.execute(text("SELECT count(*) FROM divisions WHERE parent_id = :t"), {"t": new_id}).scalar_one() == half


def test_should_refuse_a_split_that_leaves_villages_unassigned(conn, village, make_address):
    town = village("菱湖镇")
    a = make_address(town, 1)
    villages = conn.execute(text("SELECT nbs_code FROM divisions WHERE parent_id = :t ORDER BY nbs_code"),
                            {"t": town.township_id}).scalars().all()
    n = conn.execute(text("SELECT count(*) FROM change_sets")).scalar_one()
    with pytest.raises(InvalidQuery, match="未分配") as err:
        adj.split(conn, town.township_code, [adj.Part("菱湖镇", town.township_code, tuple(villages[2:])),
                                             adj.Part("菱北街道", "330503009", (villages[0],))], dating=REF, actor="t", authority="nbs2023")
    assert villages[1] in str(err.value)
    assert conn.execute(text("SELECT count(*) FROM change_sets")).scalar_one() == n
    assert conn.execute(text("SELECT code FROM addresses WHERE id = :a"), {"a": a}).scalar_one().startswith(town.code)


def test_should_refuse_villages_not_in_the_township_naming_them(conn, village):
    a, b = village("和孚镇"), village("千金镇")
    known = _adjustment_rows(conn)
    with pytest.raises(InvalidQuery, match=b.code):
        adj.transfer(conn, [b.code], from_code=a.township_code, to=village("练市镇").township_code, dating=REF,
                     actor="t", authority="nbs2023")
    with pytest.raises(NotFound, match="330503999"):
        adj.rename(conn, "330503999", name="某镇", dating=REF, actor="t", authority="nbs2023")
    assert _adjustment_rows(conn) == known


def test_should_refuse_an_adjustment_without_a_date(conn, village):
    with pytest.raises(InvalidQuery, match="effective"):
        adj.rename(conn, village("和孚镇").township_code, name="和孚街道", dating=adj.Dating(approval_ref="x号"),
                   actor="t")


def test_should_rename_a_township_with_the_honest_upper_bound(conn, village, make_address):
    v = village("和孚镇")
    a = make_address(v, 8, street="荻港路")
    result = adj.rename(conn, v.township_code, name="和孚街道", dating=UPPER, actor="tests", authority="nbs2023")
    assert result.kind == "rename"
    row = _adjustment_rows(conn)[-1]
    assert tuple(row) == ("rename", None, None, date(2026, 6, 30))
    assert "和孚街道荻港路8号" in conn.execute(text("SELECT full_text FROM addresses WHERE id = :a"),
                                          {"a": a}).scalar_one()
    gaz = load_gazetteer(conn)
    assert search(gaz, f"南浔区和孚镇{v.name}", limit=1)["results"]


def test_should_recode_a_township_and_its_villages(conn, client, village, make_address):
    v = village("和孚镇")
    a = make_address(v, 9)
    old_code = conn.execute(text("SELECT code FROM addresses WHERE id = :a"), {"a": a}).scalar_one()
    adj.recode(conn, v.township_code, new_code="330503009", dating=REF, actor="tests", authority="nbs2023")
    new_village = conn.execute(text("SELECT nbs_code FROM divisions WHERE id = :id"), {"id": v.id}).scalar_one()
    assert new_village == "330503009" + v.code[-3:]
    assert conn.execute(text("SELECT code FROM addresses WHERE id = :a"), {"a": a}).scalar_one() == \
        new_village + old_code[-8:]
    assert resolve_address_code(conn, old_code) == a
    body = client.get(f"/v1/divisions/{v.township_code}", params={"authority": "nbs2023"}).json()
    assert body["name"] == "和孚镇" and body["code"] == "330503009"
    assert body["former_code"]["code"] == v.township_code and body["changes"][0]["kind"] == "recode"


def test_should_transfer_villages_and_answer_as_of_before_and_after(conn, client, village, make_address):
    v, target = village("和孚镇"), village("千金镇")
    a = make_address(v, 3)
    adj.transfer(conn, [v.code], from_code=v.township_code, to=target.township_code, dating=REF, actor="tests", authority="nbs2023")
    new_code = conn.execute(text("SELECT nbs_code FROM divisions WHERE id = :id"), {"id": v.id}).scalar_one()
    assert new_code.startswith(target.township_code)
    then = client.get(f"/v1/divisions/{new_code}", params={"as_of": "2026-02-01"}).json()
    assert then["parents"][-1]["name"] == "和孚镇"
    now = client.get(f"/v1/divisions/{v.code}").json()
    assert now["parents"][-1]["name"] == "千金镇"
    addr_then = client.get(f"/v1/addresses/{a}", params={"as_of": "2026-02-01"})
    assert addr_then.status_code in (200, 404)  # the test address was created today: 404 before it existed
    assert "千金镇" in client.get(f"/v1/addresses/{a}").json()["properties"]["address"]
