"""The fast read path of the API's hottest requests, owned by the app's lifespan as one `ReadPath`:
an async read pool (`pool.ReadPool`, asyncpg), the render cache of public plate pages (`cache`),
the scans' reference data (`reference`: divisions, place names, facilities) and reverse
geocoding's memory (`reverse`: the division polygons), the last three kept right by the process's
one LISTEN connection (registry/db/listen.py).

Opened at start-up when the app owns its engine (`registry serve`); otherwise (an app built on a
test's engine) on the first request that uses it, so that an app whose requests never take the
fast path opens no connection of its own.
"""
from __future__ import annotations

import asyncio
import logging

from registry.search.nearest import NearestIndex
from registry.db.listen import Listener
from registry.serving.cache import CHANNELS, Render, RenderCache
from registry.serving.pool import Health, ReadPool, libpq_url, read_urls
from registry.serving.reverse import ReverseMemory
from registry.serving.reference import Reference
from registry.serving.scan import PlateReads
from registry.serving.store import ScanStore
from registry.settings import Settings

log = logging.getLogger(__name__)


class ReadPath:
    def __init__(self, settings: Settings, primary_url: str, listener: Listener | None = None) -> None:
        self.urls = read_urls(settings, primary_url)
        self.primary = libpq_url(primary_url)
        self.pool = ReadPool(self.urls, min_size=2, max_size=max(2, settings.pool_size),
                             prepare=settings.db_prepared_statements)
        self.cache = RenderCache(settings.scan_cache_entries)
        # the scans' plate rows, the misses of one turn of the event loop in one statement (scan.py)
        self.plate_reads = PlateReads(self.pool)
        # the scans' divisions, place names and facilities in process (registry/serving/reference.py)
        self.reference = Reference(lambda sql, params: self.pool.fetchall(sql, params, primary=True))
        # reverse geocoding from memory (registry/serving/reverse.py): the division polygons, kept
        # right by the division notifications
        self.reverse_memory = ReverseMemory(lambda sql, params: self.pool.fetchall(sql, params, primary=True))
        # What follows the notifications (apply, reset, listening), in this order: the reference data
        # drops a changed row before the render cache's epoch moves, so a render whose epoch was
        # taken after the change is never made of the row as it was.
        self.followers = [self.reference, self.cache, self.reverse_memory]
        # the process's LISTEN connection (registry.db.listen, the lifespan's); None: one of its own
        self.listener = listener
        self._own_listener = listener is None
        self._followed: _Followers | None = None
        self.nearest = NearestIndex()  # reverse geocoding's nearest address from the gazetteer's columns
        # the scans' answers built ahead (registry/serving/store.py), opened by the API's lifespan when
        # REGISTRY_SCAN_STORE_DIR is set (the API knows the code that composes them)
        self.store: ScanStore | None = None
        self._grid: asyncio.Future | None = None
        self._opening: asyncio.Lock | None = None
        self.opened = False

    async def ensure(self) -> "ReadPath":
        """Open the pool and start following notifications, once."""
        if self.opened:
            return self
        if self._opening is None:
            self._opening = asyncio.Lock()
        async with self._opening:
            if not self.opened:
                await self.pool.open()
                if self.listener is None:
                    self.listener = Listener(self.primary)
                # one subscriber for all of them, in their order, called in this loop; a follower may
                # name further channels (`channels`)
                self._followed = _Followers(self.followers)
                channels = set(CHANNELS).union(*(getattr(f, "channels", ()) for f in self.followers))
                self.listener.subscribe(channels, self._followed, loop=asyncio.get_running_loop())
                self.opened = True
        return self

    def nearest_for(self, store):
        """`nearest(lon, lat, radius)` over the gazetteer's `store` once its grid is built (built in
        a thread on first use: until then, and with no store, None and PostGIS answers)."""
        if store is None:
            return None
        if self.nearest.ready_for(store):
            index = self.nearest
            return lambda lon, lat, radius: index.nearest(store, lon, lat, radius)
        if self._grid is None or self._grid.done():
            self._grid = asyncio.get_running_loop().run_in_executor(None, self.nearest.prepare, store)
        return None

    async def close(self) -> None:
        if self._followed is not None:
            self.listener.unsubscribe(self._followed)
            self._followed = None
            if self._own_listener:
                await asyncio.to_thread(self.listener.stop)
                self.listener = None
        await self.reference.close()
        if self.store is not None:
            self.store.close()
            self.store = None
        if self.opened:
            await self.pool.close()
            self.opened = False


class _Followers:
    """The followers as one subscriber of the listener (apply, reset, listening), in their order."""

    def __init__(self, followers) -> None:
        self.followers = followers

    @property
    def listening(self) -> bool:
        return all(f.listening for f in self.followers)

    @listening.setter
    def listening(self, value: bool) -> None:
        for f in self.followers:
            f.listening = value

    def apply(self, payload: str) -> None:
        for f in self.followers:
            f.apply(payload)

    def reset(self) -> None:
        for f in self.followers:
            f.reset()


__all__ = ["Health", "ReadPath", "ReadPool", "Render", "RenderCache", "libpq_url", "read_urls"]
