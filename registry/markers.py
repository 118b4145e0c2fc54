"""Boundary markers (界桩): the numbering rule, storing planned markers, and reading them.

Numbering (in the spirit of MZ/T 149-2020 and GB/T 17796-2009), one rule, here only:

    number = line code + 3-digit serial + type letter        e.g. 330502330503007Q

- the line code is the boundary line's code (registry.boundaries.line_code: 12 digits on a
  county line, 18 on a township line);
- each line numbers its own markers from 001 along the line (serials 001–999);
- the letter is the marker's type: `Q` a single marker (单立), `A`/`B` the two markers of a
  same-number pair (同号双立) standing on either side of the line, `A` on the side of the
  division with the smaller code (the line's left division; on the city's outer edge the
  registry's own division, the neighbour's code being unknown), `C`/`D`/`E` the three markers
  of a triple (同号三立) at a point where three divisions meet. A triple is numbered on one
  line only, the *principal* line (the one with the smallest code among the meeting lines that
  carry markers): C stands on it, D and E a few metres along the next two lines by code; all
  three point at the principal line (`boundary_line_id`) so that, for every marker, the line
  code inside its number is the code of its own line.

`marker_number` builds a number and `parse_marker_number` reads one back (both refuse what the
rule does not allow, with an error naming the field); the inspection package's validator uses
them. Markers are entities: stable id, versioned (history), never deleted. A number is what is
cut into the stone: when a division is re-coded its lines' codes change (registry.boundaries)
but the markers keep their numbers, so an old marker's number may carry its line's former code.
"""
from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import Connection, text

from registry.changes import apply_change_set, open_change_set
from registry.errors import InvalidQuery, NotFound

log = logging.getLogger(__name__)

TYPE_LETTERS = ("Q", "A", "B", "C", "D", "E")
KIND_OF_LETTER = {"Q": "单立", "A": "同号双立", "B": "同号双立", "C": "同号三立", "D": "同号三立", "E": "同号三立"}
CONDITIONS = {  # stored value -> 中文 (the field package's value list)
    "intact": "完好", "damaged": "损坏", "worn": "字迹不清", "missing": "丢失", "displaced": "移位", "new": "新设",
}
LINE_CODE_LENGTHS = (12, 18)  # county line: 6 + 6 digits; township line: 9 + 9
_NUMBER = re.compile(r"^(\d{12}|\d{18})(\d{3})([QABCDE])$")


@dataclass(frozen=True)
class MarkerNumber:
    line_code: str
    serial: int
    letter: str

    def __str__(self) -> str:
        return marker_number(self.line_code, self.serial, self.letter)

    @property
    def kind(self) -> str:
        return KIND_OF_LETTER[self.letter]


def marker_number(line_code: str, serial: int, letter: str) -> str:
    """The full marker number: line code + 3-digit serial + type letter (see the module doc)."""
    if not isinstance(line_code, str) or not line_code.isdigit() or len(line_code) not in LINE_CODE_LENGTHS:
        raise InvalidQuery(f"界线编码应为 12 或 18 位数字 / line code must be 12 or 18 digits, got {line_code!r}",
                           parameter="line_code")
    if isinstance(serial, bool) or not isinstance(serial, int) or not 1 <= serial <= 999:
        raise InvalidQuery(f"界桩序号应为 1–999 / serial must be 1–999, got {serial!r}", parameter="serial")
    if letter not in TYPE_LETTERS:
        raise InvalidQuery(f"界桩类型字母应为 Q、A、B、C、D、E 之一 / type letter must be one of Q A B C D E, got {letter!r}",
                           parameter="type_letter")
    return f"{line_code}{serial:03d}{letter}"


