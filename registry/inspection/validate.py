"""Validation of a field package against the registry: every problem is collected (never just
the first), each naming the layer, the feature and the rule. Nothing is written.

Rules (the `rule` of each problem): file_unreadable, unsupported_format, empty, missing_layer,
truncated, crs_missing, crs_unknown, required, bad_value, duplicate_feature, unknown_entity,
stale_base, unknown_division, sides_changed, unknown_line, marker_number_format,
marker_number_duplicate, geometry_invalid, self_intersection, line_ends_moved,
line_outside_area, outer_line_edit, marker_off_line.

Geometry rules run in PostGIS over a temporary table of the package's geometries, so the domain
needs no geometry library of its own.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import Connection, text

from registry.errors import RegistryError
from registry.inspection import schema
from registry.inspection.package import Feature, PackageData, Problem, feature_label

# Below this (degrees, about 1 cm) a re-read geometry is the exported one: GeoJSON keeps ~15
# significant digits, so a round trip is not exactly equal.
UNCHANGED_DEG = 1e-7


@dataclass(frozen=True)
class Tolerances:
    marker_m: float = 50.0  # a marker may stand this far from its line (pairs sit on both banks)
    node_m: float = 0.5  # a line's ends must stay where its neighbours meet it


@dataclass
class Checked:
    """What validation resolved, for the diff: registry rows by package feature."""
    lines: dict[int, dict] = field(default_factory=dict)  # line_id -> registry row (+ 'feature', 'changed')
    markers: dict[int, dict] = field(default_factory=dict)  # marker_id -> registry row (+ 'feature')
    new_markers: list[Feature] = field(default_factory=list)
    line_by_code: dict[str, dict] = field(default_factory=dict)
    division_by_code: dict[str, int] = field(default_factory=dict)


class _Collector:
    def __init__(self, pkg: PackageData) -> None:
        self.problems: list[Problem] = list(pkg.problems)

    def add(self, layer: str | None, f: Feature | None, key: Any, rule: str, zh: str, en: str) -> None:
        self.problems.append(Problem(layer, feature_label(f, key) if f else None, rule, f"{zh} / {en}"))


def _int(v: Any) -> int | None:
    if v is None:
        return None
    try:
        fv = float(v)
    except (TypeError, ValueError):
        raise ValueError(v) from None
    if fv != int(fv):
        raise ValueError(v)
    return int(fv)


def _check_attrs(out: _Collector, layer: str, f: Feature, key: Any) -> dict[str, Any]:
    """Required attributes, types and value lists of one feature; returns the typed values."""
    values: dict[str, Any] = {}
    for fd in schema.LAYERS[layer].fields:
        v = f.get(fd.name)
        if v is None:
            if fd.required:
                out.add(layer, f, key, "required", f"缺少必填属性 {fd.name}（{fd.alias}）",
                        f"required attribute {fd.name} ({fd.alias}) is empty")
            values[fd.name] = None
            continue
        try:
            if fd.kind == "int":
                v = _int(v)
            elif fd.kind == "float":
                v = float(v)
            elif fd.kind == "date":
                v = date.fromisoformat(str(v)[:10])
            else:
                v = str(v).strip()
                if isinstance(f.attrs.get(fd.name), float) and v.endswith(".0"):
                    v = v[:-2]  # a code a spreadsheet turned into a number
        except ValueError:
            out.add(layer, f, key, "bad_value", f"属性 {fd.name} 的值 {v!r} 不是{ {'int': '整数', 'float': '数值', 'date': '日期 YYYY-MM-DD'}[fd.kind] }",
                    f"attribute {fd.name}: {v!r} is not a valid {fd.kind}")
            v = None
        if v is not None and fd.values and v not in schema.VALUE_LIST_OF[fd.values]:
            allowed = ", ".join(schema.VALUE_LIST_OF[fd.values])
            out.add(layer, f, key, "bad_value", f"属性 {fd.name} 的值 {v!r} 不在值域内（{allowed}）",
                    f"attribute {fd.name}: {v!r} is not one of {allowed}")
            v = None
        values[fd.name] = v
    return values


def _parse_number(number: str):
    from registry.markers import parse_marker_number  # the one numbering rule (registry/markers.py)

    return parse_marker_number(number)


def _divisions(conn: Connection) -> dict[str, int]:
    """Code -> active division id. The package carries each division's primary code (MCA, else
    NBS: registry.divisions.primary_code), which wins; an NBS code that is nobody's primary code
    is read too, and one two divisions share maps to -1 (ambiguous)."""
    rows = conn.execute(text("SELECT id, mca_code, nbs_code FROM divisions WHERE status = 'active'")).all()
    out: dict[str, int] = {}
    for did, mca, nbs in rows:
        code = mca or nbs
        if code:
            out[code] = did if out.get(code, did) == did else -1
    primary = set(out)
    for did, mca, nbs in rows:
        if mca and nbs and nbs not in primary:
            out[nbs] = did if out.get(nbs, did) == did else -1
    return out


def _resolve_div(out: _Collector, divs: dict[str, int], layer: str, f: Feature, key: Any, name: str,
                 code: str | None) -> int | None:
    if code is None:
        return None
    did = divs.get(code)
    if did is None or did == -1:
        why = "代码有歧义" if did == -1 else "未知的区划代码"
        out.add(layer, f, key, "unknown_division", f"{name} {code}：{why}",
                f"{name} {code}: {'ambiguous' if did == -1 else 'unknown'} division code")
        return None
    return did


def validate_package(conn: Connection, pkg: PackageData, *, tolerances: Tolerances = Tolerances()) -> tuple[list[Problem], Checked]:
    out = _Collector(pkg)
    checked = Checked()
    if any(p.rule in ("file_unreadable", "unsupported_format") for p in out.problems):
        return out.problems, checked
    for name in schema.REQUIRED_LAYERS:
        if name not in pkg.layers:
            out.add(name, None, None, "missing_layer", f"缺少图层 {name}", f"layer {name} is missing")
    if not pkg.layer(schema.LINES):
        out.add(schema.LINES, None, None, "empty", "数据包没有界线要素（空文件？）",
                "the package has no boundary lines (an empty file?)")
        return out.problems, checked
    exported = pkg.info.get("lines")
    if exported and exported.isdigit() and len(pkg.layer(schema.LINES)) < int(exported):
        out.add(schema.LINES, None, None, "truncated",
                f"导出 {exported} 条界线，读回 {len(pkg.layer(schema.LINES))} 条（文件被截断？界线不能在外业删除）",
                f"{exported} lines were exported, {len(pkg.layer(schema.LINES))} read back (a truncated file? "
                "lines are not deleted in the field)")
    divs = _divisions(conn)
    checked.division_by_code = divs
    _check_lines(conn, pkg, out, checked, divs)
    _check_markers(conn, pkg, out, checked, divs)
    # Reference objects and records may still name a marker the team deleted from the markers
    # layer (removed in the field): those are known, the rows are kept with the marker retired.
    known = {str(f.get("number")) for f in pkg.layer(schema.MARKERS) if f.get("number")}
    known |= set(conn.execute(text("SELECT number FROM boundary_markers WHERE status = 'active' "
                                   "AND boundary_line_id = ANY(:ids)"), {"ids": list(checked.lines)}).scalars())
    _check_reference_objects(pkg, out, known)
    _check_records(pkg, out, checked, known)
    _check_geometry(conn, pkg, out, checked, tolerances)
    return out.problems, checked


@dataclass(frozen=True)
class _Registered:
    """How a layer's features name the registry rows they edit (lines and markers alike)."""
    layer: str
    id_attr: str  # the feature's registry id: line_id, marker_id
    version_attr: str  # the version it was exported at: line_ver, marker_ver
    label_column: str  # the row's column that names it in messages: code, number
    zh: str  # 界线, 界桩
    en: str  # in "no active …": boundary line, marker
    en_short: str  # in "… was exported at version": line, marker
    en_stale_tail: str  # what the English stale-base message ends with


