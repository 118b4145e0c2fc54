"""The async read pool of the hot read paths (doorplate scans, reverse geocoding, /healthz).

psycopg 3's `AsyncConnectionPool`, one per read URL, in the order `read_urls` gives (healthy
replicas first, the primary last): a read goes to the first URL that is not marked down and fails
over to the next on a connection error. Connections are in autocommit (a read costs no BEGIN /
COMMIT round trip), prepare every statement on its first run (`prepare_threshold=0`) and use the
registry's session time zone (timestamps in JSON come out as the SQLAlchemy engine writes them).

The health of each URL is a state refreshed in the background at most once a second; `/healthz`
answers it with its age instead of a round trip of its own.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool, PoolTimeout
from sqlalchemy.engine import make_url

from registry.errors import DatabaseUnavailable
from registry.settings import Settings

log = logging.getLogger(__name__)

TIME_ZONE = "Asia/Shanghai"  # the session time zone of registry.db.engine's connections
HEALTH_EVERY_SECONDS = 1.0  # a health state is refreshed when older than this
CONNECT_TIMEOUT_SECONDS = 2  # libpq connect_timeout: a down server is noticed this fast
CHECKOUT_TIMEOUT_SECONDS = 2.0  # waiting for a pooled connection longer than this fails over
NO_ANSWER_SECONDS = 5.0  # a health check without an answer this long: the server is down
DOWN_SECONDS = 1.0  # a URL that failed is skipped this long (unless every URL is down)
_ERRORS = (psycopg.OperationalError, PoolTimeout)


def libpq_url(url: str) -> str:
    """`postgresql+psycopg://…` (SQLAlchemy) → `postgresql://…` (libpq), password kept."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def read_urls(settings: Settings, primary: str | None = None) -> list[str]:
    """The URLs reads may go to, in the order to try them: healthy replicas first, the primary last.
    The replicas are REGISTRY_REPLICA_URLS (registry/db/routing.py checks their health and lag for the
    SQLAlchemy side; this pool marks a URL down on its own errors)."""
    if primary is None:
        from registry.db.engine import resolve_database_url

        primary = resolve_database_url(settings, start=False)
    return [*settings.replica_urls, primary]


@dataclass
class Health:
    """The last check of one URL: up or down, when (monotonic), and why not."""

    up: bool | None = None  # None: never checked
    checked_at: float = float("-inf")
    error: str | None = None

    def age_ms(self) -> int | None:
        return None if self.up is None else round((time.monotonic() - self.checked_at) * 1000)