def parse_marker_number(number: str, parameter: str = "number") -> MarkerNumber:
    """Read a marker number back into (line code, serial, letter); refuses a malformed one."""
    m = _NUMBER.match((number or "").strip()) if isinstance(number, str) else None
    if not m or m.group(2) == "000":
        raise InvalidQuery(
            f"界桩编号格式错误：{number!r}（应为 界线编码12或18位 + 序号3位(001–999) + 类型字母 Q/A/B/C/D/E）"
            f" / malformed marker number {number!r}: expected line code (12 or 18 digits) + serial 001–999 + Q/A/B/C/D/E",
            parameter=parameter)
    return MarkerNumber(m.group(1), int(m.group(2)), m.group(3))


def is_marker_number(number: str) -> bool:
    try:
        parse_marker_number(number)
    except InvalidQuery:
        return False
    return True


# --- storing planned markers -----------------------------------------------------------------
@dataclass
class ReferenceObject:
    seq: int
    name: str
    kind: str
    bearing_deg: float
    distance_m: float
    lon: float
    lat: float


@dataclass
class PlannedMarker:
    line_id: int
    line_code: str
    serial: int
    letter: str
    lon: float
    lat: float
    elevation_m: float
    left_division_id: int | None
    right_division_id: int | None
    material: str
    installed_on: date
    condition: str
    photos: list[str]
    references: list[ReferenceObject] = field(default_factory=list)

    @property
    def number(self) -> str:
        return marker_number(self.line_code, self.serial, self.letter)


def lines_with_markers(conn: Connection) -> set[int]:
    return set(conn.execute(text(
        "SELECT DISTINCT boundary_line_id FROM boundary_markers WHERE status = 'active'")).scalars())


def store_markers(conn: Connection, planned: list[PlannedMarker], *, actor: str = "registry",
                  source: str = "derived") -> dict[str, Any]:
    """Write planned markers (and their reference objects) in one change set.

    A line's markers are set once: lines that already have active markers are left alone (from
    then on markers change through inspections), so a re-run writes nothing and says so
    (`{"markers": 0, "unchanged_lines": n}` and no change set)."""
    done = lines_with_markers(conn)
    todo = [p for p in planned if p.line_id not in done]
    skipped = len({p.line_id for p in planned if p.line_id in done})
    if not todo:
        return {"markers": 0, "reference_objects": 0, "lines": 0, "unchanged_lines": skipped, "change_set_id": None}
    for p in todo:
        if len(p.references) < 3:
            raise InvalidQuery(f"界桩 {p.number} 的方位物少于 3 个 / marker {p.number} has fewer than 3 reference objects",
                               parameter="references")
        if p.condition not in CONDITIONS:
            raise InvalidQuery(f"界桩状况无效：{p.condition} / unknown marker condition {p.condition!r}",
                               parameter="condition")
    cs = open_change_set(conn, kind="load_divisions", author=actor, source=source,
                         reason="界桩（派生）/ boundary markers (derived)")
    # one statement for the markers and one for their reference objects (a JSON recordset each)
    rows = [{"number": p.number, "line": p.line_id, "kind": KIND_OF_LETTER[p.letter], "material": p.material,
             "installed": p.installed_on.isoformat(), "lon": p.lon, "lat": p.lat, "serial": p.serial,
             "letter": p.letter, "elev": p.elevation_m, "left": p.left_division_id, "right": p.right_division_id,
             "condition": p.condition, "photos": p.photos} for p in todo]
    ids = dict(conn.execute(text("""
        INSERT INTO boundary_markers (number, boundary_line_id, kind, material, installed_on, status, geom,
                                      change_set_id, source, serial, type_letter, elevation_m,
                                      left_division_id, right_division_id, condition, photos)
        SELECT x.number, x.line, x.kind, x.material, x.installed, 'active', ST_SetSRID(ST_MakePoint(x.lon, x.lat), 4490),
               :cs, :source, x.serial, x.letter, x.elev, x."left", x."right", x.condition,
               ARRAY(SELECT jsonb_array_elements_text(x.photos))
        FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS x(number text, line bigint, kind text, material text,
             installed date, lon float8, lat float8, serial int, letter text, elev float8, "left" bigint,
             "right" bigint, condition text, photos jsonb)
        RETURNING number, id"""), {"rows": json.dumps(rows), "cs": cs, "source": source}).all())
    refs = [{"m": ids[p.number], "seq": r.seq, "name": r.name, "kind": r.kind, "bearing": r.bearing_deg,
             "dist": r.distance_m, "lon": r.lon, "lat": r.lat} for p in todo for r in p.references]
    conn.execute(text("""
        INSERT INTO marker_reference_objects (marker_id, seq, name, kind, bearing_deg, distance_m, geom,
                                              change_set_id, source)
        SELECT x.m, x.seq, x.name, x.kind, x.bearing, x.dist, ST_SetSRID(ST_MakePoint(x.lon, x.lat), 4490), :cs, :source
        FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS x(m bigint, seq smallint, name text, kind text,
             bearing float8, dist float8, lon float8, lat float8)"""), {"rows": json.dumps(refs), "cs": cs,
                                                                        "source": source})
    n_refs = len(refs)
    counts = {"markers": len(todo), "reference_objects": n_refs, "lines": len({p.line_id for p in todo})}
    apply_change_set(conn, cs, actor=actor, counts=counts)
    log.info("stored %s markers on %s lines (change set %s)", counts["markers"], counts["lines"], cs)
    return {**counts, "unchanged_lines": skipped, "change_set_id": cs}