_LINE = _Registered(schema.LINES, "line_id", "line_ver", "code", "界线", "boundary line", "line", ": export again")
_MARKER = _Registered(schema.MARKERS, "marker_id", "marker_ver", "number", "界桩", "marker", "marker", "")


def _match_registered(out: _Collector, kind: _Registered, f: Feature, key: Any, v: dict[str, Any],
                      rows: dict[int, dict], seen: dict[int, int]) -> dict | None:
    """The matching steps lines and markers share: the feature's registry id is not repeated in the
    package (`duplicate_feature`), names an active row (`unknown_entity`), and was exported at the
    row's current version (`stale_base`, reported but still matched). Returns the row, or None when
    the feature matches nothing."""
    rid = v[kind.id_attr]
    if rid in seen:
        out.add(kind.layer, f, key, "duplicate_feature", f"{kind.zh}标识 {rid} 与第 {seen[rid]} 个要素重复",
                f"{kind.id_attr} {rid} repeats feature #{seen[rid]}")
        return None
    seen[rid] = f.fid
    row = rows.get(rid)
    if row is None or row["status"] != "active":
        out.add(kind.layer, f, key, "unknown_entity", f"登记库中没有现行{kind.zh} {rid}", f"no active {kind.en} {rid}")
        return None
    exported = v[kind.version_attr]
    if exported is not None and exported != row["version"]:
        label = row[kind.label_column]
        out.add(kind.layer, f, key, "stale_base",
                f"{kind.zh} {label} 导出时为第 {exported} 版，现为第 {row['version']} 版，请重新导出",
                f"{kind.en_short} {label} was exported at version {exported}, it is now {row['version']}"
                f"{kind.en_stale_tail}")
    return row


