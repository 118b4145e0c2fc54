""""As of a date": what the registry says was in force on a day, from the versioned rows.

Every versioned table keeps its current row and its earlier versions in `<table>_history`, each
with `valid_from`/`valid_to`. A version is in force on day D (China Standard Time) when it began
before the end of D and had not ended by then. Versions written by an adjustment begin on the
adjustment's date (or its known upper bound), not when it was typed in (migration 0008), so
`as_of` follows the adjustments. The reference divisions' first versions begin at
`REFERENCE_START` (1900-01-01), the registry's mark for "in force since before its records; start
unknown".

Also here: the old codes and the changes shown with a division, and the text a doorplate was
printed with.
"""
from __future__ import annotations

from datetime import date, datetime, timezone
from typing import Any

from sqlalchemy import Connection, text

from registry.divisions import match_code, primary_code
from registry.errors import InvalidQuery, NotFound

TIME_ZONE = "Asia/Shanghai"
REFERENCE_START = datetime(1900, 1, 1, tzinfo=timezone.utc)

_COLUMNS = "id, parent_id, level, name, full_name, status, nbs_code, mca_code, version, valid_from, valid_to"
# The version of each division in force at :t (the end of the day asked for).
_AT = f"""
    SELECT DISTINCT ON (id) {_COLUMNS} FROM (
        SELECT {_COLUMNS} FROM divisions_history WHERE {{where}}
        UNION ALL SELECT {_COLUMNS} FROM divisions WHERE {{where}}) v
    WHERE valid_from < :t AND (valid_to IS NULL OR valid_to >= :t)
    ORDER BY id, version DESC"""


def parse_as_of(value: str | date | None, parameter: str = "as_of") -> date | None:
    if value is None or isinstance(value, date):
        return value
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise InvalidQuery(f"{parameter} 应为日期 YYYY-MM-DD / {parameter} must be a date YYYY-MM-DD, got {value!r}",
                           parameter=parameter) from None


def _end_of(conn: Connection, day: date):
    return conn.execute(text("SELECT (CAST(:d AS date) + 1)::timestamp AT TIME ZONE :tz"),
                        {"d": day, "tz": TIME_ZONE}).scalar_one()


def _version(conn: Connection, division_id: int, t) -> Any:
    return conn.execute(text(_AT.format(where="id = :id")), {"id": division_id, "t": t}).mappings().first()


def _ref(row) -> dict[str, Any]:
    return {"code": primary_code(row["mca_code"], row["nbs_code"]) or None, "name": row["name"], "level": row["level"]}


def _period(row) -> dict[str, Any]:
    start = row["valid_from"]
    return {"version": row["version"],
            "valid_from": None if start <= REFERENCE_START else start.isoformat(),
            "start_unknown": start <= REFERENCE_START,
            "valid_to": row["valid_to"].isoformat() if row["valid_to"] else None}


def division_as_of(conn: Connection, code: str, day: date, *, authority: str | None = None) -> dict[str, Any]:
    """A division as the registry says it was on `day`: name, codes, parent chain and children."""
    m = match_code(conn, code, authority=authority)
    t = _end_of(conn, day)
    row = _version(conn, m.division_id, t)
    if row is None:
        raise NotFound(f"区划代码 {code} 在 {day} 时尚未登记 / the division {code} was not in the registry on {day}",
                       parameter="as_of")
    parents, cur = [], row["parent_id"]
    while cur is not None and len(parents) < 8:
        p = _version(conn, cur, t)
        if p is None:
            break
        parents.append(_ref(p))
        cur = p["parent_id"]
    children = conn.execute(text(_AT.format(where="parent_id = :id")), {"id": m.division_id, "t": t}).mappings().all()
    return {
        "id": row["id"], "code": primary_code(row["mca_code"], row["nbs_code"]) or None, "name": row["name"],
        "full_name": row["full_name"], "level": row["level"], "status": row["status"],
        "codes": {"nbs2023": row["nbs_code"], "mca2025": row["mca_code"]},
        "parents": parents[::-1],
        "children": sorted((_ref(c) for c in children if c["status"] == "active"),
                           key=lambda c: c["code"] or ""),
        "as_of": {"date": day.isoformat(), **_period(row)},
        "matched": {"code": code, "authority": m.authority},
    }


