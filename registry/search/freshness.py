"""Keeping the gazetteer fresh: a service that loads it, follows `registry_search` (the triggers
of migration 0003 NOTIFY after every committed statement) and applies the changed rows.

- `addresses:<ids>`: the rows are read again and go to the overlay (a retired one leaves);
- `place_names:<ids>` (also sent for alias changes), `facilities:<ids>`, `heritage_items:<ids>`:
  the entities are read again and re-indexed;
- `divisions:<ids>` or any `<table>:*` (a statement changing more than 500 rows, e.g. a bulk
  load or a division adjustment): a new generation of the shared gazetteer is built (by the
  first process that takes the lock; the others attach to it: registry.search.generation) and
  swapped in when ready; searches keep using the old one meanwhile.

The generation's address columns are files mapped by every process; the overlay of changes is
each process's own, fed by its own LISTEN and, on attaching, by the rows changed after the
generation's snapshot (generation.changes_since) and the places with aliases, read again
(`catch_up`: a deleted alias row is not found by comparing snapshots).

The notifications come from the process's one LISTEN connection (registry.db.listen: the API's
lifespan gives the service its listener; a service without one makes its own). The service is
reset when that connection is lost or regained, and loads again (attaches to the published
generation and catches up) once the LISTEN is issued again, so a change committed during the load
is applied after it (re-applying a row is harmless); meanwhile searches use the old gazetteer.
"""
from __future__ import annotations

import gc
import logging
import threading
import time
from collections import deque
from pathlib import Path

from sqlalchemy import Engine

from registry.db.listen import Listener
from registry.errors import DatabaseUnavailable
from registry.settings import get_settings
from registry.search.gazetteer import Gazetteer
from registry.search.generation import (GenerationUnusable, SharedGazetteers, attach, changes_since, release,
                                          snapshot_time)
from registry.search.address_loading import fetch_addresses
from registry.search.entity_loading import index_item, index_place, load_items, load_places, place_division_set
from registry.search.loading import load_gazetteer

log = logging.getLogger(__name__)

CHANNEL = "registry_search"
FOLLOW_SECONDS = 0.5  # how often the published generation is compared with the one attached


def apply_changes(gaz: Gazetteer, conn, changes: dict[str, set[int]]) -> None:
    """Apply changed ids per table to a loaded gazetteer (reads with `conn`)."""
    store = gaz.addresses
    if changes.get("place_names"):
        ids = sorted(changes["place_names"])
        places, aliases = load_places(conn, ids)
        with gaz.lock:
            for pid in ids:
                gaz.names.remove_entity("place", pid)
                old = gaz.places.pop(pid, None)
                p = places.get(pid)
                if p is None or p.status in ("retired", "abolished"):
                    continue
                villages = {v for v in (old.divisions if old else ()) if v in gaz.divisions
                            and gaz.divisions[v].level == "village"}
                p.divisions = place_division_set(p, villages, gaz.divisions)
                gaz.places[pid] = p
                index_place(gaz, p, aliases.get(pid, ()))
    for table, kind in (("facilities", "facility"), ("heritage_items", "heritage")):
        if changes.get(table):
            ids = sorted(changes[table])
            facilities, heritage = load_items(conn, kind, ids)
            items = facilities if kind == "facility" else heritage
            target = gaz.facilities if kind == "facility" else gaz.heritage
            with gaz.lock:
                for i in ids:
                    gaz.names.remove_entity(kind, i)
                    target.pop(i, None)
                    it = items.get(i)
                    if it is not None:
                        target[i] = it
                        index_item(gaz, it)
    if changes.get("addresses"):
        ids = sorted(changes["addresses"])
        recs = fetch_addresses(conn, ids, store)
        with gaz.lock:
            for aid, rec in recs.items():
                store.upsert(rec, aid)
                if rec is None:
                    continue
                for pid in (rec.street, rec.compound):
                    p = gaz.places.get(pid) if pid else None
                    if p is not None and rec.village not in p.divisions:
                        p.divisions = p.divisions | frozenset(gaz.chain_of(rec.village))
    gaz.changes_applied += sum(len(v) for v in changes.values())


def aliased_places(gaz: Gazetteer) -> set[int]:
    """The places the gazetteer finds by an alias, former name or abbreviation."""
    entries = gaz.names.entries
    return {eid for (kind, eid), numbers in gaz.names.by_entity.items()
            if kind == "place" and any(entries[n].alive and entries[n].how != "name" for n in numbers)}


def catch_up(gaz: Gazetteer, conn) -> bool:
    """Apply to an attached generation the rows changed after its snapshot (changes_since);
    False when too much changed (build a newer one instead). An alias deleted since leaves no
    row to find, so every place with an alias in the generation is read again as well (the
    full city has 107)."""
    changes, stale = changes_since(conn, gaz.snapshot or "")
    if stale:
        return False
    changes.setdefault("place_names", set()).update(aliased_places(gaz))
    apply_changes(gaz, conn, {table: ids for table, ids in changes.items() if ids})
    return True


