"""Building an edited package and checking the tiling, shared by the inspection tests."""
from __future__ import annotations

from pathlib import Path

from sqlalchemy import Connection, text

from loaders.field_package import read_package, write_package
from registry.inspection import export_package, propose_package

from . import edit
from .conftest import ROUND


def export(conn: Connection, line: dict, path: Path) -> Path:
    write_package(export_package(conn, ROUND, line_code=line["code"]), path)
    return path


def edited_package(conn: Connection, line: dict, folder: Path, *, north_m: float = 25.0, move_m: float = 30.0):
    """Export the line's package, move its first marker `move_m` east (condition displaced) and
    shift the line's middle vertices `north_m` north, with pyogrio."""
    path = export(conn, line, folder / "field.gpkg")
    markers = edit.read(path, "markers")
    markers.loc[0, "geometry"] = edit.move_point(markers.geometry[0], move_m)
    markers.loc[0, "condition"] = "displaced"
    edit.write(path, "markers", markers)
    lines = edit.read(path, "lines")
    old = lines.geometry[0]
    lines.loc[0, "geometry"] = edit.reshape_middle(old, north_m)
    edit.write(path, "lines", lines)
    return path, old, lines.geometry[0], markers


def address_in_face(conn: Connection, old, new) -> tuple[int, int, str]:
    """An address inserted inside the largest face between the old and the new line: (id, village id, code)."""
    face = max(edit.faces_between(old, new), key=lambda f: f.area)
    p = face.representative_point()
    village = conn.execute(text("""
        SELECT v.id, v.nbs_code FROM divisions v WHERE v.level = 'village' AND v.status = 'active'
          AND ST_Contains(v.geom, ST_SetSRID(ST_MakePoint(:x, :y), 4490))"""), {"x": p.x, "y": p.y}).one()
    code = f"{village.nbs_code}00099999"
    aid = conn.execute(text("""
        INSERT INTO addresses (division_id, number, full_text, code, local_seq, geom)
        VALUES (:v, '999号', '测试地址999号', :code, 99999, ST_SetSRID(ST_MakePoint(:x, :y), 4490)) RETURNING id
    """), {"v": village.id, "code": code, "x": p.x, "y": p.y}).scalar_one()
    return aid, village.id, code


def propose(conn: Connection, path: Path, actor: str = "editor-a"):
    result = propose_package(conn, read_package(path), ROUND, actor=actor)
    assert result.ok, result.problems
    return result


def tiling_defects(conn: Connection, parent_id: int) -> dict[str, float]:
    """For the children of a division: the gap (parent minus the union of its children) and the
    overlap (sum of the children's areas minus the area of their union), in m²."""
    return dict(conn.execute(text("""
        WITH c AS (SELECT geom FROM divisions WHERE parent_id = :p AND status = 'active' AND geom IS NOT NULL),
             u AS (SELECT ST_Union(geom) AS g, sum(ST_Area(geom::geography)) AS total FROM c)
        SELECT ST_Area(ST_Difference(p.geom, u.g)::geography) AS gap,
               ST_Area(ST_Difference(u.g, p.geom)::geography) AS outside,
               u.total - ST_Area(u.g::geography) AS overlap
        FROM divisions p, u WHERE p.id = :p
    """), {"p": parent_id}).mappings().one())
