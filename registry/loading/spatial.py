"""Set-based spatial checks on staged rows."""
from __future__ import annotations

import logging
import time

from sqlalchemy import Connection, text

log = logging.getLogger(__name__)


def _run(conn: Connection, sql: str, params: dict | None = None):
    started = time.perf_counter()
    result = conn.execute(text(sql), params or {})
    log.debug("%.3f s  %s", time.perf_counter() - started, " ".join(sql.split())[:100])
    return result


def check_containment(conn: Connection, stage: str, point_sql: str, tolerance_m: float) -> None:
    """Refuse a staged point lying outside its division's polygon by more than `tolerance_m`
    metres (reason `outside_division`, with the distance); warn (`near_boundary`) within it.

    The polygon is the division's own, else the nearest ancestor's that has one (a village
    without a polygon yet is checked against its township, then its county). `point_sql` is an
    expression over the stage row aliased `s`. Rows are visited sorted by division so that
    consecutive calls test the same polygon and PostGIS reuses its prepared (indexed) form.
    """
    _run(conn, f"""
        CREATE TEMP TABLE load_poly ON COMMIT DROP AS
        WITH RECURSIVE up AS (
            SELECT d.id AS division_id, d.parent_id, d.geom, d.name, d.nbs_code, d.mca_code, 0 AS depth
            FROM divisions d WHERE d.id IN (SELECT DISTINCT division_id FROM {stage}
                                            WHERE reason IS NULL AND division_id IS NOT NULL)
            UNION ALL
            SELECT up.division_id, p.parent_id, p.geom, p.name, p.nbs_code, p.mca_code, up.depth + 1
            FROM up JOIN divisions p ON p.id = up.parent_id WHERE up.geom IS NULL
        )
        SELECT DISTINCT ON (division_id) division_id, geom,
               name || '（' || coalesce(nbs_code, mca_code, '') || '）' AS label
        FROM up WHERE geom IS NOT NULL ORDER BY division_id, depth""")
    _run(conn, f"""
        CREATE TEMP TABLE load_outside ON COMMIT DROP AS
        SELECT s.row_no, p.label, ST_Distance(p.geom::geography, s.pt::geography) AS d
        FROM (SELECT s.row_no, s.division_id, {point_sql} AS pt FROM {stage} s
              WHERE s.reason IS NULL ORDER BY s.division_id) s
        JOIN load_poly p ON p.division_id = s.division_id
        WHERE s.pt IS NOT NULL AND NOT ST_Intersects(p.geom, s.pt)""")
    _run(conn, f"""
        UPDATE {stage} s SET
            reason = CASE WHEN o.d > :tol THEN 'outside_division' END,
            detail = CASE WHEN o.d > :tol THEN o.info END,
            warn = CASE WHEN o.d > :tol THEN s.warn ELSE 'near_boundary' END,
            warn_detail = CASE WHEN o.d > :tol THEN s.warn_detail ELSE o.info END
        FROM (SELECT row_no, d, json_build_object('division', label, 'distance_m', round(d::numeric, 1),
                                                  'tolerance_m', CAST(:tol AS float8))::text AS info
              FROM load_outside) o
        WHERE s.row_no = o.row_no""", {"tol": float(tolerance_m)})
    _run(conn, "DROP TABLE load_poly, load_outside")
