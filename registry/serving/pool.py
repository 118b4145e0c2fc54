"""The async read pool of the hot read paths (doorplate scans, reverse geocoding, /healthz).

asyncpg connections, a few per read URL, in the order `read_urls` gives (healthy replicas first,
the primary last): a read goes to the first URL that is not marked down and fails over to the next
on a connection error. asyncpg keeps each socket registered with the event loop and parses the wire
protocol in C: a prepared read costs about a third of the CPU psycopg's async pool spent on it
(bench/bench_serving.py; the scan's miss is mostly this round trip). The pool itself is a list of
idle connections and a queue of waiters: a checkout is a list pop. Statements are written with
psycopg's placeholders (`%s`, `%(name)s`) like every other statement of the registry and turned into
`$n` once per statement (`_numbered`); each connection prepares a statement on its first run
(`statement_cache_size`; 0 when REGISTRY_DB_PREPARED_STATEMENTS=false, behind a pooler), decodes
json and jsonb with orjson, and uses the registry's session time zone (timestamps inside JSON come
out as the SQLAlchemy engine writes them).

The health of each URL is a state refreshed in the background at most once a second; `/healthz`
answers it with its age instead of a round trip of its own.
"""
from __future__ import annotations

import asyncio
import logging
import re
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import asyncpg
import orjson
from registry.db.engine import libpq_url
from registry.errors import DatabaseUnavailable
from registry.settings import Settings

log = logging.getLogger(__name__)

TIME_ZONE = "Asia/Shanghai"  # the session time zone of registry.db.engine's connections
HEALTH_EVERY_SECONDS = 1.0  # a health state is refreshed when older than this
CONNECT_TIMEOUT_SECONDS = 2  # a down server is noticed this fast
CHECKOUT_TIMEOUT_SECONDS = 2.0  # waiting for a pooled connection longer than this fails over
NO_ANSWER_SECONDS = 5.0  # a health check without an answer this long: the server is down
# A health state older than this is checked again before it is answered (up to PROBE_WAIT_SECONDS):
# a prober that asks every 10 s (a load balancer's) would otherwise always be told what its previous
# probe started, 10 s old. Under load the state is never this old and nobody waits.
STALE_SECONDS = 2 * HEALTH_EVERY_SECONDS
PROBE_WAIT_SECONDS = 1.0
DOWN_SECONDS = 1.0  # a URL that failed is skipped this long (unless every URL is down)
STATEMENT_CACHE = 256  # prepared statements kept per connection
APPLICATION_NAME = "registry-read"  # in pg_stat_activity
# A server that went away, refused, or did not answer in time (a read is safe to repeat elsewhere).
_ERRORS = (OSError, asyncio.TimeoutError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError,
           asyncpg.CannotConnectNowError, asyncpg.AdminShutdownError, asyncpg.CrashShutdownError)
_PLACEHOLDER = re.compile(r"%\((\w+)\)s|%s|%%")


@lru_cache(maxsize=512)
def _numbered(sql: str) -> tuple[str, tuple[str, ...] | int]:
    """psycopg's placeholders → asyncpg's: the statement with `$n`, and the parameter names in order
    (named style) or how many positional parameters it takes."""
    names: list[str] = []
    count = 0

    def sub(m: re.Match) -> str:
        nonlocal count
        if m.group(0) == "%%":
            return "%"
        if m.group(1) is None:
            count += 1
            return f"${count}"
        if m.group(1) not in names:
            names.append(m.group(1))
        return f"${names.index(m.group(1)) + 1}"

    out = _PLACEHOLDER.sub(sub, sql)
    if names and count:
        raise ValueError("a statement mixes %s and %(name)s placeholders")
    return out, (tuple(names) if names else count)


def _args(shape: tuple[str, ...] | int, params: Any) -> tuple:
    if params is None:
        return ()
    if isinstance(shape, tuple):
        return tuple(params[n] for n in shape)
    return tuple(params)


async def _init_connection(conn: asyncpg.Connection) -> None:
    for kind in ("json", "jsonb"):
        await conn.set_type_codec(kind, encoder=lambda v: orjson.dumps(v).decode(), decoder=orjson.loads,
                                  schema="pg_catalog")


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


