"""The field package out: the lines, markers and reference objects of a scope, with the registry
ids and versions they were exported at, a template of records and the value lists."""
from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import Connection, text

from registry.divisions import resolve_division_id
from registry.errors import InvalidQuery, NotFound
from registry.inspection import schema
from registry.inspection.package import Feature, PackageData
from registry.inspection.rounds import get_round

_CODE = "coalesce({d}.mca_code, {d}.nbs_code)"  # registry.divisions.primary_code, in SQL

_SCOPE = """
    WITH RECURSIVE sub AS (
        SELECT id FROM divisions WHERE id = :div
        UNION ALL SELECT d.id FROM divisions d JOIN sub ON d.parent_id = sub.id
    )
    SELECT l.id FROM boundary_lines l
    WHERE l.status = 'active' AND (l.left_division_id IN (SELECT id FROM sub)
                                   OR l.right_division_id IN (SELECT id FROM sub))
"""


def scope_line_ids(conn: Connection, *, line_code: str | None = None, division_code: str | None = None) -> list[int]:
    if bool(line_code) == bool(division_code):
        raise InvalidQuery("请给出 --line 或 --division 之一 / give exactly one of --line or --division",
                           parameter="line")
    if line_code:
        ids = conn.execute(text("SELECT id FROM boundary_lines WHERE code = :c AND status = 'active'"),
                           {"c": line_code}).scalars().all()
        if not ids:
            raise NotFound(f"界线编码 {line_code} 不存在 / no boundary line with code {line_code}", parameter="line")
        return list(ids)
    div, _ = resolve_division_id(conn, division_code, parameter="division")
    ids = conn.execute(text(_SCOPE + " ORDER BY l.id"), {"div": div}).scalars().all()
    if not ids:
        raise NotFound(f"区划 {division_code} 没有界线（先派生界线） / division {division_code} has no boundary "
                       "lines (derive them first)", parameter="division")
    return list(ids)


def export_package(conn: Connection, round_number: int, *, line_code: str | None = None,
                   division_code: str | None = None) -> PackageData:
    rnd = get_round(conn, round_number)
    ids = scope_line_ids(conn, line_code=line_code, division_code=division_code)
    pkg = PackageData(source=f"round {round_number}", crs="EPSG:4490")
    lines = conn.execute(text(f"""
        SELECT l.id, l.version, l.code, l.name, l.level, {_CODE.format(d='a')} AS left_code, a.name AS left_name,
               {_CODE.format(d='b')} AS right_code, coalesce(b.name, l.neighbour_name) AS right_name,
               round(l.length_m::numeric, 1)::float AS length_m, c.code AS county_ln, ST_AsBinary(l.geom) AS wkb
        FROM boundary_lines l JOIN divisions a ON a.id = l.left_division_id
        LEFT JOIN divisions b ON b.id = l.right_division_id LEFT JOIN boundary_lines c ON c.id = l.county_line_id
        WHERE l.id = ANY(:ids) ORDER BY l.code, l.id
    """), {"ids": ids}).mappings().all()
    pkg.layers[schema.LINES] = [
        Feature(i, {"line_id": r["id"], "line_ver": r["version"], "code": r["code"], "name": r["name"],
                    "level": r["level"], "left_code": r["left_code"], "left_name": r["left_name"],
                    "right_code": r["right_code"], "right_name": r["right_name"], "length_m": r["length_m"],
                    "county_ln": r["county_ln"]},
                bytes(r["wkb"]))
        for i, r in enumerate(lines, 1)]
    markers = conn.execute(text(f"""
        SELECT m.id, m.version, m.number, l.code AS line_code, m.serial, m.type_letter, m.kind, m.material,
               m.elevation_m, {_CODE.format(d='a')} AS left_code, {_CODE.format(d='b')} AS right_code,
               m.installed_on, m.condition, array_to_string(m.photos, ';') AS photos, ST_AsBinary(m.geom) AS wkb
        FROM boundary_markers m JOIN boundary_lines l ON l.id = m.boundary_line_id
        LEFT JOIN divisions a ON a.id = m.left_division_id LEFT JOIN divisions b ON b.id = m.right_division_id
        WHERE m.boundary_line_id = ANY(:ids) AND m.status = 'active' ORDER BY m.number
    """), {"ids": ids}).mappings().all()
    pkg.layers[schema.MARKERS] = [
        Feature(i, {"marker_id": r["id"], "marker_ver": r["version"], "number": r["number"],
                    "line_code": r["line_code"], "serial": r["serial"], "type": r["type_letter"], "kind": r["kind"],
                    "material": r["material"], "elev_m": r["elevation_m"], "left_code": r["left_code"],
                    "right_code": r["right_code"],
                    "installed": r["installed_on"].isoformat() if r["installed_on"] else None,
                    "condition": r["condition"], "photos": r["photos"] or None},
                bytes(r["wkb"]) if r["wkb"] is not None else None)
        for i, r in enumerate(markers, 1)]
    refs = conn.execute(text("""
        SELECT m.number, o.seq, o.name, o.kind, o.bearing_deg, o.distance_m, ST_AsBinary(o.geom) AS wkb
        FROM marker_reference_objects o JOIN boundary_markers m ON m.id = o.marker_id
        WHERE m.boundary_line_id = ANY(:ids) AND m.status = 'active' AND o.status = 'active'
        ORDER BY m.number, o.seq
    """), {"ids": ids}).mappings().all()
    pkg.layers[schema.REFERENCE_OBJECTS] = [
        Feature(i, {"marker_no": r["number"], "seq": r["seq"], "name": r["name"], "kind": r["kind"],
                    "bearing": r["bearing_deg"], "dist_m": r["distance_m"]},
                bytes(r["wkb"]) if r["wkb"] is not None else None)
        for i, r in enumerate(refs, 1)]
    # One record row per line and marker, for the teams to fill in (blank rows are ignored).
    records = [{"target": "line", "line_code": f.attrs["code"]} for f in pkg.layers[schema.LINES]]
    records += [{"target": "marker", "line_code": f.attrs["line_code"], "marker_no": f.attrs["number"]}
                for f in pkg.layers[schema.MARKERS]]
    pkg.layers[schema.RECORDS] = [Feature(i, r) for i, r in enumerate(records, 1)]
    pkg.layers[schema.VALUE_LISTS] = [Feature(i, r) for i, r in enumerate(schema.value_list_rows(), 1)]
    pkg.info = {
        "round": str(round_number), "round_name": rnd["name"],
        "scope": f"line:{line_code}" if line_code else f"division:{division_code}",
        "exported_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "crs": "EPSG:4490 (CGCS2000)", "lines": str(len(lines)), "markers": str(len(markers)),
        "reference_objects": str(len(refs)),
        "standards": "MZ/T 149-2020 界桩数据交换格式; MZ/T 150-2020 界线数据交换格式 (in their spirit)",
    }
    pkg.layers[schema.PACKAGE_INFO] = [Feature(i, {"key": k, "value": v}) for i, (k, v) in enumerate(pkg.info.items(), 1)]
    return pkg
