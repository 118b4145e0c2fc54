"""Where a statement goes: writes to the primary, reads to a healthy replica (else the primary).

One `DatabaseRouter` per process, owned by the API's lifespan: it holds the primary's engine and
one engine per REGISTRY_REPLICA_URLS entry, and checks every node in a background thread each
REGISTRY_REPLICA_CHECK_SECONDS: a node is healthy when it answers, a replica also when it is
still in recovery (a promoted one no longer follows the primary and gets no reads) and no more
than REGISTRY_REPLICA_MAX_LAG_BYTES behind the primary. A request that finds a node down marks
it at once (`mark_down`), so the next one goes elsewhere without waiting for the check.

- `read_engines()` / `read_urls()`: healthy replicas first (rotating, to spread the load), the
  primary last, the unhealthy replicas after it (tried only when nothing else answers);
- `read_engine()`: the first of those (`bulk=True`: that replica's second engine, without the
  statement timeout, for the search's gazetteer build and follower);
- `write_engine()`: the primary, or PrimaryUnavailable at once when the last check (or a failed
  request) found it down: writes fail fast with 503 + Retry-After while reads go on.

Replica connections carry REGISTRY_READ_STATEMENT_TIMEOUT_MS. Standbys do not relay NOTIFY: the
search follows `search_changes` there instead (registry/search/follow.py).
"""
from __future__ import annotations

import itertools
import logging
import threading
import time
from dataclasses import dataclass, field

from sqlalchemy import Engine, text

from registry.errors import PrimaryUnavailable
from registry.settings import Settings

log = logging.getLogger(__name__)


@dataclass
class Node:
    engine: Engine
    role: str  # "primary" | "replica"
    healthy: bool = True  # optimistic until the first check: a fresh process tries every node
    checked_at: float = float("-inf")
    error: str | None = None
    lag_bytes: int | None = None
    replay_lsn: str | None = None
    owned: bool = field(default=True, repr=False)
    # a replica's engine for long reads (the search's gazetteer build): no statement_timeout
    bulk: Engine | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return self.engine.url.render_as_string(hide_password=False)

    def describe(self) -> dict:
        return {"role": self.role, "url": self.engine.url.render_as_string(hide_password=True),
                "healthy": self.healthy, "error": self.error, "lag_bytes": self.lag_bytes,
                "checked_ms_ago": None if self.checked_at == float("-inf")
                else round((time.monotonic() - self.checked_at) * 1000)}


