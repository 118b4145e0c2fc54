"""Extent and item count of each collection, kept per registry version instead of counted per request.

`/ogc/collections` describes every collection (count, extent, first version's date); counting
1.6M addresses and taking their extent costs seconds, and the answer only changes when a change
set is applied. The version is the number of applied change sets (a status never leaves
'applied', so any newly applied one moves it, in whatever order they are applied); one cheap
statement reads it with whether the caller's own transaction has written anything (an xid is
assigned then): such a transaction, which may see rows nobody else sees yet, gets fresh figures.
"""
from __future__ import annotations

import threading
from typing import Any

from sqlalchemy import Connection, text

from registry.features.collections import Collection
from registry.features.query import describe

_VERSION = text("SELECT (SELECT count(*) FROM change_sets WHERE status = 'applied'), "
                "pg_current_xact_id_if_assigned() IS NOT NULL")


class CollectionStats:
    """Per process (thread-safe): {collection id: (version, describe(...))}."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._known: dict[str, tuple[int, dict[str, Any]]] = {}

    def version(self, conn: Connection) -> int | None:
        """The registry's version, or None when this transaction has written (do not cache)."""
        applied, wrote = conn.execute(_VERSION).one()
        return None if wrote else int(applied)

    def describe(self, conn: Connection, c: Collection, version: int | None = -1) -> dict[str, Any]:
        if version == -1:
            version = self.version(conn)
        if version is not None:
            with self._lock:
                known = self._known.get(c.id)
            if known is not None and known[0] == version:
                return known[1]
        found = describe(conn, c)
        if version is not None:
            with self._lock:
                self._known[c.id] = (version, found)
        return found

    def count(self, conn: Connection, c: Collection) -> int:
        return self.describe(conn, c)["count"]
