"""What every division adjustment shares (registry.adjustments holds the five kinds): its dating
(approval document and the date it took effect), its record, the frame it runs in (one change set
of kind `adjustment` in a savepoint, its versions starting at the adjustment's date, one
`division_adjustments` row, successors, audit) and the steps the kinds share: looking divisions up,
checking a new code, counting addresses, re-pointing entities, recomposing a township's polygon.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Callable, Iterable

from sqlalchemy import Connection, insert, select, text

from registry.changes import apply_change_set, audit, open_change_set
from registry.db.tables import division_adjustments, division_successors, divisions
from registry.divisions import match_code
from registry.errors import Conflict, InvalidQuery
from registry.faults import checkpoint
from registry.reparenting import code_taken

log = logging.getLogger(__name__)

# A division set up by an adjustment begins at the adjustment's date (see run_adjustment).
VALID_FROM = "coalesce(nullif(current_setting('registry.valid_time', true), '')::timestamptz, now())"
# Valid time of a date: the start of that day in China Standard Time.
TIME_ZONE = "Asia/Shanghai"


@dataclass(frozen=True)
class Dating:
    """Where an adjustment comes from and when it took effect."""

    approval_ref: str | None = None  # 批复文号, e.g. 浙政函〔2023〕12号
    effective: date | None = None  # the date it took effect
    known_in_force_by: date | None = None  # the document is unknown: in force by this date (upper bound)
    note: str | None = None

    def check(self, today: date | None = None) -> None:
        today = today or date.today()
        if self.effective is None and self.known_in_force_by is None:
            raise InvalidQuery("须给出生效日期（effective），或文件不明时的已知生效不晚于日期（known_in_force_by） / "
                               "an adjustment needs its effective date, or, where the document is unknown, the date "
                               "it is known to be in force by", parameter="effective")
        if self.effective is not None and self.known_in_force_by is not None:
            raise InvalidQuery("effective 与 known_in_force_by 只能给一个 / give either effective or "
                               "known_in_force_by, not both", parameter="known_in_force_by")
        day = self.effective or self.known_in_force_by
        if day > today:
            raise InvalidQuery(f"日期 {day} 在将来：调整在生效时登记 / {day} is in the future: an adjustment is "
                               "recorded once it is in force", parameter="effective" if self.effective else
                               "known_in_force_by")
        if self.approval_ref is not None and not self.approval_ref.strip():
            raise InvalidQuery("批复文号为空 / approval_ref is empty", parameter="approval_ref")

    @property
    def day(self) -> date:
        return self.effective or self.known_in_force_by  # type: ignore[return-value]


@dataclass
class Adjustment:
    id: int
    change_set_id: int
    kind: str
    dating: Dating
    details: dict[str, Any] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "change_set_id": self.change_set_id, "kind": self.kind,
            "approval_ref": self.dating.approval_ref,
            "effective_on": self.dating.effective.isoformat() if self.dating.effective else None,
            "known_in_force_by": self.dating.known_in_force_by.isoformat() if self.dating.known_in_force_by else None,
            "note": self.dating.note, "details": self.details, "counts": self.counts,
        }


@dataclass(frozen=True)
class Part:
    """One township of a split: its name, code(s) and the villages (by code) it takes."""

    name: str
    code: str
    villages: tuple[str, ...]
    mca_code: str | None = None


@dataclass(frozen=True)
class NewVillage:
    """A village/community set up by the adjustment itself (not in the township before)."""

    code: str
    full_name: str


# -- lookups ----------------------------------------------------------------------------------------
def active_division(conn: Connection, code: str, *, parameter: str, level: str | None = None,
              authority: str | None = None):
    m = match_code(conn, code, parameter=parameter, authority=authority if level != "village" else None)
    if getattr(m, "alternatives", ()):
        raise InvalidQuery(f"区划代码 {code} 在两个代码体系下指不同区划，请改用另一体系的代码 / the code {code} means "
                           f"different divisions under NBS 2023 and MCA 2025; use an unambiguous code",
                           parameter=parameter)
    row = conn.execute(select(divisions).where(divisions.c.id == m.division_id)).mappings().one()
    if row["status"] != "active":
        raise InvalidQuery(f"区划 {row['name']}（{code}）已撤销 / division {code} ({row['name']}) is abolished",
                           parameter=parameter)
    if level and row["level"] != level:
        raise InvalidQuery(f"{row['name']}（{code}）不是{'乡级' if level == 'township' else '村级'}区划 / {code} "
                           f"({row['name']}) is not a {level}", parameter=parameter)
    return row


def villages_of(conn: Connection, township_id: int) -> list:
    return conn.execute(select(divisions.c.id, divisions.c.nbs_code, divisions.c.name).where(
        divisions.c.parent_id == township_id, divisions.c.status == "active").order_by(divisions.c.nbs_code)).all()


def division_ref(row) -> dict[str, Any]:
    return {"id": row["id"], "name": row["name"], "code": row["mca_code"] or row["nbs_code"],
            "nbs_code": row["nbs_code"], "mca_code": row["mca_code"]}


def check_new_code(conn: Connection, code: str, *, county_code: str, parameter: str, me: int | None = None) -> None:
    if not (len(code) == 9 and code.isdigit() and code.startswith(county_code)):
        raise InvalidQuery(f"乡级代码 {code} 应为 {county_code} 开头的 9 位数字 / township code {code} must be 9 digits "
                           f"starting with {county_code}", parameter=parameter)
    if code_taken(conn, code, other_than=me):
        raise Conflict(f"区划代码 {code} 已被使用（代码不重复使用）/ division code {code} is taken (codes are never "
                       "reused)", parameter=parameter)


# -- the frame every adjustment runs in -------------------------------------------------------------
def run_adjustment(conn: Connection, kind: str, dating: Dating, *, actor: str, reason: str,
         body: Callable[[int], tuple[dict, dict]]) -> Adjustment:
    dating.check()
    with conn.begin_nested():
        cs = open_change_set(conn, kind="adjustment", author=actor, approval_ref=dating.approval_ref,
                             reason=reason, source="registry adjust",
                             details={"adjustment": kind, "effective_on": iso_date(dating.effective),
                                      "known_in_force_by": iso_date(dating.known_in_force_by), "note": dating.note})
        checkpoint("adjustment.change_set_opened")
        conn.execute(text("SELECT set_config('registry.valid_time', "
                          "(CAST(:d AS date)::timestamp AT TIME ZONE :tz)::text, true)"),
                     {"d": dating.day, "tz": TIME_ZONE})
        try:
            details, counts = body(cs)
        finally:
            conn.execute(text("SELECT set_config('registry.valid_time', '', true)"))
        checkpoint("adjustment.body_done")
        successors = details.pop("_successors", [])
        adj_id = conn.execute(insert(division_adjustments).values(
            change_set_id=cs, kind=kind, approval_ref=dating.approval_ref, effective_on=dating.effective,
            known_in_force_by=dating.known_in_force_by, note=dating.note, details=_plain(details),
        ).returning(division_adjustments.c.id)).scalar_one()
        checkpoint("adjustment.recorded")
        for old_id, new_id in successors:
            conn.execute(insert(division_successors).values(division_id=old_id, successor_id=new_id,
                                                            adjustment_id=adj_id))
            checkpoint("adjustment.successor")
        audit(conn, actor=actor, action=f"adjustment.{kind}", entity_kind="division_adjustment", entity_id=adj_id,
              change_set_id=cs, details=counts)
        checkpoint("adjustment.audited")
        apply_change_set(conn, cs, actor=actor, counts=counts)
        checkpoint("adjustment.applied")
    checkpoint("adjustment.savepoint_released")
    log.info("adjustment %s #%d applied in change set %d: %s", kind, adj_id, cs, counts)
    return Adjustment(adj_id, cs, kind, dating, details, counts)


def iso_date(d: date | None) -> str | None:
    return d.isoformat() if d else None


def _plain(value: Any) -> Any:
    """Details as plain JSON values (dates as ISO text)."""
    return json.loads(json.dumps(value, ensure_ascii=False, default=str))


def moved_count(moves: dict) -> int:
    return sum(1 for old, new in moves.values() if old != new)


def addresses_under(conn: Connection, division_ids: Iterable[int]) -> int:
    return conn.execute(text("""
        WITH RECURSIVE tree AS (SELECT id FROM divisions WHERE id = ANY(CAST(:ids AS bigint[]))
                                UNION SELECT d.id FROM divisions d JOIN tree ON d.parent_id = tree.id)
        SELECT count(*) FROM addresses WHERE division_id IN (SELECT id FROM tree)"""),
        {"ids": list(division_ids)}).scalar_one()


def repoint_entities(conn: Connection, old_ids: list[int], new_id: int, cs: int) -> dict[str, int]:
    """Place names, facilities and heritage items that hang directly off an abolished township."""
    out = {}
    for table in ("place_names", "facilities", "heritage_items"):
        out[table] = conn.execute(text(f"""
            UPDATE {table} SET division_id = :new, change_set_id = :cs
            WHERE division_id = ANY(CAST(:old AS bigint[]))"""), {"new": new_id, "cs": cs, "old": old_ids}).rowcount
        checkpoint("adjustment.repointed")
    return out


def recompose_polygon(conn: Connection, township_id: int, cs: int, *, add: list[int] = (),
                       remove: list[int] = ()) -> None:
    """A township's polygon: the union of its villages' polygons where every village has one,
    else its own polygon with the given villages' (or townships') polygons added/removed."""
    checkpoint("adjustment.polygon")
    conn.execute(text("""
        UPDATE divisions t SET geom = coalesce(
            (SELECT ST_Multi(ST_CollectionExtract(ST_UnaryUnion(ST_Collect(v.geom)), 3)) FROM divisions v
             WHERE v.parent_id = t.id AND v.status = 'active'
             HAVING count(*) > 0 AND count(v.geom) = count(*)),
            (SELECT ST_Multi(ST_CollectionExtract(ST_Difference(
                        ST_UnaryUnion(ST_Collect(g)), coalesce((SELECT ST_UnaryUnion(ST_Collect(r.geom))
                                                                FROM divisions r
                                                                WHERE r.id = ANY(CAST(:remove AS bigint[]))),
                                                               ST_SetSRID('GEOMETRYCOLLECTION EMPTY'::geometry, 4490))), 3))
             FROM (SELECT t.geom AS g UNION ALL SELECT a.geom FROM divisions a
                   WHERE a.id = ANY(CAST(:add AS bigint[]))) s
             HAVING count(g) > 0)),
            change_set_id = :cs
        WHERE t.id = :id"""), {"id": township_id, "cs": cs, "add": list(add), "remove": list(remove)})
    conn.execute(text("UPDATE divisions SET geom = ST_SetSRID(geom, 4490) WHERE id = :id AND geom IS NOT NULL "
                      "AND ST_SRID(geom) <> 4490"), {"id": township_id})