class DatabaseRouter:
    def __init__(self, settings: Settings, primary: Engine, replicas: list[Engine] = (), *,
                 own_primary: bool = False, bulk: list[Engine] | None = None) -> None:
        self.settings = settings
        self.primary = Node(primary, "primary", owned=own_primary)
        self.replicas = [Node(e, "replica", bulk=b) for e, b in zip(replicas, bulk or [None] * len(replicas))]
        self._turn = itertools.count()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    @classmethod
    def open(cls, settings: Settings, primary: Engine | None = None) -> "DatabaseRouter":
        """The primary's engine (given, else made and owned) and one engine per replica URL. A
        replica that is down at start-up is only marked so: the API starts and reads elsewhere."""
        from registry.db.engine import make_engine

        own = primary is None
        primary = primary if primary is not None else make_engine(settings)
        replicas = [make_engine(settings, url=u, statement_timeout_ms=settings.read_statement_timeout_ms)
                    for u in settings.replica_urls]
        bulk = [make_engine(settings, url=u, pool_size=1) for u in settings.replica_urls]
        return cls(settings, primary, replicas, own_primary=own, bulk=bulk)

    # -- choosing ----------------------------------------------------------------------------
    @property
    def has_replicas(self) -> bool:
        return bool(self.replicas)

    def read_nodes(self) -> list[Node]:
        healthy = [n for n in self.replicas if n.healthy]
        if len(healthy) > 1:
            k = next(self._turn) % len(healthy)
            healthy = healthy[k:] + healthy[:k]
        return healthy + [self.primary] + [n for n in self.replicas if not n.healthy]

    def read_engines(self) -> list[Engine]:
        return [n.engine for n in self.read_nodes()]

    def read_engine(self, *, bulk: bool = False) -> Engine:
        """The first node to read from; `bulk`: its engine without statement_timeout (long reads)."""
        node = self.read_nodes()[0]
        return (node.bulk or node.engine) if bulk else node.engine

    def bulk_read_engine(self) -> Engine:
        return self.read_engine(bulk=True)

    def read_urls(self) -> list[str]:
        """Healthy replicas first, the primary last (the order a read pool should try them)."""
        nodes = self.read_nodes()
        ordered = [n for n in nodes if n.role == "replica" and n.healthy] + [self.primary]
        return [n.url for n in ordered]

    def write_engine(self) -> Engine:
        p = self.primary
        # only with replicas (and so the checks) is "down" known well enough to refuse without trying
        fresh = time.monotonic() - p.checked_at < 2 * self.settings.replica_check_seconds + 1
        if self.replicas and not p.healthy and fresh:
            raise PrimaryUnavailable(
                "主库不可用，暂不能写入（只读请求照常） / the primary database is unavailable: writes are refused "
                "for now (reads go on)", retry_after=max(1, round(self.settings.replica_check_seconds * 2)))
        return p.engine

    def node_of(self, engine: Engine) -> Node | None:
        for n in (self.primary, *self.replicas):
            if engine is n.engine or engine is n.bulk:
                return n
        return None

    def mark_down(self, engine: Engine, exc: BaseException) -> None:
        node = self.node_of(engine)
        if node is not None and node.healthy:
            log.warning("%s %s is down: %s", node.role, engine.url.render_as_string(hide_password=True),
                        _one_line(exc))
            node.healthy, node.error, node.checked_at = False, _one_line(exc), time.monotonic()

    # -- health ------------------------------------------------------------------------------
    def start(self) -> "DatabaseRouter":
        """The background check (only needed with replicas: without, the primary is tried as is)."""
        if self.replicas and self._thread is None:
            self.check()
            self._thread = threading.Thread(target=self._loop, name="db-router-health", daemon=True)
            self._thread.start()
        return self

    def _loop(self) -> None:
        while not self._stop.wait(self.settings.replica_check_seconds):
            try:
                self.check()
            except Exception:  # pragma: no cover - a check must never end the thread
                log.exception("database health check")

    def check(self) -> None:
        """One round: the primary's WAL position, then each replica's state and lag behind it."""
        with self._lock:
            primary_lsn = None
            try:
                with self.primary.engine.connect() as conn:
                    primary_lsn = conn.execute(text("SELECT pg_current_wal_lsn()::text")).scalar()
                    conn.rollback()
                self._set(self.primary, True)
            except Exception as exc:
                self._set(self.primary, False, exc)
            for node in self.replicas:
                try:
                    with node.engine.connect() as conn:
                        recovering, replayed = conn.execute(text(
                            "SELECT pg_is_in_recovery(), pg_last_wal_replay_lsn()::text")).one()
                        lag = None
                        if primary_lsn and replayed:
                            lag = conn.execute(text("SELECT pg_wal_lsn_diff(CAST(:p AS pg_lsn), CAST(:r AS pg_lsn))"),
                                               {"p": primary_lsn, "r": replayed}).scalar()
                        conn.rollback()
                    node.lag_bytes, node.replay_lsn = (None if lag is None else max(0, int(lag))), replayed
                    if not recovering:
                        self._set(node, False, "promoted: no longer a replica of the primary")
                    elif node.lag_bytes is not None and node.lag_bytes > self.settings.replica_max_lag_bytes:
                        self._set(node, False, f"{node.lag_bytes} bytes behind the primary")
                    else:
                        self._set(node, True)
                except Exception as exc:
                    self._set(node, False, exc)

    def _set(self, node: Node, healthy: bool, why: BaseException | str | None = None) -> None:
        if healthy != node.healthy:
            log.warning("%s %s is %s%s", node.role, node.engine.url.render_as_string(hide_password=True),
                        "back" if healthy else "down", "" if why is None else f": {_one_line(why)}")
        node.healthy, node.checked_at = healthy, time.monotonic()
        node.error = None if healthy else _one_line(why)
        if not healthy and isinstance(why, BaseException):
            node.engine.dispose()  # its pooled connections are dead: start afresh when it is back
            if node.bulk is not None:
                node.bulk.dispose()

    def state(self) -> list[dict]:
        return [n.describe() for n in (self.primary, *self.replicas)]

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        for node in (self.primary, *self.replicas):
            if node.owned:
                node.engine.dispose()
            if node.bulk is not None:
                node.bulk.dispose()


def _one_line(exc: BaseException | str | None) -> str:
    s = str(exc or "").strip()
    return (s.splitlines() or [type(exc).__name__])[0][:300]