class _Connections:
    """The connections of one URL: idle ones in a list, callers waiting for one in a queue."""

    def __init__(self, url: str, *, min_size: int, max_size: int, connect) -> None:
        self.url, self.min_size, self.max_size = url, min_size, max_size
        self._connect = connect
        self.idle: list[asyncpg.Connection] = []
        self.waiters: deque[asyncio.Future] = deque()
        self.size = 0  # open or opening
        self.closed = False

    async def _new(self) -> asyncpg.Connection:
        self.size += 1
        try:
            return await self._connect(self.url)
        except BaseException:
            self.size -= 1
            raise

    async def fill(self) -> None:
        """Open up to min_size connections (in the background at start-up; errors are the health's)."""
        while not self.closed and self.size < self.min_size:
            try:
                self.release(await self._new())
            except Exception as exc:  # noqa: BLE001 - a down server at start-up: reads fail over
                log.info("read pool %s: %s", self.url.rsplit("@", 1)[-1], exc)
                return

    async def acquire(self) -> asyncpg.Connection:
        if self.idle:
            return self.idle.pop()
        if self.size < self.max_size:
            return await self._new()
        waiter = asyncio.get_running_loop().create_future()
        self.waiters.append(waiter)
        try:
            return await asyncio.wait_for(waiter, CHECKOUT_TIMEOUT_SECONDS)
        except BaseException:
            if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                self.release(waiter.result())  # handed over as the wait ended: give it on
            else:
                waiter.cancel()
            raise

    def release(self, conn: asyncpg.Connection, *, broken: bool = False) -> None:
        if broken or self.closed or conn.is_closed():
            self.size -= 1
            if not conn.is_closed():
                conn.terminate()
            return
        while self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.done():
                waiter.set_result(conn)
                return
        self.idle.append(conn)

    async def close(self) -> None:
        self.closed = True
        idle, self.idle = self.idle, []
        for conn in idle:
            self.size -= 1
            try:
                await asyncio.wait_for(conn.close(), 1.0)
            except Exception:  # noqa: BLE001 - closing anyway
                conn.terminate()
        for waiter in self.waiters:
            waiter.cancel()
        self.waiters.clear()


