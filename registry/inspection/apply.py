"""Applying an approved inspection change set, in the caller's one transaction.

Order: check the base (every entity to be written still at the version the diff was computed
on, else Conflict naming it) → per re-surveyed line move its faces between the divisions (all
levels, registry.inspection.tiling) and store the surveyed line → township lines lying on a
changed county line re-derived from the new polygons → the addresses whose door point changed
sides re-parented (registry.reparenting: id kept, code re-derived, old code resolving) →
markers moved / re-conditioned / added / retired → reference objects → the round's records →
audit. Every write is an UPDATE or INSERT on a versioned table, so history is written by the
triggers; a crash anywhere rolls the whole transaction back.
"""
from __future__ import annotations

import json
import logging
from datetime import date
from typing import Any

from sqlalchemy import Connection, text
from sqlalchemy.exc import IntegrityError

from registry.changes import ChangeSet, audit, register_applier
from registry.errors import Conflict
from registry.faults import checkpoint
from registry.inspection.tiling import apply_face, line_faces

log = logging.getLogger(__name__)

_TABLE_NAMES = {"boundary_lines": ("界线", "line"), "boundary_markers": ("界桩", "marker"),
                "divisions": ("区划", "division")}


def check_base(conn: Connection, base: dict[str, dict[str, int]]) -> None:
    for table, versions in base.items():
        if not versions:
            continue
        label = "code" if table == "boundary_lines" else ("number" if table == "boundary_markers" else "name")
        rows = conn.execute(text(f"SELECT id, version, {label} AS label FROM {table} WHERE id = ANY(:ids) FOR UPDATE"),
                            {"ids": [int(i) for i in versions]}).all()
        now = {r.id: r for r in rows}
        for sid, ver in sorted(versions.items()):
            r = now.get(int(sid))
            if r is None or r.version != ver:
                zh, en = _TABLE_NAMES[table]
                raise Conflict(
                    f"{zh} {r.label if r else sid}（id {sid}）自计算差异后已被修改（第 {ver} 版 → 第 {r.version if r else '?'} 版），"
                    f"请重新导入数据包 / {en} {r.label if r else sid} (id {sid}) changed since the diff was computed "
                    f"(version {ver} → {r.version if r else '?'}): load the package again",
                    parameter="change_set", entity=f"{table}:{sid}", entity_label=str(r.label if r else sid))


def apply_inspection(conn: Connection, cs: ChangeSet, actor: str) -> dict[str, Any]:
    diff = cs.details
    check_base(conn, diff.get("base", {}))
    checkpoint("inspection.base_checked")
    cs_id = cs.id
    moves: dict[int, int] = {}
    county_changed = False
    area = 0.0
    for line in diff["lines"]:
        for face in line_faces(conn, line["id"], line["geom"]):
            apply_face(conn, face, cs_id)
            checkpoint("inspection.face")
            area += face.area_m2
            for a in face.addresses:
                moves[a["id"]] = face.village
        conn.execute(text("""
            UPDATE boundary_lines SET geom = ST_GeomFromEWKB(decode(:g, 'hex')),
                   length_m = round(ST_Length(ST_GeomFromEWKB(decode(:g, 'hex'))::geography)::numeric, 2),
                   change_set_id = :cs, source = 'inspection'
            WHERE id = :id"""), {"g": line["geom"], "cs": cs_id, "id": line["id"]})
        county_changed |= line["level"] == "county"
        audit(conn, actor=actor, action="inspection.line.resurvey", entity_kind="boundary_line", entity_id=line["id"],
              change_set_id=cs_id, details={"area_to_left_m2": line["area_to_left_m2"],
                                            "area_to_right_m2": line["area_to_right_m2"]})
        checkpoint("inspection.line")
    if county_changed:
        from registry.boundaries import derive_boundary_lines

        derive_boundary_lines(conn, level="township", actor=actor)
        checkpoint("inspection.township_lines")
    moved_addresses = 0
    if moves:
        from registry.reparenting import move_addresses

        moved_addresses = move_addresses(conn, moves, change_set_id=cs_id)
        checkpoint("inspection.reparented")
    n_markers = _apply_markers(conn, diff, cs_id)
    checkpoint("inspection.markers")
    n_refs = _apply_reference_objects(conn, diff, cs_id)
    checkpoint("inspection.reference_objects")
    n_records = _write_records(conn, diff, cs_id)
    checkpoint("inspection.records")
    counts = {"lines_updated": len(diff["lines"]), "area_changed_m2": round(area, 1),
              "addresses_reparented": moved_addresses, **n_markers, "reference_objects_written": n_refs,
              "records_written": n_records}
    log.info("inspection change set %s applied: %s", cs_id, counts)
    return counts