def _check_lines(conn, pkg, out, checked, divs) -> None:
    ids = [i for f in pkg.layer(schema.LINES) if (i := _safe_int(f.get("line_id"))) is not None]
    rows = {r["id"]: dict(r) for r in conn.execute(text("""
        SELECT id, version, code, level, status, left_division_id, right_division_id, county_line_id
        FROM boundary_lines WHERE id = ANY(:ids)"""), {"ids": ids}).mappings()}
    seen: dict[int, int] = {}
    for f in pkg.layer(schema.LINES):
        key = f.get("code")
        v = _check_attrs(out, schema.LINES, f, key)
        lid = v["line_id"]
        if lid is None:
            continue
        row = _match_registered(out, _LINE, f, key, v, rows, seen)
        if row is None:
            continue
        if v["code"] is not None and v["code"] != row["code"]:
            out.add(schema.LINES, f, key, "bad_value", f"界线编码 {v['code']} 与登记库的 {row['code']} 不符",
                    f"line code {v['code']} differs from the registry's {row['code']}")
        left = _resolve_div(out, divs, schema.LINES, f, key, "left_code", v["left_code"])
        right = _resolve_div(out, divs, schema.LINES, f, key, "right_code", v["right_code"])
        if (left is not None and left != row["left_division_id"]) or \
                (v["right_code"] is not None and right is not None and right != row["right_division_id"]):
            out.add(schema.LINES, f, key, "sides_changed", "界线两侧区划与登记库不符（不能在外业改变）",
                    "the divisions on either side differ from the registry's (they are not changed in the field)")
        checked.lines[lid] = {**row, "feature": f}
        checked.line_by_code[row["code"]] = checked.lines[lid]


def _safe_int(v):
    try:
        return _int(v)
    except ValueError:
        return None


