"""A short-lived cache of authenticated keys, so a busy agency does not cost a query per request.

Entries live `ttl` seconds: a revoked key stops working within that time on every API process.
"""
from __future__ import annotations

import threading
import time

from registry.keys import ApiKey


class KeyCache:
    def __init__(self, ttl: float = 30.0, max_entries: int = 10_000) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._entries: dict[str, tuple[float, ApiKey]] = {}
        self._lock = threading.Lock()

    def get(self, secret: str) -> ApiKey | None:
        with self._lock:
            hit = self._entries.get(secret)
            if hit is None or hit[0] < time.monotonic():
                self._entries.pop(secret, None)
                return None
            return hit[1]

    def put(self, secret: str, key: ApiKey) -> None:
        with self._lock:
            if len(self._entries) >= self.max_entries:
                self._entries.clear()
            self._entries[secret] = (time.monotonic() + self.ttl, key)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
