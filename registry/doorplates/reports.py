"""Problem reports from the scan page: damaged, wrong, missing, faded.

A report stores the plate, the kind, an optional free text (at most 500 characters) and the time —
nothing about the person (no name, phone, IP or device). Phone and ID-card numbers typed into the
text are blanked before it is stored. Reports are listed per division for the civil-affairs office
and closed when the plate is replaced (or revoked).
"""
from __future__ import annotations

import re
import unicodedata
from typing import Any

from sqlalchemy import Connection, text

from registry.addresses import Page
from registry.divisions import resolve_division_id
from registry.doorplates.plates import plate_code
from registry.errors import InvalidQuery

REPORT_KINDS = ("damaged", "wrong", "missing", "faded")
REPORT_KIND_NAMES = {"damaged": "损坏", "wrong": "信息有误", "missing": "缺失", "faded": "褪色"}
REPORT_STATUSES = ("open", "closed")
MAX_TEXT = 500

# Personal data people type by habit: mainland mobile numbers, landlines, ID-card numbers, e-mail.
_PERSONAL = re.compile(
    r"(?<!\d)(?:1[3-9]\d{9}|0\d{2,3}-?\d{7,8}|\d{17}[\dXx]|\d{15})(?!\d)|[\w.+-]+@[\w-]+\.[\w.]+"
)
_REDACTED = "[已隐去]"


def clean_report_text(value: str | None) -> str | None:
    if value is None:
        return None
    value = unicodedata.normalize("NFC", value)
    value = "".join(ch for ch in value if ch in "\n\t" or unicodedata.category(ch)[0] != "C").strip()
    if len(value) > MAX_TEXT:
        raise InvalidQuery(f"说明不能超过 {MAX_TEXT} 字 / text must be at most {MAX_TEXT} characters "
                           f"(got {len(value)})", parameter="text")
    value = _PERSONAL.sub(_REDACTED, value)
    return value or None


def validate_report_kind(kind: str | None) -> str:
    if kind not in REPORT_KINDS:
        raise InvalidQuery(
            f"问题类型应为 {'/'.join(REPORT_KINDS)} / kind must be one of {', '.join(REPORT_KINDS)}, got {kind!r}",
            parameter="kind",
        )
    return kind


def submit_report(conn: Connection, plate_id: int, kind: str | None, body: str | None) -> dict[str, Any]:
    kind = validate_report_kind(kind)
    body = clean_report_text(body)
    row = conn.execute(text("""
        INSERT INTO doorplate_reports (plate_id, kind, text) VALUES (:plate_id, :kind, :text)
        RETURNING id, created_at, status
    """), {"plate_id": plate_id, "kind": kind, "text": body}).one()
    return {"id": row.id, "plate_id": plate_id, "kind": kind, "text": body, "status": row.status,
            "created_at": row.created_at.isoformat()}


def close_reports(conn: Connection, plate_id: int, *, reason: str, by_plate_id: int | None = None) -> int:
    return conn.execute(text("""
        UPDATE doorplate_reports SET status = 'closed', closed_at = now(), closed_reason = :reason,
               closed_by_plate_id = :by
        WHERE plate_id = :plate_id AND status = 'open'
    """), {"plate_id": plate_id, "reason": reason, "by": by_plate_id}).rowcount


def list_reports(conn: Connection, division: str, page: Page, *, status: str | None = "open",
                 authority: str | None = None) -> tuple[list[dict], int]:
    """Reports on plates of addresses in a division and below, newest first; (records, total)."""
    if status is not None and status not in REPORT_STATUSES:
        raise InvalidQuery(f"status 应为 {'/'.join(REPORT_STATUSES)} / status must be one of "
                           f"{', '.join(REPORT_STATUSES)}", parameter="status")
    division_id, _ = resolve_division_id(conn, division, parameter="division", authority=authority)
    where = """
        FROM doorplate_reports r
        JOIN doorplates d ON d.id = r.plate_id
        JOIN addresses a ON a.id = d.address_id
        WHERE a.division_id IN (WITH RECURSIVE tree AS (SELECT id FROM divisions WHERE id = :division_id
                                UNION ALL SELECT c.id FROM divisions c JOIN tree ON c.parent_id = tree.id)
                                SELECT id FROM tree)
          AND (CAST(:status AS text) IS NULL OR r.status = :status)
    """
    params = {"division_id": division_id, "status": status, "limit": page.limit, "offset": page.offset}
    total = conn.execute(text("SELECT count(*) " + where), params).scalar_one()
    rows = conn.execute(text(f"""
        SELECT r.id, r.plate_id, r.kind, r.text, r.status, r.created_at, r.closed_at, r.closed_reason,
               r.closed_by_plate_id, d.kind AS plate_kind, d.status AS plate_status, a.id AS address_id,
               a.full_text
        {where}
        ORDER BY r.created_at DESC, r.id DESC LIMIT :limit OFFSET :offset
    """), params).mappings().all()
    return [
        {
            "id": r["id"],
            "plate": {"id": r["plate_id"], "code": plate_code(r["plate_id"]), "kind": r["plate_kind"],
                      "status": r["plate_status"]},
            "address": {"id": r["address_id"], "text": r["full_text"]},
            "kind": r["kind"],
            "kind_name": REPORT_KIND_NAMES[r["kind"]],
            "text": r["text"],
            "status": r["status"],
            "created_at": r["created_at"].isoformat(),
            "closed_at": r["closed_at"].isoformat() if r["closed_at"] else None,
            "closed_reason": r["closed_reason"],
            "closed_by_plate": ({"id": r["closed_by_plate_id"], "code": plate_code(r["closed_by_plate_id"])}
                                if r["closed_by_plate_id"] else None),
        }
        for r in rows
    ], total
