"""Plates: kinds, idempotent set-based issuing, and the lifecycle issued → active → replaced / revoked."""
import pytest
from sqlalchemy import text

from registry.doorplates import (activate_division, activate_plate, get_plate, issue_plates, live_plate_for,
                                 natural_kind, replace_plate, revoke_plate)
from registry.errors import Conflict, InvalidQuery, NotFound


def _plates(conn, address_id):
    return conn.execute(text("SELECT id, kind, status FROM doorplates WHERE address_id = :a ORDER BY id"),
                        {"a": address_id}).all()


def test_should_choose_the_kind_from_the_address_granularity():
    assert natural_kind() == "door"
    assert natural_kind(building="5幢") == "building"
    assert natural_kind(building="5幢", unit="2单元") == "unit"
    assert natural_kind(building="5幢", unit="2单元", room="301室") == "flat"


def test_should_issue_one_plate_for_one_address_and_record_a_change_set(conn, make_address):
    a = make_address()
    result = issue_plates(conn, actor="tests", address_id=a)
    assert (result.issued, result.already) == (1, 0)
    [(pid, kind, status)] = _plates(conn, a)
    assert (kind, status) == ("door", "issued")
    cs = conn.execute(text("SELECT kind, status, counts FROM change_sets WHERE id = :i"),
                      {"i": result.change_set_id}).one()
    assert cs.kind == "doorplates" and cs.status == "applied" and cs.counts["issued"] == 1
    assert conn.execute(text("SELECT change_set_id, key_id FROM doorplates WHERE id=:i"), {"i": pid}).one() == (
        result.change_set_id, result.key_id)


def test_should_issue_idempotently_for_a_street(conn, make_address):
    a1, a2 = make_address(number="1号"), make_address(number="3号")
    make_address(street="解放路", number="2号")
    street_id = conn.execute(text("SELECT street_id FROM addresses WHERE id=:a"), {"a": a1}).scalar_one()
    first = issue_plates(conn, actor="tests", street_id=street_id)
    assert (first.issued, first.already) == (2, 0)
    again = issue_plates(conn, actor="tests", street_id=street_id)
    assert (again.issued, again.already) == (0, 2)
    assert len(_plates(conn, a1)) == 1 and len(_plates(conn, a2)) == 1


def test_should_issue_for_a_whole_division_with_each_address_its_own_kind(conn, make_address, place):
    door = make_address(number="8号")
    flat = make_address(number="9号", building="5幢", unit="2单元", room="301室")
    retired = make_address(number="10号", status="retired")
    result = issue_plates(conn, actor="tests", division=place.village_code)
    assert result.issued >= 4
    assert [p.kind for p in _plates(conn, door)] == ["door"]
    # the flat's own plate, and its building's and unit's (it is their representative address)
    assert sorted(p.kind for p in _plates(conn, flat)) == ["building", "flat", "unit"]
    assert _plates(conn, retired) == []
    assert issue_plates(conn, actor="tests", division=place.village_code).issued == 0


def test_should_issue_one_building_plate_and_one_unit_plate_per_entrance(conn, make_address):
    flats = [make_address(number="9号", building="5幢", unit=f"{u}单元", room=f"{r}室")
             for u in (1, 2) for r in (101, 102, 201)]
    street_id = conn.execute(text("SELECT street_id FROM addresses WHERE id=:a"), {"a": flats[0]}).scalar_one()
    result = issue_plates(conn, actor="tests", street_id=street_id)
    kinds = conn.execute(text("""
        SELECT d.kind, count(*) FROM doorplates d JOIN addresses a ON a.id = d.address_id
        WHERE a.street_id = :s GROUP BY d.kind"""), {"s": street_id}).all()
    assert dict(kinds) == {"building": 1, "unit": 2, "flat": 6}
    assert result.issued == 9
    cs = conn.execute(text("SELECT counts FROM change_sets WHERE id=:i"), {"i": result.change_set_id}).scalar_one()
    assert (cs["building"], cs["unit"], cs["flat"]) == (1, 2, 6)
    # one more flat in unit 2: only its own plate is new
    make_address(number="9号", building="5幢", unit="2单元", room="202室")
    again = issue_plates(conn, actor="tests", street_id=street_id)
    assert (again.issued, again.already) == (1, 9)


def test_should_issue_for_one_address_its_plate_and_those_of_its_building_and_unit(conn, make_address):
    a = make_address(number="9号", building="5幢", unit="1单元", room="101室")
    neighbour = make_address(number="9号", building="5幢", unit="1单元", room="102室")
    result = issue_plates(conn, actor="tests", address_id=neighbour)
    assert result.issued == 3
    assert _plates(conn, a) == [] or {p.kind for p in _plates(conn, a)} <= {"building", "unit"}
    assert issue_plates(conn, actor="tests", address_id=a).issued == 1  # its own flat plate only


