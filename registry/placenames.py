"""Place names (地名) by the national rules: category, 专名/通名, romanization, former names, history.

Reads: :func:`list_place_names` (by text, category, division), :func:`get_place_name` (with aliases,
former names and their periods, and every stored version). Writes go through a change set of kind
``edit`` and the versioned rows (the history trigger keeps each earlier state):
:func:`rename` (the old name becomes a former name, so search keeps finding it) and
:func:`set_romanization_override` (a per-name correction of the romanization rules).
"""
from __future__ import annotations

import logging
from datetime import date
from typing import Any

from sqlalchemy import Connection, text

from registry.changes import apply_change_set, audit, open_change_set
from registry.divisions import resolve_division_id
from registry.errors import InvalidQuery, NotFound
from registry.placename_categories import BY_CODE, category_code, valid_categories
from registry.text.romanization import romanize, sign_form, split_name

log = logging.getLogger(__name__)

_MAX_LIMIT = 200


def parts(name: str, category: str, *, specific: str | None = None, generic: str | None = None,
          override: str | None = None) -> dict[str, str]:
    """The derived fields of a name: specific_part, generic_part, romanized, sign form."""
    if specific is None or generic is None:
        specific, generic = split_name(name)
        if category == "natural_village":  # one word: no generic of its own (王村 Wangcun)
            specific, generic = name, ""
    roman = romanize(name, category=category, specific=specific, generic=generic, override=override)
    return {"specific_part": specific, "generic_part": generic, "romanized": roman, "sign": sign_form(roman)}


def _category(value: str | None) -> str | None:
    if value is None or value == "":
        return None
    code = category_code(value)
    if code is None:
        raise InvalidQuery(f"未知的地名类别 {value}，应为 {valid_categories(lang='zh')} / "
                           f"unknown category {value!r}; expected one of {valid_categories(lang='en')}",
                           parameter="category")
    return code


_ROW = """
    SELECT p.id, p.category, p.name, p.pinyin, p.specific_part, p.generic_part, p.romanized,
           p.romanization_override, p.origin, p.meaning, p.status, p.approved_by, p.approved_on,
           p.approval_ref, p.version, p.valid_from, p.source, GeometryType(p.geom) AS geom_type,
           ST_AsGeoJSON(p.geom, 6) AS geom_json,
           d.id AS division_id, d.name AS division_name, coalesce(d.mca_code, d.nbs_code) AS division_code,
           c.name AS county_name, coalesce(c.mca_code, c.nbs_code) AS county_code
    FROM place_names p JOIN divisions d ON d.id = p.division_id JOIN divisions c ON c.id = p.county_id
"""


def _as_dict(row: Any, *, geometry: bool = False) -> dict[str, Any]:
    r = dict(row._mapping)
    derived = parts(r["name"], r["category"], override=r["romanization_override"])
    if r["specific_part"] is not None and r["generic_part"] is not None:
        derived = parts(r["name"], r["category"], specific=r["specific_part"], generic=r["generic_part"],
                        override=r["romanization_override"])
    cat = BY_CODE.get(r["category"])
    out = {
        "id": r["id"], "name": r["name"], "category": r["category"],
        "category_path": list(cat.path) if cat else [],
        "specific_part": derived["specific_part"], "generic_part": derived["generic_part"],
        # the stored value when the loader wrote one, else the rules (an override wins in both)
        "romanized": r["romanization_override"] or r["romanized"] or derived["romanized"],
        "romanization_override": r["romanization_override"],
        "sign": sign_form(r["romanization_override"] or r["romanized"] or derived["romanized"]),
        "origin": r["origin"], "meaning": r["meaning"], "status": r["status"],
        "approved_by": r["approved_by"], "approved_on": r["approved_on"].isoformat() if r["approved_on"] else None,
        "approval_ref": r["approval_ref"], "version": r["version"],
        "division": {"id": r["division_id"], "code": r["division_code"], "name": r["division_name"]},
        "county": {"code": r["county_code"], "name": r["county_name"]},
        "geometry_type": r["geom_type"],
    }
    if geometry:
        import json
        out["geometry"] = json.loads(r["geom_json"]) if r["geom_json"] else None
    return out


