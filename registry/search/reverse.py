"""Reverse geocoding in PostGIS: the nearest address by KNN (`<->` on the GiST index) within a
radius, and the division chain by point-in-polygon (the finest division whose polygon covers
the point, then its parents).

One rule, two runners: `reverse` on a SQLAlchemy connection (tests, scripts, any caller in a
transaction) and `reverse_async` on the async read pool (the API's fast path: no thread, prepared
statements, usually one round trip). Both run the same statements and build the answer with
`_answer`; `reverse_async` may take the nearest address from memory (`registry.search.nearest`)
where that answer is exact, and reads that address's row by id. `reverse_from_memory` builds the
same answer with no statement at all, from the gazetteer's columns and the division polygons
(registry.search.areas), where that is exact (registry.serving.reverse decides when it may).
"""
from __future__ import annotations

from typing import Any

from sqlalchemy import Connection

from registry.search.validate import check_lon_lat, check_radius

_POINT = "ST_SetSRID(ST_MakePoint(%(lon)s, %(lat)s), 4490)"
_ROW = "json_build_array(n.id, n.full_text, n.code, d.nbs_code, d.name, ST_X(n.geom), ST_Y(n.geom), n.meters)"
# KNN on the GiST index needs the point as a constant expression in ORDER BY (a CTE or a join
# would make PostgreSQL sort every row); 8 nearest by degrees, then the nearest in metres.
_NEAREST = f"""(SELECT {_ROW} FROM (
      SELECT a.id, a.full_text, a.code, a.division_id, a.geom,
             ST_Distance(a.geom::geography, {_POINT}::geography) AS meters
      FROM (SELECT a.id, a.full_text, a.code, a.division_id, a.geom
            FROM addresses a WHERE a.status <> 'retired' AND a.geom IS NOT NULL
            ORDER BY a.geom <-> {_POINT} LIMIT 8) a) n
    JOIN divisions d ON d.id = n.division_id
    ORDER BY n.meters LIMIT 1)"""
# The same for one address the memory index chose (its row, and the distance PostGIS gives).
_BY_ID = f"""(SELECT {_ROW} FROM (
      SELECT a.id, a.full_text, a.code, a.division_id, a.geom,
             ST_Distance(a.geom::geography, {_POINT}::geography) AS meters
      FROM addresses a WHERE a.id = %(id)s AND a.status <> 'retired' AND a.geom IS NOT NULL) n
    JOIN divisions d ON d.id = n.division_id)"""
# The divisions covering the point (villages first: small polygons; then any level), and the chain
# of the first of them in the same statement (the finest when they are all villages, the usual case).
_COVERING = f"""cov AS MATERIALIZED (
      SELECT d.id, d.level FROM divisions d
      WHERE d.status = 'active' AND d.geom IS NOT NULL AND d.level = ANY(%(levels)s)
        AND ST_Covers(d.geom, {_POINT})
      LIMIT 5)"""
_UP = """WITH RECURSIVE up AS (
        SELECT id, level, name, coalesce(mca_code, nbs_code) AS code, parent_id, 0 AS depth
        FROM divisions WHERE id = {start}
        UNION ALL
        SELECT d.id, d.level, d.name, coalesce(d.mca_code, d.nbs_code), d.parent_id, up.depth + 1
        FROM divisions d JOIN up ON d.id = up.parent_id
    )"""
_CHAINED = ("(" + _UP.format(start="(SELECT c.id FROM cov c LIMIT 1)") + """
      SELECT json_build_array(min(id) FILTER (WHERE depth = 0),
                              json_agg(json_build_array(level, code, name) ORDER BY depth DESC)) FROM up)""")


def _statement(first: str) -> str:
    return (f"WITH {_COVERING} SELECT {first}, "
            f"(SELECT json_agg(json_build_array(c.id, c.level)) FROM cov c), {_CHAINED}")


NEAREST_SQL = _statement(_NEAREST)
BY_ID_SQL = _statement(_BY_ID)
COVERING_SQL = _statement("NULL")
CHAIN_SQL = _UP.format(start="%(id)s") + " SELECT level, code, name FROM up ORDER BY depth DESC"
VILLAGE = ["village"]
ABOVE_VILLAGE = ["township", "county", "city", "province"]
_DEPTH = {"province": 0, "city": 1, "county": 2, "township": 3, "village": 4}


def _params(lon: float, lat: float, levels: list[str], **extra: Any) -> dict[str, Any]:
    return {"lon": lon, "lat": lat, "levels": levels, **extra}


def _finest(covering) -> int | None:
    if not covering:
        return None
    return max(covering, key=lambda r: _DEPTH.get(r[1], -1))[0]


