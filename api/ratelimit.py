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


# --- anonymous callers: token buckets per client address and scope ---------------------------------
# A bucket holds up to `limit` tokens and refills at limit/60 per second: a burst of a minute's
# worth, then the steady rate. Buckets are keyed by a hash of (scope, day, client address), never
# the address itself. Two stores:
#   memory   – in this process (one API process, or a limit per process),
#   postgres – an UNLOGGED table `registry_runtime.rate_buckets`, one upsert per request, so that
#              every API process (uvicorn --workers, several machines) counts against one bucket.
import hashlib  # noqa: E402
import logging  # noqa: E402
import math  # noqa: E402
import re  # noqa: E402
from datetime import datetime, timezone  # noqa: E402

import orjson  # noqa: E402

log = logging.getLogger(__name__)

SCOPES = ("report", "public")
_REPORT = re.compile(r"^/p/[^/]+/report/?$")
EXEMPT = frozenset({"/healthz"})  # the load balancer's probe
_PRUNE_EVERY = 10_000  # checks between removals of buckets idle for an hour


def scope_of(method: str, path: str) -> str:
    """Which anonymous limit a request counts against: the public write, or everything else."""
    return "report" if method == "POST" and _REPORT.match(path) else "public"


def bucket_key(scope: str, client: str, day: str | None = None) -> str:
    day = day or datetime.now(timezone.utc).strftime("%Y-%m-%d")
    return scope + ":" + hashlib.sha256(f"{scope}|{day}|{client}".encode()).hexdigest()[:24]


class MemoryBuckets:
    def __init__(self, clock=time.monotonic) -> None:
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, at)
        self._lock = threading.Lock()
        self._checks = 0

    def take(self, key: str, limit: int) -> tuple[bool, float]:
        """(granted, tokens left). A refused request takes nothing: after Retry-After it is served."""
        rate = limit / 60.0
        now = self._clock()
        with self._lock:
            tokens, at = self._buckets.get(key, (float(limit), now))
            level = min(float(limit), tokens + (now - at) * rate)
            granted = level >= 1.0
            tokens = level - 1.0 if granted else level
            self._buckets[key] = (tokens, now)
            self._checks += 1
            if self._checks % _PRUNE_EVERY == 0:
                self._buckets = {k: v for k, v in self._buckets.items() if now - v[1] < 3600}
        return granted, tokens


class PostgresBuckets:
    """One row per bucket in an UNLOGGED table (no WAL: lost on a crash, which only refills the buckets)."""

    DDL = ("CREATE SCHEMA IF NOT EXISTS registry_runtime",
           "CREATE UNLOGGED TABLE IF NOT EXISTS registry_runtime.rate_buckets ("
           "key text PRIMARY KEY, tokens double precision NOT NULL, at timestamptz NOT NULL, granted boolean NOT NULL)")
    _LEVEL = "LEAST(%(cap)s, b.tokens + EXTRACT(EPOCH FROM clock_timestamp() - b.at) * %(rate)s)"
    TAKE = ("INSERT INTO registry_runtime.rate_buckets AS b (key, tokens, at, granted) "
            "VALUES (%(k)s, %(cap)s - 1, clock_timestamp(), true) "
            f"ON CONFLICT (key) DO UPDATE SET granted = {_LEVEL} >= 1, "
            f"tokens = CASE WHEN {_LEVEL} >= 1 THEN {_LEVEL} - 1 ELSE {_LEVEL} END, at = clock_timestamp() "
            "RETURNING granted, tokens")

    def __init__(self, engine_getter) -> None:
        self._engine = engine_getter
        self._ready = False
        self._checks = 0
        self._lock = threading.Lock()

    def _ensure(self, cur) -> None:
        for stmt in self.DDL:
            try:
                cur.execute(stmt)
            except Exception:  # two processes creating it at once: the other one won
                cur.connection.rollback()
        cur.connection.commit()
        self._ready = True

    def take(self, key: str, limit: int) -> tuple[bool, float]:
        raw = self._engine().raw_connection()
        try:
            cur = raw.cursor()
            if not self._ready:
                with self._lock:
                    if not self._ready:
                        self._ensure(cur)
            cur.execute(self.TAKE, {"k": key, "cap": float(limit), "rate": limit / 60.0})
            granted, tokens = cur.fetchone()
            self._checks += 1
            if self._checks % _PRUNE_EVERY == 0:
                cur.execute("DELETE FROM registry_runtime.rate_buckets WHERE at < now() - interval '1 hour'")
            raw.commit()
            return bool(granted), float(tokens)
        finally:
            raw.close()


