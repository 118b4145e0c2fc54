"""Request limits: token buckets per anonymous client address and scope, and per API key, counted
across every API process without a database round trip on the request path.

A bucket of capacity C (a minute's worth) refills at C/60 tokens a second; a request takes one, a
refused request takes none, and the refusal is a 429 problem+json with `Retry-After` (the seconds
until a token is back). Anonymous buckets are keyed by a hash of (scope, day, client address) —
no address is ever stored — and key buckets by the key's id, with the key's own
`rate_limit_per_minute` as capacity.

Two stores (REGISTRY_RATE_LIMIT_BACKEND):

- `memory` (`MemoryBuckets`): exact, in this process — one API process, or a limit per process.
- `postgres` (`LeasedBuckets` over `PostgresStore`, the default): the buckets live in an UNLOGGED
  table `registry_runtime.rate_leases` shared by every worker and machine (lost on a crash, which
  only refills them). Each worker *leases* tokens from a shared bucket and serves requests from its
  lease in memory (a dict lookup under a lock, a few µs). A background thread per worker settles
  every REGISTRY_RATE_LIMIT_SYNC_SECONDS (0.1 s), in one transaction for all its buckets: it pays
  what was used on credit, leases about two intervals' worth of the worker's recent use (at most
  `lease = ceil(C × REGISTRY_RATE_LIMIT_LEASE_SHARE)`, 10 %), and gives back leases idle for 10 s
  (and all of them on shutdown). A bucket the worker holds no lease for (a new client, an
  exhausted lease) is served on *credit*, up to `lease` requests, charged at the next settlement;
  when the store answers that the bucket is empty, the worker refuses until it has refilled. A
  burst past the credit before the store has answered settles that one bucket at once (one round
  trip, at most once per bucket and interval) instead of refusing a request the limit allows.

Bound: leased tokens are taken from the shared bucket, so they never over-admit; only credit can.
With W workers, at any moment at most W × lease requests per bucket are admitted beyond the exact
token bucket (C + C/60 per second). Credit is charged — the shared level goes below zero — so the
admitted rate over time is the limit's. Tokens one worker leased and does not use wait in it
(at most W × lease a bucket, given back within 10 s idle): callers that switch workers may see a
429 up to that much early. If the store fails, each worker limits alone (memory) and warns once
a minute; a request is never a 500 for it.

Several machines share the PostgreSQL store the same way; the bound counts every worker of every
machine in W.
"""
from __future__ import annotations

import hashlib
import logging
import math
import re
import threading
import time

import orjson

from registry.errors import RateLimited
from registry.keys import ApiKey

log = logging.getLogger(__name__)

SCOPES = ("report", "public")
_REPORT = re.compile(r"^/p/[^/]+/report/?$")
EXEMPT = frozenset({"/healthz"})  # the load balancer's probe
_PRUNE_EVERY = 10_000  # checks between removals of buckets idle for an hour
IDLE_SECONDS = 10.0  # a lease unused this long goes back to the shared bucket


def scope_of(method: str, path: str) -> str:
    """Which anonymous limit a request counts against: the public write, or everything else."""
    return "report" if method == "POST" and _REPORT.match(path) else "public"


_day: list = [-1, ""]  # (day number, "YYYY-MM-DD") of the last key, recomputed when the day changes
_keys: dict[tuple[str, str], str] = {}


def bucket_key(scope: str, client: str, day: str | None = None) -> str:
    if day is None:
        n = int(time.time() // 86400)
        if n != _day[0]:
            _day[:] = [n, time.strftime("%Y-%m-%d", time.gmtime(n * 86400))]
            _keys.clear()
        hit = _keys.get((scope, client))
        if hit is not None:
            return hit
        day = _day[1]
        key = scope + ":" + hashlib.sha256(f"{scope}|{day}|{client}".encode()).hexdigest()[:24]
        if len(_keys) > 100_000:
            _keys.clear()
        _keys[(scope, client)] = key
        return key
    return scope + ":" + hashlib.sha256(f"{scope}|{day}|{client}".encode()).hexdigest()[:24]


def _retry(level: float, limit: int) -> float:
    """Seconds until a bucket at `level` holds one token again."""
    return max(0.0, (1.0 - level) / (limit / 60.0))


class MemoryBuckets:
    """Exact token buckets in this process."""

    def __init__(self, clock=time.monotonic) -> None:
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, at)
        self._lock = threading.Lock()
        self._checks = 0

    def take(self, key: str, limit: int) -> tuple[bool, float]:
        """(granted, seconds until a token is back when refused). A refused request takes nothing."""
        rate = limit / 60.0
        now = self._clock()
        with self._lock:
            tokens, at = self._buckets.get(key, (float(limit), now))
            level = min(float(limit), tokens + (now - at) * rate)
            granted = level >= 1.0
            self._buckets[key] = (level - 1.0 if granted else level, now)
            self._checks += 1
            if self._checks % _PRUNE_EVERY == 0:
                self._buckets = {k: v for k, v in self._buckets.items() if now - v[1] < 3600}
        return granted, 0.0 if granted else _retry(level, limit)

    def close(self) -> None:
        pass


