"""Reverse geocoding on the async read path: the answer of `registry.search.reverse.reverse`, from
memory with no statement at all where that is exact, else with the nearest address from memory
where that is exact (registry.search.nearest) and one statement for the rest.

The API's reverse (the FastAPI route and the hot-path front, api/front.py) answers through
`reverse_answer` and nowhere else.

Memory answers only when all of these hold (`ReverseMemory.answer`), else the statements do:

- the change notifications are followed (`listening`, set by registry.db.listen) and the division
  polygons were read after the last `divisions:…` notification (registry.search.areas);
- the distance PostGIS gives was reproduced to the bit on this server when they were read;
- the gazetteer is loaded, follows the changes (no `error`, its queue listening; after a reset of
  a listener it shares, a new load of it), its grid is built, and it holds every address change
  notified since: after `addresses:<ids>` the rows are read here too
  and memory waits until the gazetteer's copy of each is the database's; after `addresses:*` it
  waits for a generation whose snapshot was taken after the notification. So a retired address
  is never answered once its notification has arrived (before that, nobody knows);
- the point is not within rounding error of a division boundary, and a single division of the
  finest level covers it (several: which one is the statement's scan order).
"""
from __future__ import annotations

import asyncio
import logging
import math
import random
import time


from registry.search.areas import LOAD_SQL, Areas
from registry.search.freshness import trim_heap
from registry.search.nearest import metres
from registry.search.reverse import reverse_async, reverse_from_memory
from registry.search.validate import check_lon_lat, check_radius

log = logging.getLogger(__name__)

CHANNEL = "registry_search"  # migration 0003: addresses, divisions … (`<table>:<ids>` or `<table>:*`)
RETRY_SECONDS = 1.0  # a failed read of the polygons or of changed addresses is tried again after this
CALIBRATION_PAIRS = 256  # point pairs whose PostGIS distance memory must reproduce, at each load
_UNREAD = object()  # a changed address whose row has not been read back yet
_ROWS_SQL = """SELECT id, division_id, code, full_text, ST_X(geom), ST_Y(geom) FROM addresses
WHERE id = ANY(%(ids)s) AND status <> 'retired' AND geom IS NOT NULL"""
_DISTANCE_SQL = """SELECT ST_Distance(ST_SetSRID(ST_MakePoint(x1, y1), 4490)::geography,
                          ST_SetSRID(ST_MakePoint(x2, y2), 4490)::geography)
FROM unnest(%(x1)s::float8[], %(y1)s::float8[], %(x2)s::float8[], %(y2)s::float8[]) WITH ORDINALITY u(x1, y1, x2, y2, o)
ORDER BY o"""


def _memory_state(store, address_id: int):
    """The gazetteer's copy of an address as `_ROWS_SQL` reads it: (lon, lat, code, full_text,
    division), or None when it holds no located live address of that id."""
    r = store.overlay.get(address_id)
    if r is not None:
        return (r.lon, r.lat, r.code, r.full_text, r.village) if math.isfinite(r.lon) else None
    i = store.row_of_id(address_id)
    if i is None or not store.alive[i] or not math.isfinite(float(store.lon[i])):
        return None
    code, full_text = store.text(i)
    return float(store.lon[i]), float(store.lat[i]), code, full_text, int(store.col["village"][i])


def _build(rows, previous: Areas | None) -> Areas:
    """The polygons' Areas (the cells of `previous` kept where no village changed), and the C heap
    its building used (~60 MB of temporary grids at the full city) given back to the system."""
    areas = Areas(rows, previous)
    trim_heap()
    return areas


