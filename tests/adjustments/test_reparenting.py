"""registry/reparenting.py: addresses and villages moved, codes and texts re-derived, ids kept."""
from __future__ import annotations

from sqlalchemy import text

from registry.addresses import resolve_address_code
from registry.changes import open_change_set
from registry.reparenting import move_addresses, move_villages, rederive_addresses


def _row(conn, address_id):
    return conn.execute(text("SELECT division_id, code, local_seq, full_text, version FROM addresses WHERE id = :id"),
                        {"id": address_id}).one()


def test_should_move_an_address_keeping_its_id_and_its_old_code(conn, make_address, village):
    a, b = village("和孚镇", 0), village("和孚镇", 1)
    first = make_address(a, 12)
    make_address(b, 5)
    old = _row(conn, first)
    cs = open_change_set(conn, kind="edit", author="tests")
    assert move_addresses(conn, {first: b.id}, change_set_id=cs) == 1
    new = _row(conn, first)
    assert new.division_id == b.id and new.local_seq == 2
    assert new.code == f"{b.code}00000002"
    assert f"{b.name}3组12号" in new.full_text and a.name not in new.full_text
    assert new.version == old.version + 1
    assert resolve_address_code(conn, old.code) == first
    history = conn.execute(text("SELECT code FROM addresses_history WHERE id = :id"), {"id": first}).scalars().all()
    assert history == [old.code]


def test_should_refuse_a_move_to_a_township_and_change_nothing(conn, make_address, village):
    a = village("和孚镇", 0)
    first = make_address(a, 12)
    cs = open_change_set(conn, kind="edit", author="tests")
    import pytest

    from registry.errors import InvalidQuery

    with pytest.raises(InvalidQuery, match="不是现行的村"):
        move_addresses(conn, {first: a.township_id}, change_set_id=cs)
    assert _row(conn, first).division_id == a.id


def test_should_rederive_texts_after_a_township_rename(conn, make_address, village):
    a = village("和孚镇", 0)
    first = make_address(a, 12, street="荻港路")
    cs = open_change_set(conn, kind="edit", author="tests")
    conn.execute(text("UPDATE divisions SET name = '和孚街道', full_name = '和孚街道' WHERE id = :id"),
                 {"id": a.township_id})
    assert rederive_addresses(conn, [a.township_id], change_set_id=cs) == 1
    assert _row(conn, first).full_text.endswith("南浔区和孚街道荻港路12号")
    assert rederive_addresses(conn, [a.township_id], change_set_id=cs) == 0  # nothing left to change


def test_should_move_a_village_with_a_code_under_its_new_township(conn, make_address, village):
    v = village("和孚镇", 0)
    target = village("千金镇", 0)
    first = make_address(v, 7)
    old_code = _row(conn, first).code
    cs = open_change_set(conn, kind="edit", author="tests")
    changes = move_villages(conn, [v.id], target.township_id, change_set_id=cs)
    old, new = changes[v.id]
    assert old == v.code and new.startswith(target.township_code) and len(new) == 12
    row = _row(conn, first)
    assert row.code == f"{new}{row.local_seq:08d}" and "千金镇" in row.full_text
    assert resolve_address_code(conn, old_code) == first
    from registry.divisions import resolve_division_id

    assert resolve_division_id(conn, v.code)[0] == v.id  # the old village code still resolves