def _apply_markers(conn: Connection, diff: dict, cs_id: int) -> dict[str, int]:
    n = {"markers_updated": 0, "markers_inserted": 0, "markers_retired": 0}
    for m in diff["markers"]:
        sets, params = ["change_set_id = :cs", "source = 'inspection'"], {"cs": cs_id, "id": m["id"]}
        if "geom" in m:
            sets.append("geom = ST_SetSRID(ST_GeomFromWKB(decode(:g, 'hex')), 4490)")
            params["g"] = m["geom"]
        if "condition" in m:
            sets.append("condition = :cond")
            params["cond"] = m["condition"][1]
        for col, (_, new) in m.get("fields", {}).items():
            sets.append(f"{col} = :{col}")
            params[col] = date.fromisoformat(new) if col == "installed_on" and new else new
        conn.execute(text(f"UPDATE boundary_markers SET {', '.join(sets)} WHERE id = :id"), params)
        checkpoint("inspection.marker")
        n["markers_updated"] += 1
    for m in diff["markers_added"]:
        try:
            with conn.begin_nested():
                conn.execute(text("""
                    INSERT INTO boundary_markers (number, boundary_line_id, kind, material, installed_on, status, geom,
                        change_set_id, source, serial, type_letter, elevation_m, left_division_id, right_division_id,
                        condition, photos)
                    SELECT :number, CAST(:line AS bigint), CAST(:kind AS text), CAST(:material AS text),
                           CAST(:installed AS date), 'active', ST_SetSRID(ST_GeomFromWKB(decode(:g, 'hex')), 4490),
                           :cs, 'inspection', CAST(:serial AS integer), :letter, CAST(:elev AS float8),
                           CAST(:left AS bigint), CAST(:right AS bigint), :cond, '{}'"""), {
                    "number": m["number"], "line": m["line_id"], "kind": m["kind"], "material": m["material"],
                    "installed": m["installed_on"], "g": m["geom"], "cs": cs_id, "serial": m["serial"],
                    "letter": m["type_letter"], "elev": m["elevation_m"], "left": m["left_division_id"],
                    "right": m["right_division_id"], "cond": m["condition"]})
        except IntegrityError:
            raise Conflict(f"界桩编号 {m['number']} 已被使用 / marker number {m['number']} is taken since the diff",
                           parameter="change_set", entity=f"boundary_markers:{m['number']}") from None
        n["markers_inserted"] += 1
    if diff["markers_removed"]:
        conn.execute(text("UPDATE boundary_markers SET status = 'retired', change_set_id = :cs WHERE id = ANY(:ids)"),
                     {"cs": cs_id, "ids": [m["id"] for m in diff["markers_removed"]]})
        n["markers_retired"] = len(diff["markers_removed"])
    return n


