"""The request path outside the route handlers, kept cheap.

FastAPI (≥ 0.16x) matches a request against the app's included routers one after another, and each
router against each of its routes (a regex and some bookkeeping per route, ~10 µs): a route of the
eighth router (`GET /p/{token}`) paid for the ~30 routes before it on every request, more than the
rest of the stack together (bench/bench_serving.py). `prefilter_routers` gives each included
router a test of its routes' literal prefixes first (the part of each path before its first
`{param}`, one `str.startswith` over a tuple): a router none of whose prefixes starts the path
cannot match it, so it is skipped without trying its routes. Matching order, the OpenAPI document
and every route's dependencies stay as they are; a router this does not recognize is left alone.

`KeyMiddleware` checks a key that is sent before any route runs (it was an app-wide dependency).
"""
from __future__ import annotations

import logging

from starlette._utils import get_route_path
from starlette.routing import Match

from api.ratelimit import sends_key

log = logging.getLogger(__name__)


def _literal_prefix(path: str) -> str:
    return path.split("{", 1)[0]


def _prefixes(router) -> tuple[str, ...] | None:
    """The literal prefixes of every route of an APIRouter, or None when one is not a plain path route."""
    out = []
    for route in router.routes:
        path = getattr(route, "path", None)
        if not isinstance(path, str) or hasattr(route, "original_router") or hasattr(route, "app") and \
                not hasattr(route, "endpoint"):
            return None  # a nested router or a mount: do not guess
        out.append(_literal_prefix(path))
    # "/ogc" also covers "/ogc/": keep the shortest literal of each family (startswith is what counts)
    return tuple(sorted(set(out)))


def prefilter_routers(app) -> int:
    """Wrap each included router's `matches` with the prefix test; returns how many were wrapped."""
    wrapped = 0
    for route in app.router.routes:
        router = getattr(route, "original_router", None)
        if router is None or "matches" in vars(route):
            continue
        prefixes = _prefixes(router)
        if not prefixes or "" in prefixes:
            continue
        route.matches = _prefiltered(route.matches, prefixes)
        wrapped += 1
    return wrapped


def _prefiltered(matches, prefixes: tuple[str, ...]):
    def prefiltered(scope):
        if scope["type"] == "http" and not get_route_path(scope).startswith(prefixes):
            return Match.NONE, {}
        return matches(scope)

    return prefiltered


class KeyMiddleware:
    """The key check of every route, as a pure ASGI middleware instead of an app-wide FastAPI
    dependency (whose resolution cost ~60 µs on every request, anonymous ones included). A request
    without `X-API-Key` or `Authorization` passes untouched (anonymous). One with either is checked
    by `api.deps.caller_key` — the key cache, the database on a miss (in the thread pool), the
    key's rate limit — before any route runs: a wrong, malformed or revoked key is a 401 on every
    endpoint, public ones and unknown paths included, answered by the app's own problem handler.
    The key is kept in the request's state, so a route's `scope(...)` dependency neither checks
    nor counts it again."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or not sends_key(scope["headers"]):
            return await self.app(scope, receive, send)
        from starlette.requests import Request

        from api.deps import caller_key
        from registry.errors import RegistryError

        request = Request(scope, receive)
        try:
            await caller_key(request)
        except RegistryError as exc:
            handler = scope["app"].exception_handlers[RegistryError]
            response = await handler(request, exc)
            return await response(scope, receive, send)
        return await self.app(scope, receive, send)
