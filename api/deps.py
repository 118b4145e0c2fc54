"""Request dependencies: a database connection per request and the caller's API key."""
from __future__ import annotations

import inspect
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

from fastapi import Depends, Header, Request
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import Connection
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as SqlTimeout

from registry.errors import DatabaseUnavailable, PrimaryUnavailable
from registry.keys import ANONYMOUS, ApiKey, authenticate, require_scope


def get_conn(request: Request) -> Iterator[Connection]:
    """A connection to the primary, committed when the request succeeds (writes, and reads that
    must see the primary). With replicas, a primary known to be down fails at once with 503."""
    router = getattr(request.app.state, "db", None)
    engine = router.write_engine() if router is not None else request.app.state.engine
    try:
        conn = engine.connect()
    except (OperationalError, SqlTimeout) as exc:  # the database is down, unreachable or its pool exhausted
        if router is not None:
            router.mark_down(engine, exc)
        if router is not None and router.has_replicas:
            raise PrimaryUnavailable("主库不可用，暂不能写入 / the primary database is unavailable: writes are "
                                     "refused for now (reads go on)") from exc
        raise DatabaseUnavailable("数据库不可用 / the database is unavailable") from exc
    try:
        yield conn
        conn.commit()
    finally:
        conn.close()


# scope="function": the connection is committed and closed before the response is sent. With the
# default ("request") FastAPI runs the code after `yield` once the answer is already out: a failed
# COMMIT would then follow a 200 (a write reported done and lost) and make uvicorn drop the
# keep-alive connection; a client could also read before its own write is committed.
DbConn = Annotated[Connection, Depends(get_conn, scope="function")]


def get_read_conn(request: Request) -> Iterator[Connection]:
    """A connection for a request that only reads: a healthy replica's (registry/db/routing.py),
    else the primary's. Without replicas, or when a test overrides `get_conn`, it is `get_conn`'s."""
    router = getattr(request.app.state, "db", None)
    provider = request.app.dependency_overrides.get(get_conn)
    if provider is not None or router is None or not router.has_replicas:
        provider = provider or get_conn
        yield from (provider(request) if inspect.signature(provider).parameters else provider())
        return
    last: BaseException | None = None
    for engine in router.read_engines():
        try:
            conn = engine.connect()
        except (OperationalError, SqlTimeout) as exc:  # this node is down: the next one
            router.mark_down(engine, exc)
            last = exc
            continue
        try:
            yield conn
        finally:
            conn.close()  # rolled back: nothing to commit on a read
        return
    raise DatabaseUnavailable("数据库不可用 / no database node answers") from last


ReadConn = Annotated[Connection, Depends(get_read_conn, scope="function")]  # see DbConn


def _secret(x_api_key: str | None, authorization: str | None) -> str | None:
    secret = x_api_key
    if secret is None and authorization and authorization.lower().startswith("bearer "):
        secret = authorization[7:].strip()
    return secret or None


def _resolve(request: Request, secret: str | None, conn: Connection | None) -> ApiKey:
    """The caller's key, once per request (kept in request.state: one rate-limit count per request).
    No key: anonymous. A wrong, malformed or revoked key: 401, on every endpoint, public ones
    included (a caller that sends a key it believes valid has a bug and must hear of it)."""
    known = getattr(request.state, "api_key", None)
    if known is not None:
        return known
    key = ANONYMOUS
    if secret:
        cache = request.app.state.key_cache
        key = cache.get(secret)
        if key is None:
            if conn is not None:
                key = authenticate(conn, secret)
            else:
                with _request_connection(request) as own:
                    key = authenticate(own, secret)
            cache.put(secret, key)
        request.app.state.rate_limiter.check(key)
    request.state.api_key = key
    return key


@contextmanager
def _request_connection(request: Request) -> Iterator[Connection]:
    """A connection as the `DbConn` dependency gives it (test overrides included)."""
    provider = request.app.dependency_overrides.get(get_conn, get_conn)
    gen = provider(request) if inspect.signature(provider).parameters else provider()
    conn = next(gen)
    try:
        yield conn
    except BaseException:
        gen.close()
        raise
    else:
        next(gen, None)


def get_key(
    request: Request,
    conn: DbConn,
    x_api_key: Annotated[str | None, Header(alias="X-API-Key")] = None,
    authorization: Annotated[str | None, Header()] = None,
) -> ApiKey:
    """The caller's key, on the request's connection (for routes that hold one anyway)."""
    return _resolve(request, _secret(x_api_key, authorization), conn)


async def caller_key(request: Request) -> ApiKey:
    """The caller's key: free when no key is sent; a key is checked against the cache, and on a miss
    in the thread pool against the database. api/hotpath.py's KeyMiddleware calls it for every
    request that sends a key, before any route; routes depend on it for their scopes (the key is
    then known). It reads the two headers itself (as FastAPI `Header()` parameters they cost ~50 µs
    a request); the OpenAPI document states them as security schemes."""
    headers = request.headers
    secret = _secret(headers.get("x-api-key"), headers.get("authorization"))
    if not secret or getattr(request.state, "api_key", None) is not None:
        return _resolve(request, secret, None)
    cached = request.app.state.key_cache.get(secret)
    if cached is not None:
        return _resolve(request, secret, None)
    return await run_in_threadpool(_resolve, request, secret, None)


CurrentKey = Annotated[ApiKey, Depends(caller_key)]


def scope(name: str):
    """Dependency factory: the caller's key, which must carry `name` (or a higher scope)."""

    def _check(key: CurrentKey) -> ApiKey:
        require_scope(key, name)
        return key

    return Depends(_check)
