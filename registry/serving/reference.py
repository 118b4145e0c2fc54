"""The reference rows a public scan is composed from, held in process: the divisions with their
chains, the place names (streets, compounds, natural villages) and the active facilities in a grid
for the nearest-per-category rule. With them a render-cache miss reads only the plate and its
address (`registry.serving.scan`).

They are valid only while the registry's notifications are followed (as the render cache,
`registry.serving.cache`): this object is a follower (`apply(payload)`, `reset()`, `listening`).

- `divisions:…` drops every division (a rename or a re-parenting changes the chains below it),
  `facilities:…` every facility; `place_names:<ids>` drops those names (a scan that needs one reads
  the full statement and the names are fetched again), `place_names:*` drops them all;
- a lost or regained listener connection (`reset`) drops everything;
- a fill (a load or a re-fetch) that raced a notification of its table is never installed: it takes
  the table's epoch before its read, and any notification since refuses it (RenderCache.put's rule).

While a table is not loaded (or not listening) `row` answers None and the scan reads the full
statement, so no answer ever depends on this cache being right; loads run in the background on the
first use.

The nearest facilities are exactly SCAN_SQL's: its 12 nearest active facilities by planar distance
(`f.geom <-> a.geom`, degrees of EPSG:4490), which `view.nearest_services` reduces to the nearest of
each category. The answer depends only on *which* 12 are taken, so the one case where PostGIS's
choice is not determined by the distances — the 12th and 13th at the same distance (up to float
rounding: co-located facilities) — is left to PostGIS (None: the full statement).
"""
from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import numpy as np

from registry.doorplates import view
from registry.doorplates.view import NEAREST_FACILITIES, SLIM_FIELD_NAMES

log = logging.getLogger(__name__)

TABLES = ("divisions", "place_names", "facilities")
WARM_BATCH = 64  # names worked out between two turns of the event loop (~15 ms at most)
DIVISIONS_SQL = "SELECT id, parent_id, name, level, coalesce(mca_code, nbs_code) FROM divisions"
PLACES_SQL = "SELECT id, name, category, pinyin FROM place_names"
PLACES_BY_ID_SQL = PLACES_SQL + " WHERE id = ANY(%s)"
FACILITIES_SQL = ("SELECT id, category, name, address_text, phone, ST_X(geom), ST_Y(geom) FROM facilities "
                  "WHERE status = 'active' AND geom IS NOT NULL")
CHAIN_DEPTH = 8  # SCAN_SQL's recursive CTE stops at depth 8: at most 9 divisions, the address's first
CELL_DEGREES = 0.005  # the facility grid's cell (about 500 m): candidate lists of 10-40; 11,000 cells at the full city
# Two planar distances closer than this (relative) may be ordered either way by PostGIS (another
# formula, another rounding): a tie at the 12-cut is left to PostGIS. Doubles carry 1e-16.
TIE_RELATIVE = 1e-9
BLOCK_CELLS = 8  # a cell's candidates are sought among its block's (8 × 8 cells): ~150 facilities, not all

Fetch = Callable[[str, Any], Awaitable[Sequence[Sequence[Any]]]]


