"""Division adjustments (区划调整): merge, split, rename, recode, transfer.

Each adjustment is one change set of kind `adjustment`, written in the caller's transaction
inside a savepoint (an error leaves nothing behind), and one `division_adjustments` row with its
approval document (批复文号) and the date it took effect — or, where the document is unknown, the
date it is known to be in force by, recorded as such (never an invented document number).

What an adjustment does, whatever its kind:
- identifiers never change: the surviving division keeps its id, villages keep theirs, addresses,
  place names, facilities and doorplates keep theirs;
- villages re-parented get their 12-digit code re-derived (registry.reparenting's rule), and so do
  the codes and standard texts of every address under a changed division;
- old names stay in the division's history (search reads them as former names), old codes stay in
  `division_codes` (they keep resolving), an abolished division points to its successor(s)
  (`division_successors`);
- township polygons are recomposed: merge = union of the townships' polygons; split = for each
  new township the union of its villages' polygons; transfer = the villages' polygons taken from
  one township and added to the other (where the registry has village polygons);
- versions written by the adjustment start at its date (`registry.valid_time`, migration 0008), so
  `as_of` queries follow the adjustment, not the moment it was typed in.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Callable, Iterable

from sqlalchemy import Connection, insert, select, text

from registry.changes import apply_change_set, audit, open_change_set
from registry.db.tables import division_adjustments, division_codes, division_successors, divisions
from registry.divisions import match_code
from registry.errors import Conflict, InvalidQuery, NotFound
from registry.faults import checkpoint
from registry.reparenting import code_taken, move_villages, record_former_code, rederive_addresses

log = logging.getLogger(__name__)

KINDS = ("merge", "split", "rename", "recode", "transfer")
# A division set up by an adjustment begins at the adjustment's date (see _run).
_VALID_FROM = "coalesce(nullif(current_setting('registry.valid_time', true), '')::timestamptz, now())"
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
def _division(conn: Connection, code: str, *, parameter: str, level: str | None = None,
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


def _villages_of(conn: Connection, township_id: int) -> list:
    return conn.execute(select(divisions.c.id, divisions.c.nbs_code, divisions.c.name).where(
        divisions.c.parent_id == township_id, divisions.c.status == "active").order_by(divisions.c.nbs_code)).all()


def _ref(row) -> dict[str, Any]:
    return {"id": row["id"], "name": row["name"], "code": row["mca_code"] or row["nbs_code"],
            "nbs_code": row["nbs_code"], "mca_code": row["mca_code"]}


def _check_new_code(conn: Connection, code: str, *, county_code: str, parameter: str, me: int | None = None) -> None:
    if not (len(code) == 9 and code.isdigit() and code.startswith(county_code)):
        raise InvalidQuery(f"乡级代码 {code} 应为 {county_code} 开头的 9 位数字 / township code {code} must be 9 digits "
                           f"starting with {county_code}", parameter=parameter)
    if code_taken(conn, code, other_than=me):
        raise Conflict(f"区划代码 {code} 已被使用（代码不重复使用）/ division code {code} is taken (codes are never "
                       "reused)", parameter=parameter)


# -- the frame every adjustment runs in -------------------------------------------------------------
def _run(conn: Connection, kind: str, dating: Dating, *, actor: str, reason: str,
         body: Callable[[int], tuple[dict, dict]]) -> Adjustment:
    dating.check()
    with conn.begin_nested():
        cs = open_change_set(conn, kind="adjustment", author=actor, approval_ref=dating.approval_ref,
                             reason=reason, source="registry adjust",
                             details={"adjustment": kind, "effective_on": _iso(dating.effective),
                                      "known_in_force_by": _iso(dating.known_in_force_by), "note": dating.note})
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


def _iso(d: date | None) -> str | None:
    return d.isoformat() if d else None


def _plain(value: Any) -> Any:
    """Details as plain JSON values (dates as ISO text)."""
    import json

    return json.loads(json.dumps(value, ensure_ascii=False, default=str))


def _counts_of_moves(moves: dict) -> int:
    return sum(1 for old, new in moves.values() if old != new)


def _addresses_under(conn: Connection, division_ids: Iterable[int]) -> int:
    return conn.execute(text("""
        WITH RECURSIVE tree AS (SELECT id FROM divisions WHERE id = ANY(CAST(:ids AS bigint[]))
                                UNION SELECT d.id FROM divisions d JOIN tree ON d.parent_id = tree.id)
        SELECT count(*) FROM addresses WHERE division_id IN (SELECT id FROM tree)"""),
        {"ids": list(division_ids)}).scalar_one()


def _repoint(conn: Connection, old_ids: list[int], new_id: int, cs: int) -> dict[str, int]:
    """Place names, facilities and heritage items that hang directly off an abolished township."""
    out = {}
    for table in ("place_names", "facilities", "heritage_items"):
        out[table] = conn.execute(text(f"""
            UPDATE {table} SET division_id = :new, change_set_id = :cs
            WHERE division_id = ANY(CAST(:old AS bigint[]))"""), {"new": new_id, "cs": cs, "old": old_ids}).rowcount
        checkpoint("adjustment.repointed")
    return out


def _recompose_polygon(conn: Connection, township_id: int, cs: int, *, add: list[int] = (),
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


# -- the five kinds ---------------------------------------------------------------------------------
def rename(conn: Connection, code: str | None, *, name: str, dating: Dating, actor: str,
           authority: str | None = None, full_name: str | None = None,
           new_code: str | None = None, new_mca_code: str | None = None,
           village_codes: dict[str, str] | None = None, division_id: int | None = None,
           village_codes_by_id: dict[int, str] | None = None) -> Adjustment:
    """Rename a division (optionally re-coding it at the same time, as 旧馆镇 → 旧馆街道).
    `division_id`/`village_codes_by_id` name divisions whose code is unknown (the reference
    before-state)."""
    name = (name or "").strip()
    if not name:
        raise InvalidQuery("新名称为空 / the new name is empty", parameter="name")
    if division_id is not None:
        row = conn.execute(select(divisions).where(divisions.c.id == division_id)).mappings().one()
    else:
        row = _division(conn, code, parameter="code", authority=authority)
    if row["name"] == name and not new_code:
        raise InvalidQuery(f"{row['name']} 已是此名称 / {code} already has the name {name}", parameter="name")

    def body(cs: int):
        details = {"division": _ref(row), "old_name": row["name"], "new_name": name}
        conn.execute(text("UPDATE divisions SET name = :n, full_name = :f, change_set_id = :cs WHERE id = :id"),
                     {"n": name, "f": full_name or name, "cs": cs, "id": row["id"]})
        counts = {"divisions": 1}
        if new_code or new_mca_code:
            details.update(_recode(conn, row, new_code, new_mca_code, dating, cs, village_codes,
                                   by_id=village_codes_by_id))
        counts["addresses"] = rederive_addresses(conn, [row["id"]], change_set_id=cs)
        return details, counts

    return _run(conn, "rename" if row["name"] != name else "recode", dating, actor=actor,
                reason=f"{row['name']} 更名为 {name} / {row['name']} renamed {name}", body=body)


def recode(conn: Connection, code: str, *, new_code: str | None, dating: Dating, actor: str,
           authority: str | None = None,
           new_mca_code: str | None = None, village_codes: dict[str, str] | None = None) -> Adjustment:
    """Give a township a new code (both authorities' codes unless only one is given); its villages'
    codes and its addresses' codes are re-derived, the old codes keep resolving."""
    if not new_code and not new_mca_code:
        raise InvalidQuery("须给出新代码 / a new code is required", parameter="new_code")
    row = _division(conn, code, parameter="code", level="township", authority=authority)

    def body(cs: int):
        details = {"division": _ref(row)}
        details.update(_recode(conn, row, new_code, new_mca_code, dating, cs, village_codes))
        return details, {"divisions": 1 + details["villages_recoded"],
                         "addresses": rederive_addresses(conn, [row["id"]], change_set_id=cs)}

    return _run(conn, "recode", dating, actor=actor, reason=f"{row['name']} 代码调整 / {row['name']} re-coded", body=body)


def _recode(conn: Connection, row, new_code: str | None, new_mca: str | None, dating: Dating, cs: int,
            village_codes: dict[str, str] | None, *, by_id: dict[int, str] | None = None) -> dict[str, Any]:
    county = (row["nbs_code"] or row["mca_code"] or new_code or new_mca or "")[:6]
    if not county:  # a division whose code was unknown: its parent county's code
        county = conn.execute(text("SELECT coalesce(nbs_code, mca_code) FROM divisions WHERE id = :p"),
                              {"p": row["parent_id"]}).scalar_one()
    if new_code is not None and new_mca is None and row["mca_code"] is not None:
        new_mca = new_code  # one new code for both authorities unless told otherwise
    changes = {}
    for authority, column, new in (("nbs2023", "nbs_code", new_code), ("mca2025", "mca_code", new_mca)):
        if new is None or new == row[column]:
            continue
        _check_new_code(conn, new, county_code=county, parameter="new_code", me=row["id"])
        if row[column]:
            record_former_code(conn, row["id"], row[column], authority, valid_to=dating.day)
        conn.execute(text(f"UPDATE divisions SET {column} = :c, change_set_id = :cs WHERE id = :id"),
                     {"c": new, "cs": cs, "id": row["id"]})
        conn.execute(insert(division_codes).values(code=new, authority=authority, valid_from=dating.day,
                                                   division_id=row["id"]))
        changes[authority] = {"old": row[column], "new": new}
    explicit = {**_village_code_map(conn, village_codes, parameter="village_codes"), **(by_id or {})}
    villages = [v.id for v in _villages_of(conn, row["id"])]
    moved = move_villages(conn, villages, row["id"], change_set_id=cs, codes=explicit, effective=dating.day,
                          rederive=False) if villages else {}
    return {"codes": changes, "villages": {str(k): list(v) for k, v in moved.items()},
            "villages_recoded": _counts_of_moves(moved)}


def _village_code_map(conn: Connection, codes: dict[str, str] | None, *, parameter: str) -> dict[int, str]:
    """{village code (current) → new code} as {village id → new code}."""
    out = {}
    for old, new in (codes or {}).items():
        out[_division(conn, old, parameter=parameter, level="village")["id"]] = new
    return out


def merge(conn: Connection, codes: list[str], *, into: str, dating: Dating, actor: str,
          name: str | None = None, new_code: str | None = None, authority: str | None = None) -> Adjustment:
    """Merge townships into one of them (`into`, which keeps its id); the others are abolished,
    their villages, streets, place names and facilities move to it, its polygon is the union."""
    survivor = _division(conn, into, parameter="into", level="township", authority=authority)
    others = []
    for c in codes:
        r = _division(conn, c, parameter="townships", level="township", authority=authority)
        if r["id"] != survivor["id"] and all(o["id"] != r["id"] for o in others):
            others.append(r)
    if not others:
        raise InvalidQuery("合并至少需要两个乡级区划 / a merge needs at least two townships", parameter="townships")
    for r in others:
        if r["parent_id"] != survivor["parent_id"]:
            raise InvalidQuery(f"{r['name']} 与 {survivor['name']} 不在同一县级区划 / {r['name']} and "
                               f"{survivor['name']} are in different counties", parameter="townships")

    def body(cs: int):
        old_ids = [r["id"] for r in others]
        villages = [v.id for r in others for v in _villages_of(conn, r["id"])]
        before = _addresses_under(conn, [survivor["id"], *old_ids])
        moved = move_villages(conn, villages, survivor["id"], change_set_id=cs, effective=dating.day,
                              rederive=False)
        _recompose_polygon(conn, survivor["id"], cs, add=old_ids)
        repointed = _repoint(conn, old_ids, survivor["id"], cs)
        conn.execute(text("UPDATE divisions SET status = 'abolished', geom = NULL, change_set_id = :cs "
                          "WHERE id = ANY(CAST(:ids AS bigint[]))"), {"cs": cs, "ids": old_ids})
        checkpoint("adjustment.abolished")
        details: dict[str, Any] = {"into": _ref(survivor), "merged": [_ref(r) for r in others],
                                   "villages": {str(k): list(v) for k, v in moved.items()},
                                   "_successors": [(i, survivor["id"]) for i in old_ids]}
        if new_code:
            details.update(_recode(conn, survivor, new_code, None, dating, cs, None))
        if name and name != survivor["name"]:
            conn.execute(text("UPDATE divisions SET name = :n, full_name = :n, change_set_id = :cs WHERE id = :id"),
                         {"n": name, "cs": cs, "id": survivor["id"]})
            details["new_name"] = name
        n = rederive_addresses(conn, [survivor["id"]], change_set_id=cs)
        after = _addresses_under(conn, [survivor["id"]])
        if after != before:  # pragma: no cover - a guard: an adjustment never loses an address
            raise Conflict(f"合并前后地址数不等（{before} → {after}）/ address count changed in the merge "
                           f"({before} → {after})", parameter="townships")
        return details, {"divisions_abolished": len(old_ids), "villages_moved": len(villages),
                         "addresses_rederived": n, **{f"{k}_repointed": v for k, v in repointed.items()}}

    names = "、".join(r["name"] for r in others)
    return _run(conn, "merge", dating, actor=actor, body=body,
                reason=f"{names} 并入 {survivor['name']} / {names} merged into {survivor['name']}")


def split(conn: Connection, code: str, parts: list[Part], *, dating: Dating, actor: str,
          authority: str | None = None) -> Adjustment:
    """Split a township by a list of villages per new township. A part with the township's own
    code (or name) keeps its id; otherwise the township is abolished with the parts as successors.
    Every village must be assigned to exactly one part."""
    row = _division(conn, code, parameter="code", level="township", authority=authority)
    if len(parts) < 2:
        raise InvalidQuery("拆分至少需要两个部分 / a split needs at least two parts", parameter="parts")
    villages = {v.nbs_code: v for v in _villages_of(conn, row["id"])}
    seen: dict[str, str] = {}
    county = (row["nbs_code"] or row["mca_code"])[:6]
    kept = None
    for p in parts:
        if not p.name.strip():
            raise InvalidQuery("拆分部分缺少名称 / a part of the split has no name", parameter="parts")
        if p.code == row["nbs_code"] or p.code == row["mca_code"] or p.name == row["name"]:
            if kept is not None:
                raise InvalidQuery(f"只能有一个部分保留 {row['name']} / only one part can keep {row['name']}",
                                   parameter="parts")
            kept = p
        else:
            _check_new_code(conn, p.code, county_code=county, parameter="parts")
        for vc in p.villages:
            if vc not in villages:
                raise InvalidQuery(f"村级区划 {vc} 不属于 {row['name']}（{code}）/ village {vc} is not in "
                                   f"{row['name']} ({code})", parameter="parts", village=vc)
            if vc in seen:
                raise InvalidQuery(f"村级区划 {vc} 同时分到 {seen[vc]} 和 {p.name} / village {vc} is assigned to both "
                                   f"{seen[vc]} and {p.name}", parameter="parts", village=vc)
            seen[vc] = p.name
    left = sorted(set(villages) - set(seen))
    if left:
        listed = "、".join(f"{villages[c].name}（{c}）" for c in left[:10])
        raise InvalidQuery(f"拆分后有 {len(left)} 个村社区未分配：{listed} / {len(left)} villages of {row['name']} "
                           f"are assigned to no part: {', '.join(left[:10])}", parameter="parts", unassigned=left)

    def body(cs: int):
        before = _addresses_under(conn, [row["id"]])
        created, moved_all, targets = [], {}, []
        for p in parts:
            if p is kept:
                target = row["id"]
                if p.name != row["name"]:
                    conn.execute(text("UPDATE divisions SET name = :n, full_name = :n, change_set_id = :cs "
                                      "WHERE id = :id"), {"n": p.name, "cs": cs, "id": target})
            else:
                target = _new_township(conn, row, p.name, p.code, p.mca_code, dating, cs)
                created.append({"id": target, "name": p.name, "code": p.mca_code or p.code})
            targets.append(target)
            ids = [villages[c].id for c in p.villages]
            if target != row["id"]:
                moved_all.update(move_villages(conn, ids, target, change_set_id=cs, effective=dating.day,
                                               rederive=False))
        for target in targets:
            _recompose_polygon(conn, target, cs)
        successors = []
        if kept is None:
            # Streets and facilities of the old township go to the part their geometry lies in.
            for table in ("place_names", "facilities", "heritage_items"):
                conn.execute(text(f"""
                    UPDATE {table} x SET division_id = coalesce(
                        (SELECT t.id FROM divisions t WHERE t.id = ANY(CAST(:targets AS bigint[]))
                           AND t.geom IS NOT NULL AND x.geom IS NOT NULL
                           AND ST_Intersects(t.geom, ST_PointOnSurface(x.geom)) LIMIT 1), :first),
                        change_set_id = :cs
                    WHERE x.division_id = :old"""), {"targets": targets, "first": targets[0], "cs": cs,
                                                      "old": row["id"]})
            conn.execute(text("UPDATE divisions SET status = 'abolished', geom = NULL, change_set_id = :cs "
                              "WHERE id = :id"), {"cs": cs, "id": row["id"]})
            successors = [(row["id"], t) for t in targets]
        n = rederive_addresses(conn, targets, change_set_id=cs)
        after = _addresses_under(conn, targets)
        if after != before:  # pragma: no cover - a guard: an adjustment never loses an address
            raise Conflict(f"拆分前后地址数不等（{before} → {after}）/ address count changed in the split",
                           parameter="parts")
        return ({"division": _ref(row), "created": created, "kept": kept is not None,
                 "parts": [{"name": p.name, "code": p.code, "villages": list(p.villages)} for p in parts],
                 "villages": {str(k): list(v) for k, v in moved_all.items()}, "_successors": successors},
                {"divisions_created": len(created), "villages_moved": len(moved_all), "addresses_rederived": n})

    return _run(conn, "split", dating, actor=actor, body=body,
                reason=f"{row['name']} 拆分为 {'、'.join(p.name for p in parts)} / {row['name']} split")


def _new_township(conn: Connection, county_of, name: str, code: str, mca_code: str | None, dating: Dating,
                  cs: int) -> int:
    new_id = conn.execute(insert(divisions).values(
        level="township", name=name, full_name=name, parent_id=county_of["parent_id"], nbs_code=code,
        mca_code=mca_code, change_set_id=cs, source="区划调整 / division adjustment",
        valid_from=text(_VALID_FROM),
    ).returning(divisions.c.id)).scalar_one()
    conn.execute(insert(division_codes).values(code=code, authority="nbs2023", valid_from=dating.day,
                                               division_id=new_id))
    if mca_code:
        conn.execute(insert(division_codes).values(code=mca_code, authority="mca2025", valid_from=dating.day,
                                                   division_id=new_id))
    return new_id


def transfer(conn: Connection, village_codes: list[str], *, to: str, dating: Dating, actor: str,
             from_code: str | None = None, to_name: str | None = None, to_mca_code: str | None = None,
             codes: dict[str, str] | None = None, new_villages: Iterable[NewVillage] = (),
             authority: str | None = None, village_ids: list[int] | None = None,
             codes_by_id: dict[int, str] | None = None) -> Adjustment:
    """Move villages to another township of the same county. With `to_name`, a township with the
    code `to` that does not exist yet is set up (东迁街道 from villages of 南浔镇 and 双林镇).
    `codes` gives the new 12-digit codes an approval document names; `new_villages` are villages
    or communities set up with it."""
    new_villages = list(new_villages)
    if not village_codes and not village_ids:
        raise InvalidQuery("须列出要划转的村社区 / list the villages to transfer", parameter="villages")
    source = _division(conn, from_code, parameter="from", level="township", authority=authority) \
        if from_code else None
    target = None
    try:
        target = _division(conn, to, parameter="to", level="township", authority=authority)
    except NotFound:
        if not to_name:
            raise
    rows = []
    by_id = [conn.execute(select(divisions).where(divisions.c.id == i)).mappings().one() for i in village_ids or ()]
    for c, v in [(c, _division(conn, c, parameter="villages", level="village")) for c in village_codes or ()] + \
            [(str(v["id"]), v) for v in by_id]:
        if source is not None and v["parent_id"] != source["id"]:
            raise InvalidQuery(f"村级区划 {v['name']}（{c}）不属于 {source['name']} / village {c} ({v['name']}) is not "
                               f"in {source['name']}", parameter="villages", village=c)
        if target is not None and v["parent_id"] == target["id"]:
            raise InvalidQuery(f"村级区划 {v['name']}（{c}）已属于 {target['name']} / village {c} is already in "
                               f"{target['name']}", parameter="villages", village=c)
        rows.append(v)
    counties = {conn.execute(text("SELECT parent_id FROM divisions WHERE id = :p"), {"p": v["parent_id"]}).scalar_one()
                for v in rows}
    county_row = target or conn.execute(select(divisions).where(divisions.c.id == next(iter(counties)))).mappings().one()
    county_id = target["parent_id"] if target else county_row["id"]
    if counties != {county_id}:
        raise InvalidQuery("划转只在同一县级区划内 / villages are transferred within one county", parameter="villages")
    explicit = dict(codes_by_id or {})
    for old, new in (codes or {}).items():
        explicit[_division(conn, old, parameter="codes", level="village")["id"]] = new
    if target is None:
        county_code = county_row["nbs_code"]
        _check_new_code(conn, to, county_code=county_code, parameter="to")
    for nv in new_villages:
        if not (len(nv.code) == 12 and nv.code.startswith(to)) or code_taken(conn, nv.code):
            raise InvalidQuery(f"新设村社区代码 {nv.code} 无效或已被使用 / new village code {nv.code} is invalid or "
                               "taken", parameter="new_villages")

    def body(cs: int):
        nonlocal target
        sources = sorted({v["parent_id"] for v in rows})
        created = None
        if target is None:
            tid = _new_township(conn, {"parent_id": county_id}, to_name, to, to_mca_code, dating, cs)
            target = conn.execute(select(divisions).where(divisions.c.id == tid)).mappings().one()
            created = _ref(target)
        ids = [v["id"] for v in rows]
        before = _addresses_under(conn, ids)
        moved = move_villages(conn, ids, target["id"], change_set_id=cs, codes=explicit, effective=dating.day,
                              rederive=False)
        added = []
        from registry.text import fold_village_suffix

        for nv in new_villages:
            vid = conn.execute(insert(divisions).values(
                level="village", name=fold_village_suffix(nv.full_name), full_name=nv.full_name,
                parent_id=target["id"], nbs_code=nv.code, change_set_id=cs,
                source="区划调整新设 / set up by the adjustment",
                valid_from=text(_VALID_FROM),
            ).returning(divisions.c.id)).scalar_one()
            conn.execute(insert(division_codes).values(code=nv.code, authority="nbs2023", valid_from=dating.day,
                                                       division_id=vid))
            added.append({"id": vid, "name": nv.full_name, "code": nv.code})
        for s in sources:
            _recompose_polygon(conn, s, cs, remove=ids)
        _recompose_polygon(conn, target["id"], cs, add=ids)
        n = rederive_addresses(conn, ids, change_set_id=cs)
        if _addresses_under(conn, ids) != before:  # pragma: no cover - a guard
            raise Conflict("划转前后地址数不等 / address count changed in the transfer", parameter="villages")
        return ({"to": _ref(target), "created": created, "from": sources, "new_villages": added,
                 "villages": {str(k): list(v) for k, v in moved.items()}},
                {"villages_moved": len(ids), "villages_created": len(added), "addresses_rederived": n,
                 "divisions_created": 1 if created else 0})

    name = to_name or target["name"]
    return _run(conn, "transfer", dating, actor=actor, body=body,
                reason=f"{len(rows)} 个村社区划归 {name} / {len(rows)} villages transferred to {name}")


# -- reading ----------------------------------------------------------------------------------------
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
        "effective_on": _iso(r["effective_on"]), "known_in_force_by": _iso(r["known_in_force_by"]),
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
