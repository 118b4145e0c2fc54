"""Keeping the gazetteer fresh: a service that loads it, LISTENs on `registry_search` (the
triggers of migration 0003 NOTIFY after every committed statement) and applies the changed rows.

- `addresses:<ids>`: the rows are read again and go to the overlay (a retired one leaves);
- `place_names:<ids>` (also sent for alias changes), `facilities:<ids>`, `heritage_items:<ids>`:
  the entities are read again and re-indexed;
- `divisions:<ids>` or any `<table>:*` (a statement changing more than 500 rows, e.g. a bulk
  load or a division adjustment): the whole gazetteer is rebuilt in this thread and swapped in
  when ready; searches keep using the old one meanwhile.

The LISTEN is issued before the first load, so a change committed during the load is applied
after it (re-applying a row is harmless).
"""
from __future__ import annotations

import gc
import logging
import threading
import time

import psycopg
from sqlalchemy import Engine

from registry.errors import DatabaseUnavailable
from registry.search.gazetteer import Gazetteer
from registry.search.loading import (fetch_addresses, index_item, index_place, load_gazetteer, load_items,
                                     load_places, place_division_set)

log = logging.getLogger(__name__)

CHANNEL = "registry_search"


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


def _libpq_url(engine: Engine) -> str:
    url = engine.url.set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


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

    def __init__(self, engine: Engine, *, poll_seconds: float = 0.05) -> None:
        self.engine = engine
        self.poll_seconds = poll_seconds
        self._gaz: Gazetteer | None = None
        self._ready = threading.Event()
        self._stop = threading.Event()
        self._started = threading.Lock()
        self._thread: threading.Thread | None = None
        self.error: BaseException | None = None
        self.started_at: float | None = None
        self.ready_seconds: float | None = None
        self.last_change_at: float | None = None

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
        listener = None
        while not self._stop.is_set():
            try:
                if listener is None or listener.closed:
                    listener = psycopg.connect(_libpq_url(self.engine), autocommit=True)
                    listener.execute(f"LISTEN {CHANNEL}")
                    self._reload()  # (re)load after LISTEN: nothing committed meanwhile is lost
                self._poll(listener)
            except Exception as exc:  # the database went away: retry, keep serving the old index
                self.error = exc
                log.warning("search gazetteer listener: %s; retrying", exc)
                if listener is not None:
                    try:
                        listener.close()
                    except Exception:  # pragma: no cover
                        pass
                listener = None
                self._stop.wait(1.0)
        if listener is not None:
            listener.close()

    def _poll(self, listener) -> None:
        payloads = [n.payload for n in listener.notifies(timeout=self.poll_seconds)]
        if not payloads:
            return
        # take whatever else has already arrived, so one burst is one apply
        payloads += [n.payload for n in listener.notifies(timeout=0.0)]
        changes, reload = parse_payloads(payloads)
        if reload:
            self._reload()
        elif changes and self._gaz is not None:
            with self.engine.connect() as conn:
                apply_changes(self._gaz, conn, changes)
        self.last_change_at = time.time()

    def _reload(self) -> None:
        with self.engine.connect() as conn:
            gaz = load_gazetteer(conn, text_keys="thread")
            conn.rollback()
        self._gaz = gaz
        self.error = None
        # The gazetteer is a million long-lived objects: keep the cyclic collector from walking
        # them on every full collection (tens of milliseconds, the p99 of the API otherwise).
        gc.collect()
        gc.freeze()
        if not self._ready.is_set():
            self.ready_seconds = time.perf_counter() - (self.started_at or time.perf_counter())
            self._ready.set()
