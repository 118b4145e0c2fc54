"""Inspection rounds (联检轮次) and their records."""
from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, insert, select, text

from registry.changes import audit
from registry.db.tables import inspection_rounds
from registry.errors import Conflict, InvalidQuery, NotFound

_CN_DIGITS = "零一二三四五六七八九十"


def round_name(number: int) -> str:
    cn = _CN_DIGITS[number] if number <= 10 else str(number)
    return f"第{cn}轮界线联合检查"


def create_round(conn: Connection, number: int, *, year: int, year_to: int | None = None,
                 scope: str | None = None, actor: str) -> dict[str, Any]:
    if not 1 <= number <= 99:
        raise InvalidQuery("轮次应在 1 到 99 之间 / round number must be 1..99", parameter="round")
    if year_to is not None and year_to < year:
        raise InvalidQuery("结束年份早于开始年份 / year_to is before year", parameter="year_to")
    if conn.execute(select(inspection_rounds.c.id).where(inspection_rounds.c.number == number)).first():
        raise Conflict(f"第 {number} 轮已存在 / round {number} already exists", parameter="round")
    rid = conn.execute(insert(inspection_rounds).values(
        number=number, name=round_name(number), year=year, year_to=year_to, scope=scope,
    ).returning(inspection_rounds.c.id)).scalar_one()
    audit(conn, actor=actor, action="inspection.round.create", entity_kind="inspection_round", entity_id=rid,
          details={"number": number})
    return get_round(conn, number)


def get_round(conn: Connection, number: int) -> dict[str, Any]:
    row = conn.execute(select(inspection_rounds).where(inspection_rounds.c.number == number)).mappings().first()
    if row is None:
        raise NotFound(f"第 {number} 轮联检不存在（先运行 registry inspection round create） / "
                       f"no inspection round {number} (create it with `registry inspection round create`)",
                       parameter="round")
    return _round(row)


def _round(row) -> dict[str, Any]:
    return {"id": row["id"], "number": row["number"], "name": row["name"], "year": row["year"],
            "year_to": row["year_to"], "scope": row["scope"], "status": row["status"]}


def list_rounds(conn: Connection) -> list[dict[str, Any]]:
    rows = conn.execute(select(inspection_rounds).order_by(inspection_rounds.c.number)).mappings()
    return [_round(r) for r in rows]


def list_records(conn: Connection, number: int, *, line_code: str | None = None,
                 limit: int = 1000) -> list[dict[str, Any]]:
    rnd = get_round(conn, number)
    rows = conn.execute(text("""
        SELECT r.id, r.finding, r.condition, r.recorded_on, r.left_team, r.right_team, r.description AS notes,
               r.sheet_ref, r.reference_measurements, r.change_set_id, l.code AS line_code, m.number AS marker_number,
               ST_X(r.geom) AS lon, ST_Y(r.geom) AS lat
        FROM inspection_records r
        LEFT JOIN boundary_markers m ON m.id = r.marker_id
        LEFT JOIN boundary_lines l ON l.id = coalesce(r.boundary_line_id, m.boundary_line_id)
        WHERE r.round_id = :rid AND (CAST(:line AS text) IS NULL OR l.code = :line)
        ORDER BY r.id LIMIT :limit
    """), {"rid": rnd["id"], "line": line_code, "limit": limit}).mappings()
    out = []
    for r in rows:
        d = dict(r)
        d["recorded_on"] = d["recorded_on"].isoformat() if d["recorded_on"] else None
        d["lon"] = round(d["lon"], 7) if d["lon"] is not None else None
        d["lat"] = round(d["lat"], 7) if d["lat"] is not None else None
        out.append(d)
    return out