def parse_payloads(payloads: list[str]) -> tuple[dict[str, set[int]], bool]:
    """{table: ids} and whether a full reload is needed."""
    changes: dict[str, set[int]] = {}
    reload = False
    for payload in payloads:
        table, _, ids = payload.partition(":")
        if ids == "*" or table == "divisions":
            reload = True
            continue
        bucket = changes.setdefault(table, set())
        for part in ids.split(","):
            if part.strip().isdigit():
                bucket.add(int(part))
    return changes, reload


class ChangeQueue:
    """The service's subscriber to `registry_search` (registry.db.listen): payloads are queued for
    the service's thread; a reset asks it for a full load (what was queued is covered by it)."""

    def __init__(self) -> None:
        self.listening = False
        self._payloads: deque[str] = deque()
        self._reload = True  # the first load, after the first LISTEN
        self._lock = threading.Lock()
        self._wake = threading.Event()

    def apply(self, payload: str) -> None:
        self._payloads.append(payload)
        self._wake.set()

    def reset(self) -> None:
        with self._lock:
            self._payloads.clear()
            self._reload = True
        self._wake.set()

    def reload_due(self) -> bool:
        """True once per reset, when listening (the load must start after the LISTEN)."""
        with self._lock:
            due, self._reload = (self._reload, False) if self.listening else (False, self._reload)
        return due

    def reload_later(self) -> None:
        """Payloads were taken but not applied (the database failed): load again once possible."""
        with self._lock:
            self._reload = True

    def take(self, timeout: float) -> list[str]:
        """The payloads queued, waiting up to `timeout` for the first: one burst is one apply."""
        if not self._payloads:
            self._wake.wait(timeout)
        self._wake.clear()  # before taking: a payload queued after this wakes the next take
        taken = []
        while self._payloads:
            taken.append(self._payloads.popleft())
        return taken


class StaticSource:
    """A fixed gazetteer behind the same interface as SearchService (tests, scripts)."""

    ready = True

    def __init__(self, gaz: Gazetteer) -> None:
        self.gaz = gaz

    def get(self, timeout: float = 0.0) -> Gazetteer:
        return self.gaz


