"""The hot public reads answered before FastAPI's routing: `GET /p/{token}`, `/healthz`,
`/v1/reverse` and `/v1/search` from an anonymous caller.

FastAPI spends about 250 µs of CPU on a request before and after its endpoint runs (matching the
route, solving its dependencies, validating its parameters, building the response), more than
the whole trivial endpoint the bench compares with (bench/bench_serving.py) and more than a cached
scan itself. `HotPathFront` sits inside the app's middleware (the request log, the anonymous rate
limit, the header limit and the key check all still run) and hands these four requests to the
same functions the routes call (`api.routes.*`: one rule, one place), with the parameters read
from the raw query string. Anything it does not recognize at once — a key sent, a test's
overridden connection or gazetteer, an unusual query string, a method other than GET — goes on
to FastAPI unchanged, and so does every error: the route then answers it as it always has, so an
error's problem+json is written in one place only.
"""
from __future__ import annotations

import logging
import re
from urllib.parse import parse_qsl

from starlette._utils import get_route_path
from starlette.requests import Request

from api.fastpath import read_path_of
from api.ratelimit import sends_key
from api.routes.doorplates import public_scan, wants_html
from api.routes.health import pool_health
from api.routes.search import get_gazetteer, reverse_response, search_route
from registry.errors import RegistryError

log = logging.getLogger(__name__)

# A plain decimal (what a map or a courier's app sends); anything else goes to FastAPI's parser.
_DECIMAL = re.compile(r"-?\d{1,4}(\.\d{1,15})?")
_REVERSE_PARAMS = frozenset({"lon", "lat", "radius"})


class _Route:
    """What the request log reads from `scope["route"]` (api/access_log.py)."""

    __slots__ = ("path",)

    def __init__(self, path: str) -> None:
        self.path = path


_SCAN, _HEALTH, _REVERSE, _SEARCH = (_Route("/p/{token}"), _Route("/healthz"), _Route("/v1/reverse"),
                                     _Route("/v1/search"))


def _query(scope) -> dict[str, str] | None:
    """The query string as one value a name; None when a name repeats (FastAPI's rule decides then)."""
    raw = scope.get("query_string", b"")
    if not raw:
        return {}
    try:
        pairs = parse_qsl(raw.decode("ascii"), keep_blank_values=True, strict_parsing=True)
    except (UnicodeDecodeError, ValueError):
        return None
    out = dict(pairs)
    return out if len(out) == len(pairs) else None


def _accept(scope) -> str:
    for k, v in scope["headers"]:
        if k == b"accept":
            return v.decode("latin-1")
    return ""


class HotPathFront:
    """Pure ASGI. Added first (innermost) by api/app.py, so every middleware still wraps it."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] != "GET" or sends_key(scope["headers"]):
            return await self.app(scope, receive, send)
        path = get_route_path(scope) if scope.get("root_path") else scope["path"]  # behind --root-path
        if path.startswith("/p/"):
            handler = self._scan
        elif path == "/healthz":
            handler = self._health
        elif path == "/v1/reverse":
            handler = self._reverse
        elif path == "/v1/search":
            handler = self._search
        else:
            return await self.app(scope, receive, send)
        app = scope["app"]
        try:
            response = await handler(app, scope, path)
        except RegistryError:
            response = None  # the route answers it (its problem+json, its HTML page)
        except Exception:  # noqa: BLE001 - never a 500 from here: the route's own path decides
            log.exception("hot path %s failed; answered by the route", path)
            response = None
        if response is None:
            return await self.app(scope, receive, send)
        await response(scope, receive, send)

    async def _scan(self, app, scope, path: str):
        token = path[3:]
        query = scope.get("query_string", b"")
        if not token or "/" in token or query not in (b"", b"reported=true", b"reported=false"):
            return None
        fast = await read_path_of(app)
        if fast is None:
            return None
        scope["route"] = _SCAN
        html = wants_html(_accept(scope))
        return RenderAnswer(await public_scan(app, fast, token, html=html, reported=query == b"reported=true"))

    async def _health(self, app, scope, path: str):
        fast = await read_path_of(app)
        if fast is None:
            return None
        scope["route"] = _HEALTH
        return await pool_health(fast)

    async def _reverse(self, app, scope, path: str):
        params = _query(scope)
        if params is None or not params.keys() <= _REVERSE_PARAMS or "lon" not in params or "lat" not in params \
                or not all(_DECIMAL.fullmatch(v) for v in params.values()):
            return None
        fast = await read_path_of(app)
        if fast is None:
            return None
        scope["route"] = _REVERSE
        return await reverse_response(app, fast, float(params["lon"]), float(params["lat"]),
                                      float(params.get("radius", 200.0)))

    async def _search(self, app, scope, path: str):
        if get_gazetteer in app.dependency_overrides:
            return None
        source = getattr(app.state, "search", None)
        if source is None or not source.ready:
            return None  # the first load: the route waits for it off the event loop
        scope["route"] = _SEARCH
        return await search_route(Request(scope), source)


class RenderAnswer:
    """A finished render sent as two ASGI messages (no Starlette Response built per scan)."""

    __slots__ = ("render",)

    def __init__(self, render) -> None:
        self.render = render

    async def __call__(self, scope, receive, send) -> None:
        r = self.render
        headers = [(b"content-length", b"%d" % len(r.body))]
        if r.media_type:  # the Content-Type the route's response had, charset included
            headers.append((b"content-type", r.media_type.encode("latin-1")))
        headers += [(k.encode("latin-1"), v.encode("latin-1")) for k, v in r.headers]
        await send({"type": "http.response.start", "status": r.status, "headers": headers})
        await send({"type": "http.response.body", "body": r.body})
