"""The round's report (联检报告): markers by condition per line, displaced markers with their
distances, lines whose re-survey moved area between divisions, open findings — as a dict, CSV,
an HTML page with a map drawn by the server (SVG from PostGIS ST_AsSVG of the registry's own
geometries, no external tiles) and a PDF (fpdf2, the same map embedded as SVG).

Everything comes from the round's applied inspection change sets (their diffs) and records;
open findings are markers whose latest record in the round found them damaged, worn, missing or
displaced and whose current condition is still that, plus packages not yet applied.
"""
from __future__ import annotations

import csv
import html
import io
from typing import Any

from sqlalchemy import Connection, text

from registry.inspection import schema
from registry.inspection.rounds import get_round

FINDINGS_OPEN = ("damaged", "worn", "missing", "displaced")
COLOURS = {"intact": "#2e7d32", "new": "#1565c0", "damaged": "#ef6c00", "worn": "#f9a825",
           "missing": "#c62828", "displaced": "#6a1b9a"}
MAP_W, MAP_H = 900, 640


def build_report(conn: Connection, round_number: int) -> dict[str, Any]:
    rnd = get_round(conn, round_number)
    rid = rnd["id"]
    by_line = [dict(r) for r in conn.execute(text("""
        WITH latest AS (
            SELECT DISTINCT ON (r.marker_id) r.marker_id, coalesce(r.condition, r.finding) AS condition
            FROM inspection_records r WHERE r.round_id = :rid AND r.marker_id IS NOT NULL
            ORDER BY r.marker_id, r.recorded_on DESC, r.id DESC
        )
        SELECT l.code, l.name, latest.condition, count(*) AS n
        FROM latest JOIN boundary_markers m ON m.id = latest.marker_id JOIN boundary_lines l ON l.id = m.boundary_line_id
        GROUP BY l.code, l.name, latest.condition ORDER BY l.code, latest.condition
    """), {"rid": rid}).mappings()]
    lines: dict[str, dict] = {}
    for r in by_line:
        entry = lines.setdefault(r["code"], {"code": r["code"], "name": r["name"], **{c: 0 for c in schema.CONDITIONS}})
        entry[r["condition"]] = entry.get(r["condition"], 0) + r["n"]
    applied = conn.execute(text("""
        SELECT id, details, applied_at, status FROM change_sets
        WHERE kind = 'inspection' AND details ->> 'round' = :n ORDER BY id
    """), {"n": str(round_number)}).mappings().all()
    displaced, area_changes, pending = [], [], []
    for cs in applied:
        d = cs["details"]
        if cs["status"] in ("proposed", "approved"):
            pending.append({"change_set_id": cs["id"], "status": cs["status"], "source": d.get("source")})
            continue
        if cs["status"] != "applied":
            continue
        for m in d.get("markers", []):
            if "moved_m" in m:
                displaced.append({"number": m["number"], "moved_m": m["moved_m"], "change_set_id": cs["id"]})
        for line in d.get("lines", []):
            area_changes.append({"code": line["code"], "left": line["left"]["name"], "right": line["right"]["name"],
                                 "area_to_left_m2": line["area_to_left_m2"], "area_to_right_m2": line["area_to_right_m2"],
                                 "addresses": len(line["addresses"]), "change_set_id": cs["id"]})
    open_findings = [dict(r) for r in conn.execute(text("""
        SELECT DISTINCT ON (r.marker_id) m.number, l.code AS line_code, coalesce(r.condition, r.finding) AS condition,
               r.recorded_on, r.sheet_ref, r.description AS notes
        FROM inspection_records r JOIN boundary_markers m ON m.id = r.marker_id
        JOIN boundary_lines l ON l.id = m.boundary_line_id
        WHERE r.round_id = :rid AND coalesce(r.condition, r.finding) = ANY(:open) AND m.condition = coalesce(r.condition, r.finding)
        ORDER BY r.marker_id, r.recorded_on DESC, r.id DESC
    """), {"rid": rid, "open": list(FINDINGS_OPEN)}).mappings()]
    for f in open_findings:
        f["recorded_on"] = f["recorded_on"].isoformat() if f["recorded_on"] else None
    return {"round": rnd, "lines": list(lines.values()), "displaced": displaced, "area_changes": area_changes,
            "open_findings": open_findings, "pending": pending, "map": _map(conn, rid)}


