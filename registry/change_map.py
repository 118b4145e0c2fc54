"""A proposed (or applied) inspection change set drawn on a map: the line as it was and as the
package redraws it, markers as they were and where they were found, new and removed markers, and
the addresses that change sides — one GeoJSON FeatureCollection in EPSG:4490 for `/map?change_set=`.

It reads the diff registry.inspection.diff stores in `change_sets.details` (`lines[].geom` the new
line as EWKB hex, `markers[].geom` a moved marker's new point as WKB hex, `markers_added`,
`markers_removed`, `lines[].addresses`) and takes the "before" geometry of each entity at the
version the diff was made against (`version`), from the table or its history.
"""
from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Connection, text

from registry.changes import get_change_set
from registry.errors import InvalidQuery

def _before(conn: Connection, table: str, entity_id: int, version: int | None) -> dict | None:
    """The entity's geometry at `version` (the current row or its history); `table` is one of ours."""
    row = conn.execute(text(f"""
        SELECT ST_AsGeoJSON(geom, 7) FROM (
            SELECT geom, version FROM {table} WHERE id = :id
            UNION ALL SELECT geom, version FROM {table}_history WHERE id = :id) v
        WHERE :version IS NULL OR version = :version ORDER BY version LIMIT 1"""),
        {"id": entity_id, "version": version}).scalar_one_or_none()
    return json.loads(row) if row else None


def _hex_geojson(conn: Connection, hexwkb: str | None) -> dict | None:
    if not hexwkb:
        return None
    row = conn.execute(text("SELECT ST_AsGeoJSON(ST_SetSRID(ST_GeomFromEWKB(decode(:h, 'hex')), 4490), 7)"),
                       {"h": hexwkb}).scalar_one()
    return json.loads(row)


def _feature(geom: dict | None, **props: Any) -> dict | None:
    return {"type": "Feature", "geometry": geom, "properties": props} if geom else None


def change_set_features(conn: Connection, change_set_id: int) -> dict:
    """The change set's geometries before and after, as a FeatureCollection (`role` says which)."""
    cs = get_change_set(conn, change_set_id)
    d = cs.details or {}
    if cs.kind != "inspection" or not isinstance(d.get("lines"), list):
        raise InvalidQuery(f"变更集 {change_set_id} 不是界线检查变更集（类型 {cs.kind}），无可绘制的差异 / change set "
                           f"{change_set_id} is a {cs.kind}, not an inspection: no diff to draw", parameter="change_set")
    feats: list[dict | None] = []
    for line in d.get("lines", []):
        name = f"{line.get('left', {}).get('name', '')}—{line.get('right', {}).get('name', '')}"
        feats.append(_feature(_before(conn, "boundary_lines", line["id"], line.get("version")), role="line_before",
                              id=line["id"], code=line.get("code"), name=name, length_m=line.get("length_m_before")))
        feats.append(_feature(_hex_geojson(conn, line.get("geom")), role="line_after", id=line["id"],
                              code=line.get("code"), name=name, length_m=line.get("length_m_after"),
                              area_to_left_m2=line.get("area_to_left_m2"), area_to_right_m2=line.get("area_to_right_m2")))
        ids = [a["id"] for a in line.get("addresses", [])]
        if ids:
            sides = {a["id"]: a for a in line["addresses"]}
            for aid, geom in conn.execute(text(
                    "SELECT id, ST_AsGeoJSON(geom, 7) FROM addresses WHERE id = ANY(:ids)"), {"ids": ids}):
                a = sides[aid]
                feats.append(_feature(json.loads(geom), role="address_changing_side", id=aid, code=a.get("code"),
                                      from_village=a.get("from_village"), to_village=a.get("to_village")))
    for m in d.get("markers", []):
        before = _before(conn, "boundary_markers", m["id"], m.get("version"))
        after = _hex_geojson(conn, m.get("geom"))
        common = {"id": m["id"], "number": m.get("number"), "moved_m": m.get("moved_m"),
                  "condition": " → ".join(m["condition"]) if m.get("condition") else None}
        feats.append(_feature(before, role="marker_before", **common))
        if after:
            feats.append(_feature(after, role="marker_after", **common))
            feats.append(_feature({"type": "LineString", "coordinates": [before["coordinates"], after["coordinates"]]}
                                  if before else None, role="marker_move", **common))
    for m in d.get("markers_added", []):
        feats.append(_feature(_hex_geojson(conn, m.get("geom")), role="marker_added", number=m.get("number")))
    for m in d.get("markers_removed", []):
        feats.append(_feature(_before(conn, "boundary_markers", m["id"], m.get("version")), role="marker_removed",
                              id=m["id"], number=m.get("number")))
    return {"type": "FeatureCollection", "change_set": cs.summary(),
            "features": [f for f in feats if f is not None]}
