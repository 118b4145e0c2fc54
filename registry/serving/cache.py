"""The render cache of public doorplate pages, kept right by the registry's change notifications.

An entry is the finished answer of one public scan (status, body bytes, media type, headers) under
its variant key (the scan's path, HTML or JSON, with or without the thank-you note). It records the
rows it was made of, `(table, id)` (`registry.doorplates.view.dependencies`: the plate and the
plates that replaced it, the address, its street and compound). Then:

- `addresses:<ids>`, `place_names:<ids>`, `doorplates:<ids>` drop the entries made of those rows;
- `divisions:…`, `facilities:…`, `doorplate_keys:…` or any `<table>:*` (a bulk statement) drop every
  entry: a division rename or merge, a new facility nearby, a retired key change many pages at once
  and are rare;
- the listener's connection lost or regained (notifications may have been missed: `reset`) drops
  every entry, and nothing is cached until it listens again.

A fill that raced a change is never stored: `put` takes the epoch read before the row was read,
and any invalidation since (the notification of a change the read may not have seen) refuses it.
Agency views are never cached (the API only caches public answers).

The notifications: `registry_search` (migration 0003: addresses, place names, divisions,
facilities, heritage items) and `registry_serving` (migration 0011: doorplates and signing keys),
both `<table>:<id>,<id>,…` or `<table>:*`, delivered at commit. The cache is a subscriber of the
process's one LISTEN connection (registry.db.listen: `apply`, `reset`, `listening`), called in
its event loop (registry.serving.ReadPath subscribes it with the read path's other followers).
"""
from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Hashable, Iterable
from typing import NamedTuple

log = logging.getLogger(__name__)

CHANNELS = ("registry_search", "registry_serving")
# Tables whose change drops every render; `heritage_items` concerns no plate page.
_DROP_ALL = frozenset({"divisions", "facilities", "doorplate_keys"})
_BY_ROW = frozenset({"addresses", "place_names", "doorplates"})


class Render(NamedTuple):
    status: int
    body: bytes
    media_type: str
    headers: tuple[tuple[str, str], ...] = ()
    plate_id: int | None = None  # the scan counted when the render is served


_FIELDS = len(Render._fields)
_FEW_KEYS = 8


class RenderCache:
    """Renders by variant key, with the rows each was made of. Used from one event loop (no locks)."""

    def __init__(self, max_entries: int = 50_000) -> None:
        self.max_entries = max_entries
        # Everything held is a flat plain tuple (an entry: the render's five fields, then its rows as
        # table, id, table, id…; the keys of a row): a plain tuple of numbers, strings and bytes is
        # untracked by the cyclic collector on its first pass (a nested one only once its inner
        # tuples are), so 50,000 renders are nothing a full collection walks. (Held as objects with
        # a `__dict__`, frozensets and sets, they made each full collection of a serving worker a
        # pause of 100–250 ms, the p99 of every request in flight.)
        self._entries: OrderedDict[Hashable, tuple] = OrderedDict()
        # A row's keys: a tuple while few (a plate's, an address's variants); a dict (tracked, but one
        # per large row) once more than _FEW_KEYS, for a street's or a compound's thousands of
        # plates, where copying a tuple on every put and discard would make dropping them quadratic.
        self._by_row: dict[tuple[str, int], tuple[Hashable, ...] | dict[Hashable, None]] = {}
        self.epoch = 0
        self.listening = False  # only while notifications are followed may anything be stored
        self.hits = self.misses = self.dropped = 0

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: Hashable) -> Render | None:
        found = self._entries.get(key)
        if found is None:
            self.misses += 1
            return None
        self._entries.move_to_end(key)
        self.hits += 1
        return Render(*found[:_FIELDS])

    def put(self, key: Hashable, render: Render, rows: Iterable[tuple[str, int]], epoch: int) -> bool:
        """Store a render made from rows read after `epoch` was taken; refused when anything was
        invalidated since, or while the notifications are not followed."""
        if not self.listening or epoch != self.epoch or self.max_entries <= 0:
            return False
        rows = set(rows)
        self._discard(key)
        self._entries[key] = (*render, *(part for row in rows for part in row))
        by_row = self._by_row
        for row in rows:
            keys = by_row.get(row, ())
            if type(keys) is dict:
                keys[key] = None
            else:
                keys += (key,)
                by_row[row] = dict.fromkeys(keys) if len(keys) > _FEW_KEYS else keys
        while len(self._entries) > self.max_entries:
            self._discard(next(iter(self._entries)))
        return True

    def _discard(self, key: Hashable) -> None:
        found = self._entries.pop(key, None)
        if found is None:
            return
        self.dropped += 1
        by_row = self._by_row
        for row in zip(found[_FIELDS::2], found[_FIELDS + 1::2]):
            keys = by_row.get(row)
            if keys is None:
                continue
            if type(keys) is dict:
                keys.pop(key, None)
                kept = keys
            else:
                kept = tuple(k for k in keys if k != key)
                by_row[row] = kept
            if not kept:
                del by_row[row]

    def clear(self) -> None:
        self.epoch += 1
        self.dropped += len(self._entries)
        self._entries.clear()
        self._by_row.clear()

    def reset(self) -> None:
        """The listener's connection was lost or regained: notifications may have been missed."""
        self.clear()

    def invalidate(self, table: str, ids: Iterable[int]) -> None:
        self.epoch += 1
        for i in ids:
            # the row's keys taken out first: each discard then only visits the keys' other rows
            for key in self._by_row.pop((table, i), ()):
                self._discard(key)

    def apply(self, payload: str) -> None:
        """One notification payload, `<table>:<ids>` or `<table>:*`."""
        table, _, ids = payload.partition(":")
        if table in _DROP_ALL or (ids.strip() == "*" and table in _BY_ROW):
            self.clear()
        elif table in _BY_ROW:
            self.invalidate(table, (int(p) for p in ids.split(",") if p.strip().isdigit()))