def address_as_of(conn: Connection, address_id: int, day: date) -> dict[str, Any]:
    """An address as the registry says it was on `day` (a GeoJSON Feature)."""
    t = _end_of(conn, day)
    cols = ("id, division_id, full_text, code, status, group_no, number, building, unit, room, version, "
            "valid_from, valid_to, ST_X(geom) AS lon, ST_Y(geom) AS lat")
    row = conn.execute(text(f"""
        SELECT * FROM (SELECT {cols} FROM addresses_history WHERE id = :id
                       UNION ALL SELECT {cols} FROM addresses WHERE id = :id) v
        WHERE valid_from < :t AND (valid_to IS NULL OR valid_to >= :t)
        ORDER BY version DESC LIMIT 1"""), {"id": address_id, "t": t}).mappings().first()
    if row is None:
        exists = conn.execute(text("SELECT 1 FROM addresses WHERE id = :id"), {"id": address_id}).first()
        if exists is None:
            raise NotFound(f"地址 id {address_id} 不存在 / no address with id {address_id}", parameter="id")
        raise NotFound(f"地址 id {address_id} 在 {day} 时尚未登记 / address {address_id} was not in the registry on "
                       f"{day}", parameter="as_of")
    village = _version(conn, row["division_id"], t)
    props = {
        "address": row["full_text"], "code": row["code"], "status": row["status"],
        "division_code": village["nbs_code"] if village else None, "division_name": village["name"] if village else None,
        "group": row["group_no"] or None, "number": row["number"] or None, "building": row["building"] or None,
        "unit": row["unit"] or None, "room": row["room"] or None,
        "as_of": {"date": day.isoformat(), **_period(row)},
    }
    geometry = None
    if row["lon"] is not None:
        geometry = {"type": "Point", "coordinates": [round(row["lon"], 7), round(row["lat"], 7)]}
    return {"type": "Feature", "id": row["id"], "geometry": geometry, "properties": props}


def former_code(conn: Connection, code: str, division_id: int) -> dict[str, Any] | None:
    """When `code` is a code the division no longer carries: the code, its authority and end."""
    row = conn.execute(text("""
        SELECT c.code, c.authority, c.valid_to FROM division_codes c JOIN divisions d ON d.id = c.division_id
        WHERE c.code = :code AND c.division_id = :id
          AND c.code IS DISTINCT FROM d.nbs_code AND c.code IS DISTINCT FROM d.mca_code
        ORDER BY c.valid_to DESC NULLS FIRST LIMIT 1"""), {"code": code, "id": division_id}).mappings().first()
    if row is None:
        return None
    return {"code": row["code"], "authority": row["authority"],
            "valid_to": row["valid_to"].isoformat() if row["valid_to"] else None}


def printed_text(conn: Connection, address_id: int, issued_at: datetime) -> str | None:
    """The address text as it stood when a plate was issued, if it has changed since.

    Versions carry valid time (an adjustment's date), so the text of the plate's day is found by
    when each version was *written*: the last version whose change set was opened before the plate
    was issued (a version without a change set counts as older)."""
    if isinstance(issued_at, str):  # the scan row comes as JSON
        issued_at = datetime.fromisoformat(issued_at)
    rows = conn.execute(text("""
        SELECT v.full_text, c.created_at FROM (
            SELECT version, full_text, change_set_id FROM addresses_history WHERE id = :id
            UNION ALL SELECT version, full_text, change_set_id FROM addresses WHERE id = :id) v
        LEFT JOIN change_sets c ON c.id = v.change_set_id
        ORDER BY v.version"""), {"id": address_id}).all()
    return printed_among([(r.full_text, r.created_at) for r in rows], issued_at)


def printed_among(versions, issued_at: datetime | str) -> str | None:
    """`printed_text` over the address's (full_text, change set created_at) versions, oldest first
    (timestamps may come as ISO strings, as the doorplate scan's JSON row gives them)."""
    if len(versions) < 2:
        return None
    if isinstance(issued_at, str):
        issued_at = datetime.fromisoformat(issued_at)
    printed = versions[0][0]
    for full_text, created_at in versions[1:]:
        if isinstance(created_at, str):
            created_at = datetime.fromisoformat(created_at)
        if created_at is not None and created_at >= issued_at:
            break
        printed = full_text
    return printed if printed != versions[-1][0] else None