class ReadPool:
    """Async pools over an ordered list of URLs; the last one is the primary."""

    def __init__(self, urls: Sequence[str], *, min_size: int = 1, max_size: int = 8,
                 connect_timeout: int = CONNECT_TIMEOUT_SECONDS, prepare: bool = True) -> None:
        if not urls:
            raise ValueError("a read pool needs at least one URL")
        self.urls = [libpq_url(u) for u in urls]
        # prepare: false behind a pooler in transaction mode (REGISTRY_DB_PREPARED_STATEMENTS)
        self._kwargs = {"autocommit": True, "prepare_threshold": 0 if prepare else None}
        self._conninfo = {"connect_timeout": str(connect_timeout), "options": f"-c TimeZone={TIME_ZONE}",
                          "application_name": "registry-read"}
        self.min_size, self.max_size = min_size, max_size
        self.pools: list[AsyncConnectionPool] = []
        self.health = [Health() for _ in self.urls]
        self._down_until = [0.0] * len(self.urls)
        self._refresh: asyncio.Task | None = None
        self._refresh_started = 0.0
        self._probes: list[psycopg.AsyncConnection | None] = [None] * len(self.urls)
        self._opened = False

    # -- lifecycle -------------------------------------------------------------------------------
    async def open(self) -> "ReadPool":
        """Create the pools; connections are made in the background (a down server does not stop start-up)."""
        for i, url in enumerate(self.urls):
            conninfo = psycopg.conninfo.make_conninfo(url, **self._conninfo)
            pool = AsyncConnectionPool(conninfo, kwargs=self._kwargs, min_size=self.min_size, max_size=self.max_size,
                                       open=False, name=f"read-{i}", timeout=CHECKOUT_TIMEOUT_SECONDS,
                                       reconnect_timeout=30.0)
            await pool.open(wait=False)
            self.pools.append(pool)
        self._opened = True
        return self

    async def close(self) -> None:
        if self._refresh is not None and not self._refresh.done():
            self._refresh.cancel()
            try:
                await self._refresh
            except BaseException:  # noqa: BLE001 - cancelled or failed: closing anyway
                pass
        for probe in self._probes:
            if probe is not None:
                await probe.close()
        self._probes = [None] * len(self.urls)
        for pool in self.pools:
            await pool.close()
        self.pools = []
        self._opened = False

    async def __aenter__(self) -> "ReadPool":
        return await self.open()

    async def __aexit__(self, *exc) -> None:
        await self.close()

    # -- reads -----------------------------------------------------------------------------------
    def _order(self, primary: bool) -> list[int]:
        if primary:
            return [len(self.urls) - 1]
        now = time.monotonic()
        up = [i for i in range(len(self.urls)) if self._down_until[i] <= now]
        return up or list(range(len(self.urls)))

    @asynccontextmanager
    async def connection(self, *, primary: bool = False) -> AsyncIterator[psycopg.AsyncConnection]:
        """A connection of the first URL that answers (`primary`: the primary's). Errors raised by
        the caller's statements are not retried here: use `fetchone` / `fetchall` for that."""
        last: BaseException | None = None
        for i in self._order(primary):
            try:
                cm = self.pools[i].connection()
                conn = await cm.__aenter__()
            except _ERRORS as exc:
                self._mark_down(i, exc)
                last = exc
                continue
            try:
                yield conn
            except BaseException as exc:
                if isinstance(exc, psycopg.OperationalError):
                    self._mark_down(i, exc)
                if not await cm.__aexit__(type(exc), exc, exc.__traceback__):
                    raise
            else:
                await cm.__aexit__(None, None, None)
            return
        raise DatabaseUnavailable("数据库不可用 / the database is unavailable") from last

    async def _run(self, sql: str, params: Any, *, primary: bool, many: bool):
        last: BaseException | None = None
        for i in self._order(primary):
            try:
                async with self.pools[i].connection() as conn:
                    cur = await conn.execute(sql, params)
                    return await (cur.fetchall() if many else cur.fetchone())
            except _ERRORS as exc:  # this server is down or went away: the next one (a read is safe to repeat)
                self._mark_down(i, exc)
                last = exc
        raise DatabaseUnavailable("数据库不可用 / the database is unavailable") from last

    async def fetchone(self, sql: str, params: Any = None, *, primary: bool = False):
        return await self._run(sql, params, primary=primary, many=False)

    async def fetchall(self, sql: str, params: Any = None, *, primary: bool = False):
        return await self._run(sql, params, primary=primary, many=True)

    async def execute(self, sql: str, params: Any = None) -> None:
        """A write, on the primary, in autocommit (not repeated on an error)."""
        try:
            async with self.pools[-1].connection() as conn:
                await conn.execute(sql, params)
        except _ERRORS as exc:
            self._mark_down(len(self.pools) - 1, exc)
            raise DatabaseUnavailable("数据库不可用 / the database is unavailable") from exc

    def _mark_down(self, i: int, exc: BaseException) -> None:
        log.warning("read database %s failed: %s", i, exc)
        self._down_until[i] = time.monotonic() + DOWN_SECONDS
        self.health[i] = Health(False, time.monotonic(), type(exc).__name__)

    # -- health ----------------------------------------------------------------------------------
    # Each URL is checked on a connection of its own (not a pooled one): a busy pool is not a down
    # server, and a refused connection is known at once instead of after a checkout timeout.
    async def _check(self, i: int) -> None:
        conn = self._probes[i]
        try:
            if conn is None or conn.closed:
                conn = self._probes[i] = await psycopg.AsyncConnection.connect(
                    psycopg.conninfo.make_conninfo(self.urls[i], **self._conninfo), autocommit=True)
            await conn.execute("SELECT 1")
        except (psycopg.Error, OSError) as exc:
            self._probes[i] = None
            if conn is not None:
                await conn.close()
            self._mark_down(i, exc)
        else:
            self.health[i] = Health(True, time.monotonic())
            self._down_until[i] = 0.0

    async def _check_all(self) -> None:
        self._refresh_started = time.monotonic()
        await asyncio.gather(*(self._check(i) for i in range(len(self.urls))))

    async def state(self) -> list[Health]:
        """The health of each URL, refreshed in the background when older than a second (awaited
        only for the very first answer). A check that has not come back for NO_ANSWER_SECONDS
        (a server that accepts but does not answer) reports the URL down."""
        if not self._opened:
            raise DatabaseUnavailable("数据库连接池未打开 / the read pool is not open")
        now = time.monotonic()
        first = any(h.up is None for h in self.health)
        stale = any(now - h.checked_at >= HEALTH_EVERY_SECONDS for h in self.health)
        running = self._refresh is not None and not self._refresh.done()
        if (first or stale) and not running:
            self._refresh = asyncio.get_running_loop().create_task(self._check_all())
        elif running and now - self._refresh_started > NO_ANSWER_SECONDS:
            for i, h in enumerate(self.health):
                if h.up and now - h.checked_at > NO_ANSWER_SECONDS:
                    self.health[i] = Health(False, h.checked_at, "no answer")
        if first:
            await asyncio.shield(self._refresh)
        return list(self.health)
