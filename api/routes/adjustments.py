"""Routes: division adjustments (区划调整). Applying one needs the editor scope; reading them is public."""
from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from api.deps import DbConn, scope
from registry import adjustments as adj
from registry.adjustment_history import list_adjustments
from registry.divisions import AUTHORITY_HELP, match_code, validate_authority
from registry.errors import InvalidQuery
from registry.keys import ApiKey

router = APIRouter(prefix="/v1", tags=["division adjustments"])


class PartIn(BaseModel):
    name: str
    code: str = Field(description="the new township's 9-digit code (the township's own code keeps it)")
    mca_code: str | None = None
    villages: list[str] = Field(description="the 12-digit codes of its villages")


class AdjustmentIn(BaseModel):
    kind: Literal["merge", "split", "rename", "recode", "transfer"]
    approval_ref: str | None = Field(None, description="批复文号")
    effective: date | None = Field(None, description="the date it took effect")
    known_in_force_by: date | None = Field(None, description="the document is unknown: in force by (upper bound)")
    note: str | None = None
    authority: str | None = Field(None, description=AUTHORITY_HELP)
    code: str | None = Field(None, description="rename/recode/split: the division")
    name: str | None = Field(None, description="rename: the new name; merge: a new name for the result")
    new_code: str | None = Field(None, description="recode (rename, merge): the new code")
    new_mca_code: str | None = None
    townships: list[str] = Field(default_factory=list, description="merge: the townships merged")
    into: str | None = Field(None, description="merge: the township that stays")
    parts: list[PartIn] = Field(default_factory=list, description="split: the new townships")
    villages: list[str] = Field(default_factory=list, description="transfer: the villages moved")
    to: str | None = Field(None, description="transfer: the township they go to")
    from_code: str | None = Field(None, alias="from", description="transfer: check they are all in this township")
    to_name: str | None = Field(None, description="transfer: set up a new township of this name")
    village_codes: dict[str, str] = Field(default_factory=dict, description="OLD=NEW village codes the document names")


def _need(value, field: str):
    if value in (None, "", []):
        raise InvalidQuery(f"缺少 {field} / {field} is required for this kind of adjustment", parameter=field)
    return value


@router.post("/adjustments", summary="Apply a division adjustment as one change set (scope: editor)", status_code=201)
def apply_adjustment(conn: DbConn, body: AdjustmentIn, key: ApiKey = scope("editor")) -> dict:
    dating = adj.Dating(approval_ref=body.approval_ref, effective=body.effective,
                        known_in_force_by=body.known_in_force_by, note=body.note)
    actor, auth = f"api:{key.agency}", body.authority
    if body.kind == "merge":
        result = adj.merge(conn, [*body.townships, _need(body.into, "into")], into=body.into, name=body.name,
                           new_code=body.new_code, dating=dating, actor=actor, authority=auth)
    elif body.kind == "split":
        parts = [adj.Part(p.name, p.code, tuple(p.villages), p.mca_code) for p in body.parts]
        result = adj.split(conn, _need(body.code, "code"), parts, dating=dating, actor=actor, authority=auth)
    elif body.kind == "rename":
        result = adj.rename(conn, _need(body.code, "code"), name=_need(body.name, "name"), new_code=body.new_code,
                            new_mca_code=body.new_mca_code, village_codes=body.village_codes, dating=dating,
                            actor=actor, authority=auth)
    elif body.kind == "recode":
        result = adj.recode(conn, _need(body.code, "code"), new_code=_need(body.new_code, "new_code"),
                            new_mca_code=body.new_mca_code, village_codes=body.village_codes, dating=dating,
                            actor=actor, authority=auth)
    else:
        result = adj.transfer(conn, _need(body.villages, "villages"), to=_need(body.to, "to"),
                              from_code=body.from_code, to_name=body.to_name, codes=body.village_codes,
                              dating=dating, actor=actor, authority=auth)
    return result.as_dict()


@router.get("/adjustments", summary="Division adjustments, newest first")
def adjustments(
    conn: DbConn,
    division: Annotated[str | None, Query(description="only those that touched this division (code)")] = None,
    authority: Annotated[str | None, Query(description=AUTHORITY_HELP)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> dict:
    validate_authority(authority)  # refused even without a division, never ignored
    division_id = match_code(conn, division, authority=authority, parameter="division").division_id \
        if division else None
    return {"adjustments": list_adjustments(conn, division_id=division_id, limit=limit)}