class ReadPool:
    """Async connections over an ordered list of URLs; the last one is the primary."""

    def __init__(self, urls: Sequence[str], *, min_size: int = 1, max_size: int = 8,
                 connect_timeout: float = CONNECT_TIMEOUT_SECONDS, prepare: bool = True) -> None:
        if not urls:
            raise ValueError("a read pool needs at least one URL")
        self.urls = [libpq_url(u) for u in urls]
        # prepare: false behind a pooler in transaction mode (REGISTRY_DB_PREPARED_STATEMENTS)
        self._connect_kwargs = {"timeout": connect_timeout, "statement_cache_size": STATEMENT_CACHE if prepare else 0,
                                "server_settings": {"TimeZone": TIME_ZONE, "application_name": APPLICATION_NAME}}
        self.min_size, self.max_size = min_size, max_size
        self.pools: list[_Connections] = []
        self.health = [Health() for _ in self.urls]
        self._down_until = [0.0] * len(self.urls)
        self._refresh: asyncio.Task | None = None
        self._refresh_started = 0.0
        self._probes: list[asyncpg.Connection | None] = [None] * len(self.urls)
        self._fills: list[asyncio.Task] = []
        self._opened = False

    async def _connect(self, url: str) -> asyncpg.Connection:
        conn = await asyncpg.connect(url, **self._connect_kwargs)
        try:
            await _init_connection(conn)
        except BaseException:
            conn.terminate()
            raise
        return conn

    # -- lifecycle -------------------------------------------------------------------------------
    async def open(self) -> "ReadPool":
        """Create the pools; connections are made in the background (a down server does not stop start-up)."""
        loop = asyncio.get_running_loop()
        for url in self.urls:
            pool = _Connections(url, min_size=self.min_size, max_size=self.max_size, connect=self._connect)
            self.pools.append(pool)
            self._fills.append(loop.create_task(pool.fill(), name="read-pool-fill"))
        self._opened = True
        return self

    async def close(self) -> None:
        for task in [*self._fills, self._refresh]:
            if task is not None and not task.done():
                task.cancel()
                try:
                    await task
                except BaseException:  # noqa: BLE001 - cancelled or failed: closing anyway
                    pass
        self._fills = []
        for probe in self._probes:
            if probe is not None and not probe.is_closed():
                probe.terminate()
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

    async def _run(self, sql: str, params: Any, *, primary: bool, many: bool):
        statement, shape = _numbered(sql)
        args = _args(shape, params)
        last: BaseException | None = None
        for i in self._order(primary):
            pool = self.pools[i]
            try:
                conn = await pool.acquire()
            except _ERRORS as exc:  # this server is down or went away: the next one (a read is safe to repeat)
                self._mark_down(i, exc)
                last = exc
                continue
            try:
                result = await (conn.fetch(statement, *args) if many else conn.fetchrow(statement, *args))
            except _ERRORS as exc:
                pool.release(conn, broken=True)
                self._mark_down(i, exc)
                last = exc
                continue
            except asyncio.CancelledError:
                pool.release(conn, broken=True)  # its statement may still be running
                raise
            except BaseException:
                pool.release(conn)
                raise
            pool.release(conn)
            return result
        raise DatabaseUnavailable("数据库不可用 / the database is unavailable") from last

    async def fetchone(self, sql: str, params: Any = None, *, primary: bool = False):
        return await self._run(sql, params, primary=primary, many=False)

    async def fetchall(self, sql: str, params: Any = None, *, primary: bool = False):
        return await self._run(sql, params, primary=primary, many=True)

    async def execute(self, sql: str, params: Any = None) -> None:
        """A write, on the primary, in autocommit (not repeated on an error)."""
        statement, shape = _numbered(sql)
        pool = self.pools[-1]
        try:
            conn = await pool.acquire()
        except _ERRORS as exc:
            self._mark_down(len(self.pools) - 1, exc)
            raise DatabaseUnavailable("数据库不可用 / the database is unavailable") from exc
        try:
            await conn.execute(statement, *_args(shape, params))
        except _ERRORS as exc:
            pool.release(conn, broken=True)
            self._mark_down(len(self.pools) - 1, exc)
            raise DatabaseUnavailable("数据库不可用 / the database is unavailable") from exc
        except BaseException:
            pool.release(conn, broken=True)
            raise
        pool.release(conn)

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
            if conn is None or conn.is_closed():
                conn = self._probes[i] = await asyncpg.connect(self.urls[i], **self._connect_kwargs)
            await conn.fetchval("SELECT 1")
        except (asyncpg.PostgresError, *_ERRORS) as exc:
            self._probes[i] = None
            if conn is not None and not conn.is_closed():
                conn.terminate()
            self._mark_down(i, exc)
        else:
            self.health[i] = Health(True, time.monotonic())
            self._down_until[i] = 0.0

    async def _check_all(self) -> None:
        await asyncio.gather(*(self._check(i) for i in range(len(self.urls))))

    async def state(self) -> list[Health]:
        """The health of each URL, refreshed in the background when older than a second; awaited
        for the very first answer, and up to PROBE_WAIT_SECONDS when older than STALE_SECONDS (then
        answered as it stands, its age telling how old). A check that has not come back for
        NO_ANSWER_SECONDS (a server that accepts but does not answer) reports the URL down."""
        if not self._opened:
            raise DatabaseUnavailable("数据库连接池未打开 / the read pool is not open")
        now = time.monotonic()
        first = any(h.up is None for h in self.health)
        age = now - min(h.checked_at for h in self.health)  # of the oldest state
        stale = age >= HEALTH_EVERY_SECONDS
        running = self._refresh is not None and not self._refresh.done()
        if (first or stale) and not running:
            # started now, not when the task first runs: the other requests of this turn of the loop
            # would otherwise measure the new check against the last one's start (seconds ago after
            # an idle spell) and report a server that is up as not answering
            self._refresh_started = now
            self._refresh = asyncio.get_running_loop().create_task(self._check_all())
        elif running and now - self._refresh_started > NO_ANSWER_SECONDS:
            for i, h in enumerate(self.health):
                if h.up and now - h.checked_at > NO_ANSWER_SECONDS:
                    self.health[i] = Health(False, h.checked_at, "no answer")
        if first:
            await asyncio.shield(self._refresh)
        elif age >= STALE_SECONDS and not self._refresh.done():
            try:
                await asyncio.wait_for(asyncio.shield(self._refresh), PROBE_WAIT_SECONDS)
            except asyncio.TimeoutError:
                pass
        return list(self.health)
