"""What a re-surveyed boundary line does to the division polygons: the area that changes hands,
who gains it at every level, and the addresses that fall on the other side.

The old and the new line together enclose faces (ST_Polygonize of their noded union). A face
inside the left division passes to the right one, and the other way round. At the line's level
that is all; below it (townships and villages under a county, villages under a township) the
losing side's divisions that overlap the face lose it, and the gaining side's village that shares
the longest stretch of the old line with the face gains all of it, together with that village's
ancestors up to the line's level, so every level stays a clean tiling (no gap, no overlap). A
face that touches several of the gaining side's villages goes whole to one of them: the editors
see that in the diff (the face's area and the receiving village) and can split it later.

The same function computes the diff (at load) and drives the polygon updates (at apply), so what
was reviewed is what is applied; apply refuses when any division it would touch has a new version.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import Connection, text

from registry.faults import checkpoint

_FACES = text("""
    WITH g AS (
        SELECT l.geom AS old, ST_SetSRID(ST_GeomFromEWKB(decode(:new, 'hex')), 4490) AS new,
               a.id AS left_id, a.geom AS left_geom, b.id AS right_id, b.geom AS right_geom
        FROM boundary_lines l JOIN divisions a ON a.id = l.left_division_id JOIN divisions b ON b.id = l.right_division_id
        WHERE l.id = :line
    ), f AS (
        SELECT (ST_Dump(ST_Polygonize(ST_Union(g.old, g.new)))).geom AS face FROM g
    )
    SELECT ST_AsEWKB(f.face) AS face, ST_Area(f.face::geography) AS area_m2,
           CASE WHEN ST_Contains(g.left_geom, ST_PointOnSurface(f.face)) THEN g.left_id
                WHEN ST_Contains(g.right_geom, ST_PointOnSurface(f.face)) THEN g.right_id END AS loser,
           g.left_id, g.right_id
    FROM f, g
    WHERE ST_Area(f.face::geography) > 0.01
""")

_SUBTREE = """
    WITH RECURSIVE sub AS (
        SELECT id, level FROM divisions WHERE id = :root
        UNION ALL SELECT d.id, d.level FROM divisions d JOIN sub ON d.parent_id = sub.id WHERE d.status = 'active'
    )
"""

_LOSERS = text(_SUBTREE + """
    SELECT d.id, d.version, d.level FROM sub JOIN divisions d ON d.id = sub.id
    WHERE d.id <> :root AND d.geom IS NOT NULL AND d.geom && ST_GeomFromEWKB(:face)
      AND ST_Area(ST_Intersection(d.geom, ST_GeomFromEWKB(:face))) > 0
""")

_GAINING_VILLAGE = text(_SUBTREE + """
    SELECT d.id FROM sub JOIN divisions d ON d.id = sub.id
    WHERE d.level = 'village' AND d.geom IS NOT NULL AND d.geom && ST_GeomFromEWKB(:face)
    ORDER BY ST_Length(ST_Intersection(ST_Boundary(ST_GeomFromEWKB(:face)), d.geom)) DESC, d.id LIMIT 1
""")

_CHAIN = text("""
    WITH RECURSIVE up AS (
        SELECT id, parent_id FROM divisions WHERE id = :village
        UNION ALL SELECT d.id, d.parent_id FROM divisions d JOIN up ON d.id = up.parent_id WHERE up.id <> :root
    )
    SELECT d.id, d.version FROM up JOIN divisions d ON d.id = up.id WHERE d.id <> :root
""")

_ADDRESSES = text(_SUBTREE + """
    SELECT a.id, a.code, a.division_id, v.name AS village FROM addresses a
    JOIN sub ON sub.id = a.division_id JOIN divisions v ON v.id = a.division_id
    WHERE a.status <> 'retired' AND a.geom && ST_GeomFromEWKB(:face) AND ST_Within(a.geom, ST_GeomFromEWKB(:face))
    ORDER BY a.id
""")


@dataclass
class Face:
    ewkb: bytes
    area_m2: float
    loser: int
    gainer: int
    losing: list[tuple[int, int]] = field(default_factory=list)  # (division id, version) below the line's level
    gaining: list[tuple[int, int]] = field(default_factory=list)  # the receiving village and its ancestors
    village: int | None = None  # the receiving village
    addresses: list[dict] = field(default_factory=list)


def line_faces(conn: Connection, line_id: int, new_ewkb_hex: str) -> list[Face]:
    faces = []
    for r in conn.execute(_FACES, {"line": line_id, "new": new_ewkb_hex}).mappings():
        if r["loser"] is None:
            continue  # a sliver on the outside edge: nothing changes hands
        gainer = r["right_id"] if r["loser"] == r["left_id"] else r["left_id"]
        face = Face(bytes(r["face"]), float(r["area_m2"]), r["loser"], gainer)
        p = {"face": face.ewkb}
        face.losing = [(x.id, x.version) for x in conn.execute(_LOSERS, {**p, "root": face.loser})]
        face.village = conn.execute(_GAINING_VILLAGE, {**p, "root": gainer}).scalar()
        if face.village is not None:
            face.gaining = [(x.id, x.version) for x in conn.execute(_CHAIN, {"village": face.village, "root": gainer})]
            face.addresses = [dict(a) for a in conn.execute(_ADDRESSES, {**p, "root": face.loser}).mappings()]
        faces.append(face)
    return faces


def apply_face(conn: Connection, face: Face, change_set_id: int) -> None:
    """Move one face from its loser (and the loser's divisions below) to its gainer's chain."""
    p = {"face": face.ewkb, "cs": change_set_id}
    losers = [face.loser] + [i for i, _ in face.losing]
    gainers = [face.gainer] + [i for i, _ in face.gaining if i != face.gainer]
    conn.execute(text("""
        UPDATE divisions SET geom = ST_Multi(ST_CollectionExtract(ST_Difference(geom, ST_GeomFromEWKB(:face)), 3)),
               change_set_id = :cs
        WHERE id = ANY(:ids)"""), {**p, "ids": losers})
    checkpoint("inspection.face_taken")
    conn.execute(text("""
        UPDATE divisions SET geom = ST_Multi(ST_CollectionExtract(ST_Union(geom, ST_GeomFromEWKB(:face)), 3)),
               change_set_id = :cs
        WHERE id = ANY(:ids)"""), {**p, "ids": gainers})

