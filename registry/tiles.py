"""Vector tiles (Mapbox Vector Tile 2.1) of the registry's public layers, made by PostGIS.

Geometries are stored in CGCS2000 (EPSG:4490); tiles are Web Mercator (EPSG:3857) on the usual
z/x/y grid. Each tile is one statement: the tile envelope (`ST_TileEnvelope`, plus a buffer) is
transformed to 4490 once so the GiST index of `geom` selects the rows, then each row is
transformed to 3857 and clipped/quantised by `ST_AsMVTGeom`, and `ST_AsMVT` encodes the layer.
A Mercator rectangle is a longitude/latitude rectangle, so the transformed envelope is exact.

Properties are small and public only (ids to look a feature up, its name or number, its level or
category): the full public record is one request away (`/v1/addresses/{id}` …).

The cache (`TileCache`) keeps encoded tiles keyed by layer/z/x/y together with the layer's
version. A layer's version moves when a change set that may have written one of its tables is
applied (see `KIND_TABLES`): `refresh` reads the change sets applied since the last look (and
those pending then) and bumps the layers their kinds touch; the other layers keep their cached
tiles. This is per layer, not per tile: one retired address drops the cached address tiles, not
the county ones. In a served API each worker's cache `follow`s the applied change sets: it
subscribes to `registry_change_sets` on the process's LISTEN connection (registry.db.listen;
NOTIFY at commit, from the trigger of migration 0010) and a thread refreshes at each notification,
so a cached tile is answered from memory with no database call (`peek`); a change reaches every
worker within milliseconds of its commit. Without a listener (tests on one connection, or from a
lost connection until the refresh that follows the LISTEN issued again) `get` refreshes on every
request instead, with two primary-key lookups — exact at once, also inside a test's transaction.

Address tiles below z16 carry the door-level addresses only (`ADDRESS_DOORS`); point layers get
their tile coordinates from plain arithmetic in SQL (see `tile_sql`).
"""
from __future__ import annotations

import hashlib
import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass

from sqlalchemy import Connection, Engine, text

from registry.errors import InvalidQuery, NotFound

log = logging.getLogger(__name__)

MAX_ZOOM = 22  # the deepest z a request may name (MapLibre's own limit is 24; nothing is finer here)
EXTENT = 4096  # MVT coordinate grid of a tile
BUFFER = 64  # grid units drawn past the edge, so lines and point symbols do not break at seams
DATA_MAXZOOM = 16  # tiles are made up to here; a map over-zooms the z16 tile beyond it
CACHE_BYTES = 128 * 1024 * 1024  # the cache's bound per process (LRU by bytes)
BOUNDS = (119.2, 30.3, 120.5, 31.2)  # Huzhou and a margin, lon/lat: the TileJSON `bounds`
CENTER = (120.09, 30.87, 10)  # 湖州 city centre
CHANNEL = "registry_change_sets"  # NOTIFY '<id>:<kind>' when a change set is applied (migration 0010)


@dataclass(frozen=True)
class Layer:
    name: str
    title: str  # Chinese / English, for the TileJSON and the map's legend
    table: str  # the table it reads: what an applied change set must have written to bump it
    minzoom: int
    select: str  # the SELECT list besides the geometry (public properties only)
    where: str  # which rows
    fields: dict[str, str]  # TileJSON vector_layers fields: name -> type
    simplify: bool = False  # polygons and lines: simplified to the tile's pixel before clipping
    maxzoom: int = DATA_MAXZOOM
    points: bool = False  # points only: tile coordinates computed in SQL arithmetic (see tile_sql)
    coarse: str | None = None  # below DATA_MAXZOOM, only the rows this also selects (see ADDRESS_DOORS)