class PostgresStore:
    """The shared buckets: one row per bucket in an UNLOGGED table (no WAL). `exchange` settles a
    batch in one transaction: for each bucket, pay `pay` tokens (negative: give back), lease up to
    `want` whole tokens, and return (leased, level after)."""

    DDL = ("CREATE SCHEMA IF NOT EXISTS registry_runtime",
           "CREATE UNLOGGED TABLE IF NOT EXISTS registry_runtime.rate_leases ("
           "key text PRIMARY KEY, tokens double precision NOT NULL, at timestamptz NOT NULL, "
           "leased double precision NOT NULL DEFAULT 0)",
           "DROP TABLE IF EXISTS registry_runtime.rate_buckets")  # the one-upsert-per-request table before
    _LEVEL = ("GREATEST(-r.cap, LEAST(r.cap, LEAST(r.cap, b.tokens + EXTRACT(EPOCH FROM clock_timestamp() - b.at) "
              "* r.cap / 60.0) - r.pay))")
    _LEASE = f"GREATEST(0, LEAST(r.want, floor({_LEVEL})))"
    INSERT = ("INSERT INTO registry_runtime.rate_leases (key, tokens, at) "
              "SELECT k, cap, clock_timestamp() FROM unnest(%(k)s::text[], %(cap)s::float8[]) AS r(k, cap) "
              "ORDER BY k ON CONFLICT (key) DO NOTHING")
    LOCK = "SELECT key FROM registry_runtime.rate_leases WHERE key = ANY(%(k)s) ORDER BY key FOR UPDATE"
    UPDATE = ("UPDATE registry_runtime.rate_leases AS b "
              f"SET tokens = {_LEVEL} - {_LEASE}, leased = {_LEASE}, at = clock_timestamp() "
              "FROM unnest(%(k)s::text[], %(pay)s::float8[], %(want)s::float8[], %(cap)s::float8[]) "
              "AS r(k, pay, want, cap) WHERE b.key = r.k RETURNING b.key, b.leased, b.tokens")
    PRUNE = "DELETE FROM registry_runtime.rate_leases WHERE at < now() - interval '1 hour'"

    def __init__(self, engine_getter) -> None:
        self._engine = engine_getter
        self._ready = False
        self._lock = threading.Lock()
        self.exchanges = 0  # transactions run (the tests count them against requests)

    def _ensure(self, cur) -> None:
        for stmt in self.DDL:
            try:
                cur.execute(stmt)
                cur.connection.commit()
            except Exception:  # two processes creating it at once: the other one won
                cur.connection.rollback()
        self._ready = True

    def exchange(self, items: list[tuple[str, float, int, int]]) -> dict[str, tuple[int, float]]:
        """items: (key, pay, want, capacity). Returns key -> (leased, level after)."""
        items = sorted(items)
        params = {"k": [i[0] for i in items], "pay": [float(i[1]) for i in items],
                  "want": [float(i[2]) for i in items], "cap": [float(i[3]) for i in items]}
        raw = self._engine().raw_connection()
        try:
            cur = raw.cursor()
            if not self._ready:
                with self._lock:
                    if not self._ready:
                        self._ensure(cur)
            cur.execute(self.INSERT, params)
            cur.execute(self.LOCK, params)
            cur.execute(self.UPDATE, params)
            out = {k: (int(leased), float(tokens)) for k, leased, tokens in cur.fetchall()}
            self.exchanges += 1
            if self.exchanges % 1000 == 0:
                cur.execute(self.PRUNE)
            raw.commit()
            return out
        except BaseException:
            raw.rollback()
            raise
        finally:
            raw.close()


class _Bucket:
    __slots__ = ("limit", "have", "used", "last", "empty_until", "asked", "known")

    def __init__(self, limit: int, now: float) -> None:
        self.limit = limit
        self.have = 0  # leased tokens not used yet; below 0: used on credit, not paid yet
        self.used = 0  # requests since the last settlement
        self.last = now
        self.empty_until = 0.0  # the store said empty: refuse until then
        self.asked = -1e9  # when this bucket was last settled on the request path
        self.known = False  # the store has answered for it


