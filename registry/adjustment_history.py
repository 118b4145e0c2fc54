"""The division adjustments read back: the list (newest first), the ones that touched a division,
an abolished division's successors, and what a division answer adds after adjustments."""
from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, text

from registry.adjustment_steps import iso_date


def list_adjustments(conn: Connection, *, division_id: int | None = None, limit: int = 100) -> list[dict[str, Any]]:
    rows = conn.execute(text("""
        SELECT a.*, c.status AS change_set_status, c.author FROM division_adjustments a
        JOIN change_sets c ON c.id = a.change_set_id
        WHERE CAST(:d AS bigint) IS NULL OR a.details::text ~ ('"id": ' || CAST(:d AS text) || '[,}]')
        ORDER BY coalesce(a.effective_on, a.known_in_force_by) DESC, a.id DESC LIMIT :limit"""),
        {"d": division_id, "limit": limit}).mappings().all()
    return [_row_dict(r) for r in rows]


def _row_dict(r) -> dict[str, Any]:
    return {
        "id": r["id"], "change_set_id": r["change_set_id"], "kind": r["kind"], "approval_ref": r["approval_ref"],
        "effective_on": iso_date(r["effective_on"]), "known_in_force_by": iso_date(r["known_in_force_by"]),
        "date_is_upper_bound": r["effective_on"] is None, "note": r["note"], "details": r["details"],
        "author": r["author"],
    }


def changes_of_division(conn: Connection, division_id: int) -> list[dict[str, Any]]:
    """The adjustments that touched a division (newest first), short form for a division answer."""
    out = []
    for a in list_adjustments(conn, division_id=division_id, limit=20):
        out.append({k: a[k] for k in ("id", "kind", "approval_ref", "effective_on", "known_in_force_by",
                                      "date_is_upper_bound", "note", "change_set_id")})
    return out


def successors_of(conn: Connection, division_id: int) -> list[dict[str, Any]]:
    rows = conn.execute(text("""
        SELECT d.id, d.name, d.level, coalesce(d.mca_code, d.nbs_code) AS code, s.adjustment_id
        FROM division_successors s JOIN divisions d ON d.id = s.successor_id
        WHERE s.division_id = :id ORDER BY d.id"""), {"id": division_id}).mappings().all()
    return [dict(r) for r in rows]


def adjustment_context(conn: Connection, code: str, division_id: int, status: str) -> dict[str, Any]:
    """What a division answer adds after adjustments: the former code it was asked by, the
    successors of an abolished division, and the adjustments that touched it."""
    from registry.as_of import former_code

    out: dict[str, Any] = {}
    former = former_code(conn, code, division_id)
    if former:
        out["former_code"] = former
    if status == "abolished":
        out["successors"] = successors_of(conn, division_id)
    changes = changes_of_division(conn, division_id)
    if changes:
        out["changes"] = changes
    return out
