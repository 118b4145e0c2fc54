"""Boundary lines (界线) derived from division polygons, and reading them.

Neighbouring polygons of one level share identical edges (the real county polygons do, and the
generated township tiling does), so the line between two divisions is the linear part of the
intersection of their polygons, and a division's stretch of the city's outer edge is the part
of its boundary lying on the boundary of the union of all divisions of its level.

Line code (stable; in the spirit of MZ/T 150-2020), built by `line_code`:
- between two divisions: the two divisions' codes, the smaller first — 12 digits on a county
  line (`330502330503` = 吴兴区—南浔区), 18 on a township line (9 + 9 digits);
- on the city's outer edge: the division's code, then the neighbour's code of the same width,
  or zeros where the neighbour is not known (`330522000000` = 长兴县—市界; no neighbour
  polygons are loaded, so today every outer line has zeros and neighbour_name 市界).
  The code used for a division is its MCA (民政部) code, else its NBS code.
Name (`line_name`): `吴兴区—南浔区线`, smaller code first; outer edge `长兴县—市界线` (or the
neighbour's name where known). `left_division_id` is the smaller code's side; on the outer edge
the registry's own division, `right_division_id` NULL.

Township lines and the county boundary: a township line between townships of two counties
lies on the county line between them, and a township's stretch of the city's edge on its
county's outer line. Those township lines are kept (so every township is bounded by its own
lines, the tiling checkable per level), with `county_line_id` pointing at the county line; the
markers on that stretch are the county line's (registry.markers), the township line has none.

Lines are entities: stable id, versioned with history, never deleted (retired). A stored line is
matched by its pair of divisions (else by code), so the line between two divisions keeps its id
when a polygon changes or a division is re-coded. Derivation is
idempotent: a line whose derived geometry and attributes equal the stored ones is left alone,
a changed one is updated (a new version), a new one added, one no longer derived retired; when
nothing changed nothing is written and no change set opened (`changed == 0`).
"""
from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import Connection, text

from registry.changes import apply_change_set, open_change_set
from registry.errors import Conflict, InvalidQuery, NotFound

log = logging.getLogger(__name__)

LEVELS = ("county", "township")
CODE_WIDTH = {"county": 6, "township": 9}
OUTER_NAME = "市界"
SOURCE = "derived from division polygons"


def line_code(level: str, code_a: str, code_b: str | None) -> str:
    """The line code: both divisions' codes, smaller first; on the outer edge (code_b None) the
    division's code and zeros (the neighbour unknown). See the module doc."""
    width = CODE_WIDTH[level]
    for c in (code_a, code_b):
        if c is not None and (len(c) != width or not c.isdigit()):
            raise InvalidQuery(f"{level} 级区划代码应为 {width} 位数字 / a {level} code has {width} digits, got {c!r}",
                               parameter="code")
    if code_b is None:
        return code_a + "0" * width
    return min(code_a, code_b) + max(code_a, code_b)


def line_name(name_a: str, name_b: str | None) -> str:
    """`吴兴区—南浔区线` (names given smaller code first); the outer edge `长兴县—市界线`."""
    return f"{name_a}—{name_b or OUTER_NAME}线"