def _check_markers(conn, pkg, out, checked, divs) -> None:
    feats = pkg.layer(schema.MARKERS)
    ids = [i for f in feats if (i := _safe_int(f.get("marker_id"))) is not None]
    rows = {r["id"]: dict(r) for r in conn.execute(text("""
        SELECT m.id, m.version, m.number, m.status, m.condition, m.boundary_line_id, m.elevation_m, m.material,
               m.kind, m.installed_on, m.photos, l.code AS line_code
        FROM boundary_markers m LEFT JOIN boundary_lines l ON l.id = m.boundary_line_id
        WHERE m.id = ANY(:ids)"""), {"ids": ids}).mappings()}
    numbers: dict[str, int] = {}
    seen: dict[int, int] = {}
    existing_numbers = set(conn.execute(text(
        "SELECT number FROM boundary_markers WHERE status = 'active' AND number = ANY(:n)"),
        {"n": [str(f.get("number")) for f in feats if f.get("number") and f.get("marker_id") is None]}).scalars())
    for f in feats:
        key = f.get("number")
        v = _check_attrs(out, schema.MARKERS, f, key)
        number = v["number"]
        if number is not None:
            try:
                parsed = _parse_number(number)
            except (RegistryError, ValueError) as exc:
                out.problems.append(Problem(schema.MARKERS, feature_label(f, key), "marker_number_format",
                                            getattr(exc, "message", str(exc))))
                parsed = None
            if parsed is not None:
                p_line, p_serial, p_type = _parts(parsed)
                if (v["line_code"] and p_line != v["line_code"]) or (v["serial"] and p_serial != v["serial"]) or \
                        (v["type"] and p_type != v["type"]):
                    out.add(schema.MARKERS, f, key, "marker_number_format",
                            f"界桩编号 {number} 与 line_code/serial/type 属性不一致",
                            f"marker number {number} disagrees with its line_code/serial/type attributes")
            if number in numbers:
                out.add(schema.MARKERS, f, key, "marker_number_duplicate",
                        f"界桩编号 {number} 与第 {numbers[number]} 个要素重复",
                        f"marker number {number} repeats feature #{numbers[number]}")
            numbers.setdefault(number, f.fid)
        if v["line_code"] is not None and v["line_code"] not in checked.line_by_code:
            out.add(schema.MARKERS, f, key, "unknown_line", f"界线 {v['line_code']} 不在本数据包中",
                    f"line {v['line_code']} is not in this package")
        for side in ("left_code", "right_code"):
            _resolve_div(out, divs, schema.MARKERS, f, key, side, v[side])
        mid = v["marker_id"]
        if mid is None:
            if number is not None and number in existing_numbers:
                out.add(schema.MARKERS, f, key, "marker_number_duplicate",
                        f"新设界桩编号 {number} 已被登记库中的界桩使用",
                        f"new marker number {number} is already used by a marker in the registry")
            checked.new_markers.append(f)
            continue
        row = _match_registered(out, _MARKER, f, key, v, rows, seen)
        if row is None:
            continue
        if number is not None and number != row["number"]:
            out.add(schema.MARKERS, f, key, "bad_value", f"界桩编号 {number} 与登记库的 {row['number']} 不符（编号不在外业修改）",
                    f"marker number {number} differs from the registry's {row['number']} (numbers are not edited in the field)")
        checked.markers[mid] = {**row, "feature": f, "values": v}


def _parts(parsed) -> tuple[str, int, str]:
    if isinstance(parsed, tuple):
        return parsed[0], int(parsed[1]), parsed[2]
    return parsed.line_code, int(parsed.serial), parsed.letter


def _check_reference_objects(pkg, out, numbers: set[str]) -> None:
    seen: dict[tuple, int] = {}
    for f in pkg.layer(schema.REFERENCE_OBJECTS):
        key = f"{f.get('marker_no')}/{f.get('seq')}"
        v = _check_attrs(out, schema.REFERENCE_OBJECTS, f, key)
        if v["marker_no"] is not None and v["marker_no"] not in numbers:
            out.add(schema.REFERENCE_OBJECTS, f, key, "unknown_entity", f"方位物所属界桩 {v['marker_no']} 不在数据包中，也不在其界线上",
                    f"marker {v['marker_no']} of this reference object is neither in the package nor on its lines")
        if v["bearing"] is not None and not 0 <= v["bearing"] < 360:
            out.add(schema.REFERENCE_OBJECTS, f, key, "bad_value", f"方位角 {v['bearing']} 应在 0 到 360 之间",
                    f"bearing {v['bearing']} must be in [0, 360)")
        if v["dist_m"] is not None and v["dist_m"] <= 0:
            out.add(schema.REFERENCE_OBJECTS, f, key, "bad_value", f"距离 {v['dist_m']} 应大于 0",
                    f"distance {v['dist_m']} must be positive")
        k = (v["marker_no"], v["seq"])
        if None not in k:
            if k in seen:
                out.add(schema.REFERENCE_OBJECTS, f, key, "duplicate_feature", f"与第 {seen[k]} 个要素重复",
                        f"repeats feature #{seen[k]}")
            seen.setdefault(k, f.fid)


def _check_records(pkg, out, checked, numbers: set[str]) -> None:
    for f in pkg.layer(schema.RECORDS):
        key = f.get("marker_no") or f.get("line_code")
        v = _check_attrs(out, schema.RECORDS, f, key)
        if v["target"] == "marker" and v["marker_no"] not in numbers:
            out.add(schema.RECORDS, f, key, "unknown_entity", f"记录的界桩 {v['marker_no']} 不在数据包中",
                    f"the record's marker {v['marker_no']} is not in the package")
        if v["target"] == "line" and v["line_code"] not in checked.line_by_code:
            out.add(schema.RECORDS, f, key, "unknown_line", f"记录的界线 {v['line_code']} 不在数据包中",
                    f"the record's line {v['line_code']} is not in the package")


