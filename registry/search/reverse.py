"""Reverse geocoding in PostGIS: the nearest address by KNN (`<->` on the GiST index) within a
radius, and the division chain by point-in-polygon (the finest division whose polygon covers
the point, then its parents)."""
from __future__ import annotations

from sqlalchemy import Connection, text

from registry.search.validate import check_lon_lat, check_radius

# KNN on the GiST index needs the point as a constant expression in ORDER BY (a CTE or a join
# would make PostgreSQL sort every row); 8 nearest by degrees, then the nearest in metres.
_NEAREST = text("""
    SELECT n.id, n.full_text, n.code, d.nbs_code AS division_code, d.name AS division_name,
           ST_X(n.geom) AS lon, ST_Y(n.geom) AS lat,
           ST_Distance(n.geom::geography, ST_SetSRID(ST_MakePoint(:lon, :lat), 4490)::geography) AS meters
    FROM (SELECT a.id, a.full_text, a.code, a.division_id, a.geom
          FROM addresses a WHERE a.status <> 'retired' AND a.geom IS NOT NULL
          ORDER BY a.geom <-> ST_SetSRID(ST_MakePoint(:lon, :lat), 4490) LIMIT 8) n
    JOIN divisions d ON d.id = n.division_id
    ORDER BY meters LIMIT 1
""")

# The finest division covering the point: villages first (small polygons), then any level.
_COVERING = text("""
    SELECT d.id, d.level FROM divisions d
    WHERE d.status = 'active' AND d.geom IS NOT NULL AND d.level = ANY(:levels)
      AND ST_Covers(d.geom, ST_SetSRID(ST_MakePoint(:lon, :lat), 4490))
    LIMIT 5
""")

_CHAIN = text("""
    WITH RECURSIVE up AS (
        SELECT id, level, name, coalesce(mca_code, nbs_code) AS code, parent_id, 0 AS depth
        FROM divisions WHERE id = :id
        UNION ALL
        SELECT d.id, d.level, d.name, coalesce(d.mca_code, d.nbs_code), d.parent_id, up.depth + 1
        FROM divisions d JOIN up ON d.id = up.parent_id
    )
    SELECT id, level, name, code FROM up ORDER BY depth DESC
""")

_DEPTH = {"province": 0, "city": 1, "county": 2, "township": 3, "village": 4}


def reverse(conn: Connection, lon: float, lat: float, radius: float = 200.0) -> dict:
    lon, lat = check_lon_lat(lon, lat)
    radius = check_radius(radius)
    row = conn.execute(_NEAREST, {"lon": lon, "lat": lat}).first()
    address = None
    if row is not None and row.meters <= radius:
        address = {"id": row.id, "address": row.full_text, "code": row.code,
                   "division": {"code": row.division_code, "name": row.division_name},
                   "lon": round(row.lon, 7), "lat": round(row.lat, 7), "distance_m": round(row.meters, 1)}
    covering = conn.execute(_COVERING, {"lon": lon, "lat": lat, "levels": ["village"]}).all()
    if not covering:
        covering = conn.execute(_COVERING, {"lon": lon, "lat": lat,
                                            "levels": ["township", "county", "city", "province"]}).all()
    chain: list[dict] = []
    if covering:
        finest = max(covering, key=lambda r: _DEPTH.get(r.level, -1))
        chain = [{"level": r.level, "code": r.code, "name": r.name}
                 for r in conn.execute(_CHAIN, {"id": finest.id}).all()]
    return {"lon": lon, "lat": lat, "radius_m": radius, "address": address, "divisions": chain}
