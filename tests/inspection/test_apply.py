"""Approve → apply: the line, both divisions' polygons (a clean tiling at every level), the
markers, the addresses that changed sides (ids kept, new codes, old codes resolving), history
and audit; idempotent; a stale base refused; reviewed change sets only."""
from __future__ import annotations

import pytest
from sqlalchemy import text

from registry.addresses import resolve_address_code
from registry.changes import apply_reviewed, approve, get_change_set, reject
from registry.errors import Conflict

from .conftest import township_line
from .helpers import address_in_face, edited_package, propose, tiling_defects


@pytest.fixture()
def line(cconn):
    return township_line(cconn)


@pytest.fixture()
def proposed(cconn, line, tmp_path):
    path, old, new, markers = edited_package(cconn, line, tmp_path)
    aid, village_id, code = address_in_face(cconn, old, new)
    result = propose(cconn, path)
    return {"cs": result.change_set_id, "address": aid, "village": village_id, "code": code, "new": new,
            "marker": int(markers["marker_id"][0]), "result": result}


def _county_of(conn, division_id):
    return conn.execute(text("SELECT parent_id FROM divisions WHERE id = :i"), {"i": division_id}).scalar_one()


def test_should_refuse_to_apply_an_inspection_that_was_not_approved(cconn, proposed):
    with pytest.raises(Conflict, match="approved first|须先审批"):
        apply_reviewed(cconn, proposed["cs"], actor="editor-c")


def test_should_keep_the_townships_and_villages_a_clean_tiling(cconn, line, proposed):
    county = _county_of(cconn, line["left_division_id"])
    before = {d: tiling_defects(cconn, d) for d in (county, line["left_division_id"], line["right_division_id"])}
    approve(cconn, proposed["cs"], actor="editor-b")
    apply_reviewed(cconn, proposed["cs"], actor="editor-c")
    for d, was in before.items():
        now = tiling_defects(cconn, d)
        for k in ("gap", "outside", "overlap"):
            assert now[k] <= was[k] + 1.0, (d, k, was, now)


def test_should_move_the_area_between_the_two_townships(cconn, line, proposed):
    areas = "SELECT id, ST_Area(geom::geography) AS a FROM divisions WHERE id IN (:l, :r)"
    p = {"l": line["left_division_id"], "r": line["right_division_id"]}
    before = dict(cconn.execute(text(areas), p).all())
    approve(cconn, proposed["cs"], actor="editor-b")
    apply_reviewed(cconn, proposed["cs"], actor="editor-c")
    after = dict(cconn.execute(text(areas), p).all())
    diff = proposed["result"].diff["lines"][0]
    gained_left = diff["area_to_left_m2"] - diff["area_to_right_m2"]
    assert after[line["left_division_id"]] - before[line["left_division_id"]] == pytest.approx(gained_left, abs=5 + abs(gained_left) * 0.01)
    assert after[line["right_division_id"]] - before[line["right_division_id"]] == pytest.approx(-gained_left, abs=5 + abs(gained_left) * 0.01)
    stored = cconn.execute(text("SELECT ST_AsEWKB(geom) FROM boundary_lines WHERE id = :i"), {"i": line["id"]}).scalar()
    assert cconn.execute(text("SELECT ST_HausdorffDistance(ST_GeomFromEWKB(:a), ST_GeomFromWKB(:b, 4490))"),
                         {"a": bytes(stored), "b": proposed["new"].wkb}).scalar() < 1e-9


def test_should_reparent_the_addresses_that_changed_sides_keeping_their_ids(cconn, proposed):
    approve(cconn, proposed["cs"], actor="editor-b")
    apply_reviewed(cconn, proposed["cs"], actor="editor-c")
    row = cconn.execute(text("SELECT division_id, code FROM addresses WHERE id = :i"), {"i": proposed["address"]}).one()
    assert row.division_id != proposed["village"]
    assert row.code != proposed["code"]
    assert resolve_address_code(cconn, proposed["code"]) == proposed["address"]
    assert resolve_address_code(cconn, row.code) == proposed["address"]


def test_should_serve_the_reparented_address_under_its_id_with_the_new_code(cconn, cclient, proposed):
    approve(cconn, proposed["cs"], actor="editor-b")
    apply_reviewed(cconn, proposed["cs"], actor="editor-c")
    r = cclient.get(f"/v1/addresses/{proposed['address']}")
    assert r.status_code == 200
    props = r.json()["properties"]
    assert props["code"] != proposed["code"]
    assert resolve_address_code(cconn, proposed["code"]) == r.json()["id"]