def _check_geometry(conn, pkg, out, checked, tol: Tolerances) -> None:
    conn.execute(text("DROP TABLE IF EXISTS pkg_geom"))
    conn.execute(text("CREATE TEMP TABLE pkg_geom (layer text, fid int, key text, ref bigint, geom geometry) "
                      "ON COMMIT DROP"))
    rows = []
    for layer, key_of in ((schema.LINES, lambda f: f.get("code")), (schema.MARKERS, lambda f: f.get("number"))):
        for f in pkg.layer(layer):
            rows.append({"layer": layer, "fid": f.fid, "key": None if key_of(f) is None else str(key_of(f)),
                         "wkb": f.wkb})
    if rows:
        conn.execute(text("""
            INSERT INTO pkg_geom (layer, fid, key, geom)
            SELECT r.layer, r.fid, r.key,
                   CASE WHEN r.wkb IS NULL THEN NULL ELSE ST_SetSRID(ST_GeomFromWKB(decode(r.wkb, 'hex')), 4490) END
            FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS r(layer text, fid int, key text, wkb text)
        """), {"rows": _json([{**r, "wkb": r["wkb"].hex() if r["wkb"] else None} for r in rows])})
    by_fid = {(layer, f.fid): f for layer in (schema.LINES, schema.MARKERS) for f in pkg.layer(layer)}
    line_ref = {info["feature"].fid: lid for lid, info in checked.lines.items()}
    conn.execute(text("UPDATE pkg_geom SET ref = (CAST(:ref AS jsonb) ->> fid::text)::bigint WHERE layer = 'lines'")
                 .bindparams(ref=_json({str(k): v for k, v in line_ref.items()})))

    def report(layer, fid, rule, zh, en):
        f = by_fid[(layer, fid)]
        out.add(layer, f, f.get("code") if layer == schema.LINES else f.get("number"), rule, zh, en)

    for fid, layer, gtype in conn.execute(text("""
        SELECT fid, layer, GeometryType(geom) FROM pkg_geom
        WHERE geom IS NULL OR ST_IsEmpty(geom)
           OR (layer = 'lines' AND GeometryType(geom) NOT IN ('LINESTRING', 'MULTILINESTRING'))
           OR (layer = 'markers' AND GeometryType(geom) <> 'POINT')
           OR NOT ST_IsValid(geom)""")):
        report(layer, fid, "geometry_invalid", f"几何缺失或类型错误（{gtype or '无'}）",
               f"geometry missing, invalid or of the wrong type ({gtype or 'none'})")
    conn.execute(text("""DELETE FROM pkg_geom WHERE geom IS NULL OR ST_IsEmpty(geom) OR NOT ST_IsValid(geom)
        OR (layer = 'lines' AND GeometryType(geom) NOT IN ('LINESTRING', 'MULTILINESTRING'))
        OR (layer = 'markers' AND GeometryType(geom) <> 'POINT')"""))
    conn.execute(text("UPDATE pkg_geom SET geom = ST_Multi(geom) WHERE layer = 'lines'"))
    changed = conn.execute(text("""
        SELECT p.fid, p.ref, l.right_division_id IS NULL AS outer_line, l.county_line_id IS NOT NULL AS on_county,
               NOT ST_IsSimple(p.geom) AS self_x,
               ST_HausdorffDistance(p.geom, l.geom) > :eps AS changed
        FROM pkg_geom p JOIN boundary_lines l ON l.id = p.ref WHERE p.layer = 'lines'
    """), {"eps": UNCHANGED_DEG}).mappings().all()
    for r in changed:
        info = checked.lines[r["ref"]]
        info["changed"] = bool(r["changed"])
        if r["self_x"]:
            report(schema.LINES, r["fid"], "self_intersection", "界线自相交", "the line intersects itself")
        if r["changed"] and r["on_county"] and not r["outer_line"]:
            report(schema.LINES, r["fid"], "outer_line_edit", "该乡级界线位于县级界线上，请修测县级界线",
                   "this township line lies on a county line: re-survey the county line instead")
        if r["changed"] and r["outer_line"]:
            report(schema.LINES, r["fid"], "outer_line_edit", "市界须与邻市共同联检，不能在此单方修改",
                   "the city's outer edge is inspected with the neighbouring city; it is not changed here")
    moved_ends = conn.execute(text("""
        WITH e AS (
            SELECT p.fid, (ST_DumpPoints(ST_Boundary(p.geom))).geom AS new_end, ST_Boundary(l.geom) AS old_ends,
                   ST_NPoints(ST_Boundary(p.geom)) AS n_new, ST_NPoints(ST_Boundary(l.geom)) AS n_old
            FROM pkg_geom p JOIN boundary_lines l ON l.id = p.ref WHERE p.layer = 'lines'
        )
        SELECT fid, max(ST_Distance(new_end::geography, old_ends::geography)) AS worst, max(n_new) AS n_new,
               max(n_old) AS n_old
        FROM e GROUP BY fid
        HAVING max(ST_Distance(new_end::geography, old_ends::geography)) > :tol OR max(n_new) <> max(n_old)
    """), {"tol": tol.node_m}).mappings().all()
    closed_now = conn.execute(text("""
        SELECT p.fid FROM pkg_geom p JOIN boundary_lines l ON l.id = p.ref
        WHERE p.layer = 'lines' AND ST_IsEmpty(ST_Boundary(p.geom)) AND NOT ST_IsEmpty(ST_Boundary(l.geom))
    """)).scalars().all()
    for r in moved_ends:
        report(schema.LINES, r["fid"], "line_ends_moved",
               f"界线端点偏离与相邻界线的交汇点 {r['worst']:.1f} 米（容差 {tol.node_m} 米）",
               f"the line's ends moved {r['worst']:.1f} m away from where its neighbours meet it (tolerance {tol.node_m} m)")
    for fid in closed_now:
        report(schema.LINES, fid, "line_ends_moved", "界线端点与相邻界线不再相接", "the line's ends no longer meet its neighbours")
    outside = conn.execute(text("""
        SELECT p.fid, ST_Length(ST_Difference(p.geom, ST_Union(a.geom, coalesce(b.geom, a.geom)))::geography) AS out_m
        FROM pkg_geom p JOIN boundary_lines l ON l.id = p.ref
        JOIN divisions a ON a.id = l.left_division_id LEFT JOIN divisions b ON b.id = l.right_division_id
        WHERE p.layer = 'lines' AND ST_HausdorffDistance(p.geom, l.geom) > :eps
    """), {"eps": UNCHANGED_DEG}).mappings().all()
    for r in outside:
        if r["out_m"] > tol.node_m:
            report(schema.LINES, r["fid"], "line_outside_area",
                   f"界线有 {r['out_m']:.1f} 米超出两侧区划范围", f"{r['out_m']:.1f} m of the line leave the two divisions it separates")
    # Markers against their line as it is in the package (or the registry's when not re-read).
    off = conn.execute(text("""
        SELECT m.fid, ST_Distance(m.geom::geography, coalesce(lp.geom, l.geom)::geography) AS d
        FROM pkg_geom m
        JOIN boundary_lines l ON l.code = CAST(:codes AS jsonb) ->> m.fid::text AND l.status = 'active'
        LEFT JOIN pkg_geom lp ON lp.layer = 'lines' AND lp.ref = l.id
        WHERE m.layer = 'markers'
    """), {"codes": _json({str(f.fid): str(f.get("line_code")) for f in pkg.layer(schema.MARKERS) if f.get("line_code")})})
    for fid, d in off:
        if d > tol.marker_m:
            report(schema.MARKERS, fid, "marker_off_line", f"界桩距所在界线 {d:.1f} 米，超过容差 {tol.marker_m} 米",
                   f"the marker is {d:.1f} m from its line, beyond the tolerance of {tol.marker_m} m")
    dup = conn.execute(text("""
        SELECT a.fid, b.fid FROM pkg_geom a JOIN pkg_geom b
          ON a.layer = 'markers' AND b.layer = 'markers' AND a.fid < b.fid AND ST_Equals(a.geom, b.geom)
             AND a.key = b.key
    """)).all()
    for a, b in dup:
        report(schema.MARKERS, b, "duplicate_feature", f"与第 {a} 个要素位置和编号相同", f"same position and number as feature #{a}")


def _json(v) -> str:
    import json

    return json.dumps(v, ensure_ascii=False, default=str)
