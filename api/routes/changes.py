"""Change sets over HTTP (scope editor): read, list, approve, reject, apply.

Each POST runs in the request's one transaction (committed by api.deps.get_conn when the
handler returns); the key's agency is recorded as the actor. A stale change set is a 409 naming
the conflicting entity; applying an applied one answers 200 with `applied_now: false`.
"""
from typing import Annotated, Optional

from fastapi import APIRouter, Body, Path, Query

from api.deps import DbConn, scope
from registry.changes import apply_reviewed, approve, get_change_set, list_change_sets, reject
from registry.keys import ApiKey

router = APIRouter(prefix="/v1", tags=["change sets"])

Editor = Annotated[ApiKey, scope("editor")]
CsId = Annotated[int, Path(ge=1)]


def _actor(key: ApiKey) -> str:
    return f"{key.agency} ({key.prefix})"


@router.get("/change-sets", summary="Change sets, newest first (scope: editor)")
def change_sets(conn: DbConn, key: Editor, kind: Optional[str] = None, status: Optional[str] = None,
                limit: Annotated[int, Query(ge=1, le=500)] = 50) -> dict:
    return {"change_sets": [cs.summary() for cs in list_change_sets(conn, kind=kind, status=status, limit=limit)]}


@router.get("/change-sets/{change_set_id}", summary="A change set with its diff (scope: editor)")
def change_set(conn: DbConn, key: Editor, change_set_id: CsId) -> dict:
    cs = get_change_set(conn, change_set_id)
    return {**cs.summary(), "details": cs.details}


@router.post("/change-sets/{change_set_id}/approve", summary="Approve a proposed change set (scope: editor)")
def approve_change_set(conn: DbConn, key: Editor, change_set_id: CsId) -> dict:
    return approve(conn, change_set_id, actor=_actor(key)).summary()


@router.post("/change-sets/{change_set_id}/reject", summary="Reject a change set (scope: editor)")
def reject_change_set(conn: DbConn, key: Editor, change_set_id: CsId,
                      reason: Annotated[Optional[str], Body(embed=True, max_length=500)] = None) -> dict:
    return reject(conn, change_set_id, actor=_actor(key), reason=reason).summary()


@router.post("/change-sets/{change_set_id}/apply", summary="Apply an approved change set (scope: editor)")
def apply_change_set(conn: DbConn, key: Editor, change_set_id: CsId) -> dict:
    cs, now = apply_reviewed(conn, change_set_id, actor=_actor(key))
    return {**cs.summary(), "applied_now": now}