def _answer(lon: float, lat: float, radius: float, row, chain_rows) -> dict:
    address = None
    if row is not None and row[7] <= radius:
        rid, full_text, code, division_code, division_name, x, y, meters = row
        address = {"id": rid, "address": full_text, "code": code,
                   "division": {"code": division_code, "name": division_name},
                   "lon": round(x, 7), "lat": round(y, 7), "distance_m": round(meters, 1)}
    chain = [{"level": level, "code": code, "name": name} for level, code, name in chain_rows]
    return {"lon": lon, "lat": lat, "radius_m": radius, "address": address, "divisions": chain}


def _chain_of(covering, chained) -> tuple[int | None, list | None]:
    """The finest covering division, and its chain when the statement already gave it."""
    finest = _finest(covering)
    if finest is not None and chained and chained[0] == finest:
        return finest, chained[1] or []
    return finest, None


# -- the same answer from memory (registry.serving.reverse decides when memory may answer) -----------
MAX_COVERING = 5  # the statements' LIMIT 5: with more, which five is the scan's choice


def chain_from_memory(areas, lon: float, lat: float) -> list | None:
    """The chain rows the statements give at the point, from `areas` (registry.search.areas); None
    where memory cannot be exact: near a boundary, or several divisions of the finest level cover
    the point (the statements' scan order picks one of them)."""
    covering = areas.covering(lon, lat)
    if covering is None or len(covering) > MAX_COVERING:
        return None
    if len(covering) == 1:  # the usual case: one village
        return areas.chain(covering[0][0])
    finest = _finest(covering)
    if finest is None:
        return []
    depth = max(_DEPTH.get(level, -1) for _, level in covering)
    if sum(1 for _, level in covering if _DEPTH.get(level, -1) == depth) > 1:
        return None
    return areas.chain(finest)


def address_row_from_memory(areas, store, ref, meters: float) -> tuple | None:
    """The statements' address row (`_ROW`) of a gazetteer address (a base row number or an overlay
    Rec: registry.search.nearest.pick), its division from `areas`; None when that division is not
    known there (created after `areas` was read)."""
    if isinstance(ref, int):
        rid, (code, full_text) = int(store.ids[ref]), store.text(ref)
        village, x, y = int(store.col["village"][ref]), float(store.lon[ref]), float(store.lat[ref])
    else:
        rid, code, full_text, village, x, y = ref.id, ref.code, ref.full_text, ref.village, ref.lon, ref.lat
    d = areas.divisions.get(village)
    if d is None:
        return None
    return rid, full_text, code, d.nbs_code, d.name, x, y, meters


def reverse_from_memory(areas, store, found, lon: float, lat: float, radius: float) -> dict | None:
    """`reverse`'s answer from memory: `found` is registry.search.nearest.pick's answer for the
    point (`(ref, meters)` or NONE_WITHIN); None where memory cannot be exact."""
    chain = chain_from_memory(areas, lon, lat)
    if chain is None:
        return None
    row = None
    if isinstance(found, tuple):
        row = address_row_from_memory(areas, store, *found)
        if row is None:
            return None
    return _answer(lon, lat, radius, row, chain)


def reverse(conn: Connection, lon: float, lat: float, radius: float = 200.0) -> dict:
    lon, lat = check_lon_lat(lon, lat)
    radius = check_radius(radius)
    run = lambda sql, p: conn.exec_driver_sql(sql, p).all()  # noqa: E731
    row, covering, chained = run(NEAREST_SQL, _params(lon, lat, VILLAGE))[0]
    if not covering:
        _, covering, chained = run(COVERING_SQL, _params(lon, lat, ABOVE_VILLAGE))[0]
    finest, chain = _chain_of(covering, chained)
    if chain is None:
        chain = run(CHAIN_SQL, {"id": finest}) if finest is not None else []
    return _answer(lon, lat, radius, row, chain)


async def reverse_async(pool, lon: float, lat: float, radius: float = 200.0, *, nearest=None) -> dict:
    """`reverse` on the async read pool (`registry.serving.ReadPool`). `nearest(lon, lat, radius)`,
    when given, answers the nearest address's id from memory: an id, `0` for none within the
    radius, or None where memory cannot be exact (then PostGIS's KNN answers)."""
    lon, lat = check_lon_lat(lon, lat)
    radius = check_radius(radius)
    known = nearest(lon, lat, radius) if nearest is not None else None
    if known is None:
        row, covering, chained = await pool.fetchone(NEAREST_SQL, _params(lon, lat, VILLAGE))
    else:
        row, covering, chained = await pool.fetchone(BY_ID_SQL, _params(lon, lat, VILLAGE, id=known))
        if known and row is None:  # retired or moved since memory saw it: ask PostGIS
            row, covering, chained = await pool.fetchone(NEAREST_SQL, _params(lon, lat, VILLAGE))
    if not covering:
        _, covering, chained = await pool.fetchone(COVERING_SQL, _params(lon, lat, ABOVE_VILLAGE))
    finest, chain = _chain_of(covering, chained)
    if chain is None:
        chain = await pool.fetchall(CHAIN_SQL, {"id": finest}) if finest is not None else []
    return _answer(lon, lat, radius, row, chain)
