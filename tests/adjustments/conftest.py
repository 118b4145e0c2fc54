"""Builders for adjustment tests: a few addresses with plates in real reference villages, inserted
in the test's rolled-back transaction through the normal loaders' shape (code = village code +
sequence, standard text from compose_address)."""
from __future__ import annotations

from dataclasses import dataclass

import pytest
from sqlalchemy import Connection, text

from registry.addresses import address_code
from registry.doorplates import KeyRing, issue_plates, live_plate_for
from registry.settings import Settings
from registry.text import compose_address


@dataclass(frozen=True)
class Village:
    id: int
    code: str
    name: str
    township_id: int
    township: str
    township_code: str
    county: str


def find_village(conn: Connection, township: str, index: int = 0) -> Village:
    row = conn.execute(text("""
        SELECT v.id, v.nbs_code AS code, v.name, t.id AS township_id, t.name AS township,
               t.nbs_code AS township_code, c.name AS county
        FROM divisions v JOIN divisions t ON t.id = v.parent_id JOIN divisions c ON c.id = t.parent_id
        WHERE t.name = :t AND v.status = 'active' ORDER BY v.nbs_code OFFSET :i LIMIT 1"""),
        {"t": township, "i": index}).mappings().one()
    return Village(**row)


@pytest.fixture()
def village(conn: Connection):
    """village("和孚镇", 0): a real reference village of a township, by code order."""
    return lambda township, index=0: find_village(conn, township, index)


@pytest.fixture()
def app_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"key_cache_seconds": 0.0, "doorplate_scan_flush_seconds": 0.0})


@pytest.fixture()
def make_address(conn: Connection):
    """A rural door (`…祝良村3组12号`) or a street door in a village; returns its id."""

    def _make(v: Village, number: int, *, street: str | None = None, group: str = "3") -> int:
        street_id = None
        if street:
            street_id = conn.execute(text("""
                SELECT id FROM place_names WHERE category = 'road' AND name = :n AND division_id = :d"""),
                {"n": street, "d": v.township_id}).scalar()
            if street_id is None:
                street_id = conn.execute(text("""
                    INSERT INTO place_names (category, name, division_id, county_id)
                    SELECT 'road', :n, :d, parent_id FROM divisions WHERE id = :d RETURNING id"""),
                    {"n": street, "d": v.township_id}).scalar_one()
        seq = conn.execute(text("SELECT coalesce(max(local_seq), 0) + 1 FROM addresses WHERE division_id = :d"),
                           {"d": v.id}).scalar_one()
        group_no = "" if street else f"{group}组"
        full = compose_address(county=v.county, township=v.township, village=v.name, street=street,
                               group=group_no or None, number=f"{number}号")
        return conn.execute(text("""
            INSERT INTO addresses (division_id, street_id, group_no, number, number_main, full_text, code,
                                   local_seq, geom)
            VALUES (:d, :s, :g, :n, :m, :t, :c, :q, ST_SetSRID(ST_MakePoint(120.4, 30.8), 4490)) RETURNING id"""),
            {"d": v.id, "s": street_id, "g": group_no, "n": f"{number}号", "m": number, "t": full,
             "c": address_code(v.code, seq), "q": seq}).scalar_one()

    return _make


@pytest.fixture()
def plate_for(conn: Connection):
    ring = KeyRing(ttl=0)

    def _issue(address_id: int) -> str:
        issue_plates(conn, actor="tests", address_id=address_id, kind="door")
        plate_id = live_plate_for(conn, address_id, "door")
        key_id = conn.execute(text("SELECT key_id FROM doorplates WHERE id = :id"), {"id": plate_id}).scalar_one()
        return ring.token_for(conn, plate_id, key_id)

    return _issue
