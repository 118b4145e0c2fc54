"""The place-name cultural heritage catalogue (地名文化遗产保护名录): items, their listing, and a
map per item drawn from the registry's own geometries (no external tiles).

Each item keeps where its facts come from (`source_url`) and how sure they are (`certainty`);
generated items carry `synthetic = true` and every reader says so (the API, the atlas).
"""
from __future__ import annotations

import html
import json
import math
from typing import Any

from sqlalchemy import Connection, text

from registry.divisions import resolve_division_id
from registry.errors import InvalidQuery, NotFound
from registry.text.romanization import romanize

LEVELS = ("national", "province", "city", "county", "candidate")
LEVEL_NAMES = {"national": "国家级", "province": "省级", "city": "市级", "county": "县级",
               "candidate": "候选（未列入正式名录）"}
# Every spelling a level is accepted by -> its code, by the API (the parameter's enum) and by the
# heritage loader alike (a district's listing, 区级, is of the county level).
LEVEL_SPELLINGS = {**{k: k for k in LEVELS}, "provincial": "province", "国家级": "national", "省级": "province",
                   "市级": "city", "县级": "county", "区级": "county", "候选": "candidate"}


def level_code(spelling: str) -> str | None:
    """The level code of a spelling (ASCII ones in any case, surrounding blanks ignored); None: unknown."""
    spelling = spelling.strip()
    return LEVEL_SPELLINGS.get(spelling.lower() if spelling.isascii() else spelling)
MAP_W, MAP_H = 480, 320
SYNTHETIC_NOTE = "合成数据，非真实名录 / synthetic item, not an official listing"

_ROW = """
    SELECT h.id, h.name, h.pinyin, h.level, h.category, h.origin, h.meaning, h.history, h.former_names,
           h.listed_year, h.status, h.catalogue, h.batch, h.listed_on, h.listing_document, h.description,
           h.protection, h.photos, h.source_url, h.certainty, h.synthetic, h.place_name_id, h.version,
           ST_X(h.geom) AS lon, ST_Y(h.geom) AS lat,
           d.id AS division_id, d.name AS division_name, d.level AS division_level,
           coalesce(d.mca_code, d.nbs_code) AS division_code,
           c.id AS county_id, c.name AS county_name, coalesce(c.mca_code, c.nbs_code) AS county_code
    FROM heritage_items h JOIN divisions d ON d.id = h.division_id
    LEFT JOIN LATERAL (
        WITH RECURSIVE up AS (SELECT id, parent_id, level FROM divisions WHERE id = h.division_id
                              UNION ALL SELECT v.id, v.parent_id, v.level FROM divisions v JOIN up ON v.id = up.parent_id)
        SELECT id FROM up WHERE level = 'county' LIMIT 1) cc ON true
    LEFT JOIN divisions c ON c.id = cc.id
"""


def _as_dict(r: Any) -> dict[str, Any]:
    m = dict(r._mapping)
    roman = m["pinyin"] or romanize(m["name"])
    out = {
        "id": m["id"], "name": m["name"], "romanized": roman, "level": m["level"],
        "level_name": LEVEL_NAMES.get(m["level"], m["level"]), "category": m["category"],
        "catalogue": m["catalogue"], "batch": m["batch"], "listed_year": m["listed_year"],
        "listed_on": m["listed_on"].isoformat() if m["listed_on"] else None,
        "listing_document": m["listing_document"], "origin": m["origin"], "meaning": m["meaning"],
        "history": m["history"], "description": m["description"], "protection": m["protection"],
        "former_names": list(m["former_names"] or []), "photos": list(m["photos"] or []),
        "source_url": m["source_url"], "certainty": m["certainty"], "synthetic": bool(m["synthetic"]),
        "status": m["status"], "place_name_id": m["place_name_id"], "version": m["version"],
        "division": {"id": m["division_id"], "code": m["division_code"], "name": m["division_name"],
                     "level": m["division_level"]},
        "county": {"id": m["county_id"], "code": m["county_code"], "name": m["county_name"]},
        "point": [m["lon"], m["lat"]] if m["lon"] is not None else None,
    }
    if out["synthetic"]:
        out["note"] = SYNTHETIC_NOTE
    return out


def list_items(conn: Connection, *, level: str | None = None, category: str | None = None,
               division: str | None = None, include_synthetic: bool = True, limit: int = 500) -> list[dict[str, Any]]:
    """Listed items (not delisted), by level, category (千年古村落 …) and division (within it)."""
    where, params = ["h.status <> 'delisted'"], {"limit": limit}
    if level:
        code = level_code(level)
        if code is None:
            raise InvalidQuery(f"未知的名录级别 {level}，应为 {'、'.join(LEVELS)} / unknown level {level!r}; "
                               f"expected one of {', '.join(LEVELS)}", parameter="level")
        where.append("h.level = :level")
        params["level"] = code
    if category:
        where.append("h.category = :cat")
        params["cat"] = category.strip()
    if division:
        did, _ = resolve_division_id(conn, division, parameter="division")
        where.append("""h.division_id IN (WITH RECURSIVE sub AS (SELECT id FROM divisions WHERE id = :div
                        UNION ALL SELECT d.id FROM divisions d JOIN sub ON d.parent_id = sub.id) SELECT id FROM sub)""")
        params["div"] = did
    if not include_synthetic:
        where.append("NOT h.synthetic")
    rows = conn.execute(text(_ROW + " WHERE " + " AND ".join(where) +
                             " ORDER BY h.synthetic, c.id, h.name, h.id LIMIT :limit"), params).all()
    return [_as_dict(r) for r in rows]


