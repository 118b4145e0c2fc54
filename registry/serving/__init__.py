"""The fast read path of the API's hottest requests: an async read pool (`pool.ReadPool`) and the
render cache of public plate pages with its listener (`cache`), owned together by the app's
lifespan as one `ReadPath`.

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
from registry.settings import Settings

log = logging.getLogger(__name__)


class ReadPath:
    def __init__(self, settings: Settings, primary_url: str, listener: Listener | None = None) -> None:
        self.urls = read_urls(settings, primary_url)
        self.primary = libpq_url(primary_url)
        self.pool = ReadPool(self.urls, min_size=2, max_size=max(2, settings.pool_size),
                             prepare=settings.db_prepared_statements)
        self.cache = RenderCache(settings.scan_cache_entries)
        # the process's LISTEN connection (registry.db.listen, the lifespan's); None: one of its own
        self.listener = listener
        self._own_listener = listener is None
        self._followed = None
        self.nearest = NearestIndex()  # reverse geocoding's nearest address from the gazetteer's columns
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
                if self.cache.max_entries > 0:
                    if self.listener is None:
                        self.listener = Listener(self.primary)
                    self._followed = self.cache  # called in this loop
                    self.listener.subscribe(CHANNELS, self.cache, loop=asyncio.get_running_loop())
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
        if self.opened:
            await self.pool.close()
            self.opened = False


__all__ = ["Health", "ReadPath", "ReadPool", "Render", "RenderCache", "libpq_url", "read_urls"]
