"""Change sets and the audit log: every write to the registry happens inside one change set.

A change set moves proposed → approved → applied (or rejected). Bulk loads by an editor are
opened and applied in the same transaction as the rows they write, so a crash leaves neither.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable

from sqlalchemy import Connection, func, insert, select, update

from registry.db.tables import audit_log, change_sets
from registry.errors import Conflict, NotFound
from registry.faults import checkpoint

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
# Kinds an editor reviews before they change anything: they must be approved before they are
# applied. Other kinds (bulk loads by an editor) are opened and applied in one transaction.
REVIEWED_KINDS = {"inspection"}


@dataclass(frozen=True)
class ChangeSet:
    id: int
    kind: str
    status: str
    author: str
    source: str | None
    counts: dict[str, Any]
    reason: str | None = None
    approval_ref: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    created_at: datetime | None = None
    approved_by: str | None = None
    approved_at: datetime | None = None
    applied_by: str | None = None
    applied_at: datetime | None = None
    rejected_by: str | None = None
    rejected_at: datetime | None = None

    def summary(self) -> dict[str, Any]:
        """The change set without its (possibly large) details, as JSON-ready values."""
        out = {k: getattr(self, k) for k in ("id", "kind", "status", "author", "source", "counts", "reason",
                                             "approval_ref", "approved_by", "applied_by", "rejected_by")}
        for k in ("created_at", "approved_at", "applied_at", "rejected_at"):
            v = getattr(self, k)
            out[k] = v.isoformat() if v else None
        return out


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
    row = conn.execute(
        select(change_sets.c.status, change_sets.c.kind).where(change_sets.c.id == cs_id).with_for_update()
    ).first()
    if row is None:
        raise NotFound(f"变更集不存在 / change set {cs_id} not found", parameter="change_set")
    current, kind = row
    allowed = _NEXT.get(current, set())
    direct = current == "proposed" and status == "applied" and kind not in REVIEWED_KINDS
    if status not in allowed and not direct:
        hint = "（须先审批 / it must be approved first）" if current == "proposed" and status == "applied" else ""
        raise Conflict(f"变更集 {cs_id} 状态为 {current}，不能改为 {status}{hint} / "
                       f"cannot move change set {cs_id} from {current} to {status}",
                       parameter="change_set", entity=f"change_set:{cs_id}", status_now=current)
    values: dict[str, Any] = {"status": status}
    if status == "approved":
        values.update(approved_at=func.now(), approved_by=actor)
    if status == "applied":
        values.update(applied_at=func.now(), applied_by=actor)
    if status == "rejected":
        values.update(rejected_at=func.now(), rejected_by=actor)
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
    return _change_set(row)


def _change_set(row) -> ChangeSet:
    return ChangeSet(**{k: row[k] for k in ChangeSet.__dataclass_fields__})


def list_change_sets(conn: Connection, *, kind: str | None = None, status: str | None = None,
                     limit: int = 50) -> list[ChangeSet]:
    """The newest change sets first, optionally of one kind and status."""
    q = select(change_sets).order_by(change_sets.c.id.desc()).limit(limit)
    if kind:
        q = q.where(change_sets.c.kind == kind)
    if status:
        q = q.where(change_sets.c.status == status)
    return [_change_set(r) for r in conn.execute(q).mappings()]


# Appliers of reviewed kinds: kind -> fn(conn, change_set, actor) -> counts. Each kind's module
# registers itself; `_APPLIER_MODULES` are imported on first use so changes.py imports none.
_APPLIERS: dict[str, Callable[[Connection, ChangeSet, str], dict]] = {}
_APPLIER_MODULES = ("registry.inspection.apply",)


def register_applier(kind: str, fn: Callable[[Connection, ChangeSet, str], dict]) -> None:
    _APPLIERS[kind] = fn


def approve(conn: Connection, cs_id: int, *, actor: str) -> ChangeSet:
    transition(conn, cs_id, "approved", actor=actor)
    return get_change_set(conn, cs_id)


def reject(conn: Connection, cs_id: int, *, actor: str, reason: str | None = None) -> ChangeSet:
    transition(conn, cs_id, "rejected", actor=actor, counts=None)
    if reason:
        conn.execute(update(change_sets).where(change_sets.c.id == cs_id)
                     .values(details=change_sets.c.details.op("||")(func.jsonb_build_object("rejected_reason", reason))))
    return get_change_set(conn, cs_id)


def apply_reviewed(conn: Connection, cs_id: int, *, actor: str) -> tuple[ChangeSet, bool]:
    """Apply an approved change set of a reviewed kind in the caller's transaction.

    Returns (change set, applied now). Applying one already applied does nothing (False); the
    kind's applier raises Conflict when the registry moved on since the diff was computed.
    """
    row = conn.execute(select(change_sets).where(change_sets.c.id == cs_id).with_for_update()).mappings().first()
    if row is None:
        raise NotFound(f"变更集不存在 / change set {cs_id} not found", parameter="change_set")
    cs = _change_set(row)
    if cs.status == "applied":
        return cs, False
    if cs.status != "approved":
        transition(conn, cs_id, "applied", actor=actor)  # raises the state machine's Conflict
    import importlib

    for name in _APPLIER_MODULES:
        importlib.import_module(name)
    fn = _APPLIERS.get(cs.kind)
    if fn is None:
        raise Conflict(f"变更集 {cs_id} 的类型 {cs.kind} 不能在此应用 / change sets of kind {cs.kind} "
                       "are applied by their own command", parameter="change_set")
    counts = fn(conn, cs, actor)
    checkpoint("changes.applier_done")
    transition(conn, cs_id, "applied", actor=actor, counts={**cs.counts, **counts})
    checkpoint("changes.applied")
    return get_change_set(conn, cs_id), True