# Flats and units stand on their building's door point (26k addresses on 5.5k points in the densest
# z14 tile of the full city): below DATA_MAXZOOM the address layer carries the door-level addresses
# only — what a map can draw there without stacking symbols — and the partial GiST index of
# migration 0010 (ix_addresses_door_geom) selects them; every flat is in the z16 tiles.
ADDRESS_DOORS = "t.unit = '' AND t.room = ''"

_DIV_FIELDS = {"id": "Number", "name": "String", "level": "String", "nbs_code": "String", "mca_code": "String"}


def _division_layer(name: str, title: str, level: str, minzoom: int) -> Layer:
    return Layer(name, title, "divisions", minzoom,
                 "t.id, t.name, t.level, t.nbs_code, t.mca_code",
                 f"t.level = '{level}' AND t.status = 'active'", _DIV_FIELDS, simplify=True)


LAYERS: dict[str, Layer] = {layer.name: layer for layer in (
    _division_layer("counties", "县级区划 / counties and districts", "county", 6),
    _division_layer("townships", "乡级区划 / townships and subdistricts", "township", 9),
    _division_layer("villages", "村级区划 / villages and communities", "village", 11),
    Layer("boundary_lines", "界线 / boundary lines", "boundary_lines", 6,
          "t.id, t.code, t.name, t.level", "t.status = 'active'",
          {"id": "Number", "code": "String", "name": "String", "level": "String"}, simplify=True),
    Layer("markers", "界桩 / boundary markers", "boundary_markers", 10,
          "t.id, t.number, t.type_letter, t.boundary_line_id", "t.status = 'active'",
          {"id": "Number", "number": "String", "type_letter": "String", "boundary_line_id": "Number"}, points=True),
    Layer("addresses", "门楼牌地址 / addresses", "addresses", 14,
          "t.id, t.number, t.building, t.code", "t.status = 'active'",
          {"id": "Number", "number": "String", "building": "String", "code": "String"}, points=True,
          coarse=ADDRESS_DOORS),
    Layer("facilities", "公共服务设施 / public facilities", "facilities", 12,
          "t.id, t.name, t.category", "t.status = 'active'",
          {"id": "Number", "name": "String", "category": "String"}, points=True),
    Layer("places", "道路街巷与其他地名 / streets and other place names", "place_names", 12,
          "t.id, t.name, t.category", "t.status = 'active'",
          {"id": "Number", "name": "String", "category": "String"}, simplify=True),
)}

# The tables each change-set kind (registry.changes.KINDS) may write. A kind not listed here
# (a new one) is taken to touch every table, so a cache is never stale by omission.
KIND_TABLES: dict[str, frozenset[str]] = {
    "load_reference": frozenset({"divisions"}),
    # also derived boundary lines and markers (registry.boundaries / registry.markers)
    "load_divisions": frozenset({"divisions", "boundary_lines", "boundary_markers"}),
    "load_addresses": frozenset({"addresses", "place_names"}),
    "load_place_names": frozenset({"place_names"}),
    "load_facilities": frozenset({"facilities"}),
    "load_heritage": frozenset(),
    "doorplates": frozenset(),
    "inspection": frozenset({"boundary_lines", "boundary_markers"}),
}
ALL_TABLES = frozenset(layer.table for layer in LAYERS.values())


def layer(name: str) -> Layer:
    found = LAYERS.get(name)
    if found is None:
        raise NotFound(f"没有名为 {name!r} 的图层（可用：{'、'.join(LAYERS)}）/ no tile layer {name!r} "
                       f"(known: {', '.join(LAYERS)})", parameter="layer")
    return found


def check_tile(z: int, x: int, y: int) -> None:
    """A tile address on the z/x/y grid, or a 400 naming the part that is off it."""
    if not 0 <= z <= MAX_ZOOM:
        raise InvalidQuery(f"z 应在 0–{MAX_ZOOM} 之间 / z must be between 0 and {MAX_ZOOM}, got {z}", parameter="z")
    top = (1 << z) - 1
    for name, value in (("x", x), ("y", y)):
        if not 0 <= value <= top:
            raise InvalidQuery(f"在 z={z} 时 {name} 应在 0–{top} 之间 / at z={z}, {name} must be between 0 and "
                               f"{top}, got {value}", parameter=name)


