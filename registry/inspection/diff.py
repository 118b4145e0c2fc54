"""The diff of a validated field package against the registry, stored as a **proposed** change
set (kind `inspection`): nothing else is written until it is approved and applied.

The diff (change_sets.details) holds, for review and for apply:
- `lines`: re-surveyed lines, each with the area passing to the left and to the right division
  (m²), the faces and their receiving villages, and the addresses that fall on the other side;
- `markers`: changed markers (moved: distance in m; condition before → after; other attributes),
  `markers_added`, `markers_removed`;
- `reference_objects`, `records`: what the teams measured and noted;
- `base`: the version of every entity apply will write (lines, markers, divisions), so apply
  refuses a change set whose base has moved on.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import Connection, select, text

from registry.changes import open_change_set
from registry.db.tables import change_sets
from registry.inspection import schema
from registry.inspection.package import PackageData, Problem
from registry.inspection.rounds import get_round
from registry.inspection.tiling import line_faces
from registry.inspection.validate import Checked, Tolerances, validate_package

log = logging.getLogger(__name__)

MOVED_M = 0.01  # a marker re-read within a centimetre has not moved (format round trips)
_MARKER_FIELDS = {"elev_m": "elevation_m", "material": "material", "kind": "kind", "installed": "installed_on"}


@dataclass
class LoadResult:
    problems: list[Problem]
    change_set_id: int | None = None
    diff: dict[str, Any] = field(default_factory=dict)
    counts: dict[str, Any] = field(default_factory=dict)
    existing: bool = False  # the same package was already proposed: that change set is returned

    @property
    def ok(self) -> bool:
        return not self.problems


def _hex(wkb: bytes | None) -> str | None:
    return wkb.hex() if wkb else None


def compute_diff(conn: Connection, pkg: PackageData, checked: Checked, round_number: int) -> dict[str, Any]:
    base: dict[str, dict[str, int]] = {"boundary_lines": {}, "boundary_markers": {}, "divisions": {}}
    div_names = {r.id: (r.name, r.code, r.version) for r in conn.execute(text(
        "SELECT id, name, coalesce(mca_code, nbs_code) AS code, version FROM divisions"))}
    lines = []
    for lid, info in sorted(checked.lines.items()):
        if not info.get("changed"):
            continue
        f = info["feature"]
        new_hex = conn.execute(text("SELECT encode(ST_AsEWKB(ST_Multi(ST_SetSRID(ST_GeomFromWKB(:w), 4490))), 'hex')"),
                               {"w": f.wkb}).scalar_one()
        faces = line_faces(conn, lid, new_hex)
        base["boundary_lines"][str(lid)] = info["version"]
        lengths = conn.execute(text("""
            SELECT l.length_m, ST_Length(ST_GeomFromEWKB(decode(:n, 'hex'))::geography) AS new_len
            FROM boundary_lines l WHERE l.id = :id"""), {"id": lid, "n": new_hex}).one()
        to = {"left": 0.0, "right": 0.0}
        addresses = []
        for face in faces:
            to["left" if face.gainer == info["left_division_id"] else "right"] += face.area_m2
            for did in (face.loser, face.gainer):
                base["divisions"][str(did)] = div_names[did][2]
            for did, ver in face.losing + face.gaining:
                base["divisions"][str(did)] = ver
            for a in face.addresses:
                addresses.append({"id": a["id"], "code": a["code"], "from_village_id": a["division_id"],
                                  "from_village": a["village"], "to_village_id": face.village,
                                  "to_village": div_names[face.village][0]})
        lines.append({
            "id": lid, "code": info["code"], "version": info["version"], "level": info["level"],
            "left": {"id": info["left_division_id"], "name": div_names[info["left_division_id"]][0]},
            "right": {"id": info["right_division_id"], "name": div_names[info["right_division_id"]][0]},
            "length_m_before": round(lengths.length_m or 0, 2), "length_m_after": round(lengths.new_len, 2),
            "area_to_left_m2": round(to["left"], 1), "area_to_right_m2": round(to["right"], 1),
            "faces": [{"area_m2": round(fc.area_m2, 1), "from": div_names[fc.loser][0], "to": div_names[fc.gainer][0],
                       "to_village": div_names[fc.village][0] if fc.village else None} for fc in faces],
            "addresses": addresses, "geom": new_hex,
        })
    markers, added, removed = [], [], []
    if checked.markers:
        pos = {r.id: r for r in conn.execute(text("""
            SELECT m.id, ST_Distance(m.geom::geography, ST_SetSRID(ST_GeomFromWKB(p.wkb), 4490)::geography) AS moved
            FROM boundary_markers m JOIN (SELECT unnest(CAST(:ids AS bigint[])) AS id,
                                                 unnest(CAST(:wkbs AS bytea[])) AS wkb) p ON p.id = m.id
        """), {"ids": list(checked.markers), "wkbs": [checked.markers[i]["feature"].wkb for i in checked.markers]})}
    for mid, info in sorted(checked.markers.items()):
        v = info["values"]
        moved = pos[mid].moved if mid in pos and pos[mid].moved is not None else 0.0
        change: dict[str, Any] = {"id": mid, "number": info["number"], "version": info["version"]}
        if moved > MOVED_M:
            change["moved_m"] = round(moved, 2)
            change["geom"] = _hex(info["feature"].wkb)
        if v["condition"] and v["condition"] != info["condition"]:
            change["condition"] = [info["condition"], v["condition"]]
        fields = {}
        for pkg_name, col in _MARKER_FIELDS.items():
            new, old = v[pkg_name], info[col]
            if new is not None and new != old and not (isinstance(new, float) and old is not None
                                                       and abs(new - float(old)) < 1e-6):
                fields[col] = [_plain(old), _plain(new)]
        photos = [p.strip() for p in str(v["photos"]).split(";") if p.strip()] if v["photos"] else []
        if v["photos"] is not None and photos != list(info["photos"] or []):
            fields["photos"] = [list(info["photos"] or []), photos]
        if fields:
            change["fields"] = fields
        if len(change) > 3:
            markers.append(change)
            base["boundary_markers"][str(mid)] = info["version"]
    for f in checked.new_markers:
        num = str(f.get("number"))
        line = checked.line_by_code.get(str(f.get("line_code")))
        from registry.markers import parse_marker_number

        parsed = parse_marker_number(num)
        added.append({"number": num, "line_id": line["id"] if line else None, "serial": parsed.serial,
                      "type_letter": parsed.letter, "condition": f.get("condition") or "new",
                      "kind": f.get("kind"), "material": f.get("material"),
                      "elevation_m": _float(f.get("elev_m")), "installed_on": _plain(f.get("installed")),
                      "left_division_id": _div(checked, f.get("left_code")),
                      "right_division_id": _div(checked, f.get("right_code")), "geom": _hex(f.wkb)})
        if line:
            base["boundary_lines"][str(line["id"])] = line["version"]
    present = set(checked.markers)
    for r in conn.execute(text("""
        SELECT id, number, version FROM boundary_markers WHERE status = 'active' AND boundary_line_id = ANY(:ids)
        ORDER BY number"""), {"ids": list(checked.lines)}).mappings():
        if r["id"] not in present:
            removed.append(dict(r))
            base["boundary_markers"][str(r["id"])] = r["version"]
    diff = {
        "round": round_number, "source": pkg.source, "checksum": pkg.checksum, "crs": pkg.crs,
        "lines": lines, "markers": markers, "markers_added": added, "markers_removed": removed,
        "reference_objects": _reference_objects(pkg), "records": _records(pkg, checked, markers, lines),
        "base": base,
    }
    return diff


def _div(checked: Checked, code) -> int | None:
    did = checked.division_by_code.get(str(code)) if code else None
    return did if did and did > 0 else None


def _plain(v):
    return v.isoformat() if isinstance(v, date) else v


def _float(v):
    try:
        return None if v is None else float(v)
    except (TypeError, ValueError):
        return None


def _reference_objects(pkg: PackageData) -> list[dict[str, Any]]:
    out = []
    for f in pkg.layer(schema.REFERENCE_OBJECTS):
        out.append({"marker_no": str(f.get("marker_no")), "seq": int(float(f.get("seq"))), "name": f.get("name"),
                    "kind": f.get("kind"), "bearing_deg": _float(f.get("bearing")),
                    "distance_m": _float(f.get("dist_m")), "geom": _hex(f.wkb)})
    return out


def _records(pkg: PackageData, checked: Checked, markers: list[dict], lines: list[dict]) -> list[dict[str, Any]]:
    """One record per line and per marker of the package: the teams' row where they filled one
    in, else what the geometry and attributes say was found."""
    filled = {}
    for f in pkg.layer(schema.RECORDS):
        keys = ("date", "left_team", "right_team", "condition", "notes", "sheet_ref")
        if not any(f.get(k) for k in keys):
            continue
        target = f.get("target")
        ref = f.get("marker_no") if target == "marker" else f.get("line_code")
        filled[(target, str(ref))] = {k: _plain(f.get(k)) for k in keys}
    moved = {m["number"]: m for m in markers}
    resurveyed = {line["code"] for line in lines}
    out = []
    for f in pkg.layer(schema.LINES):
        code = str(f.get("code"))
        rec = filled.get(("line", code), {})
        out.append({"target": "line", "line_code": code,
                    "finding": "line_discrepancy" if code in resurveyed else "intact", **rec})
    for f in pkg.layer(schema.MARKERS):
        num = str(f.get("number"))
        rec = filled.get(("marker", num), {})
        cond = rec.get("condition") or f.get("condition")
        finding = cond or ("displaced" if num in moved and "moved_m" in moved[num] else "intact")
        out.append({"target": "marker", "marker_no": num, "line_code": str(f.get("line_code")),
                    "finding": finding, "condition": cond, "geom": _hex(f.wkb), **{k: v for k, v in rec.items()
                                                                                  if k != "condition"}})
    # A record of a marker deleted from the layer (removed in the field): kept, found missing.
    in_layer = {str(f.get("number")) for f in pkg.layer(schema.MARKERS)}
    for (target, ref), rec in filled.items():
        if target == "marker" and ref not in in_layer:
            out.append({"target": "marker", "marker_no": ref, "finding": rec.get("condition") or "missing",
                        **rec})
    return out


def diff_counts(diff: dict[str, Any]) -> dict[str, Any]:
    return {
        "lines_resurveyed": len(diff["lines"]),
        "area_changed_m2": round(sum(l["area_to_left_m2"] + l["area_to_right_m2"] for l in diff["lines"]), 1),
        "addresses_reparented": sum(len(l["addresses"]) for l in diff["lines"]),
        "markers_moved": sum(1 for m in diff["markers"] if "moved_m" in m),
        "condition_changes": sum(1 for m in diff["markers"] if "condition" in m),
        "markers_added": len(diff["markers_added"]),
        "markers_removed": len(diff["markers_removed"]),
        "records": len(diff["records"]),
    }


def propose_package(conn: Connection, pkg: PackageData, round_number: int, *, actor: str,
                    tolerances: Tolerances = Tolerances()) -> LoadResult:
    """Validate the package and, when it is clean, store its diff as a proposed change set.

    A package with problems writes nothing (the result lists every problem). The same file
    (checksum) loaded again while its change set is still open returns that change set."""
    rnd = get_round(conn, round_number)
    problems, checked = validate_package(conn, pkg, tolerances=tolerances)
    if problems:
        return LoadResult(problems)
    if pkg.checksum:
        row = conn.execute(select(change_sets.c.id, change_sets.c.counts).where(
            change_sets.c.kind == "inspection", change_sets.c.checksum == pkg.checksum,
            change_sets.c.status.in_(("proposed", "approved")),
            change_sets.c.details["round"].astext == str(round_number))).first()
        if row is not None:
            return LoadResult([], row.id, counts=row.counts, existing=True)
    diff = compute_diff(conn, pkg, checked, round_number)
    counts = diff_counts(diff)
    cs = open_change_set(conn, kind="inspection", author=actor, source=pkg.source, checksum=pkg.checksum,
                         reason=f"{rnd['name']}外业数据包 / inspection round {round_number} field package",
                         details=diff)
    conn.execute(change_sets.update().where(change_sets.c.id == cs).values(counts=counts))
    log.info("inspection package %s proposed as change set %s: %s", pkg.source, cs, counts)
    return LoadResult([], cs, diff, counts)