def planning_inputs(conn: Connection) -> dict[str, Any]:
    """What a marker planner needs, as WKB: the active lines (both levels), the polygons of the
    divisions on their sides, and the roads and rivers the lines may cross."""
    lines = [dict(r) for r in conn.execute(text("""
        SELECT l.id, l.code, l.level, l.left_division_id, l.right_division_id, l.county_line_id,
               coalesce(a.mca_code, a.nbs_code) AS left_code, coalesce(b.mca_code, b.nbs_code) AS right_code,
               ST_AsBinary(l.geom) AS wkb
        FROM boundary_lines l JOIN divisions a ON a.id = l.left_division_id
        LEFT JOIN divisions b ON b.id = l.right_division_id
        WHERE l.status = 'active' AND l.code IS NOT NULL ORDER BY l.level, l.code""")).mappings()]
    ids = sorted({i for r in lines for i in (r["left_division_id"], r["right_division_id"]) if i})
    polygons = {r.id: bytes(r.wkb) for r in conn.execute(text(
        "SELECT id, ST_AsBinary(geom) AS wkb FROM divisions WHERE id = ANY(:ids) AND geom IS NOT NULL"), {"ids": ids})}
    crossings = {cat: [bytes(w) for w in conn.execute(text(
        "SELECT ST_AsBinary(geom) FROM place_names WHERE category = :c AND status = 'active' "
        "AND GeometryType(geom) IN ('LINESTRING', 'MULTILINESTRING') ORDER BY id"), {"c": cat}).scalars()]
        for cat in ("river", "road")}
    for r in lines:
        r["wkb"] = bytes(r["wkb"])
    return {"lines": lines, "polygons": polygons, "crossings": crossings}


# --- reading ---------------------------------------------------------------------------------
_MARKER_SELECT = """
    SELECT m.id, m.number, m.serial, m.type_letter, m.kind, m.material, m.installed_on, m.status, m.condition,
           m.elevation_m, m.photos, m.version, m.valid_from, m.change_set_id,
           ST_X(m.geom) AS lon, ST_Y(m.geom) AS lat,
           l.id AS line_id, l.code AS line_code, l.name AS line_name,
           m.left_division_id, a.name AS left_name, coalesce(a.mca_code, a.nbs_code) AS left_code,
           m.right_division_id, b.name AS right_name, coalesce(b.mca_code, b.nbs_code) AS right_code
    FROM boundary_markers m
    LEFT JOIN boundary_lines l ON l.id = m.boundary_line_id
    LEFT JOIN divisions a ON a.id = m.left_division_id
    LEFT JOIN divisions b ON b.id = m.right_division_id
"""


