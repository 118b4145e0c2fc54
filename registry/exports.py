"""Exports of a feature collection (the same public views as the OGC API): the rows, in batches.

`plan_export` checks the request (collection, division, as-of date, target CRS) and returns an
`ExportPlan` whose `batches()` reads the rows through a server-side cursor, so an export of the
whole city never holds more than one batch in memory. Geometries come as WKB, transformed by
PostGIS into the target CRS (EPSG:4490, the storage CRS, by default); attributes come as Python
values named as the collection publishes them. Writing files (GeoPackage, Shapefile …) is the
loaders' business (`loaders/export_cli.py`): the domain knows no file format.
"""
from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import Connection, text
from sqlalchemy.dialects.postgresql.psycopg import dialect as _psycopg_dialect

from registry.divisions import match_code, validate_authority
from registry.errors import InvalidQuery
from registry.features.collections import EXPORT_FORMATS, STORAGE_SRID, Collection, Prop
from registry.features.query import ItemsQuery, Period, collection, parse_datetime

BATCH_ROWS = 20000
_PSYCOPG = _psycopg_dialect()
_EPSG = re.compile(r"^(?:EPSG:)?(\d{4,6})$", re.IGNORECASE)


@dataclass(frozen=True)
class ExportPlan:
    collection: Collection
    query: ItemsQuery
    srid: int
    division: dict[str, Any] | None
    as_of: date | None

    @property
    def props(self) -> tuple[Prop, ...]:
        return self.collection.props

    @property
    def geographic(self) -> bool:
        return self.srid in (4490, 4326)

    def _sql(self, select: str) -> tuple[str, dict[str, Any]]:
        where, params = self.query.where()
        return f"SELECT {select} FROM {self.query.from_sql()} WHERE {where}", params

    def count(self, conn: Connection) -> int:
        sql, params = self._sql("count(*)")
        return conn.execute(text(sql), params).scalar_one()

    def geometry_types(self, conn: Connection) -> list[str]:
        """The distinct geometry types among the rows (a Shapefile holds one)."""
        sql, params = self._sql("DISTINCT GeometryType(f.geom)")
        return sorted(t for t in conn.execute(text(sql), params).scalars() if t)

    def copy_sql(self) -> tuple[str, dict[str, Any]]:
        """`COPY (…) TO STDOUT (FORMAT csv)` of the rows for the driver (psycopg placeholders): id,
        the geometry as hex WKB in the target CRS, then the attributes (dates as ISO 8601 text), in
        storage order (sorting 1.6M wide rows would spill to disk)."""
        geom = "f.geom" if self.srid == STORAGE_SRID else f"ST_Transform(f.geom, {int(self.srid)})"
        cols = ", ".join(f'to_json(f."{p.name}") #>> \'{{}}\'' if p.type in ("date", "date-time") else f'f."{p.name}"'
                         for p in self.props)
        sql, params = self._sql(f"f.id, encode(ST_AsBinary({geom}), 'hex'), {cols}")
        compiled = text(f"COPY ({sql}) TO STDOUT (FORMAT csv)").bindparams(**params).compile(
            dialect=_PSYCOPG)
        return compiled.string, dict(compiled.params)

    def batches(self, conn: Connection, batch_rows: int = BATCH_ROWS) -> Iterator[dict[str, list]]:
        """Column batches: {"id": [...], "geometry": [WKB ...], <prop>: [...]}, in storage order; dates
        and times as ISO 8601 text."""
        geom = "f.geom" if self.srid == STORAGE_SRID else f"ST_Transform(f.geom, {int(self.srid)})"
        # dates as ISO text from PostgreSQL: cheaper than datetime objects formatted in Python
        cols = ", ".join(f'to_json(f."{p.name}") #>> \'{{}}\'' if p.type in ("date", "date-time") else f'f."{p.name}"'
                         for p in self.props)
        sql, params = self._sql(f"f.id, ST_AsBinary({geom}) AS geometry, {cols}")
        names = ["id", "geometry", *(p.name for p in self.props)]
        # A named (server-side) cursor of the driver itself, in the caller's transaction: the rows come
        # as plain tuples, without a result-row object each. Storage order: sorting 1.6M wide rows
        # would spill to disk.
        compiled = text(sql).bindparams(**params).compile(dialect=conn.dialect)
        raw = conn.connection.driver_connection
        with raw.cursor(name=f"registry_export_{id(self)}") as cur:
            cur.itersize = batch_rows
            cur.execute(compiled.string, compiled.params)
            while rows := cur.fetchmany(batch_rows):
                yield self._columns(names, rows)

    @staticmethod
    def _columns(names: list[str], rows: list[tuple]) -> dict[str, list]:
        batch = {}
        for name, values in zip(names, zip(*rows)):
            if name == "geometry":
                values = [bytes(v) if v is not None else None for v in values]
            batch[name] = list(values)
        return batch


def parse_srid(conn: Connection, value: str | None) -> int:
    if value is None:
        return STORAGE_SRID
    m = _EPSG.match(value.strip())
    srid = int(m.group(1)) if m else None
    if srid is None or conn.execute(text("SELECT 1 FROM spatial_ref_sys WHERE srid = :s"), {"s": srid}).first() is None:
        raise InvalidQuery(f"crs 应为 PostGIS 认识的 EPSG:代码，例如 EPSG:4490 / crs must be an EPSG code PostGIS knows, "
                           f"e.g. EPSG:4490, got {value!r}", parameter="crs")
    return srid


def parse_format(value: str) -> str:
    fmt = (value or "").strip().lower()
    if fmt not in EXPORT_FORMATS:
        raise InvalidQuery(f"format 应为 {'、'.join(EXPORT_FORMATS)} 之一 / format must be one of "
                           f"{', '.join(EXPORT_FORMATS)}, got {value!r}", parameter="format")
    return fmt


def plan_export(conn: Connection, collection_id: str, *, division: str | None = None, authority: str | None = None,
                as_of: str | date | None = None, crs: str | None = None) -> ExportPlan:
    c = collection(collection_id)
    validate_authority(authority)  # refused when unknown, with or without a division
    period: Period | None = None
    day: date | None = None
    if as_of is not None:
        day = as_of if isinstance(as_of, date) else _day(as_of)
        period = parse_datetime(day.isoformat())  # the end of that day, China time (as `as_of` elsewhere)
    div_ref = None
    division_id = None
    if division is not None:
        if c.division is None:
            raise InvalidQuery(f"集合 {c.id} 不能按区划导出 / {c.id} cannot be exported by division",
                               parameter="division")
        m = match_code(conn, division, authority=authority, parameter="division")
        division_id = m.division_id
        div_ref = {"code": division, "authority": m.authority, "id": m.division_id}
    q = ItemsQuery(collection=c, period=period, division_id=division_id)
    return ExportPlan(c, q, parse_srid(conn, crs), div_ref, day)


def _day(value: str) -> date:
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise InvalidQuery(f"as-of 应为日期 YYYY-MM-DD / as-of must be a date YYYY-MM-DD, got {value!r}",
                           parameter="as_of") from None