def _map(conn: Connection, round_id: int) -> str:
    """An SVG of the round's inspected lines and markers over the county polygons."""
    q = {"rid": round_id}
    ext = conn.execute(text("""
        SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM (
            SELECT ST_Extent(coalesce(l.geom, m.geom)) AS e FROM inspection_records r
            LEFT JOIN boundary_lines l ON l.id = r.boundary_line_id LEFT JOIN boundary_markers m ON m.id = r.marker_id
            WHERE r.round_id = :rid) x"""), q).one()
    if ext[0] is None:
        ext = conn.execute(text("SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM "
                                "(SELECT ST_Extent(geom) AS e FROM divisions WHERE level = 'city') x")).one()
    if ext[0] is None:
        return f'<svg xmlns="http://www.w3.org/2000/svg" width="{MAP_W}" height="{MAP_H}"></svg>'
    x0, y0, x1, y1 = ext
    pad = max(x1 - x0, y1 - y0) * 0.05 + 1e-3
    x0, y0, x1, y1 = x0 - pad, y0 - pad, x1 + pad, y1 + pad
    import math

    k = math.cos(math.radians((y0 + y1) / 2))  # equirectangular: a degree of longitude is shorter
    w, h = (x1 - x0) * k, (y1 - y0)
    scale = min(MAP_W / w, MAP_H / h)
    # ST_AsSVG writes y negated, so the viewBox starts at -y1.
    tf = f'transform="scale({k:.6f},1)"'
    env = {"x0": x0, "y0": y0, "x1": x1, "y1": y1}
    bbox = "ST_MakeEnvelope(:x0, :y0, :x1, :y1, 4490)"
    parts = []
    for name, d in conn.execute(text(f"""
        SELECT name, ST_AsSVG(ST_Intersection(geom, {bbox}), 0, 6) FROM divisions
        WHERE level IN ('county', 'township') AND status = 'active' AND geom && {bbox}
          AND NOT ST_IsEmpty(ST_CollectionExtract(ST_Intersection(geom, {bbox}), 3)) ORDER BY level"""), env):
        if not d:
            continue
        parts.append(f'<path d="{d}" fill="#f4f1ea" stroke="#9e9e9e" stroke-width="0.6" '
                     f'vector-effect="non-scaling-stroke"><title>{html.escape(name)}</title></path>')
    for code, d in conn.execute(text("""
        SELECT DISTINCT l.code, ST_AsSVG(l.geom, 0, 6) FROM inspection_records r JOIN boundary_lines l
          ON l.id = r.boundary_line_id WHERE r.round_id = :rid"""), q):
        parts.append(f'<path d="{d}" fill="none" stroke="#d32f2f" stroke-width="2" '
                     f'vector-effect="non-scaling-stroke"><title>{html.escape(code)}</title></path>')
    r_deg = 3.5 / scale
    for number, cond, x, y in conn.execute(text("""
        SELECT DISTINCT ON (m.id) m.number, m.condition, ST_X(m.geom), ST_Y(m.geom) FROM inspection_records r
        JOIN boundary_markers m ON m.id = r.marker_id WHERE r.round_id = :rid ORDER BY m.id"""), q):
        parts.append(f'<ellipse cx="{x:.6f}" cy="{-y:.6f}" rx="{r_deg / k:.6f}" ry="{r_deg:.6f}" '
                     f'fill="{COLOURS.get(cond, "#424242")}"><title>{html.escape(number)} {cond}</title></ellipse>')
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{MAP_W}" height="{MAP_H}" '
            f'viewBox="{x0 * k:.6f} {-y1:.6f} {w:.6f} {h:.6f}" preserveAspectRatio="xMidYMid meet">'
            f'<g {tf}>{"".join(parts)}</g></svg>')


