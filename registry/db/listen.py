"""One LISTEN connection per process, shared by everything that follows the registry's notifications.

The consumers (the search gazetteer, the tile cache, the render cache of plate pages and the read
path's other caches) subscribe to the channels they need; a thread holds one connection
(`application_name` `registry-listener` in pg_stat_activity), LISTENs on every channel subscribed
and hands each notification's payload to the subscribers of its channel, in the order received.

A subscriber has three members:

- `apply(payload: str)`: one notification of one of its channels (called once per payload);
- `reset()`: notifications may have been missed (the connection was lost, or it is regained and
  its LISTEN issued): drop or re-read everything derived from the database;
- `listening: bool`: set by the listener — True only after the LISTEN on all its channels has
  succeeded (and its `reset` was called), False as soon as the connection is known lost.

So on (re)connecting: LISTEN, then for each subscriber `reset()` and `listening = True`; on a lost
connection: `listening = False` and `reset()`; then the listener connects again after a bounded
backoff (BACKOFF_FIRST_SECONDS doubling up to BACKOFF_MAX_SECONDS, back to the first once a LISTEN
succeeded). A subscription added while connected LISTENs on its new channels first, then resets
and marks that subscriber only. A subscriber used from one event loop (no locks) subscribes with
`loop=`: its three members are then called in that loop (`call_soon_threadsafe`), still in order.
`apply` and `reset` must not block: a consumer with work to do wakes its own thread.

LISTEN needs a session of its own on the primary (notifications are neither replicated nor passed
on by a pooler in transaction mode): the listener uses the URL it is given, REGISTRY_LISTEN_URL
or else the engine's. One that leads to a pooler is found out on connecting (the backend pid the
pooler announces is not the server's `pg_backend_pid()`): the listener then LISTENs on nothing and
`pooled` is set, a warning names the setting, and no subscriber ever becomes `listening` (each
reads the database instead; the search follows the change log).
"""
from __future__ import annotations

import asyncio
import logging
import os
import re
import select
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol

import psycopg

from registry.db.engine import libpq_url

log = logging.getLogger(__name__)

APPLICATION_NAME = "registry-listener"  # in pg_stat_activity
CONNECT_TIMEOUT_SECONDS = 2
BACKOFF_FIRST_SECONDS = 0.2  # the first retry after a lost connection
BACKOFF_MAX_SECONDS = 5.0  # the longest wait between two attempts while the database is down
IDLE_WAKE_SECONDS = 5.0  # the thread looks at its subscriptions at least this often
# A connection that stops answering (a cable pulled, a host gone) is noticed in ~9 s, not hours.
KEEPALIVES = {"keepalives": 1, "keepalives_idle": 5, "keepalives_interval": 2, "keepalives_count": 2}
_CHANNEL = re.compile(r"^[a-z_][a-z0-9_]*$")


class Subscriber(Protocol):
    listening: bool

    def apply(self, payload: str) -> None: ...

    def reset(self) -> None: ...


@dataclass(eq=False)
class _Subscription:
    subscriber: Subscriber
    loop: asyncio.AbstractEventLoop | None
    channels: set[str] = field(default_factory=set)
    live: frozenset[str] = frozenset()  # the channels it was reset and marked listening for
    active: bool = True  # False once unsubscribed: callbacks still queued in its loop do nothing