def test_should_write_history_and_record_who_proposed_approved_and_applied(cconn, line, proposed):
    approve(cconn, proposed["cs"], actor="editor-b")
    apply_reviewed(cconn, proposed["cs"], actor="editor-c")
    cs = get_change_set(cconn, proposed["cs"])
    assert (cs.author, cs.approved_by, cs.applied_by, cs.status) == ("editor-a", "editor-b", "editor-c", "applied")
    hist = lambda t, i: cconn.execute(text(f"SELECT count(*) FROM {t}_history WHERE id = :i"), {"i": i}).scalar()
    assert hist("boundary_lines", line["id"]) >= 1
    assert hist("boundary_markers", proposed["marker"]) >= 1
    assert hist("divisions", line["left_division_id"]) >= 1 and hist("divisions", line["right_division_id"]) >= 1
    assert hist("addresses", proposed["address"]) >= 1
    marker = cconn.execute(text("SELECT condition, change_set_id FROM boundary_markers WHERE id = :i"),
                           {"i": proposed["marker"]}).one()
    assert tuple(marker) == ("displaced", proposed["cs"])
    actions = set(cconn.execute(text("SELECT actor || ':' || action FROM audit_log WHERE change_set_id = :c"),
                                {"c": proposed["cs"]}).scalars())
    assert {"editor-a:inspection.open", "editor-b:change_set.approved", "editor-c:change_set.applied"} <= actions
    records = cconn.execute(text("SELECT count(*) FROM inspection_records WHERE change_set_id = :c"),
                            {"c": proposed["cs"]}).scalar()
    assert records == len(proposed["result"].diff["records"])


def test_should_do_nothing_when_applied_twice(cconn, line, proposed):
    approve(cconn, proposed["cs"], actor="editor-b")
    apply_reviewed(cconn, proposed["cs"], actor="editor-c")
    versions = "SELECT (SELECT version FROM boundary_lines WHERE id = :l), (SELECT version FROM divisions WHERE id = :d)"
    p = {"l": line["id"], "d": line["left_division_id"]}
    before = tuple(cconn.execute(text(versions), p).one())
    cs, now = apply_reviewed(cconn, proposed["cs"], actor="editor-c")
    assert now is False and cs.status == "applied"
    assert tuple(cconn.execute(text(versions), p).one()) == before


def test_should_refuse_a_change_set_whose_base_changed_naming_the_entity(cconn, proposed):
    approve(cconn, proposed["cs"], actor="editor-b")
    cconn.execute(text("UPDATE boundary_markers SET material = 'changed elsewhere' WHERE id = :i"),
                  {"i": proposed["marker"]})
    with pytest.raises(Conflict) as err:
        apply_reviewed(cconn, proposed["cs"], actor="editor-c")
    assert err.value.details["entity"] == f"boundary_markers:{proposed['marker']}"
    assert get_change_set(cconn, proposed["cs"]).status == "approved"


def test_should_reject_and_then_refuse_to_apply(cconn, proposed):
    cs = reject(cconn, proposed["cs"], actor="editor-b", reason="外业记录不全")
    assert (cs.status, cs.rejected_by) == ("rejected", "editor-b") and cs.rejected_at is not None
    with pytest.raises(Conflict):
        apply_reviewed(cconn, proposed["cs"], actor="editor-c")


def test_should_add_a_newly_set_marker_and_retire_a_removed_one(cconn, line, tmp_path):
    import pandas as pd

    from . import edit
    from .helpers import export
    from registry.markers import marker_number, parse_marker_number

    path = export(cconn, line, tmp_path / "field.gpkg")
    markers = edit.read(path, "markers")
    used = {parse_marker_number(n).serial for n in markers["number"]}
    serial = max(used) + 1
    new = markers.iloc[[0]].copy()
    new["marker_id"] = None
    new["marker_ver"] = None
    new["serial"] = serial
    new["type"] = "Q"
    new["number"] = marker_number(line["code"], serial, "Q")
    new["condition"] = "new"
    new["geometry"] = [edit.move_point(markers.geometry[0], 40)]
    removed_id = int(markers["marker_id"][len(markers) - 1])
    edited = pd.concat([markers.iloc[:-1], new], ignore_index=True)
    edit.write(path, "markers", edited)
    result = propose(cconn, path)
    assert [m["number"] for m in result.diff["markers_added"]] == [new["number"].iloc[0]]
    assert [m["id"] for m in result.diff["markers_removed"]] == [removed_id]
    approve(cconn, result.change_set_id, actor="editor-b")
    apply_reviewed(cconn, result.change_set_id, actor="editor-c")
    row = cconn.execute(text("SELECT status, condition, boundary_line_id FROM boundary_markers WHERE number = :n"),
                        {"n": new["number"].iloc[0]}).one()
    assert tuple(row) == ("active", "new", line["id"])
    assert cconn.execute(text("SELECT status FROM boundary_markers WHERE id = :i"), {"i": removed_id}).scalar() == "retired"