def limit_for(settings, scope: str) -> int:
    return int(settings.rate_limit_report_per_minute if scope == "report" else settings.rate_limit_public_per_minute)


class AnonymousLimiter:
    def __init__(self, settings, engine_getter=None, store=None) -> None:
        self.settings = settings
        if store is None:
            store = (PostgresBuckets(engine_getter) if settings.rate_limit_backend == "postgres" and engine_getter
                     else MemoryBuckets())
        self.store = store
        self._warned = -1e9

    def check(self, method: str, path: str, client: str) -> int | None:
        """None when the request may go on, else the seconds until a token is back."""
        scope = scope_of(method, path)
        limit = limit_for(self.settings, scope)
        if limit <= 0:  # 0: no limit for this scope
            return None
        try:
            granted, tokens = self.store.take(bucket_key(scope, client), limit)
        except Exception as exc:  # the store is down or refused (rights): serve, say so, never a 500
            now = time.monotonic()
            if now - self._warned > 60:
                self._warned = now
                log.warning("rate-limit store unavailable, requests not limited: %s", type(exc).__name__)
            return None
        if granted:
            return None
        return max(1, math.ceil((1.0 - tokens) / (limit / 60.0)))


def _refusal(scope: str, limit: int, retry: int, path: str) -> tuple[dict, bytes]:
    body = {"type": "urn:huzhou-registry:problem:rate-limited", "title": "Too Many Requests", "status": 429,
            "detail": f"请求过于频繁：匿名访问每分钟最多 {limit} 次（{scope}）/ too many requests: at most {limit} "
                      f"a minute without a key ({scope})", "instance": path, "parameter": "client",
            "retry_after": retry}
    data = orjson.dumps(body)
    return ({"type": "http.response.start", "status": 429,
             "headers": [(b"content-type", b"application/problem+json"), (b"retry-after", str(retry).encode()),
                         (b"content-length", str(len(data)).encode())]}, data)


class RateLimitMiddleware:
    """Anonymous requests (no X-API-Key, no Authorization) count against their client address's
    bucket for their scope; keyed requests are limited per key (RateLimiter, in api/deps.py).
    The client address is uvicorn's: behind a reverse proxy run it with --forwarded-allow-ips."""

    def __init__(self, app, settings, engine_getter=None) -> None:
        self.app = app
        self.limiter = AnonymousLimiter(settings, engine_getter)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        if scope.get("path") in EXEMPT or any(k in (b"x-api-key", b"authorization")
                                               for k, _ in scope.get("headers", ())):
            return await self.app(scope, receive, send)
        limiter = getattr(scope.get("app").state, "anonymous_limiter", None) if scope.get("app") else None
        limiter = limiter or self.limiter
        client = (scope.get("client") or ("unknown", 0))[0]
        method, path = scope.get("method", "GET"), scope.get("path", "")
        if isinstance(limiter.store, PostgresBuckets):
            from anyio import to_thread

            retry = await to_thread.run_sync(limiter.check, method, path, client)
        else:
            retry = limiter.check(method, path, client)
        if retry is None:
            return await self.app(scope, receive, send)
        s = scope_of(method, path)
        start, data = _refusal(s, limit_for(limiter.settings, s), retry, path)
        await send(start)
        await send({"type": "http.response.body", "body": data})


# --- request log without personal data ----------------------------------------------------------
access_log = logging.getLogger("registry.access")


class AccessLogMiddleware:
    """One line per request: method, the route's template (GET /p/{token}, never the token or the
    query string, which may hold what a citizen looked up), status and milliseconds. No client
    address, no key secret: `registry serve` turns uvicorn's own access log (which has both) off."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        t0 = time.perf_counter()
        status = [0]

        async def sending(message):
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            route = scope.get("route")
            path = getattr(route, "path", None) or "(no route)"
            keyed = any(k in (b"x-api-key", b"authorization") for k, _ in scope.get("headers", ()))
            access_log.info("%s %s %d %.1fms %s", scope.get("method"), path, status[0],
                            (time.perf_counter() - t0) * 1000, "key" if keyed else "anonymous")