_SECTIONS = (
    ("lines", "各界线界桩现状 / markers by condition per line", ("code", "name", *schema.CONDITIONS)),
    ("displaced", "移位界桩 / displaced markers", ("number", "moved_m", "change_set_id")),
    ("area_changes", "面积变化的界线 / lines with area changes",
     ("code", "left", "right", "area_to_left_m2", "area_to_right_m2", "addresses", "change_set_id")),
    ("open_findings", "未处理问题 / open findings", ("number", "line_code", "condition", "recorded_on", "sheet_ref", "notes")),
    ("pending", "待审批/待应用的数据包 / packages not yet applied", ("change_set_id", "status", "source")),
)


def report_csv(rep: dict[str, Any]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["section", "key", "values"])
    for key, _, cols in _SECTIONS:
        for row in rep[key]:
            w.writerow([key, row.get(cols[0]), "; ".join(f"{c}={row.get(c)}" for c in cols[1:])])
    return "\ufeff" + buf.getvalue()


def report_html(rep: dict[str, Any]) -> str:
    rnd = rep["round"]
    out = [f"<!doctype html><html lang='zh-CN'><head><meta charset='utf-8'><title>{html.escape(rnd['name'])}报告</title>",
           "<style>body{font-family:sans-serif;margin:2em;max-width:1000px}table{border-collapse:collapse;margin:1em 0}"
           "td,th{border:1px solid #bbb;padding:3px 8px;font-size:13px}th{background:#eee}"
           "@media print{svg{max-width:100%;height:auto}}</style></head><body>",
           f"<h1>{html.escape(rnd['name'])}报告 / inspection round {rnd['number']} report</h1>",
           f"<p>{rnd['year']}–{rnd['year_to'] or ''} · {html.escape(rnd['scope'] or '')}</p>", rep["map"],
           "<p>" + " ".join(f"<span style='color:{c}'>●</span> {schema.CONDITIONS[k][0]} {k}" for k, c in COLOURS.items())
           + "</p>"]
    for key, title, cols in _SECTIONS:
        out.append(f"<h2>{title}</h2>")
        if not rep[key]:
            out.append("<p>无 / none</p>")
            continue
        out.append("<table><tr>" + "".join(f"<th>{html.escape(c)}</th>" for c in cols) + "</tr>")
        for row in rep[key]:
            out.append("<tr>" + "".join(f"<td>{html.escape(str(row.get(c) if row.get(c) is not None else ''))}</td>"
                                        for c in cols) + "</tr>")
        out.append("</table>")
    out.append("</body></html>")
    return "\n".join(out)


def _heading():
    from fpdf.fonts import FontFace

    return FontFace(emphasis="", fill_color=(235, 235, 235))  # one regular CJK face: no bold


def report_pdf(rep: dict[str, Any]) -> bytes:
    from fpdf import FPDF

    from registry.doorplates.printing import find_font

    pdf = FPDF(orientation="P", unit="mm", format="A4")
    pdf.add_font("cjk", "", str(find_font()))
    pdf.set_font("cjk", size=14)
    pdf.add_page()
    rnd = rep["round"]
    pdf.cell(0, 10, f"{rnd['name']}报告 / inspection round {rnd['number']} report", new_x="LMARGIN", new_y="NEXT")
    try:
        pdf.image(io.BytesIO(rep["map"].encode("utf-8")), w=180)
    except Exception:  # fpdf2's SVG support is partial: the tables still print
        pdf.set_font("cjk", size=9)
        pdf.cell(0, 6, "（地图见 HTML 报告 / the map is in the HTML report）", new_x="LMARGIN", new_y="NEXT")
    for key, title, cols in _SECTIONS:
        pdf.set_font("cjk", size=12)
        pdf.cell(0, 9, title, new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("cjk", size=7)
        if not rep[key]:
            pdf.cell(0, 5, "无 / none", new_x="LMARGIN", new_y="NEXT")
            continue
        with pdf.table(headings_style=_heading(), col_widths=tuple(30 if c in ("code", "number", "name", "line_code") else 15 for c in cols)) as t:
            t.row([str(c) for c in cols])
            for row in rep[key][:500]:
                t.row([str(row.get(c) if row.get(c) is not None else "") for c in cols])
    return bytes(pdf.output())
