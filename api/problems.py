"""RFC 9457 problem+json: the one table that maps domain errors to HTTP statuses."""
from __future__ import annotations

import logging
from http import HTTPStatus

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

from registry.errors import (
    AmbiguousCode,
    Conflict,
    DatabaseUnavailable,
    Forbidden,
    InvalidGeometry,
    InvalidQuery,
    NotFound,
    PayloadTooLarge,
    PrimaryUnavailable,
    RateLimited,
    RegistryError,
    Unauthorized,
)

log = logging.getLogger(__name__)

PROBLEM_TYPE_BASE = "urn:huzhou-registry:problem:"
MEDIA_TYPE = "application/problem+json"

# Most specific first: InvalidGeometry is an InvalidQuery.
STATUS_OF: list[tuple[type[RegistryError], int]] = [
    (InvalidGeometry, 400),
    (InvalidQuery, 400),
    (Unauthorized, 401),
    (Forbidden, 403),
    (NotFound, 404),
    (AmbiguousCode, 409),  # a code naming two divisions: `candidates` lists both readings
    (Conflict, 409),
    (RateLimited, 429),
    (PayloadTooLarge, 413),
    (PrimaryUnavailable, 503),  # a write while the primary is down; reads go on from replicas
    (DatabaseUnavailable, 503),
    (RegistryError, 500),
]


def problem(status: int, code: str, detail: str, instance: str, **extra) -> JSONResponse:
    body = {
        "type": PROBLEM_TYPE_BASE + code,
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "instance": instance,
    }
    body.update({k: v for k, v in extra.items() if v is not None})
    headers = None
    if status == 401:
        headers = {"WWW-Authenticate": 'ApiKey header="X-API-Key"'}
    elif status == 429:
        headers = {"Retry-After": str(extra.get("retry_after", 60))}
    elif status == 503:  # the database is down: try again soon (DatabaseUnavailable.retry_after)
        headers = {"Retry-After": str(extra.get("retry_after", 5))}
    return JSONResponse(body, status_code=status, media_type=MEDIA_TYPE, headers=headers)


def status_for(exc: RegistryError) -> int:
    for cls, status in STATUS_OF:
        if isinstance(exc, cls):
            return status
    return 500


def allowed_methods(request: Request) -> str:
    """Every method some route takes at this path (Starlette's own Allow names one route's only)."""
    from starlette.routing import Match

    import fastapi.routing

    routes = request.app.router.routes
    iterate = getattr(fastapi.routing, "iter_route_contexts", None)  # routers included lazily (FastAPI ≥ 0.16x)
    by_params: dict[int, set[str]] = {}
    for route in (iterate(routes) if iterate else routes):
        # no method matches: PARTIAL when the path does
        match, child = route.matches({**request.scope, "method": "\x00", "path_params": {}})
        if match == Match.PARTIAL and getattr(route, "methods", None):
            # the literal path wins: /v1/placenames/check is not a /v1/placenames/{pid}
            by_params.setdefault(len(child.get("path_params", {})), set()).update(route.methods)
    return ", ".join(sorted(by_params[min(by_params)])) if by_params else ""


class LiteralPathMethods:
    """ASGI middleware: a literal path is a resource of its own. `GET /v1/doorplates/issue` is a 405 (Allow:
    POST), not `GET /v1/doorplates/{plate_id}` with an invalid id. The table is read from the app's routes on
    the first request (routers are included after the middleware is added)."""

    def __init__(self, app, router_app: FastAPI) -> None:
        self.app = app
        self.router_app = router_app
        self.literal: dict[str, frozenset[str]] | None = None

    def _table(self) -> dict[str, frozenset[str]]:
        import fastapi.routing

        routes = self.router_app.router.routes
        iterate = getattr(fastapi.routing, "iter_route_contexts", None)
        table: dict[str, set[str]] = {}
        for route in (iterate(routes) if iterate else routes):
            path, methods = getattr(route, "path", None), getattr(route, "methods", None)
            if path and methods and "{" not in path:
                table.setdefault(path, set()).update(methods)
        return {p: frozenset(m) for p, m in table.items()}

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            if self.literal is None:
                self.literal = self._table()
            methods = self.literal.get(scope.get("path", ""))
            if methods is not None and scope.get("method") not in methods:
                path, allow = scope.get("path", ""), ", ".join(sorted(methods))
                res = problem(405, "method-not-allowed", f"{path} 只接受 {allow} / {path} takes {allow}", path)
                res.headers["Allow"] = allow
                await res(scope, receive, send)
                return
        await self.app(scope, receive, send)


