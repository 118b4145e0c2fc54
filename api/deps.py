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

from registry.errors import DatabaseUnavailable
from registry.keys import ANONYMOUS, ApiKey, authenticate, require_scope


def get_conn(request: Request) -> Iterator[Connection]:
    try:
        conn = request.app.state.engine.connect()
    except OperationalError as exc:  # the database is down or unreachable
        raise DatabaseUnavailable("数据库不可用 / the database is unavailable") from exc
    try:
        yield conn
        conn.commit()
    finally:
        conn.close()


DbConn = Annotated[Connection, Depends(get_conn)]


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


async def caller_key(
    request: Request,
    x_api_key: Annotated[str | None, Header(alias="X-API-Key")] = None,
    authorization: Annotated[str | None, Header()] = None,
) -> ApiKey:
    """The caller's key for every route (installed app-wide by api/app.py): free when no key is sent;
    a key is checked against the cache, and on a miss in the thread pool against the database."""
    secret = _secret(x_api_key, authorization)
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
