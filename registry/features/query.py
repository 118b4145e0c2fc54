"""Items of a feature collection: bbox, datetime (the registry's history), CQL2 filter, CRS, paging.

The request's parameters are parsed here (no HTTP: the API hands over strings) so that the rules —
which CRSs, which axis order, what a datetime means — live in one place. GeoJSON is built by
PostgreSQL (`json_build_object`, `ST_AsGeoJSON`) and joined as text, which keeps a page of 1,000
addresses far below the cost of building Python dicts.

CRSs: the storage CRS is CGCS2000 (EPSG:4490). EPSG:4490 and EPSG:4326 are answered in the axis
order those CRSs define (latitude, longitude); CRS84 (the default) in longitude, latitude. CGCS2000
and WGS84 agree within a few centimetres at Huzhou, so coordinates are not shifted between them.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import Any, Callable
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, text

from registry.errors import InvalidQuery, NotFound
from registry.features.collections import COLLECTIONS, Collection, select_sql
from registry.features.cql2 import compile_filter

CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
EPSG4490 = "http://www.opengis.net/def/crs/EPSG/0/4490"
EPSG4326 = "http://www.opengis.net/def/crs/EPSG/0/4326"
SUPPORTED_CRS = (CRS84, EPSG4490, EPSG4326)
_LAT_LON = {EPSG4490, EPSG4326}  # the EPSG definitions put latitude first
_CRS_ALIASES = {"CRS84": CRS84, "OGC:CRS84": CRS84, "EPSG:4490": EPSG4490, "EPSG:4326": EPSG4326,
                "http://www.opengis.net/def/crs/OGC/0/CRS84": CRS84,
                "urn:ogc:def:crs:OGC:1.3:CRS84": CRS84, "urn:ogc:def:crs:EPSG::4490": EPSG4490,
                "urn:ogc:def:crs:EPSG::4326": EPSG4326}

DEFAULT_LIMIT = 10
MAX_LIMIT = 10000
TIME_ZONE = ZoneInfo("Asia/Shanghai")
_COORD_DECIMALS = 7  # ~1 cm in degrees


def collection(collection_id: str) -> Collection:
    c = COLLECTIONS.get(collection_id)
    if c is None:
        raise NotFound(f"没有集合 {collection_id} / no collection {collection_id!r} (collections: "
                       f"{', '.join(COLLECTIONS)})", parameter="collectionId")
    return c


def parse_crs(value: str | None, parameter: str = "crs") -> str:
    if value is None or value == "":
        return CRS84
    v = value.strip().strip("[]<>")
    if v in SUPPORTED_CRS:
        return v
    if v in _CRS_ALIASES:
        return _CRS_ALIASES[v]
    raise InvalidQuery(f"{parameter} 不支持 {value!r}（可用 {', '.join(SUPPORTED_CRS)}）/ {parameter} {value!r} is not "
                       f"supported (supported: {', '.join(SUPPORTED_CRS)})", parameter=parameter)


def lat_lon(crs: str) -> bool:
    return crs in _LAT_LON


def parse_limit(value: str | None, *, default: int = DEFAULT_LIMIT, maximum: int = MAX_LIMIT) -> int:
    if value is None:
        return default
    try:
        n = int(value)
    except ValueError:
        n = 0
    if not 1 <= n <= maximum:
        raise InvalidQuery(f"limit 应为 1 到 {maximum} 的整数 / limit must be an integer from 1 to {maximum}, "
                           f"got {value!r}", parameter="limit")
    return n


def parse_offset(value: str | None) -> int:
    if value is None:
        return 0
    try:
        n = int(value)
    except ValueError:
        n = -1
    if n < 0:
        raise InvalidQuery(f"offset 应为非负整数 / offset must be a non-negative integer, got {value!r}",
                           parameter="offset")
    return n


def parse_bbox(value: str | None, bbox_crs: str | None = None) -> tuple[float, float, float, float] | None:
    """(min lon, min lat, max lon, max lat) from `bbox` given in `bbox-crs` (CRS84 by default)."""
    if value is None:
        return None
    crs = parse_crs(bbox_crs, "bbox-crs")
    try:
        nums = [float(p) for p in value.split(",")]
    except ValueError:
        nums = []
    if len(nums) == 6:  # 3D boxes: the heights are ignored
        nums = [nums[0], nums[1], nums[3], nums[4]]
    if len(nums) != 4:
        raise InvalidQuery(f"bbox 应为四个数，以逗号分隔 / bbox must be four comma-separated numbers, got {value!r}",
                           parameter="bbox")
    if lat_lon(crs):
        nums = [nums[1], nums[0], nums[3], nums[2]]
    x1, y1, x2, y2 = nums
    if not (-180 <= x1 <= 180 and -180 <= x2 <= 180 and -90 <= y1 <= 90 and -90 <= y2 <= 90) or y1 > y2:
        raise InvalidQuery(f"bbox 超出 {crs} 的范围或次序不对 / bbox {value!r} is outside {crs} or not in the "
                           "order that CRS defines", parameter="bbox")
    return x1, y1, x2, y2


def _instant(raw: str, *, end: bool) -> datetime | None:
    raw = raw.strip()
    if raw in ("", ".."):
        return None
    try:
        if len(raw) == 10:  # a day: its start, or for the upper end of an interval its end (China time)
            d = date.fromisoformat(raw)
            if end and d == date.max:  # the end of the last day there is (its next day does not exist)
                return datetime.max.replace(tzinfo=TIME_ZONE)
            t = datetime.combine(d + timedelta(days=1) if end else d, time(), TIME_ZONE)
            return t - timedelta(microseconds=1) if end else t
        t = datetime.fromisoformat(raw.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise InvalidQuery(f"datetime 应为 RFC 3339 时间或区间 / datetime must be an RFC 3339 date-time or interval, "
                           f"got {raw!r}", parameter="datetime") from None
    return t if t.tzinfo else t.replace(tzinfo=timezone.utc)


@dataclass(frozen=True)
class Period:
    start: datetime | None
    end: datetime | None

    def params(self) -> dict[str, Any]:
        far = datetime(9999, 1, 1, tzinfo=timezone.utc)
        return {"t_start": self.start or datetime(1, 1, 2, tzinfo=timezone.utc), "t_end": self.end or far}


def parse_datetime(value: str | None) -> Period | None:
    """An instant (a day means the end of that day, China time, as `as_of` does) or an interval
    `a/b` with `..` for an open end: the versions in force at that instant or during that interval."""
    if value is None:
        return None
    if "/" in value:
        a, b = value.split("/", 1)
        p = Period(_instant(a, end=False), _instant(b, end=True))
        if p.start and p.end and p.start > p.end:
            raise InvalidQuery(f"datetime 区间的起点晚于终点 / datetime interval {value!r} ends before it starts",
                               parameter="datetime")
        return p
    t = _instant(value, end=True)
    if t is None:
        raise InvalidQuery("datetime 不能只是 .. / datetime must not be just ..", parameter="datetime")
    return Period(t, t)


@dataclass(frozen=True)
class ItemsQuery:
    collection: Collection
    bbox: tuple[float, float, float, float] | None = None
    period: Period | None = None
    filter: str | None = None
    crs: str = CRS84
    division_id: int | None = None  # the division and everything below it

    def where(self) -> tuple[str, dict[str, Any]]:
        conds, params = ["TRUE"], {}
        if self.bbox:
            conds.append("f.geom && ST_MakeEnvelope(:bx1, :by1, :bx2, :by2, 4490) AND "
                         "ST_Intersects(f.geom, ST_MakeEnvelope(:bx1, :by1, :bx2, :by2, 4490))")
            params.update(bx1=self.bbox[0], by1=self.bbox[1], bx2=self.bbox[2], by2=self.bbox[3])
        if self.filter is not None:
            sql, p = compile_filter(self.filter, self.collection)
            conds.append(sql)
            params.update(p)
        if self.division_id is not None:
            conds.append("f._division_id IN (WITH RECURSIVE tree AS (SELECT id FROM divisions WHERE id = :div "
                         "UNION ALL SELECT c.id FROM divisions c JOIN tree ON c.parent_id = tree.id) "
                         "SELECT id FROM tree)")
            params["div"] = self.division_id
        if self.period:
            params.update(self.period.params())
        return " AND ".join(conds), params

    def from_sql(self) -> str:
        return f"({select_sql(self.collection, at=self.period is not None)}) f"

    def geometry_sql(self) -> str:
        g = "ST_FlipCoordinates(f.geom)" if lat_lon(self.crs) else "f.geom"
        # options 0: no "crs" member in the geometry (PostGIS adds one for a SRID other than 4326)
        return f"coalesce(ST_AsGeoJSON({g}, {_COORD_DECIMALS}, 0), 'null')"

    def feature_sql(self) -> str:
        # Concatenated as text: casting ST_AsGeoJSON to json would parse every geometry again.
        props = ", ".join(f"'{p.name}', f.\"{p.name}\"" for p in self.collection.props)
        return f"""'{{"type": "Feature", "id": ' || f.id || ', "geometry": ' || {self.geometry_sql()} || """ \
               f"""', "properties": ' || json_build_object({props})::text || '}}'"""


@dataclass(frozen=True)
class Page:
    features: str  # the page's features as GeoJSON text, comma-separated (the inside of the array)
    returned: int
    matched: int | None  # None: more than COUNT_CAP, not counted (numberMatched is optional)
    more: bool  # rows after this page
    last_id: int | None  # for the keyset `after` of the next page


_PAGE_SETTINGS = text("SELECT set_config('jit', 'off', true), set_config('max_parallel_workers_per_gather', '0', true)")
COUNT_CAP = 100_000  # beyond this a count costs more than a page: numberMatched is left out


def _unfiltered(q: ItemsQuery) -> bool:
    return q.bbox is None and q.filter is None and q.period is None and q.division_id is None


def page(conn: Connection, q: ItemsQuery, *, limit: int, offset: int = 0, after: int | None = None,
         count: Callable[[], int] | None = None) -> Page:
    """One page ordered by id: from `offset`, or keyset after the feature id `after` (then the
    offset only labels the page). The features are built and joined into one text by PostgreSQL;
    limit + 1 rows tell whether a next page exists. `count`: the collection's item count when
    known cheaply (cached per version), used for an unfiltered query."""
    where, params = q.where()
    if after is not None:
        where += " AND f.id > :after"
        params["after"] = after
        offset = 0
    # A page is at most MAX_LIMIT rows: JIT compiling and parallel workers cost more than they save
    conn.execute(_PAGE_SETTINGS)
    row = conn.execute(text(f"""
        WITH p AS MATERIALIZED (SELECT f.* FROM {q.from_sql()} WHERE {where}
                                ORDER BY f.id LIMIT :limit + 1 OFFSET :offset),
             f AS (SELECT * FROM p ORDER BY id LIMIT :limit)
        SELECT (SELECT string_agg({q.feature_sql()}, ',' ORDER BY f.id) FROM f),
               (SELECT count(*) FROM f), (SELECT max(id) FROM f), (SELECT count(*) FROM p)"""),
        {**params, "limit": limit, "offset": offset}).one()
    features, returned, last_id, fetched = row
    more = fetched > returned
    first = offset == 0 and after is None
    if first and not more:
        matched = returned  # the whole answer is on this page: no need to count
    elif count is not None and _unfiltered(q):
        matched = count()
    else:
        n = conn.execute(text(f"SELECT count(*) FROM (SELECT 1 FROM {q.from_sql()} WHERE {q.where()[0]} "
                              f"LIMIT {COUNT_CAP + 1}) c"), q.where()[1]).scalar_one()
        matched = n if n <= COUNT_CAP else None
    return Page(features or "", returned, matched, more, last_id)


def parse_after(value: str | None) -> int | None:
    if value is None:
        return None
    if not value.isdigit():
        raise InvalidQuery(f"after 应为要素编号 / after must be a feature id, got {value!r}", parameter="after")
    return int(value)


def feature(conn: Connection, q: ItemsQuery, feature_id: str) -> str:
    try:
        fid = int(feature_id)
    except ValueError:
        fid = 0
    where, params = q.where()
    row = conn.execute(text(f"SELECT {q.feature_sql()} FROM {q.from_sql()} WHERE {where} AND f.id = :fid"),
                       {**params, "fid": fid}).scalar_one_or_none()
    if row is None:
        raise NotFound(f"集合 {q.collection.id} 中没有要素 {feature_id} / no feature {feature_id!r} in "
                       f"{q.collection.id}", parameter="featureId")
    return row


def describe(conn: Connection, c: Collection) -> dict[str, Any]:
    """Extent (CRS84 bbox, temporal interval) and item count of the current public rows."""
    row = conn.execute(text(f"""
        SELECT n, ST_XMin(e) AS x1, ST_YMin(e) AS y1, ST_XMax(e) AS x2, ST_YMax(e) AS y2
        FROM (SELECT count(*) AS n, ST_Extent(f.geom) AS e FROM ({select_sql(c, at=False)}) f) s""")).mappings().one()
    first = conn.execute(text(f"SELECT min(valid_from) FROM (SELECT valid_from FROM {c.table} WHERE {c.base} "
                              f"UNION ALL SELECT valid_from FROM {c.table}_history WHERE {c.base}) u")).scalar_one()
    bbox = [row["x1"], row["y1"], row["x2"], row["y2"]] if row["x1"] is not None else [118.5, 29.9, 120.8, 31.2]
    return {"count": row["n"], "bbox": [round(b, 7) for b in bbox],
            "interval": [first.isoformat() if first else None, None]}