_DERIVED = text("""
    WITH d AS (
        SELECT id, name, coalesce(mca_code, nbs_code) AS code, parent_id, geom
        FROM divisions WHERE level = :level AND status = 'active' AND geom IS NOT NULL
    ), edge AS (
        SELECT ST_Boundary(ST_Union(geom)) AS g FROM d
    ), q AS (
        SELECT a.id AS left_id, b.id AS right_id, a.code AS left_code, b.code AS right_code,
               a.name AS left_name, b.name AS right_name, a.parent_id AS left_parent, b.parent_id AS right_parent,
               ST_Multi(ST_LineMerge(ST_CollectionExtract(ST_Intersection(a.geom, b.geom), 2))) AS geom
        FROM d a JOIN d b ON a.code < b.code AND ST_Intersects(a.geom, b.geom)
        UNION ALL
        SELECT d.id, NULL, d.code, NULL, d.name, NULL, d.parent_id, NULL,
               ST_Multi(ST_LineMerge(ST_CollectionExtract(ST_Intersection(ST_Boundary(d.geom), edge.g), 2)))
        FROM d, edge WHERE ST_Intersects(d.geom, edge.g)
    )
    SELECT q.*, round(ST_Length(q.geom::geography)::numeric, 2)::float8 AS length_m, ST_AsEWKB(q.geom) AS ewkb
    FROM q WHERE NOT ST_IsEmpty(q.geom) AND ST_Length(q.geom::geography) > 1
    ORDER BY q.left_code, q.right_code NULLS FIRST
""")


def _derive(conn: Connection, level: str) -> list[dict[str, Any]]:
    rows = conn.execute(_DERIVED, {"level": level}).mappings().all()
    county_lines: dict[tuple, int] = {}
    if level == "township":
        for r in conn.execute(text("""
                SELECT id, left_division_id, right_division_id FROM boundary_lines
                WHERE level = 'county' AND status = 'active'""")):
            county_lines[(r.left_division_id, r.right_division_id)] = r.id
            county_lines[(r.right_division_id, r.left_division_id)] = r.id
    out = []
    for r in rows:
        for side in ("left", "right"):
            if r[f"{side}_id"] is not None and r[f"{side}_code"] is None:
                # The state before the real adjustments has townships whose old code the sources
                # do not give: a line code cannot be made up for them.
                raise Conflict(
                    f"{r[f'{side}_name']} 没有区划代码，不能编界线代码；请在区划调整之后再派生界线 / "
                    f"{r[f'{side}_name']} has no division code, so its lines cannot be coded; "
                    f"derive the lines after the adjustments (registry adjust observed)", parameter="level")
        county_line = None
        if level == "township" and r["left_parent"] != r["right_parent"]:
            county_line = county_lines.get((r["left_parent"], r["right_parent"]))
            if county_line is None:
                log.warning("township line %s—%s: no active county line; derive the county level first",
                            r["left_name"], r["right_name"])
        out.append({
            "code": line_code(level, r["left_code"], r["right_code"]),
            "name": line_name(r["left_name"], r["right_name"]),
            "left_division_id": r["left_id"], "right_division_id": r["right_id"],
            "neighbour_name": OUTER_NAME if r["right_id"] is None else None,
            "county_line_id": county_line, "length_m": r["length_m"], "ewkb": bytes(r["ewkb"]),
        })
    return out


_FIELDS = ("name", "left_division_id", "right_division_id", "neighbour_name", "county_line_id", "length_m", "ewkb")


