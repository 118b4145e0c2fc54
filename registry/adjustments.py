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

The frame and the steps the kinds share live in registry.adjustment_steps; reading adjustments
back in registry.adjustment_history.
"""
from __future__ import annotations

from typing import Any, Iterable

from sqlalchemy import Connection, insert, select, text

from registry.adjustment_steps import (VALID_FROM, Adjustment, Dating, NewVillage, Part, active_division,
                                       addresses_under, check_new_code, division_ref, moved_count, recompose_polygon,
                                       repoint_entities, run_adjustment, villages_of)
from registry.db.tables import division_codes, divisions
from registry.errors import Conflict, InvalidQuery, NotFound
from registry.faults import checkpoint
from registry.reparenting import code_taken, move_villages, record_former_code, rederive_addresses

KINDS = ("merge", "split", "rename", "recode", "transfer")


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
        row = active_division(conn, code, parameter="code", authority=authority)
    if row["name"] == name and not new_code:
        raise InvalidQuery(f"{row['name']} 已是此名称 / {code} already has the name {name}", parameter="name")

    def body(cs: int):
        details = {"division": division_ref(row), "old_name": row["name"], "new_name": name}
        conn.execute(text("UPDATE divisions SET name = :n, full_name = :f, change_set_id = :cs WHERE id = :id"),
                     {"n": name, "f": full_name or name, "cs": cs, "id": row["id"]})
        counts = {"divisions": 1}
        if new_code or new_mca_code:
            details.update(_recode(conn, row, new_code, new_mca_code, dating, cs, village_codes,
                                   by_id=village_codes_by_id))
        counts["addresses"] = rederive_addresses(conn, [row["id"]], change_set_id=cs)
        return details, counts

    return run_adjustment(conn, "rename" if row["name"] != name else "recode", dating, actor=actor,
                reason=f"{row['name']} 更名为 {name} / {row['name']} renamed {name}", body=body)


def recode(conn: Connection, code: str, *, new_code: str | None, dating: Dating, actor: str,
           authority: str | None = None,
           new_mca_code: str | None = None, village_codes: dict[str, str] | None = None) -> Adjustment:
    """Give a township a new code (both authorities' codes unless only one is given); its villages'
    codes and its addresses' codes are re-derived, the old codes keep resolving."""
    if not new_code and not new_mca_code:
        raise InvalidQuery("须给出新代码 / a new code is required", parameter="new_code")
    row = active_division(conn, code, parameter="code", level="township", authority=authority)

    def body(cs: int):
        details = {"division": division_ref(row)}
        details.update(_recode(conn, row, new_code, new_mca_code, dating, cs, village_codes))
        return details, {"divisions": 1 + details["villages_recoded"],
                         "addresses": rederive_addresses(conn, [row["id"]], change_set_id=cs)}

    return run_adjustment(conn, "recode", dating, actor=actor, reason=f"{row['name']} 代码调整 / {row['name']} re-coded", body=body)


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
        check_new_code(conn, new, county_code=county, parameter="new_code", me=row["id"])
        if row[column]:
            record_former_code(conn, row["id"], row[column], authority, valid_to=dating.day)
        conn.execute(text(f"UPDATE divisions SET {column} = :c, change_set_id = :cs WHERE id = :id"),
                     {"c": new, "cs": cs, "id": row["id"]})
        conn.execute(insert(division_codes).values(code=new, authority=authority, valid_from=dating.day,
                                                   division_id=row["id"]))
        changes[authority] = {"old": row[column], "new": new}
    explicit = {**_village_code_map(conn, village_codes, parameter="village_codes"), **(by_id or {})}
    villages = [v.id for v in villages_of(conn, row["id"])]
    moved = move_villages(conn, villages, row["id"], change_set_id=cs, codes=explicit, effective=dating.day,
                          rederive=False) if villages else {}
    return {"codes": changes, "villages": {str(k): list(v) for k, v in moved.items()},
            "villages_recoded": moved_count(moved)}


def _village_code_map(conn: Connection, codes: dict[str, str] | None, *, parameter: str) -> dict[int, str]:
    """{village code (current) → new code} as {village id → new code}."""
    out = {}
    for old, new in (codes or {}).items():
        out[active_division(conn, old, parameter=parameter, level="village")["id"]] = new
    return out


def merge(conn: Connection, codes: list[str], *, into: str, dating: Dating, actor: str,
          name: str | None = None, new_code: str | None = None, authority: str | None = None) -> Adjustment:
    """Merge townships into one of them (`into`, which keeps its id); the others are abolished,
    their villages, streets, place names and facilities move to it, its polygon is the union."""
    survivor = active_division(conn, into, parameter="into", level="township", authority=authority)
    others = []
    for c in codes:
        r = active_division(conn, c, parameter="townships", level="township", authority=authority)
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
        villages = [v.id for r in others for v in villages_of(conn, r["id"])]
        before = addresses_under(conn, [survivor["id"], *old_ids])
        moved = move_villages(conn, villages, survivor["id"], change_set_id=cs, effective=dating.day,
                              rederive=False)
        recompose_polygon(conn, survivor["id"], cs, add=old_ids)
        repointed = repoint_entities(conn, old_ids, survivor["id"], cs)
        conn.execute(text("UPDATE divisions SET status = 'abolished', geom = NULL, change_set_id = :cs "
                          "WHERE id = ANY(CAST(:ids AS bigint[]))"), {"cs": cs, "ids": old_ids})
        checkpoint("adjustment.abolished")
        details: dict[str, Any] = {"into": division_ref(survivor), "merged": [division_ref(r) for r in others],
                                   "villages": {str(k): list(v) for k, v in moved.items()},
                                   "_successors": [(i, survivor["id"]) for i in old_ids]}
        if new_code:
            details.update(_recode(conn, survivor, new_code, None, dating, cs, None))
        if name and name != survivor["name"]:
            conn.execute(text("UPDATE divisions SET name = :n, full_name = :n, change_set_id = :cs WHERE id = :id"),
                         {"n": name, "cs": cs, "id": survivor["id"]})
            details["new_name"] = name
        n = rederive_addresses(conn, [survivor["id"]], change_set_id=cs)
        after = addresses_under(conn, [survivor["id"]])
        if after != before:  # pragma: no cover - a guard: an adjustment never loses an address
            raise Conflict(f"合并前后地址数不等（{before} → {after}）/ address count changed in the merge "
                           f"({before} → {after})", parameter="townships")
        return details, {"divisions_abolished": len(old_ids), "villages_moved": len(villages),
                         "addresses_rederived": n, **{f"{k}_repointed": v for k, v in repointed.items()}}

    names = "、".join(r["name"] for r in others)
    return run_adjustment(conn, "merge", dating, actor=actor, body=body,
                reason=f"{names} 并入 {survivor['name']} / {names} merged into {survivor['name']}")


def split(conn: Connection, code: str, parts: list[Part], *, dating: Dating, actor: str,
          authority: str | None = None) -> Adjustment:
    """Split a township by a list of villages per new township. A part with the township's own
    code (or name) keeps its id; otherwise the township is abolished with the parts as successors.
    Every village must be assigned to exactly one part."""
    row = active_division(conn, code, parameter="code", level="township", authority=authority)
    if len(parts) < 2:
        raise InvalidQuery("拆分至少需要两个部分 / a split needs at least two parts", parameter="parts")
    villages = {v.nbs_code: v for v in villages_of(conn, row["id"])}
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
            check_new_code(conn, p.code, county_code=county, parameter="parts")
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
        before = addresses_under(conn, [row["id"]])
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
            recompose_polygon(conn, target, cs)
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
        after = addresses_under(conn, targets)
        if after != before:  # pragma: no cover - a guard: an adjustment never loses an address
            raise Conflict(f"拆分前后地址数不等（{before} → {after}）/ address count changed in the split",
                           parameter="parts")
        return ({"division": division_ref(row), "created": created, "kept": kept is not None,
                 "parts": [{"name": p.name, "code": p.code, "villages": list(p.villages)} for p in parts],
                 "villages": {str(k): list(v) for k, v in moved_all.items()}, "_successors": successors},
                {"divisions_created": len(created), "villages_moved": len(moved_all), "addresses_rederived": n})

    return run_adjustment(conn, "split", dating, actor=actor, body=body,
                reason=f"{row['name']} 拆分为 {'、'.join(p.name for p in parts)} / {row['name']} split")


def _new_township(conn: Connection, county_of, name: str, code: str, mca_code: str | None, dating: Dating,
                  cs: int) -> int:
    new_id = conn.execute(insert(divisions).values(
        level="township", name=name, full_name=name, parent_id=county_of["parent_id"], nbs_code=code,
        mca_code=mca_code, change_set_id=cs, source="区划调整 / division adjustment",
        valid_from=text(VALID_FROM),
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
    source = active_division(conn, from_code, parameter="from", level="township", authority=authority) \
        if from_code else None
    target = None
    try:
        target = active_division(conn, to, parameter="to", level="township", authority=authority)
    except NotFound:
        if not to_name:
            raise
    rows = []
    by_id = [conn.execute(select(divisions).where(divisions.c.id == i)).mappings().one() for i in village_ids or ()]
    for c, v in [(c, active_division(conn, c, parameter="villages", level="village")) for c in village_codes or ()] + \
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
        explicit[active_division(conn, old, parameter="codes", level="village")["id"]] = new
    if target is None:
        county_code = county_row["nbs_code"]
        check_new_code(conn, to, county_code=county_code, parameter="to")
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
            created = division_ref(target)
        ids = [v["id"] for v in rows]
        before = addresses_under(conn, ids)
        moved = move_villages(conn, ids, target["id"], change_set_id=cs, codes=explicit, effective=dating.day,
                              rederive=False)
        added = []
        from registry.text import fold_village_suffix

        for nv in new_villages:
            vid = conn.execute(insert(divisions).values(
                level="village", name=fold_village_suffix(nv.full_name), full_name=nv.full_name,
                parent_id=target["id"], nbs_code=nv.code, change_set_id=cs,
                source="区划调整新设 / set up by the adjustment",
                valid_from=text(VALID_FROM),
            ).returning(divisions.c.id)).scalar_one()
            conn.execute(insert(division_codes).values(code=nv.code, authority="nbs2023", valid_from=dating.day,
                                                       division_id=vid))
            added.append({"id": vid, "name": nv.full_name, "code": nv.code})
        for s in sources:
            recompose_polygon(conn, s, cs, remove=ids)
        recompose_polygon(conn, target["id"], cs, add=ids)
        n = rederive_addresses(conn, ids, change_set_id=cs)
        if addresses_under(conn, ids) != before:  # pragma: no cover - a guard
            raise Conflict("划转前后地址数不等 / address count changed in the transfer", parameter="villages")
        return ({"to": division_ref(target), "created": created, "from": sources, "new_villages": added,
                 "villages": {str(k): list(v) for k, v in moved.items()}},
                {"villages_moved": len(ids), "villages_created": len(added), "addresses_rederived": n,
                 "divisions_created": 1 if created else 0})

    name = to_name or target["name"]
    return run_adjustment(conn, "transfer", dating, actor=actor, body=body,
                reason=f"{len(rows)} 个村社区划归 {name} / {len(rows)} villages transferred to {name}")
