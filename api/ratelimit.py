"""Per-key request limits (requests per minute), counted in this process.

A fixed one-minute window is enough to stop a runaway batch script; with several API processes
each enforces the limit on its own share (documented in the README).
"""
from __future__ import annotations

import threading
import time

from registry.errors import RateLimited
from registry.keys import ApiKey


class RateLimiter:
    def __init__(self, clock=time.time) -> None:
        self._clock = clock
        self._windows: dict[int, tuple[int, int]] = {}  # key id -> (minute, count)
        self._lock = threading.Lock()

    def check(self, key: ApiKey) -> None:
        if key.id == 0:  # anonymous callers are limited in front of the API (reverse proxy)
            return
        now = self._clock()
        minute = int(now // 60)
        with self._lock:
            window, count = self._windows.get(key.id, (minute, 0))
            if window != minute:
                window, count = minute, 0
            count += 1
            self._windows[key.id] = (window, count)
        if count > key.rate_limit_per_minute:
            retry = 60 - int(now % 60)
            raise RateLimited(
                f"请求过于频繁：每分钟最多 {key.rate_limit_per_minute} 次 / rate limit of "
                f"{key.rate_limit_per_minute} requests per minute exceeded",
                parameter="X-API-Key", retry_after=retry,
            )