def _county_line(conn):
    row = conn.execute(text("""
        SELECT l.id, l.code, l.left_division_id, l.right_division_id FROM boundary_lines l
        WHERE l.level = 'county' AND l.status = 'active' AND l.right_division_id IS NOT NULL
          AND ST_NumGeometries(l.geom) = 1 AND ST_NPoints(l.geom) >= 20
          AND EXISTS (SELECT 1 FROM boundary_markers m WHERE m.boundary_line_id = l.id AND m.status = 'active')
        ORDER BY l.length_m DESC LIMIT 1""")).mappings().first()
    assert row is not None
    return dict(row)


def test_should_keep_every_level_tiled_when_a_county_line_is_resurveyed(cconn, tmp_path):
    line = _county_line(cconn)
    path, old, new, _ = edited_package(cconn, line, tmp_path, north_m=20.0)
    result = propose(cconn, path)
    assert result.counts["lines_resurveyed"] == 1
    city = cconn.execute(text("SELECT parent_id FROM divisions WHERE id = :i"), {"i": line["left_division_id"]}).scalar()
    parents = [city, line["left_division_id"], line["right_division_id"]]
    parents += list(cconn.execute(text("SELECT id FROM divisions WHERE parent_id = ANY(:p) AND level = 'township'"),
                                  {"p": [line["left_division_id"], line["right_division_id"]]}).scalars())
    before = {d: tiling_defects(cconn, d) for d in parents}
    approve(cconn, result.change_set_id, actor="editor-b")
    apply_reviewed(cconn, result.change_set_id, actor="editor-c")
    moved = result.counts["area_changed_m2"]
    for d, was in before.items():
        now = tiling_defects(cconn, d)
        # Counties in the city and townships in the counties stay clean. The generated villages
        # do not share the county polygons' vertices bit for bit along a county line, so moving
        # a face through them leaves slivers in the villages of the townships on the line:
        # bounded here at 1 m² per 10,000 m² moved (a known limit, see README).
        village_level = d not in parents[:3]
        bound = 1.0 + moved * (1e-4 if village_level else 1e-6)
        for k in ("gap", "outside", "overlap"):
            assert now[k] <= was[k] + bound, (d, k, was, now, moved)
    # The township lines on the county line are re-derived from the new polygons (one active
    # line per pair still touching it); that they lie exactly on the new course is not promised
    # yet (see README: a face goes whole to one township).
    touching = cconn.execute(text("""
        SELECT count(*) FILTER (WHERE ST_Distance(t.geom::geography, c.geom::geography) < 0.01), count(*)
        FROM boundary_lines t JOIN boundary_lines c ON c.id = t.county_line_id
        WHERE c.id = :i AND t.status = 'active'"""), {"i": line["id"]}).one()
    assert touching[1] > 0


def test_should_leave_nothing_behind_when_the_apply_fails_halfway(cconn, line, tmp_path):
    """Crash safety: apply is one transaction — here a marker number taken after the diff makes
    it fail after the polygons moved, and the savepoint (the CLI's and API's transaction) rolls
    every write back."""
    import pandas as pd

    from registry.markers import marker_number, parse_marker_number

    from . import edit

    path, *_ = edited_package(cconn, line, tmp_path)
    markers = edit.read(path, "markers")
    serial = max(parse_marker_number(n).serial for n in markers["number"]) + 1
    new = markers.iloc[[0]].copy()
    new[["marker_id", "marker_ver"]] = None
    new["serial"], new["type"], new["condition"] = serial, "Q", "new"
    new["number"] = number = marker_number(line["code"], serial, "Q")
    new["geometry"] = [edit.move_point(markers.geometry[1], 10)]
    edit.write(path, "markers", pd.concat([markers, new], ignore_index=True))
    cs = propose(cconn, path).change_set_id
    approve(cconn, cs, actor="editor-b")
    cconn.execute(text("""INSERT INTO boundary_markers (number, boundary_line_id, status, geom, serial, type_letter, condition)
        SELECT :n, :l, 'active', geom, :s, 'Q', 'new' FROM boundary_markers WHERE id = :m"""),
                  {"n": number, "l": line["id"], "s": serial, "m": int(markers["marker_id"][0])})
    snapshot = "SELECT md5(string_agg(ST_AsEWKB(geom)::text, ',' ORDER BY id)) FROM divisions WHERE id IN (:l, :r)"
    p = {"l": line["left_division_id"], "r": line["right_division_id"]}
    before = cconn.execute(text(snapshot), p).scalar()
    with pytest.raises(Conflict, match=number):
        with cconn.begin_nested():
            apply_reviewed(cconn, cs, actor="editor-c")
    assert cconn.execute(text(snapshot), p).scalar() == before
    assert get_change_set(cconn, cs).status == "approved"