class FacilityGrid:
    """The active facilities with a point; `nearest(lon, lat)` gives SCAN_SQL's services value."""

    def __init__(self, rows: Sequence[Sequence[Any]], cell: float = CELL_DEGREES) -> None:
        # [category, name, address_text, phone, lon, lat]: the services' JSON, one list per facility
        self.items = [[r[1], r[2], r[3], r[4], r[5], r[6]] for r in sorted(rows, key=lambda r: r[0])
                      if r[5] is not None and r[6] is not None]
        self.empty = len(rows) - len(self.items)  # POINT EMPTY: PostGIS orders them last; left to it
        self.xs = [it[4] for it in self.items]
        self.ys = [it[5] for it in self.items]
        self._xs, self._ys = np.array(self.xs, dtype=np.float64), np.array(self.ys, dtype=np.float64)
        self._points = list(zip(self.xs, self.ys))  # one (lon, lat) per facility, shared by the cells
        self.cell = cell
        # by kx << 32 + ky: each cell's candidates (the items and their (lon, lat), in index order)
        self._cells: dict[int, tuple[list[list[Any]], list[tuple[float, float]]]] = {}
        self._blocks: dict[int, np.ndarray] = {}  # by bx << 32 + by: a block's facilities (indices)

    def __len__(self) -> int:
        return len(self.items)

    def _within(self, among: np.ndarray | None, x: float, y: float, slack: float) -> np.ndarray:
        """The facilities (indices, ascending) within D + slack of (x, y), D its 13th nearest distance
        (numpy's hypot may differ from math's in the last bit: the slack has room for that); `among`
        those to look at (all when None), which must hold the 13 nearest and all the answer."""
        xs, ys = (self._xs, self._ys) if among is None else (self._xs[among], self._ys[among])
        d = np.hypot(xs - x, ys - y)
        reach = np.partition(d, NEAREST_FACILITIES)[NEAREST_FACILITIES] + slack * (1 + 1e-9) + 1e-12
        inside = np.flatnonzero(d <= reach)
        return inside if among is None else among[inside]

    def _candidates(self, lon: float, lat: float) -> tuple[list[list[Any]], list[tuple[float, float]]]:
        """Every facility that can be among the 13 nearest of a point of the point's cell: within
        D + 2h of the cell's centre (D its 13th nearest distance, h the half diagonal; the triangle
        inequality). Computed on the cell's first use, among its block's facilities: those within
        D' + 2H + 2h of the block's centre (D' its 13th nearest, H the block's half diagonal), which
        hold every facility within D + 2h of any of its cells' centres (D ≤ D' + H)."""
        cell = self.cell
        kx, ky = math.floor(lon / cell), math.floor(lat / cell)
        key = (kx << 32) + ky
        found = self._cells.get(key)
        if found is not None:
            return found
        if len(self.items) <= NEAREST_FACILITIES + 1:
            index: Sequence[int] = range(len(self.items))
        else:
            bx, by = kx // BLOCK_CELLS, ky // BLOCK_CELLS
            block_key = (bx << 32) + by
            block = self._blocks.get(block_key)
            if block is None:
                size = BLOCK_CELLS * cell
                block = self._blocks[block_key] = self._within(
                    None, (bx + 0.5) * size, (by + 0.5) * size, size * math.sqrt(2) + cell * math.sqrt(2))
            index = self._within(block, (kx + 0.5) * cell, (ky + 0.5) * cell, cell * math.sqrt(2)).tolist()
        items, points = self.items, self._points
        found = self._cells[key] = ([items[i] for i in index], [points[i] for i in index])
        return found

    def nearest(self, lon: float, lat: float) -> tuple[bool, list[list[Any]] | None]:
        """(determined, services): SCAN_SQL's 12 nearest, nearest first; determined is False when the
        12th and 13th tie (PostGIS's pick among them is its own)."""
        if len(self.items) <= NEAREST_FACILITIES and self.empty:
            return False, None
        if not self.items:
            return True, None
        items, points = self._candidates(lon, lat)
        hypot = math.hypot
        d = [hypot(x - lon, y - lat) for x, y in points]
        near = sorted(range(len(d)), key=d.__getitem__)  # stable: equal distances in index order
        if len(near) > NEAREST_FACILITIES:
            last, after = d[near[NEAREST_FACILITIES - 1]], d[near[NEAREST_FACILITIES]]
            if after - last <= TIE_RELATIVE * after:
                return False, None
        return True, [items[k] for k in near[:NEAREST_FACILITIES]]


