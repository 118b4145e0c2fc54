"""Boundary lines (界线) derived from division polygons.

Neighbouring county polygons share identical edges, so the line between two counties is the
intersection of their polygons (a linear intersection), and a county's stretch of the city's
outer edge is the part of its boundary lying on the city's boundary. Lines are written once
per pair, in one change set; running the derivation again when nothing changed writes nothing.
"""
from __future__ import annotations

import logging

from sqlalchemy import Connection, text

from registry.changes import apply_change_set, open_change_set
from registry.errors import Conflict, InvalidQuery

log = logging.getLogger(__name__)

_LEVEL_PARENT = {"county": "city", "township": "county"}

_SHARED = text("""
    SELECT a.id AS left_id, b.id AS right_id, a.name || '—' || b.name || '线' AS name,
           ST_Multi(ST_LineMerge(ST_CollectionExtract(ST_Intersection(a.geom, b.geom), 2))) AS geom
    FROM divisions a JOIN divisions b
      ON a.level = :level AND b.level = :level AND a.id < b.id
     AND a.status = 'active' AND b.status = 'active' AND ST_Intersects(a.geom, b.geom)
""")

_OUTER = text("""
    SELECT c.id AS left_id, NULL::bigint AS right_id, c.name || '外界线' AS name,
           ST_Multi(ST_LineMerge(ST_CollectionExtract(
               ST_Intersection(ST_Boundary(c.geom), ST_Boundary(p.geom)), 2))) AS geom
    FROM divisions c JOIN divisions p ON p.id = c.parent_id
    WHERE c.level = :level AND c.status = 'active' AND c.geom IS NOT NULL AND p.geom IS NOT NULL
""")


def derive_boundary_lines(conn: Connection, *, level: str = "county", actor: str = "registry") -> dict[str, int]:
    """Write the boundary lines between active divisions of `level` and along their parent's edge."""
    if level not in _LEVEL_PARENT:
        raise InvalidQuery("level 应为 county 或 township / level must be county or township", parameter="level")
    existing = conn.execute(text(
        "SELECT count(*) FROM boundary_lines WHERE level = :level AND status = 'active'"), {"level": level}).scalar()
    if existing:
        raise Conflict(f"{level} 级界线已存在 / {level} boundary lines already exist ({existing})", parameter="level")
    cs = open_change_set(conn, kind="load_divisions", author=actor, source=f"derived:{level}",
                         reason="由区划面派生界线 / boundary lines derived from division polygons")
    counts = {"shared": 0, "outer": 0}
    for kind, query in (("shared", _SHARED), ("outer", _OUTER)):
        res = conn.execute(text(f"""
            INSERT INTO boundary_lines (level, name, left_division_id, right_division_id, geom, change_set_id, source)
            SELECT :level, name, left_id, right_id, geom, :cs, 'derived from division polygons'
            FROM ({query.text}) q
            WHERE NOT ST_IsEmpty(geom) AND ST_Length(geom::geography) > 1
        """), {"level": level, "cs": cs})
        counts[kind] = res.rowcount
    apply_change_set(conn, cs, actor=actor, counts=counts)
    log.info("derived %s boundary lines: %s", level, counts)
    return counts