def _apply_reference_objects(conn: Connection, diff: dict, cs_id: int) -> int:
    if not diff["reference_objects"]:
        return 0
    res = conn.execute(text("""
        WITH p AS (
            SELECT m.id AS marker_id, r.seq, r.name, r.kind, r.bearing_deg, r.distance_m,
                   CASE WHEN r.geom IS NULL THEN NULL ELSE ST_SetSRID(ST_GeomFromWKB(decode(r.geom, 'hex')), 4490) END AS geom
            FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS r(marker_no text, seq int, name text, kind text,
                                                               bearing_deg float8, distance_m float8, geom text)
            JOIN boundary_markers m ON m.number = r.marker_no AND m.status = 'active'
        ), upd AS (
            UPDATE marker_reference_objects o SET name = p.name, kind = p.kind, bearing_deg = p.bearing_deg,
                   distance_m = p.distance_m, geom = coalesce(p.geom, o.geom), change_set_id = :cs
            FROM p WHERE o.marker_id = p.marker_id AND o.seq = p.seq AND o.status = 'active'
              AND (o.name, o.kind, o.bearing_deg, o.distance_m) IS DISTINCT FROM (p.name, p.kind, p.bearing_deg, p.distance_m)
            RETURNING o.id
        ), ins AS (
            INSERT INTO marker_reference_objects (marker_id, seq, name, kind, bearing_deg, distance_m, geom,
                                                  change_set_id, source)
            SELECT p.marker_id, p.seq, p.name, p.kind, p.bearing_deg, p.distance_m, p.geom, :cs, 'inspection' FROM p
            WHERE NOT EXISTS (SELECT 1 FROM marker_reference_objects o
                              WHERE o.marker_id = p.marker_id AND o.seq = p.seq AND o.status = 'active')
              AND p.bearing_deg IS NOT NULL AND p.distance_m IS NOT NULL
            RETURNING id
        )
        SELECT (SELECT count(*) FROM upd) + (SELECT count(*) FROM ins)
    """), {"rows": json.dumps(diff["reference_objects"], ensure_ascii=False), "cs": cs_id}).scalar()
    return int(res or 0)


def _write_records(conn: Connection, diff: dict, cs_id: int) -> int:
    if not diff["records"]:
        return 0
    refs: dict[str, list] = {}
    for r in diff["reference_objects"]:
        refs.setdefault(r["marker_no"], []).append({k: r[k] for k in ("seq", "name", "bearing_deg", "distance_m")})
    rows = [{**r, "refs": refs.get(r.get("marker_no"), []) if r["target"] == "marker" else []} for r in diff["records"]]
    res = conn.execute(text("""
        INSERT INTO inspection_records (round_id, boundary_line_id, marker_id, finding, description, inspector,
                                        recorded_on, geom, change_set_id, left_team, right_team, condition,
                                        reference_measurements, sheet_ref)
        SELECT (SELECT id FROM inspection_rounds WHERE number = :round),
               CASE WHEN r.target = 'line' THEN l.id END, m.id, r.finding, r.notes,
               nullif(concat_ws(' / ', r.left_team, r.right_team), ''), coalesce(CAST(r.date AS date), current_date),
               CASE WHEN r.geom IS NULL THEN NULL ELSE ST_SetSRID(ST_GeomFromWKB(decode(r.geom, 'hex')), 4490) END,
               :cs, r.left_team, r.right_team, r.condition, coalesce(r.refs, '[]'::jsonb), r.sheet_ref
        FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS r(target text, line_code text, marker_no text, finding text,
             condition text, date text, left_team text, right_team text, notes text, sheet_ref text, geom text,
             refs jsonb)
        LEFT JOIN boundary_lines l ON l.code = r.line_code AND l.status = 'active'
        LEFT JOIN LATERAL (SELECT x.id FROM boundary_markers x WHERE r.target = 'marker' AND x.number = r.marker_no
                           ORDER BY x.status = 'active' DESC, x.id DESC LIMIT 1) m ON true
    """), {"rows": json.dumps(rows, ensure_ascii=False), "cs": cs_id, "round": diff["round"]})
    return res.rowcount


register_applier("inspection", apply_inspection)