class Reference:
    """Divisions, place names and facilities by id, loaded on first use through `fetch(sql, params)`
    (the read pool's primary: the notifications are the primary's). Used from one event loop."""

    def __init__(self, fetch: Fetch | None = None) -> None:
        self.fetch = fetch
        self._listening = False
        self.used = False  # a scan asked for the data: it is loaded (again) whenever it can be
        # division id → [[id, name, level, code], …], province first
        self.chains: dict[int, list[list[Any]]] | None = None
        self.places: dict[int, tuple[str, str, str | None]] | None = None  # id → (name, category, pinyin)
        self.facilities: FacilityGrid | None = None
        self._epochs = dict.fromkeys(TABLES, 0)
        self._wanted: set[int] = set()  # place names a scan missed, fetched again
        self._tasks: dict[str, asyncio.Task] = {}
        self.loads = self.fallbacks = 0

    # -- the follower ------------------------------------------------------------------------------
    @property
    def listening(self) -> bool:
        """Set by the listener; nothing is loaded or used while False."""
        return self._listening

    @listening.setter
    def listening(self, value: bool) -> None:
        self._listening = value
        if value and self.used:
            try:
                asyncio.get_running_loop()
            except RuntimeError:  # set from another thread: the next scan loads it
                return
            self.load()

    def apply(self, payload: str) -> None:
        """One notification payload, `<table>:<ids>` or `<table>:*`."""
        table, _, ids = payload.partition(":")
        if table not in self._epochs:
            return
        self._epochs[table] += 1
        if table == "divisions":
            self.chains = None
        elif table == "facilities":
            self.facilities = None
        elif ids.strip() == "*" or self.places is None:
            self.places = None
        else:
            for part in ids.split(","):
                if part.strip().isdigit():
                    self.places.pop(int(part), None)

    def reset(self) -> None:
        """The listener's connection was lost or regained: notifications may have been missed."""
        for table in TABLES:
            self._epochs[table] += 1
        self.chains = self.places = self.facilities = None
        self._wanted.clear()

    clear = reset  # the render cache's name for it (registry.serving.cache.follow calls clear())

    @property
    def loading(self) -> bool:
        """A load, a re-fetch or a warm-up still runs in the background (the benches wait for it)."""
        return any(not t.done() for t in self._tasks.values())

    @property
    def ready(self) -> bool:
        return self.listening and self.chains is not None and self.places is not None and self.facilities is not None

    # -- a scan's row --------------------------------------------------------------------------------
    def row(self, found: Sequence[Any]) -> dict[str, Any] | None:
        """The scan row (view.FIELD_NAMES) of one SLIM_SQL row from these tables; None when something
        it needs is not held (the caller reads the full statement)."""
        chains, places, facilities = self.chains, self.places, self.facilities
        if not self.listening or chains is None or places is None or facilities is None:
            self.fallbacks += 1
            self.load()
            return None
        row = dict(zip(SLIM_FIELD_NAMES, found))
        chain = chains.get(row["division_id"])
        street = compound = services = None
        missing = chain is None
        street_id, compound_id = row["street_id"], row["compound_id"]
        if street_id is not None:
            place = places.get(street_id)
            if place is None:
                missing = True
                self._want(street_id)
            else:
                street = [place[0], place[2]]
        if compound_id is not None:
            place = places.get(compound_id)
            if place is None:
                missing = True
                self._want(compound_id)
            else:
                compound = [place[0], place[1], place[2]]
        if row["lon"] is not None and not missing:
            determined, services = facilities.nearest(row["lon"], row["lat"])
            missing = not determined
        if missing:
            self.fallbacks += 1
            return None
        row["street_info"], row["compound_info"], row["chain"], row["services"] = street, compound, chain, services
        return row

    # -- fills ---------------------------------------------------------------------------------------
    def load(self) -> None:
        """Start loading whatever is not held (in the background; once at a time per table)."""
        self.used = True
        if not self.listening or self.fetch is None:
            return
        for table, held in (("divisions", self.chains), ("place_names", self.places), ("facilities", self.facilities)):
            if held is None:
                self._start(table, self._load(table))
        if self._wanted and self.places is not None:
            self._start("place_names", self._refetch())

    def _want(self, place_id: int) -> None:
        self._wanted.add(place_id)
        self.load()

    def _start(self, table: str, coro) -> None:
        running = self._tasks.get(table)
        if running is not None and not running.done():
            coro.close()
            return
        self._tasks[table] = asyncio.get_running_loop().create_task(coro, name=f"scan-reference-{table}")

    async def _load(self, table: str) -> None:
        epoch = self._epochs[table]
        try:
            value = _held(table, await self.fetch(_LOAD_SQL[table], None))
        except Exception as exc:  # the database went away: scans read the full statement meanwhile
            log.warning("scan reference data: loading %s failed: %s", table, exc)
            return
        if self.listening and epoch == self._epochs[table]:
            setattr(self, {"divisions": "chains", "place_names": "places", "facilities": "facilities"}[table], value)
            self.loads += 1
            if table != "facilities":
                self._start(f"warm-{table}", self._warm(table, list(value.values())))

    @staticmethod
    async def _warm(table: str, held: list) -> None:
        """Work out what the scans compose from each held chain or name (its pinyin: ~0.2 ms a name
        the first time, 0.5 s for a full city's) now, a batch at a time between turns of the loop,
        rather than in the first scans of each."""
        for start in range(0, len(held), WARM_BATCH):
            for value in held[start:start + WARM_BATCH]:
                try:
                    if table == "divisions":
                        view.warm_chain(value)
                    else:
                        view.warm_place(value[0], value[1], value[2])
                except Exception:  # noqa: BLE001 - an odd name: its scans meet it (and answer) as before
                    pass
            await asyncio.sleep(0)

    async def _refetch(self) -> None:
        epoch, wanted = self._epochs["place_names"], sorted(self._wanted)
        try:
            rows = await self.fetch(PLACES_BY_ID_SQL, (wanted,))
        except Exception as exc:
            log.warning("scan reference data: fetching place names failed: %s", exc)
            return
        if self.listening and epoch == self._epochs["place_names"] and self.places is not None:
            self._wanted.difference_update(wanted)
            self.places.update(_held("place_names", rows))

    @classmethod
    def read_at_once(cls, fetch: Callable[[str, Any], Sequence[Sequence[Any]]]) -> "Reference":
        """Every table read now through a blocking `fetch(sql, params)`, held as `_load` holds it, for
        a reader that follows no notifications (the scan store's build, api/scan_store.py)."""
        ref = cls()
        ref.chains, ref.places, ref.facilities = (_held(t, fetch(_LOAD_SQL[t], None)) for t in TABLES)
        ref._listening = True  # nothing to follow: the rows are the build's snapshot
        return ref

    async def close(self) -> None:
        for task in self._tasks.values():
            task.cancel()
        for task in self._tasks.values():
            try:
                await task
            except BaseException:  # noqa: BLE001 - cancelled or failed: closing anyway
                pass
        self._tasks.clear()