def in_range(lay: Layer, z: int) -> bool:
    return lay.minzoom <= z <= lay.maxzoom


def tile_sql(lay: Layer, z: int | None = None) -> str:
    """The statement of one tile of `lay` at zoom `z` (`z` None: as at DATA_MAXZOOM)."""
    where = lay.where
    if lay.coarse and z is not None and z < DATA_MAXZOOM:
        where = f"{where} AND {lay.coarse}"
    select = f"""WITH b AS (SELECT ST_TileEnvelope(:z, :x, :y) AS env,
                          ST_Transform(ST_TileEnvelope(:z, :x, :y, margin => {BUFFER / EXTENT}), 4490) AS sel)"""
    if lay.points:
        # A point's tile coordinates straight from its longitude/latitude (the spherical Mercator
        # formulas; CGCS2000 and WGS84 agree within centimetres): the same numbers as ST_Transform +
        # ST_AsMVTGeom, at a fraction of their cost per point. The buffer is the selection's margin.
        px = f"((ST_X(t.geom) + 180.0) / 360.0 * 2 ^ :z - :x) * {EXTENT}"
        py = f"((1.0 - asinh(tan(radians(ST_Y(t.geom)))) / pi()) / 2.0 * 2 ^ :z - :y) * {EXTENT}"
        return f"""{select}
        SELECT ST_AsMVT(q, '{lay.name}', {EXTENT}, 'geom', 'id') FROM (
            SELECT {lay.select}, ST_MakePoint(round({px}), round({py})) AS geom FROM {lay.table} t, b
            WHERE t.geom && b.sel AND {where}) q"""
    geom = "ST_Transform(t.geom, 3857)"
    if lay.simplify:
        # one pixel of this zoom in metres: finer detail is lost in the grid anyway
        geom = f"ST_SimplifyPreserveTopology({geom}, 40075016.68 / (2 ^ :z) / {EXTENT})"
    return f"""{select}
        SELECT ST_AsMVT(q, '{lay.name}', {EXTENT}, 'geom', 'id') FROM (
            SELECT {lay.select}, ST_AsMVTGeom({geom}, b.env, {EXTENT}, {BUFFER}, true) AS geom
            FROM {lay.table} t, b
            WHERE t.geom && b.sel AND {where}
        ) q WHERE q.geom IS NOT NULL"""


_TILE_SETTINGS = text("SELECT set_config('jit', 'off', true), set_config('max_parallel_workers_per_gather', '0', true)")


def render_tile(conn: Connection, lay: Layer, z: int, x: int, y: int) -> bytes:
    """The encoded tile (empty bytes when no feature falls in it or z is outside the layer's range)."""
    check_tile(z, x, y)
    if not in_range(lay, z):
        return b""
    # A tile is a few thousand rows: JIT compiling (seconds at the planner's estimates) and parallel
    # workers (their start-up) cost more than they save. SET LOCAL: for this transaction only.
    conn.execute(_TILE_SETTINGS)
    data = conn.execute(text(tile_sql(lay, z)), {"z": z, "x": x, "y": y}).scalar_one()
    return bytes(data or b"")


def tilejson(lay: Layer, base_url: str) -> dict:
    """TileJSON 3.0.0 of one layer; `base_url` is the app's root (no trailing slash)."""
    return {
        "tilejson": "3.0.0",
        "name": lay.name,
        "description": lay.title,
        "version": "1.0.0",
        "attribution": "湖州市地名地址库 / Huzhou place-name and address registry",
        "scheme": "xyz",
        "tiles": [f"{base_url}/tiles/{lay.name}/{{z}}/{{x}}/{{y}}.mvt"],
        "minzoom": lay.minzoom,
        "maxzoom": lay.maxzoom,
        "bounds": list(BOUNDS),
        "center": list(CENTER),
        "vector_layers": [{"id": lay.name, "description": lay.title, "minzoom": lay.minzoom,
                           "maxzoom": lay.maxzoom,
                           # the id is the MVT feature id, not a property
                           "fields": {k: v for k, v in lay.fields.items() if k != "id"}}],
    }