class LeasedBuckets:
    """Local leases of shared buckets, settled in the background (see the module docstring)."""

    def __init__(self, store, *, interval: float = 0.1, share: float = 0.1, clock=time.monotonic,
                 background: bool = True) -> None:
        self.store = store
        self.interval = interval
        self.share = share
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}
        self._touched: set[str] = set()  # used since the last settlement (the others wait for the sweep)
        self._swept = clock()
        self._lock = threading.Lock()  # the buckets
        self._settling = threading.Lock()  # one settlement at a time
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._background = background
        self._thread: threading.Thread | None = None
        self._fallback = MemoryBuckets(clock=clock)
        self._failed_at = -1e9
        self._warned = -1e9

    def lease_size(self, limit: int) -> int:
        return max(1, math.ceil(limit * self.share))

    # --- the request path ------------------------------------------------------------------------
    def take(self, key: str, limit: int) -> tuple[bool, float]:
        now = self._clock()
        if now - self._failed_at < 5.0:  # the store failed a moment ago: this worker limits alone
            return self._fallback.take(key, limit)
        if self._background and self._thread is None:
            self.start()
        for attempt in (0, 1):
            with self._lock:
                b = self._buckets.get(key)
                if b is None or b.limit != limit:
                    b = self._buckets[key] = _Bucket(limit, now)
                b.last = now
                self._touched.add(key)
                if b.have >= 1:
                    b.have -= 1
                    b.used += 1
                    if b.have < self.lease_size(limit) // 2:
                        self._wake_settler()
                    return True, 0.0
                if now < b.empty_until:
                    return False, b.empty_until - now
                if b.have > -self.lease_size(limit):  # on credit, paid at the next settlement
                    b.have -= 1
                    b.used += 1
                    self._wake_settler()
                    return True, 0.0
                if attempt or now - b.asked < self.interval:
                    return False, max(1.0, self.interval)
                b.asked = now
            # a burst past the credit before the store answered: settle this bucket now
            self.settle(only=key)
        return False, max(1.0, self.interval)

    def _wake_settler(self) -> None:
        if not self._wake.is_set():  # set() takes the event's lock: not on every request once it is set
            self._wake.set()

    # --- settlement ------------------------------------------------------------------------------
    def settle(self, only: str | None = None, *, final: bool = False) -> int:
        """Pay credit, lease, give back idle leases: one store transaction. Returns buckets settled."""
        with self._settling:
            now = self._clock()
            items, sent = [], {}
            with self._lock:
                if only is not None:
                    keys = [only]
                elif final or now - self._swept > IDLE_SECONDS:  # every bucket: idle leases go back
                    keys, self._swept, self._touched = list(self._buckets), now, set()
                else:
                    keys, self._touched = self._touched, set()
                for key in keys:
                    b = self._buckets.get(key)
                    if b is None:
                        continue
                    lease = self.lease_size(b.limit)
                    idle = now - b.last > IDLE_SECONDS
                    if final or idle:
                        if b.have == 0:
                            del self._buckets[key]
                            continue
                        pay, want = -b.have, 0  # give the lease back, or pay the credit
                    else:
                        pay = max(0, -b.have)
                        target = max(1, min(lease, 2 * b.used))
                        want = max(0, target - max(0, b.have)) if b.have < max(1, target // 2) else 0
                        if now < b.empty_until:
                            want = 0
                        if pay == 0 and want == 0:
                            continue
                    items.append((key, pay, want, b.limit))
                    sent[key] = (pay, b.used, final or idle)
                    b.have += pay
                    b.used = 0
            if not items:
                return 0
            try:
                answers = self.store.exchange(items)
            except Exception as exc:  # the store is down or refused (rights): limit alone, say so
                self._failed(exc)
                with self._lock:
                    for key, (pay, used, _) in sent.items():
                        b = self._buckets.get(key)
                        if b is not None:
                            b.have -= pay
                return 0
            with self._lock:
                for key, (leased, level) in answers.items():
                    b = self._buckets.get(key)
                    if b is None:
                        continue
                    if sent[key][2]:  # given back
                        if final or (b.have == 0 and self._clock() - b.last > IDLE_SECONDS):
                            self._buckets.pop(key, None)
                        continue
                    b.have += leased
                    b.known = True
                    b.empty_until = now + _retry(level, b.limit) if level < 1 else 0.0
            return len(answers)

    def _failed(self, exc: BaseException) -> None:
        now = self._clock()
        self._failed_at = now
        if now - self._warned > 60:
            self._warned = now
            log.warning("rate-limit store unavailable, each worker limits alone: %s", type(exc).__name__)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.interval)
            if self._stop.is_set():
                break
            time.sleep(self.interval / 4)  # gather what arrives together into one settlement
            self._wake.clear()
            try:
                self.settle()
            except Exception as exc:  # noqa: BLE001 (the thread must live on)
                self._failed(exc)

    def start(self) -> None:
        with self._settling:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="rate-limit-settle", daemon=True)
                self._thread.start()

    def close(self) -> None:
        """Stop settling and give every lease back (the lifespan calls it before the engine goes)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        try:
            self.settle(final=True)
        except Exception as exc:  # noqa: BLE001
            self._failed(exc)


def make_buckets(settings, engine_getter=None):
    """The bucket store the settings ask for (postgres needs an engine)."""
    if settings.rate_limit_backend == "postgres" and engine_getter is not None:
        return LeasedBuckets(PostgresStore(engine_getter), interval=settings.rate_limit_sync_seconds,
                             share=settings.rate_limit_lease_share)
    return MemoryBuckets()


# --- keyed callers ---------------------------------------------------------------------------------
class RateLimiter:
    """Per-key limits: the key's `rate_limit_per_minute` as a token bucket in the shared store."""

    def __init__(self, buckets=None) -> None:
        self.buckets = buckets if buckets is not None else MemoryBuckets()

    def check(self, key: ApiKey) -> None:
        if key.id == 0:  # anonymous callers: RateLimitMiddleware
            return
        limit = int(key.rate_limit_per_minute)
        if limit <= 0:
            return
        granted, retry = self.buckets.take(f"key:{key.id}", limit)
        if not granted:
            raise RateLimited(
                f"请求过于频繁：每分钟最多 {limit} 次 / rate limit of {limit} requests per minute exceeded",
                parameter="X-API-Key", retry_after=max(1, math.ceil(retry)),
            )