def get_item(conn: Connection, item_id: int) -> dict[str, Any]:
    row = conn.execute(text(_ROW + " WHERE h.id = :i"), {"i": item_id}).first()
    if row is None:
        raise NotFound(f"未找到地名文化遗产 {item_id} / no heritage item with id {item_id}", parameter="id")
    out = _as_dict(row)
    hist = conn.execute(text("""
        SELECT version, name, level, status, valid_from, valid_to, change_set_id FROM heritage_items_history
        WHERE id = :i UNION ALL SELECT version, name, level, status, valid_from, valid_to, change_set_id
        FROM heritage_items WHERE id = :i ORDER BY version"""), {"i": item_id}).mappings()
    out["history_versions"] = [{k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in r.items()}
                               for r in hist]
    if out["place_name_id"]:
        p = conn.execute(text("SELECT id, name, category FROM place_names WHERE id = :p"),
                         {"p": out["place_name_id"]}).mappings().first()
        out["place_name"] = dict(p) if p else None
    return out


def item_map_svg(conn: Connection, item: dict[str, Any], *, width: int = MAP_W, height: int = MAP_H) -> str:
    """An SVG map of one item: its division's boundary, nearby roads and water, the item itself.

    Drawn from PostGIS (ST_AsSVG of the registry's own geometries), in CGCS2000 degrees with the
    longitude scaled by cos(latitude) so that shapes are not stretched; no tiles.
    """
    empty = f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}"></svg>'
    if not item.get("point"):
        return empty
    lon, lat = item["point"]
    ext = conn.execute(text("""
        SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM (
            SELECT ST_Extent(geom) AS e FROM divisions WHERE id = :d AND geom IS NOT NULL) x"""),
        {"d": item["division"]["id"]}).one()
    half = 0.02
    if ext[0] is None or (ext[2] - ext[0]) > 0.5:  # no polygon, or a whole county: frame the item
        x0, y0, x1, y1 = lon - half, lat - half * 0.8, lon + half, lat + half * 0.8
    else:
        x0, y0, x1, y1 = ext
        x0, y0, x1, y1 = min(x0, lon - 0.005), min(y0, lat - 0.005), max(x1, lon + 0.005), max(y1, lat + 0.005)
    pad = max(x1 - x0, y1 - y0) * 0.06
    x0, y0, x1, y1 = x0 - pad, y0 - pad, x1 + pad, y1 + pad
    k = math.cos(math.radians((y0 + y1) / 2))  # a degree of longitude is shorter
    s = min(width / ((x1 - x0) * k), height / (y1 - y0))
    # Pixel coordinates straight from PostGIS (ST_Affine; ST_AsSVG negates y), so the SVG needs no
    # viewBox arithmetic or transforms: fpdf2's SVG support is partial, and plain paths it draws.
    env = {"x0": x0, "y0": y0, "x1": x1, "y1": y1, "d": item["division"]["id"], "a": k * s, "s": s,
           "xo": -x0 * k * s, "yo": -y1 * s}
    bbox = "ST_MakeEnvelope(:x0, :y0, :x1, :y1, 4490)"
    px = "ST_AsSVG(ST_Affine(ST_Intersection(geom, {bbox}), :a, 0, 0, :s, :xo, :yo), 0, 1)".format(bbox=bbox)
    parts: list[str] = [f'<rect x="0" y="0" width="{width}" height="{height}" fill="#fbfaf7" stroke="#bdbdbd"/>']
    for name, d, own in conn.execute(text(f"""
            SELECT name, {px}, id = :d FROM divisions
            WHERE level IN ('county', 'township', 'village') AND status = 'active' AND geom && {bbox}
            ORDER BY (id = :d), level"""), env):
        if d:
            parts.append(f'<path d="{d}" fill="{"#efe6d2" if own else "#f3f1ea"}" '
                         f'stroke="{"#8d6e63" if own else "#c9c4b8"}" stroke-width="{2 if own else 0.8}">'
                         f'<title>{html.escape(name)}</title></path>')
    for name, cat, d in conn.execute(text(f"""
            SELECT name, category, {px} FROM place_names
            WHERE category IN ('river', 'lake', 'reservoir', 'road', 'bridge') AND status <> 'retired'
              AND geom && {bbox} AND GeometryType(geom) <> 'POINT'
            ORDER BY category = 'road' LIMIT 400"""), env):
        if not d:
            continue
        water = cat in ("river", "lake", "reservoir")
        fill = "#b3d4f0" if water and cat != "river" else "none"
        parts.append(f'<path d="{d}" fill="{fill}" stroke="{"#5b9bd5" if water else "#8a8a8a"}" '
                     f'stroke-width="{2.5 if water else 1.8}"><title>{html.escape(name)}</title></path>')
    cx, cy = (lon - x0) * k * s, (y1 - lat) * s
    parts.append(f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="6" fill="#c62828" stroke="#ffffff" stroke-width="1.5">'
                 f'<title>{html.escape(item["name"])}</title></circle>')
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}">{"".join(parts)}</svg>')


def as_geojson(items: list[dict[str, Any]]) -> str:
    feats = [{"type": "Feature", "id": i["id"], "geometry": {"type": "Point", "coordinates": i["point"]}
              if i["point"] else None, "properties": {k: v for k, v in i.items() if k != "point"}} for i in items]
    return json.dumps({"type": "FeatureCollection", "features": feats}, ensure_ascii=False)


__all__ = ["LEVELS", "LEVEL_NAMES", "SYNTHETIC_NOTE", "get_item", "item_map_svg", "list_items"]