def etag_of(data: bytes) -> str:
    return '"' + hashlib.blake2b(data, digest_size=12).hexdigest() + '"'


@dataclass(frozen=True)
class Tile:
    data: bytes
    etag: str


class TileCache:
    """Encoded tiles per layer/z/x/y for one process, dropped per layer when a change set that
    writes the layer's table is applied. Thread-safe (the API runs sync routes in a pool)."""

    def __init__(self, max_bytes: int = CACHE_BYTES) -> None:
        self.max_bytes = max_bytes
        self._tiles: OrderedDict[tuple[str, int, int, int], tuple[int, Tile]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self._versions: dict[str, int] = {}  # table -> version (the change set id that last bumped it)
        self._top: int | None = None  # newest applied change set id at the last look
        self._pending: list[int] = []  # change sets proposed/approved at the last look
        self.hits = 0
        self.misses = 0
        # Following (registry.db.listen's subscriber contract): `listening` is set by the listener,
        # a reset (notifications may have been missed) makes the versions unknown until the
        # refresher thread has read them again.
        self.listening = False
        self._resets = 0  # counts resets: a refresh that started before the last one does not count
        self._fresh = False  # the versions were read after the last reset
        self._refreshing = threading.Lock()  # one refresh at a time (two would race on _pending)
        self._wake = threading.Event()
        self._listener = None
        self._own_listener = False
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    # -- following the applied change sets -------------------------------------------------------
    def follow(self, engine: Engine, listener=None) -> None:
        """Keep the versions current: subscribe to `CHANNEL` on `listener` (the process's LISTEN
        connection, registry.db.listen; None: one of the cache's own on `engine`) — the trigger of
        migration 0010 NOTIFYs it, at commit, when a change set is applied — and refresh with
        `engine` in a thread at each notification: from then on a cached tile is answered from
        memory (`peek`) with no database call. Every worker follows on its own, so each drops the
        layers an applied change set touched within milliseconds of its commit."""
        if self._thread is not None:
            return
        from registry.db.listen import Listener

        self._stop.clear()
        self._own_listener = listener is None
        self._listener = Listener.for_engine(engine) if listener is None else listener
        self._thread = threading.Thread(target=self._refresher, args=(engine,), name="tile-cache", daemon=True)
        self._thread.start()
        self._listener.subscribe(CHANNEL, self)

    def stop(self, timeout: float = 5.0) -> None:
        if self._listener is not None:
            self._listener.unsubscribe(self)
            if self._own_listener:
                self._listener.stop()
            self._listener = None
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        self.listening = False

    @property
    def following(self) -> bool:
        """The versions are kept current by notifications: a cached tile needs no database call."""
        return self.listening and self._fresh

    # the listener's subscriber (registry.db.listen)
    def apply(self, payload: str) -> None:  # '<id>:<kind>': the refresh reads what was applied
        self._wake.set()

    def reset(self) -> None:
        with self._lock:
            self._resets += 1
            self._fresh = False
        self._wake.set()

    def _refresher(self, engine: Engine) -> None:
        """Refresh at each wake-up (a notification, a reset); one refresh takes every notification
        that arrived before it started."""
        while not self._stop.is_set():
            if not self._wake.wait(1.0):
                continue
            self._wake.clear()
            if self._stop.is_set():
                break
            resets = self._resets
            try:
                with engine.connect() as conn:
                    self.refresh(conn)
            except Exception as exc:  # the database went away: requests ask it until it is back
                log.warning("tile cache: refreshing the change sets: %s", exc)
                if self.listening:  # else the reset that follows the LISTEN issued again wakes it
                    self._stop.wait(1.0)
                    self._wake.set()
                continue
            with self._lock:
                if self._resets == resets:
                    self._fresh = True

    # -- versions ------------------------------------------------------------------------------
    def refresh(self, conn: Connection) -> None:
        """Bring the table versions up to the applied change sets (two index lookups when nothing moved)."""
        with self._refreshing:
            self._refresh(conn)

    def _refresh(self, conn: Connection) -> None:
        top, newly = conn.execute(text("""
            SELECT (SELECT max(id) FROM change_sets WHERE status = 'applied'),
                   (SELECT count(*) FROM change_sets WHERE id = ANY(CAST(:pending AS bigint[])) AND status = 'applied')
        """), {"pending": self._pending}).one()
        top = top or 0
        if self._top is None:
            self._start(conn, top)
            return
        if top == self._top and not newly:
            return
        rows = conn.execute(text("""
            SELECT id, kind, status FROM change_sets WHERE id > :top OR id = ANY(CAST(:pending AS bigint[])) ORDER BY id
        """), {"top": self._top, "pending": self._pending}).all()
        touched: set[str] = set()
        pending = []
        for cs_id, kind, status in rows:
            if status == "applied":
                touched |= KIND_TABLES.get(kind, ALL_TABLES)
            elif status in ("proposed", "approved"):
                pending.append(cs_id)
        with self._lock:
            for table in touched:
                self._versions[table] = max(self._versions.get(table, 0), top) + 1
            self._top = max(top, self._top)
            self._pending = pending
        if touched:
            log.info("tile cache: change sets applied up to %s; layers of %s invalidated", top, sorted(touched))

    def _start(self, conn: Connection, top: int) -> None:
        pending = list(conn.execute(text(
            "SELECT id FROM change_sets WHERE status IN ('proposed', 'approved') ORDER BY id")).scalars())
        with self._lock:
            self._top = top
            self._pending = pending
            self._versions = {table: top for table in ALL_TABLES}

    def version(self, lay: Layer) -> int:
        return self._versions.get(lay.table, 0)

    # -- tiles ---------------------------------------------------------------------------------
    def peek(self, lay: Layer, z: int, x: int, y: int) -> Tile | None:
        """The cached tile, from memory only, while the versions are followed; else None (then `get`)."""
        if not self.following:
            return None
        key = (lay.name, z, x, y)
        with self._lock:
            cached = self._tiles.get(key)
            if cached is None or cached[0] != self._versions.get(lay.table, 0):
                return None
            self._tiles.move_to_end(key)
            self.hits += 1
            return cached[1]

    def get(self, conn: Connection, lay: Layer, z: int, x: int, y: int) -> Tile:
        """The tile from the cache when its layer has not changed since, else rendered and kept."""
        check_tile(z, x, y)
        if not self.following:  # no listener (tests, a lost connection): ask the database now
            self.refresh(conn)
        key = (lay.name, z, x, y)
        version = self.version(lay)
        with self._lock:
            cached = self._tiles.get(key)
            if cached is not None and cached[0] == version:
                self._tiles.move_to_end(key)
                self.hits += 1
                return cached[1]
        data = render_tile(conn, lay, z, x, y)
        tile = Tile(data, etag_of(data))
        with self._lock:
            self.misses += 1
            old = self._tiles.pop(key, None)
            if old is not None:
                self._bytes -= len(old[1].data)
            self._tiles[key] = (version, tile)
            self._bytes += len(data)
            while self._bytes > self.max_bytes and self._tiles:
                _, (_, dropped) = self._tiles.popitem(last=False)
                self._bytes -= len(dropped.data)
        return tile

    def clear(self) -> None:
        with self._lock:
            self._tiles.clear()
            self._bytes = 0