_LOAD_SQL = {"divisions": DIVISIONS_SQL, "place_names": PLACES_SQL, "facilities": FACILITIES_SQL}


def _held(table: str, rows: Sequence[Sequence[Any]]) -> Any:
    """A table's rows as the scans use them: chains by division, (name, category, pinyin) by place
    name, the facilities' grid."""
    if table == "divisions":
        return chains_of(rows)
    if table == "place_names":
        return {r[0]: (r[1], r[2], r[3]) for r in rows}
    return FacilityGrid(rows)


def chains_of(rows: Sequence[Sequence[Any]]) -> dict[int, list[list[Any]]]:
    """Each division's chain as SCAN_SQL's recursive CTE gives it: the division and its parents up
    to depth 8, province first, as [id, name, level, code]; a division whose parent is not among the
    rows is left out (the rows are stale: the full statement answers)."""
    by_id = {r[0]: r for r in rows}
    chains: dict[int, list[list[Any]]] = {}
    for did in by_id:
        chain, cur, whole = [], by_id[did], True
        for depth in range(CHAIN_DEPTH + 1):
            chain.append([cur[0], cur[2], cur[3], cur[4]])
            parent = cur[1]
            if parent is None or depth == CHAIN_DEPTH:
                break
            cur = by_id.get(parent)
            if cur is None:
                whole = False
                break
        if whole:
            chain.reverse()
            chains[did] = chain
    return chains