class ReverseMemory:
    """The reverse answer from memory, kept right by the notifications: a follower of the ReadPath
    (`apply`, `reset`, `listening`). `fetch(sql, params)` reads on the primary (awaitable rows)."""

    channels = (CHANNEL,)

    def __init__(self, fetch) -> None:
        self.fetch = fetch
        self._listening = False
        self.areas: Areas | None = None
        self._built: Areas | None = None  # the last read, dropped or not: its cells are reused where nothing changed
        self.distance_exact = False  # PostGIS's distance reproduced on this server (at the last load)
        self._epoch = 0  # moved by every division notification and reset: a load read before is dropped
        self._loading: asyncio.Task | None = None
        self._load_after = 0.0  # monotonic: no new load before (after a failure)
        # changed addresses: id -> [notification number, the row as the database has it or _UNREAD]
        self._pending: dict[int, list] = {}
        self._notified = 0
        self._reading: asyncio.Task | None = None
        self._read_after = 0.0
        self._bulk_since: float | None = None  # wall clock of an `addresses:*`
        self.shares_listener = True  # the gazetteer follows the same listener (reverse_answer sets it)
        self._seen_gaz = self._stale_gaz = None  # the gazetteer last answered from, and one reset with us
        self.answered = self.declined = 0

    # -- the follower ------------------------------------------------------------------------------
    @property
    def listening(self) -> bool:
        return self._listening

    @listening.setter
    def listening(self, value: bool) -> None:
        """Set by the listener: once listening, the polygons are read at once (not at the first
        reverse: building them takes seconds of CPU, better spent before the traffic comes)."""
        self._listening = value
        if value and self.areas is None:
            try:
                self._start_load()
            except RuntimeError:  # not in the event loop: the first answer starts it
                pass

    def apply(self, payload: str) -> None:
        table, _, ids = payload.partition(":")
        if table == "divisions":
            self._drop_areas()
        elif table == "addresses":
            if ids.strip() == "*":
                self._bulk_since = time.time()
                return
            self._notified += 1
            for part in ids.split(","):
                if part.strip().isdigit():
                    self._pending[int(part)] = [self._notified, _UNREAD]
            self._kick()

    def reset(self) -> None:
        """Notifications may have been missed: the polygons go (read again once listening), and a
        gazetteer that follows the same listener is not trusted until it has loaded again (it is
        reset too). The addresses waited for stay: the gazetteer may not hold their change yet."""
        self._drop_areas()
        self._stale_gaz = self._seen_gaz if self.shares_listener else None

    def _drop_areas(self) -> None:
        self._epoch += 1
        self.areas = None
        if self._listening:
            try:
                self._start_load()  # a load under way reads again: its epoch is past
            except RuntimeError:
                pass

    # -- the answer ----------------------------------------------------------------------------------
    def answer(self, search, index, lon: float, lat: float, radius: float) -> dict | None:
        """The answer from memory, or None where the statements must answer (see the module)."""
        if not self.listening:
            return None
        areas = self.areas
        if areas is None:
            self._start_load()
            return None
        if not self.distance_exact or search is None or not search.ready or getattr(search, "error", None):
            return None
        if not getattr(getattr(search, "changes", None), "listening", True):
            return None  # the gazetteer does not follow the changes right now
        gaz = search.get()
        if gaz is self._stale_gaz:
            return None  # reset with ours: it loads again after the notifications it missed
        self._seen_gaz = gaz
        store = gaz.addresses
        if self._bulk_since is not None:
            if gaz.snapshot_time <= self._bulk_since:
                return None
            self._bulk_since = None
        if self._pending and not self._settled(store):
            return None
        found = index.pick(store, lon, lat, radius) if index.ready_for(store) else None
        if found is None:
            return None
        out = reverse_from_memory(areas, store, found, lon, lat, radius)
        if out is None:
            self.declined += 1
        else:
            self.answered += 1
        return out

    def _settled(self, store) -> bool:
        """Whether the gazetteer holds every notified address change (those it does are forgotten)."""
        for aid, (_, row) in list(self._pending.items()):
            if row is _UNREAD:
                self._kick()
                return False
            if _memory_state(store, aid) != row:
                return False
            del self._pending[aid]
        return True

    # -- reading back ----------------------------------------------------------------------------------
    def _kick(self) -> None:
        if self._reading is not None and not self._reading.done():
            return
        if time.monotonic() < self._read_after:
            return
        try:
            self._reading = asyncio.get_running_loop().create_task(self._read_pending(), name="reverse-memory-rows")
        except RuntimeError:  # no loop here: the next answer starts it
            self._reading = None

    async def _read_pending(self) -> None:
        while True:
            asked = self._notified
            ids = [aid for aid, (_, row) in self._pending.items() if row is _UNREAD]
            if not ids:
                return
            try:
                rows = await self.fetch(_ROWS_SQL, {"ids": ids})
            except Exception as exc:  # the database went away: the statements answer meanwhile
                log.warning("reverse memory: changed addresses not read (%s); retrying", exc)
                self._read_after = time.monotonic() + RETRY_SECONDS
                return
            found = {r[0]: (r[4], r[5], r[2], r[3], r[1]) for r in rows}
            for aid in ids:
                entry = self._pending.get(aid)
                if entry is not None and entry[0] <= asked:  # not notified again since the read began
                    entry[1] = found.get(aid)

    def _start_load(self) -> None:
        if (self._loading is not None and not self._loading.done()) or time.monotonic() < self._load_after:
            return
        self._loading = asyncio.get_running_loop().create_task(self._load(), name="reverse-memory-areas")

    async def _load(self) -> None:
        while self.listening and self.areas is None:
            epoch = self._epoch
            try:
                rows = await self.fetch(LOAD_SQL, None)
                areas = await asyncio.get_running_loop().run_in_executor(None, _build, rows, self._built)
                self._built = areas
                exact = await self._calibrate(areas)
            except Exception as exc:
                log.warning("reverse memory: division polygons not read (%s); retrying", exc)
                self._load_after = time.monotonic() + RETRY_SECONDS
                return
            if epoch == self._epoch and self.listening:
                self.areas, self.distance_exact = areas, exact
                log.info("reverse memory: %d division polygons, distance %s", len(areas),
                         "exact" if exact else "NOT reproduced: PostGIS measures")

    async def _calibrate(self, areas: Areas) -> bool:
        """Whether `metres` gives PostGIS's distance to the bit on pairs of points over the area."""
        bounds = areas.bounds or (119.2, 30.3, 120.5, 31.2)  # Huzhou, for a database without polygons
        rng = random.Random(4490)
        x1 = [rng.uniform(bounds[0], bounds[2]) for _ in range(CALIBRATION_PAIRS)]
        y1 = [rng.uniform(bounds[1], bounds[3]) for _ in range(CALIBRATION_PAIRS)]
        spans = [10.0 ** rng.uniform(-7, -1.3) for _ in range(CALIBRATION_PAIRS)]  # 1 cm to 5 km
        x2 = [x + rng.uniform(-s, s) for x, s in zip(x1, spans)]
        y2 = [y + rng.uniform(-s, s) for y, s in zip(y1, spans)]
        rows = await self.fetch(_DISTANCE_SQL, {"x1": x1, "y1": y1, "x2": x2, "y2": y2})
        ours = metres(x1, y1, x2, y2)
        bad = sum(1 for (theirs,), mine in zip(rows, ours.tolist()) if theirs != mine)
        if bad:
            log.warning("reverse memory: %d of %d distances differ from PostGIS's", bad, len(rows))
        return bad == 0 and len(rows) == CALIBRATION_PAIRS


async def reverse_answer(path, search, lon: float, lat: float, radius: float, *, memory: bool = True) -> dict:
    """`search`: the app's SearchService (its gazetteer's address columns, once loaded), or None.
    `memory=False`: the statements answer (benches compare the two)."""
    lon, lat = check_lon_lat(lon, lat)
    radius = check_radius(radius)
    store = search.get().addresses if search is not None and search.ready else None
    nearest = path.nearest_for(store)  # also builds the grid of a new store (in a thread)
    followed = getattr(path, "reverse_memory", None)
    if memory and followed is not None and nearest is not None:
        followed.shares_listener = getattr(search, "listener", None) is getattr(path, "listener", None)
        out = followed.answer(search, path.nearest, lon, lat, radius)
        if out is not None:
            return out
    return await reverse_async(path.pool, lon, lat, radius, nearest=nearest)
