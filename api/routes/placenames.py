"""Place names (地名): search by text, category and division; one name with its former names and
history; naming checks for a proposed name; editors rename and correct romanization."""
from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, Field

from api.deps import DbConn, ReadConn, scope
from registry import placenames
from registry.keys import ApiKey
from registry.placename_categories import CATEGORIES
from registry.placename_checks import check_name

router = APIRouter(prefix="/v1", tags=["place names"])


@router.get("/placenames", summary="Place names by text (name, alias, former name, romanization), category, division")
def list_names(
    conn: ReadConn,
    q: Annotated[str | None, Query(description="part of the name, a former name or alias, or the romanization")] = None,
    category: Annotated[str | None, Query(description="a category code, Chinese name or synonym (road, 桥梁 …)")] = None,
    division: Annotated[str | None, Query(description="a division code (either authority): names within it")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> dict:
    return {"results": placenames.list_place_names(conn, q=q, category=category, division=division, limit=limit)}


@router.get("/placenames/categories", summary="The category table (门类 → 大类 → 中类 → 小类, after GB/T 18521)")
def categories() -> dict:
    return {"source": "GB/T 18521-2001 structure; class codes not reproduced (see registry/placename_categories.py)",
            "categories": [{"code": c.code, "name_zh": c.name_zh, "name_en": c.name_en, "path": list(c.path),
                            "generics": list(c.generics), "synonyms": list(c.synonyms)} for c in CATEGORIES]}


@router.get("/placenames/{pid}", summary="One place name with its former names, aliases and history")
def one(conn: ReadConn, pid: Annotated[int, Path(description="the place name's stable id")]) -> dict:
    return placenames.get_place_name(conn, pid)


class CheckIn(BaseModel):
    name: str = Field(..., description="the proposed name, e.g. 幸福桥")
    category: str = Field(..., description="its category (code, Chinese name or synonym)")
    division: str = Field(..., description="the division it lies in (a code of either authority)")


@router.post("/placenames/check", summary="Naming checks for a proposed name (findings in Chinese and English)")
def check(conn: DbConn, body: CheckIn) -> dict:
    return check_name(conn, body.name, category=body.category, division=body.division)


class RenameIn(BaseModel):
    name: str
    reason: str | None = None
    approval_ref: str | None = Field(None, description="批复文号")
    approved_by: str | None = None


@router.post("/placenames/{pid}/rename", summary="Rename: the old name stays as a former name (scope: editor)")
def rename(conn: DbConn, pid: int, body: RenameIn, key: ApiKey = scope("editor")) -> dict:
    return placenames.rename(conn, pid, body.name, actor=f"api:{key.agency}", reason=body.reason,
                             approval_ref=body.approval_ref, approved_by=body.approved_by)


class RomanizationIn(BaseModel):
    romanization: str | None = Field(None, description="the corrected form; empty drops the correction")
    reason: str | None = None


@router.put("/placenames/{pid}/romanization", summary="Correct one name's romanization (scope: editor)")
def romanization(conn: DbConn, pid: int, body: RomanizationIn, key: ApiKey = scope("editor")) -> dict:
    return placenames.set_romanization_override(conn, pid, body.romanization, actor=f"api:{key.agency}",
                                                reason=body.reason)
