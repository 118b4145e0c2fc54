"""Request dependencies: a database connection per request and the caller's API key."""
from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Header, Request
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


def get_key(
    request: Request,
    conn: DbConn,
    x_api_key: Annotated[str | None, Header(alias="X-API-Key")] = None,
    authorization: Annotated[str | None, Header()] = None,
) -> ApiKey:
    secret = x_api_key
    if secret is None and authorization and authorization.lower().startswith("bearer "):
        secret = authorization[7:].strip()
    if not secret:
        return ANONYMOUS
    cache = request.app.state.key_cache
    key = cache.get(secret)
    if key is None:
        key = authenticate(conn, secret)
        cache.put(secret, key)
    request.app.state.rate_limiter.check(key)
    return key


CurrentKey = Annotated[ApiKey, Depends(get_key)]


def scope(name: str):
    """Dependency factory: the caller's key, which must carry `name` (or a higher scope)."""

    def _check(key: CurrentKey) -> ApiKey:
        require_scope(key, name)
        return key

    return Depends(_check)