def install(app: FastAPI) -> None:
    app.add_middleware(LiteralPathMethods, router_app=app)  # 405 + Allow for a literal path's other methods
    @app.exception_handler(RegistryError)
    async def _domain(request: Request, exc: RegistryError):
        status = status_for(exc)
        if status >= 500:
            log.error("domain error on %s: %s", request.url.path, exc.message)
        if isinstance(exc, DatabaseUnavailable):
            exc.details.setdefault("retry_after", exc.retry_after)
        return problem(status, exc.code, exc.message, request.url.path, parameter=exc.parameter,
                       **{k: v for k, v in exc.details.items() if isinstance(v, (str, int, float, list, dict))})

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError):
        errors = []
        for err in exc.errors():
            raw = [str(p) for p in err.get("loc", ())]
            where = raw[0] if raw and raw[0] in ("query", "path", "body", "header", "cookie") else None
            loc = raw[1:] if where else raw
            if err.get("type") == "json_invalid":  # its loc is a character position, not a field
                loc = []
            # a missing or unreadable body names the body itself, never "None"
            errors.append({"parameter": ".".join(loc) or where or "request", "in": where,
                           "message": err.get("msg")})
        first = errors[0] if errors else {"parameter": "request", "in": None, "message": "invalid request"}
        if first["parameter"] in ("body", "request"):
            what_zh, what_en = "请求体", "the request body"
        elif first["in"] == "header":
            what_zh, what_en = f"请求头 {first['parameter']}", f"header {first['parameter']}"
        else:
            what_zh, what_en = f"参数 {first['parameter']}", f"parameter {first['parameter']}"
        detail = f"{what_zh} 无效 / invalid {what_en}: {first['message']}"
        return problem(400, "invalid-query", detail, request.url.path, parameter=first["parameter"], errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException):
        code = {404: "not-found", 405: "method-not-allowed"}.get(exc.status_code, "http-error")
        detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
        if exc.status_code == 404 and detail == "Not Found":
            detail = f"没有这个资源 / no such resource: {request.url.path}"
        res = problem(exc.status_code, code, detail, request.url.path)
        if exc.status_code == 405:  # RFC 9110: a 405 lists the methods the path takes
            res.headers["Allow"] = allowed_methods(request)
        return res

    @app.exception_handler(OperationalError)
    @app.exception_handler(PoolTimeout)
    async def _database_down(request: Request, exc: Exception):
        # the server went away during the request, a statement ran past its timeout, or no pooled
        # connection came free in time: 503 at once (the next request may be routed elsewhere)
        log.warning("database unavailable on %s: %s", request.url.path, type(getattr(exc, "orig", exc)).__name__)
        return problem(503, "database-unavailable", "数据库不可用 / the database is unavailable", request.url.path,
                       retry_after=DatabaseUnavailable.retry_after)

    @app.exception_handler(DataError)
    async def _data(request: Request, exc: DataError):
        # PostgreSQL refused a value the caller sent (an id past bigint, a malformed number…): the
        # caller's mistake, not the server's. The statement is not echoed (it may hold other values).
        log.info("database refused a value on %s: %s", request.url.path, type(exc.orig).__name__)
        return problem(400, "invalid-query", "参数值超出范围或格式无效 / a parameter value is out of range or malformed",
                       request.url.path, parameter="request")

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception):
        log.exception("unhandled error on %s", request.url.path)
        return problem(500, "internal-error", "服务器内部错误 / internal server error", request.url.path)
