"""Administrative divisions (行政区划): lookup by either authority's code, chains and children."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, func, or_, select

from registry.db.tables import division_codes, divisions
from registry.errors import InvalidQuery, NotFound

LEVELS = ("province", "city", "county", "township", "village")
LEVEL_NAMES = {"province": "省", "city": "市", "county": "县级", "township": "乡级", "village": "村级"}
_CODE = re.compile(r"^\d{6}(\d{3}(\d{3})?)?$")


@dataclass(frozen=True)
class DivisionRef:
    id: int
    code: str
    name: str
    level: str

    def as_dict(self) -> dict[str, Any]:
        return {"code": self.code, "name": self.name, "level": self.level}


@dataclass
class Division:
    id: int
    name: str
    full_name: str
    level: str
    status: str
    nbs_code: str | None
    mca_code: str | None
    parents: list[DivisionRef] = field(default_factory=list)  # from the province down
    children: list[DivisionRef] = field(default_factory=list)
    geometry: dict | None = None
    matched_code: str | None = None
    matched_authority: str | None = None
    also_matches: list[dict[str, str]] = field(default_factory=list)

    @property
    def code(self) -> str:
        return primary_code(self.mca_code, self.nbs_code)

    def as_dict(self) -> dict[str, Any]:
        out = {
            "id": self.id,
            "code": self.code,
            "name": self.name,
            "full_name": self.full_name,
            "level": self.level,
            "status": self.status,
            "codes": {"nbs2023": self.nbs_code, "mca2025": self.mca_code},
            "parents": [p.as_dict() for p in self.parents],
            "children": [c.as_dict() for c in self.children],
        }
        if self.matched_code:
            out["matched"] = {"code": self.matched_code, "authority": self.matched_authority}
        if self.also_matches:
            out["also_matches"] = self.also_matches
        if self.geometry is not None:
            out["geometry"] = self.geometry
        return out


def primary_code(mca_code: str | None, nbs_code: str | None) -> str:
    """The code shown first: the civil-affairs (MCA) code where one exists, else the NBS one."""
    return mca_code or nbs_code or ""


def validate_code(code: str, parameter: str = "code") -> str:
    code = (code or "").strip()
    if not _CODE.match(code):
        raise InvalidQuery(
            f"区划代码应为 6、9 或 12 位数字 / {parameter} must be a 6-, 9- or 12-digit division code, got {code!r}",
            parameter=parameter,
        )
    return code


AUTHORITIES = ("mca2025", "nbs2023")


@dataclass(frozen=True)
class CodeMatch:
    division_id: int
    authority: str
    # The same digits name a different division under the other authority (24 of Huzhou's 72
    # township codes were reshuffled between NBS 2023 and MCA 2025): callers must say so.
    alternatives: tuple[tuple[int, str], ...] = ()


def match_code(conn: Connection, code: str, *, authority: str | None = None, parameter: str = "code") -> CodeMatch:
    """Resolve a code under MCA 2025, NBS 2023 or a former code.

    Without `authority`, MCA 2025 (the civil-affairs authority this registry belongs to) wins when
    the digits mean different divisions under the two; the other reading is returned as an
    alternative so the caller can show the ambiguity.
    """
    code = validate_code(code, parameter)
    if authority is not None and authority not in AUTHORITIES:
        raise InvalidQuery(
            f"authority 应为 {' 或 '.join(AUTHORITIES)} / authority must be one of {', '.join(AUTHORITIES)}",
            parameter="authority",
        )
    found: list[tuple[int, str]] = []
    for auth, column in (("mca2025", divisions.c.mca_code), ("nbs2023", divisions.c.nbs_code)):
        if authority not in (None, auth):
            continue
        row = conn.execute(
            select(divisions.c.id).where(column == code)
            .order_by((divisions.c.status == "active").desc()).limit(1)
        ).first()
        if row is not None and all(row.id != f[0] for f in found):
            found.append((row.id, auth))
        elif row is not None and authority is None:
            pass  # both authorities agree on this code
    if not found:
        q = select(division_codes.c.division_id, division_codes.c.authority).where(division_codes.c.code == code)
        if authority is not None:
            q = q.where(division_codes.c.authority == authority)
        row = conn.execute(q.order_by(division_codes.c.valid_from.desc()).limit(1)).first()
        if row is not None:
            found.append((row.division_id, row.authority))
    if not found:
        raise NotFound(f"未找到区划代码 {code} / no division with code {code}", parameter=parameter)
    (division_id, auth), *rest = found
    return CodeMatch(division_id, auth, tuple(rest))


def resolve_division_id(conn: Connection, code: str, parameter: str = "code",
                        authority: str | None = None) -> tuple[int, str]:
    """(division id, authority that matched) for a code; see `match_code` for ambiguous codes."""
    m = match_code(conn, code, authority=authority, parameter=parameter)
    return m.division_id, m.authority


def _ref(row) -> DivisionRef:
    return DivisionRef(row.id, primary_code(row.mca_code, row.nbs_code), row.name, row.level)


def parent_chain(conn: Connection, division_id: int) -> list[DivisionRef]:
    """Ancestors of a division, the province first."""
    chain = select(
        divisions.c.id, divisions.c.parent_id, divisions.c.name, divisions.c.level,
        divisions.c.nbs_code, divisions.c.mca_code, func.cast(0, divisions.c.version.type).label("depth"),
    ).where(divisions.c.id == division_id).cte("chain", recursive=True)
    parent = divisions.alias("p")
    chain = chain.union_all(
        select(parent.c.id, parent.c.parent_id, parent.c.name, parent.c.level,
               parent.c.nbs_code, parent.c.mca_code, chain.c.depth + 1)
        .where(parent.c.id == chain.c.parent_id)
    )
    rows = conn.execute(select(chain).where(chain.c.depth > 0).order_by(chain.c.depth.desc())).all()
    return [_ref(r) for r in rows]


def get_division(conn: Connection, code: str, *, with_geometry: bool = False,
                 authority: str | None = None) -> Division:
    match = match_code(conn, code, authority=authority)
    division_id = match.division_id
    cols = [divisions.c.id, divisions.c.name, divisions.c.full_name, divisions.c.level,
            divisions.c.status, divisions.c.nbs_code, divisions.c.mca_code]
    if with_geometry:
        cols.append(func.ST_AsGeoJSON(divisions.c.geom, 7).label("geojson"))
    row = conn.execute(select(*cols).where(divisions.c.id == division_id)).one()
    children = conn.execute(
        select(divisions.c.id, divisions.c.name, divisions.c.level, divisions.c.nbs_code, divisions.c.mca_code)
        .where(divisions.c.parent_id == division_id, divisions.c.status == "active")
        .order_by(func.coalesce(divisions.c.mca_code, divisions.c.nbs_code))
    ).all()
    geometry = None
    if with_geometry and row.geojson:
        geometry = json.loads(row.geojson)
    return Division(
        id=row.id, name=row.name, full_name=row.full_name, level=row.level, status=row.status,
        nbs_code=row.nbs_code, mca_code=row.mca_code, parents=parent_chain(conn, division_id),
        children=[_ref(c) for c in children], geometry=geometry,
        matched_code=code, matched_authority=match.authority,
        also_matches=[_alternative(conn, other_id, other_auth, code) for other_id, other_auth in match.alternatives],
    )


def _alternative(conn: Connection, division_id: int, authority: str, code: str) -> dict[str, str]:
    row = conn.execute(select(divisions.c.name, divisions.c.level).where(divisions.c.id == division_id)).one()
    return {"code": code, "authority": authority, "name": row.name, "level": row.level}


def descendant_ids_query(division_id: int):
    """A recursive CTE selecting the id of a division and of everything below it."""
    tree = select(divisions.c.id).where(divisions.c.id == division_id).cte("tree", recursive=True)
    child = divisions.alias("c")
    tree = tree.union_all(select(child.c.id).where(child.c.parent_id == tree.c.id))
    return select(tree.c.id)


def count_by_level(conn: Connection) -> dict[str, int]:
    rows = conn.execute(
        select(divisions.c.level, func.count()).where(divisions.c.status == "active").group_by(divisions.c.level)
    ).all()
    return {level: n for level, n in rows}