def test_should_issue_only_the_kind_asked_for(conn, make_address):
    make_address(number="1号")
    b = make_address(number="1号", building="2幢")
    street_id = conn.execute(text("SELECT street_id FROM addresses WHERE id=:a"), {"a": b}).scalar_one()
    assert issue_plates(conn, actor="tests", street_id=street_id, kind="building").issued == 1
    assert [p.kind for p in _plates(conn, b)] == ["building"]


def test_should_name_the_parameter_of_bad_issuing_input(conn, make_address):
    a = make_address()
    with pytest.raises(InvalidQuery) as err:
        issue_plates(conn, actor="tests", address_id=a, kind="poster")
    assert err.value.parameter == "kind" and "poster" in err.value.message
    with pytest.raises(InvalidQuery) as err:
        issue_plates(conn, actor="tests")
    assert err.value.parameter == "address_id"
    with pytest.raises(NotFound) as err:
        issue_plates(conn, actor="tests", address_id=987654321)
    assert err.value.parameter == "address_id"
    with pytest.raises(InvalidQuery) as err:
        issue_plates(conn, actor="tests", division="12")
    assert err.value.parameter == "division"


def test_should_activate_a_plate_and_keep_the_issued_version_in_history(conn, make_address):
    a = make_address()
    issue_plates(conn, actor="tests", address_id=a)
    pid = live_plate_for(conn, a)
    assert activate_plate(conn, pid, actor="tests")["status"] == "active"
    assert [h["status"] for h in get_plate(conn, pid)["history"]] == ["issued", "active"]
    assert activate_plate(conn, pid, actor="tests")["status"] == "active"  # again: no new version
    assert len(get_plate(conn, pid)["history"]) == 2


def test_should_activate_every_issued_plate_of_a_division(conn, make_address, place):
    ids = [make_address(number=f"{n}号") for n in (21, 23)]
    issue_plates(conn, actor="tests", division=place.village_code)
    assert activate_division(conn, place.village_code, actor="tests") >= 2
    assert {p.status for a in ids for p in _plates(conn, a)} == {"active"}


def test_should_replace_a_plate_with_a_new_one_for_the_same_address(conn, make_address):
    a = make_address()
    issue_plates(conn, actor="tests", address_id=a)
    old = live_plate_for(conn, a)
    new = replace_plate(conn, old, reason="台风损坏", actor="tests")
    assert new["id"] != old and new["status"] == "issued" and new["address_id"] == a
    record = get_plate(conn, old)
    assert record["status"] == "replaced" and record["replaced_by"]["id"] == new["id"]
    assert record["reason"] == "台风损坏" and record["ended_at"] is not None
    assert [h["status"] for h in record["history"]] == ["issued", "replaced"]
    assert live_plate_for(conn, a) == new["id"]
    with pytest.raises(Conflict):
        replace_plate(conn, old, reason="again", actor="tests")


def test_should_revoke_a_plate_with_its_reason_and_date(conn, make_address):
    a = make_address()
    issue_plates(conn, actor="tests", address_id=a)
    pid = live_plate_for(conn, a)
    record = revoke_plate(conn, pid, reason="地址注销", actor="tests")
    assert record["status"] == "revoked" and record["reason"] == "地址注销" and record["ended_at"]
    with pytest.raises(Conflict):
        activate_plate(conn, pid, actor="tests")
    assert issue_plates(conn, actor="tests", address_id=a).issued == 1  # a new plate may be issued


def test_should_require_a_reason_to_replace_or_revoke(conn, make_address):
    a = make_address()
    issue_plates(conn, actor="tests", address_id=a)
    pid = live_plate_for(conn, a)
    for action in (replace_plate, revoke_plate):
        with pytest.raises(InvalidQuery) as err:
            action(conn, pid, reason=" ", actor="tests")
        assert err.value.parameter == "reason"
    with pytest.raises(InvalidQuery) as err:
        revoke_plate(conn, pid, reason="x" * 201, actor="tests")
    assert err.value.parameter == "reason"


def test_should_never_delete_a_plate(conn, make_address):
    from sqlalchemy.exc import DBAPIError

    a = make_address()
    issue_plates(conn, actor="tests", address_id=a)
    with pytest.raises(DBAPIError, match="never deleted"):
        with conn.begin_nested():
            conn.execute(text("DELETE FROM doorplates WHERE address_id = :a"), {"a": a})