def _marker_feature(r, references: list[dict] | None = None) -> dict[str, Any]:
    props = {
        "id": r.id, "number": r.number, "serial": r.serial, "type_letter": r.type_letter, "kind": r.kind,
        "material": r.material, "installed_on": r.installed_on.isoformat() if r.installed_on else None,
        "status": r.status, "condition": r.condition, "condition_zh": CONDITIONS.get(r.condition),
        "elevation_m": r.elevation_m, "photos": list(r.photos or []), "version": r.version,
        "line": {"id": r.line_id, "code": r.line_code, "name": r.line_name},
        "left": {"id": r.left_division_id, "code": r.left_code, "name": r.left_name} if r.left_division_id else None,
        "right": {"id": r.right_division_id, "code": r.right_code, "name": r.right_name}
        if r.right_division_id else None,
        "crs": "EPSG:4490",
    }
    if references is not None:
        props["reference_objects"] = references
    geometry = {"type": "Point", "coordinates": [r.lon, r.lat]} if r.lon is not None else None
    return {"type": "Feature", "id": r.id, "geometry": geometry, "properties": props}


def reference_objects(conn: Connection, marker_id: int) -> list[dict[str, Any]]:
    rows = conn.execute(text("""
        SELECT id, seq, name, kind, bearing_deg, distance_m, ST_X(geom) AS lon, ST_Y(geom) AS lat, version
        FROM marker_reference_objects WHERE marker_id = :m AND status = 'active' ORDER BY seq"""),
        {"m": marker_id}).mappings().all()
    return [dict(r) for r in rows]


def list_markers(conn: Connection, line_id: int | None = None, *, limit: int = 1000, offset: int = 0
                 ) -> tuple[list[dict[str, Any]], int]:
    where = "m.status = 'active'" + (" AND m.boundary_line_id = :line" if line_id is not None else "")
    params = {"line": line_id, "limit": limit, "offset": offset}
    total = conn.execute(text(f"SELECT count(*) FROM boundary_markers m WHERE {where}"), params).scalar_one()
    rows = conn.execute(text(f"{_MARKER_SELECT} WHERE {where} ORDER BY l.code, m.serial, m.type_letter "
                             "LIMIT :limit OFFSET :offset"), params).all()
    return [_marker_feature(r) for r in rows], total


def get_marker(conn: Connection, key: str) -> dict[str, Any]:
    """A marker by its id or its number, with its reference objects."""
    key = (key or "").strip()
    if key.isdigit() and len(key) < 12:
        row = conn.execute(text(f"{_MARKER_SELECT} WHERE m.id = :k"), {"k": int(key)}).first()
    else:
        parse_marker_number(key, parameter="marker")
        row = conn.execute(text(f"{_MARKER_SELECT} WHERE m.number = :k ORDER BY (m.status = 'active') DESC, m.id DESC"
                                " LIMIT 1"), {"k": key}).first()
    if row is None:
        raise NotFound(f"未找到界桩 {key} / no boundary marker {key}", parameter="marker")
    return _marker_feature(row, reference_objects(conn, row.id))


def marker_history(conn: Connection, key: str) -> dict[str, Any]:
    current = get_marker(conn, key)
    rows = conn.execute(text("""
        SELECT version, valid_from, valid_to, number, condition, status, change_set_id,
               ST_X(geom) AS lon, ST_Y(geom) AS lat
        FROM (SELECT * FROM boundary_markers_history WHERE id = :id
              UNION ALL SELECT * FROM boundary_markers WHERE id = :id) v ORDER BY version"""),
        {"id": current["id"]}).mappings().all()
    return {"id": current["id"], "number": current["properties"]["number"], "versions": [
        {**dict(r), "valid_from": r["valid_from"].isoformat(),
         "valid_to": r["valid_to"].isoformat() if r["valid_to"] else None} for r in rows]}
