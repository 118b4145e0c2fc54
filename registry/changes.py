"""Change sets and the audit log: every write to the registry happens inside one change set.

A change set moves proposed → approved → applied (or rejected). Bulk loads by an editor are
opened and applied in the same transaction as the rows they write, so a crash leaves neither.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, func, insert, select, update

from registry.db.tables import audit_log, change_sets
from registry.errors import Conflict, NotFound

log = logging.getLogger(__name__)

KINDS = {
    "load_reference",
    "load_divisions",
    "load_addresses",
    "load_place_names",
    "load_facilities",
    "load_heritage",
    "doorplates",
    "inspection",
    "adjustment",
    "edit",
}
_NEXT = {"proposed": {"approved", "rejected"}, "approved": {"applied", "rejected"}}


@dataclass(frozen=True)
class ChangeSet:
    id: int
    kind: str
    status: str
    author: str
    source: str | None
    counts: dict[str, Any]


def open_change_set(
    conn: Connection,
    *,
    kind: str,
    author: str,
    source: str | None = None,
    reason: str | None = None,
    approval_ref: str | None = None,
    checksum: str | None = None,
    details: dict[str, Any] | None = None,
) -> int:
    if kind not in KINDS:
        raise ValueError(f"unknown change-set kind {kind!r}")
    cs_id = conn.execute(
        insert(change_sets)
        .values(
            kind=kind,
            author=author,
            source=source,
            reason=reason,
            approval_ref=approval_ref,
            checksum=checksum,
            details=details or {},
        )
        .returning(change_sets.c.id)
    ).scalar_one()
    audit(conn, actor=author, action=f"{kind}.open", entity_kind="change_set", entity_id=cs_id,
          change_set_id=cs_id, details={"source": source})
    return cs_id


def transition(conn: Connection, cs_id: int, status: str, *, actor: str, counts: dict | None = None) -> None:
    """Move a change set to `status`, refusing moves the workflow does not allow."""
    current = conn.execute(
        select(change_sets.c.status).where(change_sets.c.id == cs_id).with_for_update()
    ).scalar_one_or_none()
    if current is None:
        raise NotFound(f"变更集不存在 / change set {cs_id} not found", parameter="change_set")
    allowed = _NEXT.get(current, set())
    if status not in allowed and not (current == "proposed" and status == "applied"):
        raise Conflict(f"变更集 {cs_id} 状态为 {current}，不能改为 {status} / cannot move change set from {current} to {status}")
    values: dict[str, Any] = {"status": status}
    if status == "approved":
        values.update(approved_at=func.now(), approved_by=actor)
    if status == "applied":
        values["applied_at"] = func.now()
    if counts is not None:
        values["counts"] = counts
    conn.execute(update(change_sets).where(change_sets.c.id == cs_id).values(**values))
    audit(conn, actor=actor, action=f"change_set.{status}", entity_kind="change_set", entity_id=cs_id,
          change_set_id=cs_id, details=counts or {})


def apply_change_set(conn: Connection, cs_id: int, *, actor: str, counts: dict | None = None) -> None:
    transition(conn, cs_id, "applied", actor=actor, counts=counts)


def audit(
    conn: Connection,
    *,
    actor: str,
    action: str,
    entity_kind: str | None = None,
    entity_id: int | None = None,
    change_set_id: int | None = None,
    details: dict | None = None,
) -> None:
    conn.execute(
        insert(audit_log).values(
            actor=actor,
            action=action,
            entity_kind=entity_kind,
            entity_id=entity_id,
            change_set_id=change_set_id,
            details=details or {},
        )
    )


def get_change_set(conn: Connection, cs_id: int) -> ChangeSet:
    row = conn.execute(select(change_sets).where(change_sets.c.id == cs_id)).mappings().first()
    if row is None:
        raise NotFound(f"变更集不存在 / change set {cs_id} not found", parameter="change_set")
    return ChangeSet(row["id"], row["kind"], row["status"], row["author"], row["source"], row["counts"])
