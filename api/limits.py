"""Request body limits, enforced before a body is read whole (an ASGI middleware).

- A body larger than its route's limit is a 413 problem+json: at once when Content-Length says
  so, otherwise as soon as the streamed chunks pass the limit (chunked uploads, a lying client).
  The limit per route comes from the settings: `body_limit_bytes` by default, a larger
  `match_body_limit_bytes` for POST /v1/match and `package_body_limit_bytes` for field-package
  uploads.
- A JSON body (application/json, +json) deeper than `json_max_depth` is a 400 naming the body,
  checked on the bytes before any parser sees them: stdlib json / pydantic recurse once per level,
  and 100,000 levels end in a RecursionError.
- Headers larger than `header_limit_bytes` in all are a 431. The server has read them by then:
  uvicorn's h11 parser bounds the raw head by `h11_max_incomplete_event_size` (16 KiB), but its
  httptools parser (the default when installed) sets no bound, so the bound on the raw read is the
  reverse proxy's (nginx `large_client_header_buffers`) or `uvicorn --http h11` (README "Limits and
  hostile input").
"""
from __future__ import annotations

import re

import orjson

from registry.errors import InvalidQuery, PayloadTooLarge

MEDIA_TYPE = "application/problem+json"
# (method, path regex, settings field) — the first that matches gives the limit.
ROUTE_LIMITS: tuple[tuple[str, re.Pattern[str], str], ...] = (
    ("POST", re.compile(r"^/v1/match/?$"), "match_body_limit_bytes"),
    ("POST", re.compile(r"^/v1/inspections/[^/]+/packages/?$"), "package_body_limit_bytes"),
)
_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.S)
_BRACKET = re.compile(rb"[\[\]{}]")


def limit_for(settings, method: str, path: str) -> int:
    for m, pattern, field in ROUTE_LIMITS:
        if method == m and pattern.match(path):
            return int(getattr(settings, field))
    return int(settings.body_limit_bytes)


def too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"请求体过大：最多 {limit:,} 字节 / the request body is too large: at most {limit:,} bytes",
                           parameter="body", limit=limit)


def json_depth(body: bytes) -> int:
    """The deepest nesting of arrays/objects in a JSON text (strings skipped), without parsing it."""
    depth = deepest = 0
    for m in _BRACKET.finditer(_JSON_STRING.sub(b'""', body)):
        if m.group() in (b"[", b"{"):
            depth += 1
            if depth > deepest:
                deepest = depth
        else:
            depth -= 1
    return deepest


def check_json_depth(body: bytes, max_depth: int) -> None:
    depth = json_depth(body)
    if depth > max_depth:
        raise InvalidQuery(f"JSON 嵌套过深：{depth} 层，最多 {max_depth} 层 / the JSON body is nested too deep: "
                           f"{depth} levels, at most {max_depth}", parameter="body", depth=depth)


def _is_json(content_type: str) -> bool:
    media = content_type.split(";")[0].strip().lower()
    return media == "application/json" or media.endswith("+json")


def _problem(status: int, exc, path: str) -> tuple[dict, bytes]:
    from http import HTTPStatus

    body = {"type": "urn:huzhou-registry:problem:" + exc.code, "title": HTTPStatus(status).phrase,
            "status": status, "detail": exc.message, "instance": path, "parameter": exc.parameter,
            **exc.details}
    data = orjson.dumps(body)
    start = {"type": "http.response.start", "status": status,
             "headers": [(b"content-type", MEDIA_TYPE.encode()), (b"content-length", str(len(data)).encode())]}
    return start, data


class BodyLimitMiddleware:
    """Pure ASGI (no BaseHTTPMiddleware: that would buffer streamed responses)."""

    def __init__(self, app, settings) -> None:
        self.app = app
        self.settings = settings

    async def _refuse(self, send, status: int, exc, path: str) -> None:
        start, data = _problem(status, exc, path)
        await send(start)
        await send({"type": "http.response.body", "body": data})

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope.get("path", "")
        raw_headers = scope.get("headers", ())
        size, length, chunked = 0, None, False
        for k, v in raw_headers:  # one pass: the head's size, and whether a body may follow
            size += len(k) + len(v)
            if len(k) == 14 and k.lower() == b"content-length":
                length = v
            elif len(k) == 17 and k.lower() == b"transfer-encoding":
                chunked = True
        if size > self.settings.header_limit_bytes:
            limit_h = self.settings.header_limit_bytes
            return await self._refuse(send, 431, PayloadTooLarge(
                f"请求头过大：合计最多 {limit_h:,} 字节 / the request headers are too large: at most {limit_h:,} "
                "bytes in all", parameter="headers"), path)
        if length is None and not chunked and scope.get("method") in ("GET", "HEAD"):
            return await self.app(scope, receive, send)  # no body can follow (HTTP/1.1 framing): nothing to count
        limit = limit_for(self.settings, scope.get("method", "GET"), path)
        headers = {k.lower(): v for k, v in raw_headers}
        if length is not None:
            try:
                declared = int(length)
            except ValueError:
                declared = -1
            if declared < 0:
                return await self._refuse(send, 400, InvalidQuery(
                    "Content-Length 无效 / invalid Content-Length header", parameter="Content-Length"), path)
            if declared > limit:
                return await self._refuse(send, 413, too_large(limit), path)
        content_type = headers.get(b"content-type", b"").decode("latin-1")
        if _is_json(content_type) and scope.get("method") in ("POST", "PUT", "PATCH"):
            # A JSON body is small by its limit: read it here (bounded), check its depth, replay it.
            chunks, size = [], 0
            while True:
                message = await receive()
                if message["type"] != "http.request":
                    break
                chunk = message.get("body", b"")
                size += len(chunk)
                if size > limit:
                    return await self._refuse(send, 413, too_large(limit), path)
                chunks.append(chunk)
                if not message.get("more_body"):
                    break
            body = b"".join(chunks)
            try:
                check_json_depth(body, int(self.settings.json_max_depth))
            except InvalidQuery as exc:
                return await self._refuse(send, 400, exc, path)
            replayed = False

            async def replay():
                nonlocal replayed
                if not replayed:
                    replayed = True
                    return {"type": "http.request", "body": body, "more_body": False}
                return await receive()

            return await self.app(scope, replay, send)

        received = 0

        async def counted():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    # raised inside the route's body read: the app's handler answers 413
                    raise too_large(limit)
            return message

        return await self.app(scope, counted, send)


def match_limit(request) -> int:
    return int(request.app.state.settings.match_body_limit_bytes)


async def body_chunks(request, limit: int):
    """The body's chunks as they arrive, refused (413) as soon as they pass `limit` — also without
    the middleware."""
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large(limit)
        yield chunk


async def read_body(request, limit: int) -> bytes:
    """The body whole, refused (413) as soon as it passes `limit` — also without the middleware."""
    buf = bytearray()
    async for chunk in body_chunks(request, limit):
        buf += chunk
    return bytes(buf)