class Listener:
    """The process's LISTEN connection and its subscribers. Thread-safe; started on the first
    subscription (or `start()`), stopped by `stop()`."""

    def __init__(self, url, *, application_name: str = APPLICATION_NAME,
                 setting: str = "REGISTRY_DATABASE_URL") -> None:
        self.url = libpq_url(url)
        self.application_name = application_name
        self.setting = setting  # the variable the URL came from, named when it leads to a pooler
        self.pooled = False  # the URL leads to a connection pooler: nothing is listened on
        self._subs: dict[int, _Subscription] = {}  # id(subscriber) -> subscription
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._wake_r = self._wake_w = -1  # a pipe, made by start(): subscribe and stop wake the thread
        self.connected = False  # a connection whose LISTENs succeeded
        self.backend_pid: int | None = None  # of the current connection (pg_stat_activity.pid)
        self.error: BaseException | None = None  # the last failure, None while connected
        self.connections = 0  # connections made so far (1 + reconnections)
        self._listened_once = False  # the current connection's LISTENs succeeded (the backoff starts over)

    @classmethod
    def for_engine(cls, engine, **kwargs) -> "Listener":
        return cls(engine.url, **kwargs)

    # -- subscriptions ---------------------------------------------------------------------------
    def subscribe(self, channels: str | Iterable[str], subscriber: Subscriber, *,
                  loop: asyncio.AbstractEventLoop | None = None) -> None:
        """Follow `channels` (one name or several: give all of a subscriber's channels at once, so
        that it is not marked listening before it follows all of them) and start the listener."""
        names = {channels} if isinstance(channels, str) else set(channels)
        for name in names:
            if not _CHANNEL.match(name):
                raise ValueError(f"not a channel name: {name!r}")
        with self._lock:
            sub = self._subs.get(id(subscriber))
            if sub is None:
                sub = self._subs[id(subscriber)] = _Subscription(subscriber, loop)
            sub.channels |= names
        self.start()
        self._wake()

    def unsubscribe(self, subscriber: Subscriber) -> None:
        with self._lock:
            sub = self._subs.pop(id(subscriber), None)
        if sub is not None:
            sub.active = False
            subscriber.listening = False

    def channels(self) -> set[str]:
        with self._lock:
            return set().union(*(s.channels for s in self._subs.values()))

    # -- lifecycle ---------------------------------------------------------------------------------
    def start(self) -> "Listener":
        with self._lock:
            if self._thread is None and not self._stop.is_set():
                self._wake_r, self._wake_w = os.pipe()
                for fd in (self._wake_r, self._wake_w):
                    os.set_blocking(fd, False)
                self._thread = threading.Thread(target=self._run, name="registry-listener", daemon=True)
                self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Close the connection and end the thread; every subscriber stops listening. Final: a
        stopped listener does not start again."""
        self._stop.set()
        self._wake()
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
        if thread is None or not thread.is_alive():
            fds, (self._wake_r, self._wake_w) = (self._wake_r, self._wake_w), (-1, -1)
            for fd in fds:
                if fd >= 0:
                    os.close(fd)

    def _wake(self) -> None:
        if self._wake_w < 0:
            return
        try:
            os.write(self._wake_w, b"x")
        except (BlockingIOError, OSError):  # full (it is awake anyway) or closed (stopped)
            pass

    # -- the thread --------------------------------------------------------------------------------
    def _run(self) -> None:
        failures = 0
        while not self._stop.is_set():
            conn = None
            self._listened_once = False
            try:
                conn = psycopg.connect(self.url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_SECONDS,
                                       application_name=self.application_name, **KEEPALIVES)
                self.connections += 1
                self.backend_pid = conn.info.backend_pid
                if _through_pooler(conn):
                    self._refuse_pooler()
                else:
                    self._serve(conn)
            except Exception as exc:  # the database went away (or refused): every subscriber is reset
                if not self._stop.is_set():
                    self.error = exc
                    log.warning("notification listener: %s; reconnecting", exc)
            finally:
                self.connected = False
                self.backend_pid = None
                self._lose()
                if conn is not None:
                    try:
                        conn.close()
                    except Exception:  # pragma: no cover - a broken socket
                        pass
            if self.pooled:  # connecting again changes nothing: every subscriber reads the database
                self._stop.wait()
                return
            if self._listened_once:
                failures = 0
            delay = min(BACKOFF_FIRST_SECONDS * 2 ** failures, BACKOFF_MAX_SECONDS)
            failures += 1
            self._stop.wait(delay)

    def _refuse_pooler(self) -> None:
        self.pooled = True
        self.error = ThroughPooler(
            f"{self.setting} leads to a connection pooler, where LISTEN misses notifications: nothing "
            "follows them (the render cache, scan reference data, reverse memory and tile cache read the "
            "database, the search polls its change log); set REGISTRY_LISTEN_URL to the primary's own URL")
        log.warning("notification listener: %s", self.error)

    def _serve(self, conn: psycopg.Connection) -> None:
        """LISTEN and dispatch until stopped; raises when the connection is lost."""
        listened: set[str] = set()
        poller = select.poll()  # not select(): a busy process may have descriptors above 1024
        poller.register(conn.fileno(), select.POLLIN)
        poller.register(self._wake_r, select.POLLIN)
        while not self._stop.is_set():
            self._follow_channels(conn, listened)
            notes = list(conn.notifies(timeout=0))  # what arrived (also during the LISTENs), at once
            if notes:
                self._dispatch(notes)
            ready = {fd for fd, _ in poller.poll(IDLE_WAKE_SECONDS * 1000)}
            if self._wake_r in ready:
                try:
                    while os.read(self._wake_r, 4096):
                        pass
                except BlockingIOError:
                    pass

    def _follow_channels(self, conn: psycopg.Connection, listened: set[str]) -> None:
        """LISTEN on the channels not yet listened on, then reset and mark the subscribers that
        follow a channel they were not marked for."""
        with self._lock:
            subs = list(self._subs.values())
        wanted = set().union(*(s.channels for s in subs))
        for name in sorted(wanted - listened):
            conn.execute(f"LISTEN {name}")
            listened.add(name)
        if not self.connected:
            self.connected = True
            self.error = None
            self._listened_once = True
        for sub in subs:
            channels = frozenset(sub.channels)
            if channels != sub.live and channels <= listened:
                sub.live = channels
                self._call(sub, _go_live)

    def _dispatch(self, notes: list) -> None:
        with self._lock:
            subs = list(self._subs.values())
        batches: dict[int, tuple[_Subscription, list[str]]] = {}
        for note in notes:
            for sub in subs:
                if note.channel in sub.live:
                    batches.setdefault(id(sub), (sub, []))[1].append(note.payload)
        for sub, payloads in batches.values():
            self._call(sub, _apply, payloads)

    def _lose(self) -> None:
        with self._lock:
            subs = list(self._subs.values())
        for sub in subs:
            if sub.live:
                sub.live = frozenset()
                self._call(sub, _go_dead)

    def _call(self, sub: _Subscription, fn, *args) -> None:
        if sub.loop is None:
            fn(sub, *args)
            return
        try:
            sub.loop.call_soon_threadsafe(fn, sub, *args)
        except RuntimeError:  # its event loop is closed: nobody is left to follow
            self.unsubscribe(sub.subscriber)


class ThroughPooler(Exception):
    """The listener's URL leads to a connection pooler (the listener's `error`)."""


def _through_pooler(conn: psycopg.Connection) -> bool:
    """A pooler (pgbouncer, Odyssey…) announces a backend pid of its own (its cancel key), not the
    pid of the server session that runs the statements."""
    return conn.execute("SELECT pg_backend_pid()").fetchone()[0] != conn.info.backend_pid


def _go_live(sub: _Subscription) -> None:
    if sub.active:
        _guarded(sub, sub.subscriber.reset)
        sub.subscriber.listening = True


def _go_dead(sub: _Subscription) -> None:
    if sub.active:
        sub.subscriber.listening = False
        _guarded(sub, sub.subscriber.reset)


def _apply(sub: _Subscription, payloads: list[str]) -> None:
    if not sub.active:
        return
    for payload in payloads:
        try:
            sub.subscriber.apply(payload)
        except Exception:  # a payload it cannot take: it may have missed a change, start it over
            log.exception("notification subscriber %r failed on %r; resetting it", sub.subscriber, payload)
            _guarded(sub, sub.subscriber.reset)
            return


def _guarded(sub: _Subscription, fn) -> None:
    try:
        fn()
    except Exception:  # pragma: no cover - a subscriber's bug must not stop the others
        log.exception("notification subscriber %r failed to reset", sub.subscriber)
