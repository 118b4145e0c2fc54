"""Administrative divisions (行政区划): lookup by either authority's code, chains and children."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, func, or_, select

# The authorities' names and their rule live in registry.authorities; the API's routes and the tests
# read them from here too, with the lookups they go with.
from registry.authorities import AUTHORITIES, AUTHORITY_HELP, AUTHORITY_NAMES, validate_authority  # noqa: F401
from registry.db.tables import division_codes, divisions
from registry.errors import AmbiguousCode, InvalidQuery, NotFound

LEVELS = ("province", "city", "county", "township", "village")
LEVEL_NAMES = {"province": "省", "city": "市", "county": "县级", "township": "乡级", "village": "村级"}
# A division code: 6 (county), 9 (township) or 12 (village) digits. The API documents the same pattern.
DIVISION_CODE = re.compile(r"^\d{6}(\d{3}(\d{3})?)?$")


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
        if self.geometry is not None:
            out["geometry"] = self.geometry
        return out


def primary_code(mca_code: str | None, nbs_code: str | None) -> str:
    """The code shown first: the civil-affairs (MCA) code where one exists, else the NBS one."""
    return mca_code or nbs_code or ""


def validate_code(code: str, parameter: str = "code") -> str:
    code = (code or "").strip()
    if not DIVISION_CODE.match(code):
        raise InvalidQuery(
            f"区划代码应为 6、9 或 12 位数字 / {parameter} must be a 6-, 9- or 12-digit division code, got {code!r}",
            parameter=parameter,
        )
    return code


@dataclass(frozen=True)
class CodeMatch:
    """The division a code was resolved to, and under which authority's reading."""

    division_id: int
    authority: str
    code: str = ""
    name: str = ""
    level: str = ""
    status: str = "active"

    @property
    def label(self) -> str:
        return f"{self.name}（{self.authority} {self.code}）"

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.division_id, "code": self.code, "authority": self.authority, "name": self.name,
                "level": self.level, "status": self.status}


def settle_code(code: str, readings: list[CodeMatch], *, authority: str | None = None,
                parameter: str = "code") -> CodeMatch:
    """The one rule for a code's readings (from the database or from the search gazetteer).

    `readings` are the divisions the code names, at most one per authority, MCA first. With an
    `authority`, only its reading counts. Readings that agree (6- and 12-digit codes, 48 of the 72
    township codes) or a code known to one authority only resolve at once; two readings naming
    different divisions (NBS 330502007 is 康山街道, MCA 330502007 is 湖东街道) are refused with both
    named: a clerk must never act on the other township's addresses by accident.
    """
    if authority is not None:
        readings = [r for r in readings if r.authority == authority]
    distinct: list[CodeMatch] = []
    for r in readings:
        if all(r.division_id != d.division_id for d in distinct):
            distinct.append(r)
    if not distinct:
        under = f"（{authority}）" if authority else ""
        raise NotFound(f"未找到区划代码 {code}{under} / no division with code {code}"
                       + (f" under {authority}" if authority else ""), parameter=parameter)
    if len(distinct) > 1:
        zh = "，".join(f"按 {r.authority} 是{r.name}" for r in distinct)
        en = ", ".join(f"{r.name} under {r.authority}" for r in distinct)
        raise AmbiguousCode(
            f"区划代码 {code} 有两种读法：{zh}；请用 authority 指明代码体系（nbs2023 或 mca2025） / "
            f"division code {code} is ambiguous: {en}; say which authority the code follows "
            f"(authority nbs2023 or mca2025)",
            parameter=parameter, candidates=[r.as_dict() for r in distinct],
        )
    return distinct[0]


def match_code(conn: Connection, code: str, *, authority: str | None = None, parameter: str = "code") -> CodeMatch:
    """Resolve a code under MCA 2025, NBS 2023 or, failing both, a former code (`settle_code`).

    Raises InvalidQuery for a malformed code or authority, NotFound, or AmbiguousCode when the two
    authorities give the digits to different divisions and no `authority` says which is meant.
    """
    code = validate_code(code, parameter)
    authority = validate_authority(authority)
    readings: list[CodeMatch] = []
    for auth, column in (("mca2025", divisions.c.mca_code), ("nbs2023", divisions.c.nbs_code)):
        if authority not in (None, auth):
            continue
        row = conn.execute(
            select(divisions.c.id, divisions.c.name, divisions.c.level, divisions.c.status).where(column == code)
            .order_by((divisions.c.status == "active").desc()).limit(1)
        ).first()
        if row is not None:
            readings.append(CodeMatch(row.id, auth, code, row.name, row.level, row.status))
    if not readings:
        # a former code: the latest division that carried it, per authority
        q = (select(division_codes.c.authority, divisions.c.id, divisions.c.name, divisions.c.level,
                    divisions.c.status)
             .join(divisions, divisions.c.id == division_codes.c.division_id)
             .where(division_codes.c.code == code)
             .order_by(division_codes.c.valid_from.desc()))
        if authority is not None:
            q = q.where(division_codes.c.authority == authority)
        for row in conn.execute(q).all():
            if all(r.authority != row.authority for r in readings):
                readings.append(CodeMatch(row.id, row.authority, code, row.name, row.level, row.status))
    return settle_code(code, readings, authority=authority, parameter=parameter)


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
        matched_code=match.code, matched_authority=match.authority,
    )


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