def derive_boundary_lines(conn: Connection, *, level: str = "county", actor: str = "registry") -> dict[str, Any]:
    """Derive the `level` boundary lines and bring the stored ones up to date (see the module doc).

    Returns counts: added, updated, retired, unchanged, changed (= the three writes), and the
    change set's id (None when nothing changed)."""
    if level not in LEVELS:
        raise InvalidQuery("level 应为 county 或 township / level must be county or township", parameter="level")
    derived = _derive(conn, level)
    stored = [dict(r) for r in conn.execute(text("""
        SELECT id, code, name, left_division_id, right_division_id, neighbour_name, county_line_id,
               length_m, ST_AsEWKB(geom) AS ewkb
        FROM boundary_lines WHERE level = :level AND status = 'active' ORDER BY id"""), {"level": level}).mappings()]
    for s in stored:
        s["ewkb"] = bytes(s["ewkb"]) if s["ewkb"] is not None else None
    # A line is the line between its two divisions: matched by that pair (a re-coded division
    # keeps its lines' ids, their codes change), else by code.
    by_pair = {frozenset((s["left_division_id"], s["right_division_id"])): s for s in stored}
    by_code = {s["code"]: s for s in stored if s["code"]}
    add, upd, keep = [], [], 0
    seen: set[int] = set()
    for d in derived:
        s = by_pair.get(frozenset((d["left_division_id"], d["right_division_id"]))) or by_code.get(d["code"])
        if s is None or s["id"] in seen:
            add.append(d)
            continue
        seen.add(s["id"])
        if s["code"] == d["code"] and all(s[f] == d[f] for f in _FIELDS):
            keep += 1
        else:
            upd.append((s["id"], d))
    retire = [s["id"] for s in stored if s["id"] not in seen]
    counts: dict[str, Any] = {"added": len(add), "updated": len(upd), "retired": len(retire), "unchanged": keep}
    counts["changed"] = len(add) + len(upd) + len(retire)
    if not counts["changed"]:
        log.info("%s boundary lines unchanged (%s)", level, keep)
        return {**counts, "change_set_id": None}
    cs = open_change_set(conn, kind="load_divisions", author=actor, source=f"derived:{level}",
                         reason="由区划面派生界线 / boundary lines derived from division polygons")
    if retire:
        conn.execute(text("UPDATE boundary_lines SET status = 'retired', change_set_id = :cs WHERE id = ANY(:ids)"),
                     {"cs": cs, "ids": retire})
        # a line that no longer exists (its divisions merged, say) has no boundary markers left
        counts["markers_retired"] = conn.execute(text("""
            UPDATE boundary_markers SET status = 'retired', change_set_id = :cs
            WHERE boundary_line_id = ANY(:ids) AND status = 'active'"""), {"cs": cs, "ids": retire}).rowcount
    for line_id, d in upd:
        conn.execute(text("""
            UPDATE boundary_lines SET name = :name, left_division_id = :left_division_id,
                   right_division_id = :right_division_id, geom = ST_GeomFromEWKB(:ewkb), code = :code,
                   length_m = :length_m, neighbour_name = :neighbour_name, county_line_id = :county_line_id,
                   change_set_id = :cs, source = :source
            WHERE id = :id"""), {**d, "id": line_id, "cs": cs, "source": SOURCE})
    # inserted after the updates, so a code an updated line gives up is free for a new one
    params = [{**d, "level": level, "cs": cs, "source": SOURCE} for d in add]
    if params:
        conn.execute(text("""
            INSERT INTO boundary_lines (level, name, left_division_id, right_division_id, status, geom,
                                        change_set_id, source, code, length_m, neighbour_name, county_line_id)
            VALUES (:level, :name, :left_division_id, :right_division_id, 'active', ST_GeomFromEWKB(:ewkb),
                    :cs, :source, :code, :length_m, :neighbour_name, :county_line_id)"""), params)
    apply_change_set(conn, cs, actor=actor, counts=counts)
    log.info("derived %s boundary lines: %s", level, counts)
    return {**counts, "change_set_id": cs}


# --- reading ---------------------------------------------------------------------------------
_LINE_SELECT = """
    SELECT l.id, l.code, l.name, l.level, l.status, l.length_m, l.neighbour_name, l.version, l.valid_from,
           l.change_set_id, l.county_line_id, c.code AS county_line_code,
           l.left_division_id, a.name AS left_name, coalesce(a.mca_code, a.nbs_code) AS left_code,
           l.right_division_id, b.name AS right_name, coalesce(b.mca_code, b.nbs_code) AS right_code,
           (SELECT count(*) FROM boundary_markers m WHERE m.boundary_line_id = l.id AND m.status = 'active')
               AS markers,
           {geom} AS geometry
    FROM boundary_lines l
    JOIN divisions a ON a.id = l.left_division_id
    LEFT JOIN divisions b ON b.id = l.right_division_id
    LEFT JOIN boundary_lines c ON c.id = l.county_line_id
"""