class SearchService:
    """Owns the gazetteer of one process: load, listen, apply, reload."""

    # Reads from replicas (api/app.py sets it to the router's read_engine): NOTIFY does not reach a
    # standby, so the thread polls the change log instead (registry.search.follow).
    follow = None

    def __init__(self, engine: Engine, *, poll_seconds: float = 0.05, directory: Path | None = None,
                 shared: bool = True, listener: Listener | None = None) -> None:
        self.engine = engine
        self.poll_seconds = poll_seconds  # the longest wait for a notification between two looks
        # the process's LISTEN connection (registry.db.listen); None: the service makes its own
        self.listener = listener
        self.changes = ChangeQueue()
        # the gazetteer's columns live in a generation shared by every process of the machine
        # (registry.search.generation, under REGISTRY_GAZETTEER_DIR); shared=False keeps a private
        # in-memory copy
        self.shared = SharedGazetteers(engine, directory or get_settings().gazetteer_dir) if shared else None
        self._gaz: Gazetteer | None = None
        self._ready = threading.Event()
        self._stop = threading.Event()
        self._started = threading.Lock()
        self._thread: threading.Thread | None = None
        self.error: BaseException | None = None
        self.started_at: float | None = None
        self.ready_seconds: float | None = None
        self.last_change_at: float | None = None
        self._followed_at = 0.0

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self) -> "SearchService":
        with self._started:
            if self._thread is None:
                self.started_at = time.perf_counter()
                self._thread = threading.Thread(target=self._run, name="search-gazetteer", daemon=True)
                self._thread.start()
        return self

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        if self._gaz is not None and (self._thread is None or not self._thread.is_alive()):
            release(self._gaz)  # the generation may be deleted once no process maps it

    @property
    def ready(self) -> bool:
        return self._ready.is_set()

    def get(self, timeout: float = 120.0) -> Gazetteer:
        """The current gazetteer, starting and waiting for the first load if needed."""
        if self._gaz is not None:
            return self._gaz
        self.start()
        if not self._ready.wait(timeout) or self._gaz is None:
            raise DatabaseUnavailable(
                "搜索索引尚未就绪 / the search index is not ready" + (f": {self.error}" if self.error else ""),
                parameter=None)
        return self._gaz

    # -- the thread ----------------------------------------------------------------------------
    def _run(self) -> None:
        if self.follow is not None:
            from registry.search.follow import run_following

            return run_following(self)
        own = self.listener is None
        listener = Listener.for_engine(self.engine) if own else self.listener
        listener.subscribe(CHANNEL, self.changes)
        try:
            while not self._stop.is_set() and not listener.pooled:
                try:
                    if self.changes.reload_due():
                        self._reload()  # (re)load after LISTEN: nothing committed meanwhile is lost
                    elif not self.changes.listening and listener.error is not None:
                        self.error = listener.error  # the database went away: the old index is served
                    self._poll()
                except Exception as exc:  # the database went away: retry, keep serving the old index
                    self.error = exc
                    self.changes.reload_later()  # what was taken is not applied: load again
                    log.warning("search gazetteer: %s; retrying", exc)
                    self._stop.wait(1.0)
        finally:
            listener.unsubscribe(self.changes)
            if own:
                listener.stop()
        if listener.pooled and not self._stop.is_set():  # no NOTIFY through a pooler: the change log
            from registry.search.follow import run_following

            log.warning("search gazetteer: following the change log (search_changes), not NOTIFY")
            self.follow = lambda: self.engine
            run_following(self)

    def _poll(self) -> None:
        payloads = self.changes.take(self.poll_seconds)
        self._follow_published()
        if not payloads:
            return
        changes, reload = parse_payloads(payloads)
        if reload:
            # a new generation: the first process to take the lock builds it, the others attach to it
            self._reload(newer_than=self._gaz.snapshot_time if self._gaz is not None else None)
        elif changes and self._gaz is not None:
            with self.engine.connect() as conn:
                apply_changes(self._gaz, conn, changes)
        self.last_change_at = time.time()

    def _follow_published(self) -> None:
        """Attach to a newer generation another process published (two workers that each built one
        for one change end up on the same), checked every FOLLOW_SECONDS."""
        now = time.monotonic()
        if self.shared is None or self._gaz is None or now - self._followed_at < FOLLOW_SECONDS:
            return
        self._followed_at = now
        held = self._gaz.generation
        path = self.shared.current()
        if path is None or held is None or path == getattr(held, "path", None):
            return
        if snapshot_time(path) > self._gaz.snapshot_time:
            try:
                gaz = attach(path, self.engine)  # no lock: it is published, and a deleted one is skipped
            except GenerationUnusable:
                return
            self._install(gaz)

    def _reload(self, newer_than: float | None = None) -> None:
        """Load (private) or attach (shared) a gazetteer and swap it in; a shared one is caught
        up with the rows changed after its snapshot, or rebuilt when too much changed."""
        if self.shared is not None:
            try:
                gaz = self.shared.obtain(newer_than)
            except OSError as exc:  # REGISTRY_GAZETTEER_DIR not writable, disk full…: serve a private copy
                log.warning("gazetteer folder %s unusable (%s): loading a private copy", self.shared.root, exc)
            else:
                self._install(gaz)
                return
        with self.engine.connect() as conn:
            gaz = load_gazetteer(conn, text_keys="thread")
            conn.rollback()
        self._swap(gaz)

    def _install(self, gaz: Gazetteer) -> None:
        """Catch an attached generation up with the rows changed after its snapshot (or build a
        newer one when too much changed) and swap it in."""
        assert self.shared is not None
        for _attempt in range(3):
            with self.engine.connect() as conn:
                stale = not catch_up(gaz, conn)
                conn.rollback()
                if not stale:
                    break
            log.info("gazetteer generation too far behind the database: building a new one")
            release(gaz)
            gaz = self.shared.obtain(newer_than=gaz.snapshot_time)
        else:  # pragma: no cover - a database changing faster than a build
            log.warning("gazetteer: the database changed during three builds; serving the last one")
        self._swap(gaz)

    def _swap(self, gaz: Gazetteer) -> None:
        old, self._gaz = self._gaz, gaz
        self.error = None
        if old is not None and old.generation is not gaz.generation:
            release(old)  # searches still running keep their mapping; the files may go
        del old
        if self.shared is not None:
            self.shared.clean()  # the previous generation, once no process maps it
        # The gazetteer is a million long-lived objects: keep the cyclic collector from walking
        # them on every full collection (tens of milliseconds, the p99 of the API otherwise). The
        # previous one's objects were frozen too: unfreeze so that they are freed, and give the
        # freed heap back to the system, so that a reload does not grow the process.
        gc.unfreeze()
        gc.collect()
        trim_heap()
        gc.freeze()
        if not self._ready.is_set():
            self.ready_seconds = time.perf_counter() - (self.started_at or time.perf_counter())
            self._ready.set()


def trim_heap() -> None:
    """malloc_trim(0): return the freed parts of the C heap to the system (glibc only)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # pragma: no cover - another libc
        pass