# --- anonymous callers -----------------------------------------------------------------------------
def limit_for(settings, scope: str) -> int:
    return int(settings.rate_limit_report_per_minute if scope == "report" else settings.rate_limit_public_per_minute)


class AnonymousLimiter:
    def __init__(self, settings, engine_getter=None, store=None) -> None:
        self.settings = settings
        self.store = store if store is not None else make_buckets(settings, engine_getter)
        self._warned = -1e9

    def check(self, method: str, path: str, client: str) -> int | None:
        """None when the request may go on, else the seconds until a token is back."""
        scope = scope_of(method, path)
        limit = limit_for(self.settings, scope)
        if limit <= 0:  # 0: no limit for this scope
            return None
        try:
            granted, retry = self.store.take(bucket_key(scope, client), limit)
        except Exception as exc:  # the store is down or refused (rights): serve, say so, never a 500
            now = time.monotonic()
            if now - self._warned > 60:
                self._warned = now
                log.warning("rate-limit store unavailable, requests not limited: %s", type(exc).__name__)
            return None
        return None if granted else max(1, math.ceil(retry))


def _refusal(scope: str, limit: int, retry: int, path: str) -> tuple[dict, bytes]:
    body = {"type": "urn:huzhou-registry:problem:rate-limited", "title": "Too Many Requests", "status": 429,
            "detail": f"请求过于频繁：匿名访问每分钟最多 {limit} 次（{scope}）/ too many requests: at most {limit} "
                      f"a minute without a key ({scope})", "instance": path, "parameter": "client",
            "retry_after": retry}
    data = orjson.dumps(body)
    return ({"type": "http.response.start", "status": 429,
             "headers": [(b"content-type", b"application/problem+json"), (b"retry-after", str(retry).encode()),
                         (b"content-length", str(len(data)).encode())]}, data)


def sends_key(headers) -> bool:
    """Whether a request carries a key (X-API-Key or Authorization), from its raw ASGI headers."""
    for k, _ in headers:
        if k == b"x-api-key" or k == b"authorization":
            return True
    return False


class RateLimitMiddleware:
    """Anonymous requests (no X-API-Key, no Authorization) count against their client address's
    bucket for their scope; keyed requests are limited per key (RateLimiter, in api/deps.py).
    The client address is uvicorn's: behind a reverse proxy run it with --forwarded-allow-ips.
    `limiter` is the app's (api/app.py: one store for the anonymous and the key buckets); tests
    may put another on app.state.anonymous_limiter."""

    def __init__(self, app, settings, engine_getter=None, limiter=None) -> None:
        self.app = app
        self.limiter = limiter if limiter is not None else AnonymousLimiter(settings, engine_getter)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["path"] in EXEMPT or sends_key(scope["headers"]):
            return await self.app(scope, receive, send)
        app = scope.get("app")
        limiter = (app.state._state.get("anonymous_limiter") if app is not None else None) or self.limiter
        client = (scope.get("client") or ("unknown", 0))[0]
        method, path = scope["method"], scope["path"]
        retry = limiter.check(method, path, client)
        if retry is None:
            return await self.app(scope, receive, send)
        s = scope_of(method, path)
        start, data = _refusal(s, limit_for(limiter.settings, s), retry, path)
        await send(start)
        await send({"type": "http.response.body", "body": data})