def _line_feature(r) -> dict[str, Any]:
    import json

    side = (lambda i, c, n: {"id": i, "code": c, "name": n} if i else None)
    props = {
        "id": r.id, "code": r.code, "name": r.name, "level": r.level, "status": r.status,
        "length_m": r.length_m, "neighbour_name": r.neighbour_name, "version": r.version,
        "valid_from": r.valid_from.isoformat(), "change_set_id": r.change_set_id,
        "left": side(r.left_division_id, r.left_code, r.left_name),
        "right": side(r.right_division_id, r.right_code, r.right_name),
        "county_line": {"id": r.county_line_id, "code": r.county_line_code} if r.county_line_id else None,
        "markers": r.markers,
    }
    geometry = json.loads(r.geometry) if r.geometry else None
    return {"type": "Feature", "id": r.id, "geometry": geometry, "properties": props}


def list_lines(conn: Connection, *, level: str | None = None, division_id: int | None = None,
               geometry: bool = True, limit: int = 1000, offset: int = 0) -> tuple[list[dict], int]:
    if level is not None and level not in LEVELS:
        raise InvalidQuery(f"level 应为 county 或 township / level must be county or township, got {level!r}",
                           parameter="level")
    where = ["l.status = 'active'"]
    if level:
        where.append("l.level = :level")
    if division_id is not None:
        where.append("(l.left_division_id = :div OR l.right_division_id = :div)")
    params = {"level": level, "div": division_id, "limit": limit, "offset": offset}
    cond = " AND ".join(where)
    total = conn.execute(text(f"SELECT count(*) FROM boundary_lines l WHERE {cond}"), params).scalar_one()
    geom = "ST_AsGeoJSON(l.geom, 7)" if geometry else "NULL"
    rows = conn.execute(text(_LINE_SELECT.format(geom=geom) + f" WHERE {cond} ORDER BY l.level, l.code "
                             "LIMIT :limit OFFSET :offset"), params).all()
    return [_line_feature(r) for r in rows], total


def get_line(conn: Connection, key: str, *, geometry: bool = True) -> dict[str, Any]:
    """A line by its stable id or its code (the active line with that code, else the latest one)."""
    key = (key or "").strip()
    geom = "ST_AsGeoJSON(l.geom, 7)" if geometry else "NULL"
    if key.isdigit() and len(key) < 12:
        row = conn.execute(text(_LINE_SELECT.format(geom=geom) + " WHERE l.id = :k"), {"k": int(key)}).first()
    elif key.isdigit() and len(key) in (12, 18):
        row = conn.execute(text(_LINE_SELECT.format(geom=geom) + " WHERE l.code = :k "
                                "ORDER BY (l.status = 'active') DESC, l.id DESC LIMIT 1"), {"k": key}).first()
    else:
        raise InvalidQuery(f"界线应以 id 或 12/18 位界线编码指定 / a line is named by its id or its 12- or 18-digit code,"
                           f" got {key!r}", parameter="line")
    if row is None:
        raise NotFound(f"未找到界线 {key} / no boundary line {key}", parameter="line")
    return _line_feature(row)


def line_history(conn: Connection, key: str) -> dict[str, Any]:
    """Every version of a line, oldest first (the current one last)."""
    current = get_line(conn, key, geometry=False)
    rows = conn.execute(text("""
        SELECT version, valid_from, valid_to, code, name, status, length_m, change_set_id
        FROM (SELECT * FROM boundary_lines_history WHERE id = :id
              UNION ALL SELECT * FROM boundary_lines WHERE id = :id) v ORDER BY version"""),
        {"id": current["id"]}).mappings().all()
    return {"id": current["id"], "code": current["properties"]["code"], "versions": [
        {**dict(r), "valid_from": r["valid_from"].isoformat(),
         "valid_to": r["valid_to"].isoformat() if r["valid_to"] else None} for r in rows]}