def list_place_names(conn: Connection, *, q: str | None = None, category: str | None = None,
                     division: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
    """Active place names matching a text (name, alias, former name, romanization) in a division."""
    if not 1 <= limit <= _MAX_LIMIT:
        raise InvalidQuery(f"limit 应在 1 到 {_MAX_LIMIT} 之间 / limit must be 1..{_MAX_LIMIT}", parameter="limit")
    where, params = ["p.status <> 'retired'"], {"limit": limit}
    code = _category(category)
    if code:
        where.append("p.category = :cat")
        params["cat"] = code
    if division:
        did, _ = resolve_division_id(conn, division, parameter="division")
        where.append("""(p.division_id = :div OR p.county_id = :div OR p.division_id IN (
            WITH RECURSIVE sub AS (SELECT id FROM divisions WHERE id = :div
                                   UNION ALL SELECT d.id FROM divisions d JOIN sub ON d.parent_id = sub.id)
            SELECT id FROM sub))""")
        params["div"] = did
    if q:
        q = q.strip()
        where.append("""(p.name ILIKE :like OR p.romanized ILIKE :like OR p.pinyin ILIKE :like
                         OR p.romanization_override ILIKE :like
                         OR EXISTS (SELECT 1 FROM place_name_aliases a
                                    WHERE a.place_name_id = p.id AND a.name ILIKE :like))""")
        params["like"] = f"%{q}%"
    rows = conn.execute(text(_ROW + " WHERE " + " AND ".join(where) + " ORDER BY p.name, p.id LIMIT :limit"),
                        params).all()
    return [_as_dict(r) for r in rows]


def _names(conn: Connection, pid: int) -> list[dict[str, Any]]:
    rows = conn.execute(text("""
        SELECT name, kind, used_from, used_until, note FROM place_name_aliases
        WHERE place_name_id = :p ORDER BY used_until NULLS LAST, id"""), {"p": pid}).mappings()
    return [{"name": r["name"], "kind": r["kind"],
             "used_from": r["used_from"].isoformat() if r["used_from"] else None,
             "used_until": r["used_until"].isoformat() if r["used_until"] else None, "note": r["note"]}
            for r in rows]


def history(conn: Connection, pid: int) -> list[dict[str, Any]]:
    """Every stored version of a place name, oldest first (the current one last)."""
    rows = conn.execute(text("""
        SELECT version, name, category, romanized, romanization_override, status, valid_from, valid_to,
               change_set_id, (SELECT reason FROM change_sets s WHERE s.id = h.change_set_id) AS reason
        FROM (SELECT version, name, category, romanized, romanization_override, status, valid_from, valid_to,
                     change_set_id FROM place_names_history WHERE id = :p
              UNION ALL
              SELECT version, name, category, romanized, romanization_override, status, valid_from, valid_to,
                     change_set_id FROM place_names WHERE id = :p) h
        ORDER BY version"""), {"p": pid}).mappings()
    return [{k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in r.items()} for r in rows]


def get_place_name(conn: Connection, pid: int, *, geometry: bool = True) -> dict[str, Any]:
    row = conn.execute(text(_ROW + " WHERE p.id = :p"), {"p": pid}).first()
    if row is None:
        raise NotFound(f"未找到地名 {pid} / no place name with id {pid}", parameter="id")
    out = _as_dict(row, geometry=geometry)
    names = _names(conn, pid)
    out["former_names"] = [n for n in names if n["kind"] == "former"]
    out["aliases"] = [n for n in names if n["kind"] != "former"]
    out["history"] = history(conn, pid)
    return out


def _current(conn: Connection, pid: int) -> dict[str, Any]:
    row = conn.execute(text("SELECT id, name, category, status, romanization_override, specific_part, generic_part "
                            "FROM place_names WHERE id = :p FOR UPDATE"), {"p": pid}).mappings().first()
    if row is None:
        raise NotFound(f"未找到地名 {pid} / no place name with id {pid}", parameter="id")
    if row["status"] == "retired":
        raise InvalidQuery(f"地名 {pid} 已注销 / place name {pid} is retired", parameter="id")
    return dict(row)


def rename(conn: Connection, pid: int, new_name: str, *, actor: str, reason: str | None = None,
           approval_ref: str | None = None, approved_by: str | None = None,
           effective_on: date | None = None) -> dict[str, Any]:
    """Rename a place name: the old name becomes a former name (used until the day of the change)."""
    new_name = "".join((new_name or "").split())
    if not new_name:
        raise InvalidQuery("新名称不能为空 / the new name must not be empty", parameter="name")
    cur = _current(conn, pid)
    if new_name == cur["name"]:
        raise InvalidQuery(f"新名称与现名相同：{new_name} / the new name is the current name", parameter="name")
    cs = open_change_set(conn, kind="edit", author=actor, reason=reason or f"更名 {cur['name']} → {new_name}",
                         approval_ref=approval_ref, details={"place_name": pid, "rename": [cur["name"], new_name]})
    day = effective_on or date.today()
    conn.execute(text("""INSERT INTO place_name_aliases (place_name_id, name, kind, used_until, note, change_set_id)
                         VALUES (:p, :n, 'former', :d, :note, :cs)"""),
                 {"p": pid, "n": cur["name"], "d": day, "note": reason or "更名 / renamed", "cs": cs})
    d = parts(new_name, cur["category"])  # a rename drops any override: it was for the old name
    conn.execute(text("""UPDATE place_names SET name = :n, specific_part = :s, generic_part = :g, romanized = :r,
                             pinyin = :r, romanization_override = NULL, approval_ref = coalesce(:ref, approval_ref),
                             approved_by = coalesce(:by, approved_by), approved_on = :d, change_set_id = :cs
                         WHERE id = :p"""),
                 {"n": new_name, "s": d["specific_part"], "g": d["generic_part"], "r": d["romanized"],
                  "ref": approval_ref, "by": approved_by, "d": day, "cs": cs, "p": pid})
    audit(conn, actor=actor, action="place_name.rename", entity_kind="place_name", entity_id=pid,
          change_set_id=cs, details={"from": cur["name"], "to": new_name})
    apply_change_set(conn, cs, actor=actor, counts={"renamed": 1})
    return get_place_name(conn, pid)


def set_romanization_override(conn: Connection, pid: int, value: str | None, *, actor: str,
                              reason: str | None = None) -> dict[str, Any]:
    """Correct (or, with None/empty, drop the correction of) one name's romanization; a new version."""
    value = " ".join((value or "").split()) or None
    if value is not None and (len(value) > 200 or not all(c.isascii() or c in "üÜ" for c in value)):
        raise InvalidQuery(f"罗马字拼写只能用拉丁字母：{value} / a romanization is Latin letters only",
                           parameter="romanization")
    cur = _current(conn, pid)
    cs = open_change_set(conn, kind="edit", author=actor, reason=reason or f"{cur['name']} 罗马字拼写更正",
                         details={"place_name": pid, "romanization_override": value})
    d = parts(cur["name"], cur["category"], specific=cur["specific_part"], generic=cur["generic_part"],
              override=value) if cur["specific_part"] is not None and cur["generic_part"] is not None \
        else parts(cur["name"], cur["category"], override=value)
    conn.execute(text("UPDATE place_names SET romanization_override = :o, romanized = :r, pinyin = :r, "
                      "change_set_id = :cs WHERE id = :p"),
                 {"o": value, "r": d["romanized"], "cs": cs, "p": pid})
    audit(conn, actor=actor, action="place_name.romanization", entity_kind="place_name", entity_id=pid,
          change_set_id=cs, details={"override": value})
    apply_change_set(conn, cs, actor=actor, counts={"romanized": 1})
    return get_place_name(conn, pid)


__all__ = ["get_place_name", "history", "list_place_names", "parts", "rename", "set_romanization_override"]
