"""The request log: one line per request, without personal data.

Each line is method, the route's template (`GET /p/{token}`: never the token or the query string,
which may hold what a citizen looked up), status, milliseconds and whether a key was sent. No client
address, no key secret: `registry serve` turns uvicorn's own access log (which has both) off.

The log is written on every request, so its record is made cheaply: a `LogRecord` is copied from a
prototype made once per process (file, line, function, thread and process are this middleware's,
the same for every request) and only the message, its arguments and the times are set. Building
each record from scratch (`Logger.makeRecord`) cost as much as answering a cached scan. The record
is then handled as any other (the logger's handlers, filters and format apply unchanged).
"""
from __future__ import annotations

import logging
import os
import time

from api.ratelimit import sends_key

access_log = logging.getLogger("registry.access")
_FORMAT = "%s %s %d %.1fms %s"


class _Prototype:
    """The fields of this process's request-log records that never change."""

    def __init__(self) -> None:
        self.pid = -1
        self.fields: dict = {}

    def record(self, args: tuple) -> logging.LogRecord:
        pid = os.getpid()
        if pid != self.pid:  # first use in this process (uvicorn's workers are processes of their own)
            self.fields = dict(vars(access_log.makeRecord(access_log.name, logging.INFO, __file__, 0, _FORMAT,
                                                           ("GET", "/", 200, 0.0, "anonymous"), None, func="__call__")))
            self.pid = pid
        record = logging.LogRecord.__new__(logging.LogRecord)
        fields = record.__dict__
        fields.update(self.fields)
        now = time.time_ns()
        fields["args"] = args
        fields["created"] = now / 1e9
        fields["msecs"] = (now % 1_000_000_000) // 1_000_000 + 0.0
        fields["relativeCreated"] = (now - logging._startTime) / 1e6 if isinstance(logging._startTime, int) \
            else (now / 1e9 - logging._startTime) * 1000
        return record


_prototype = _Prototype()


class AccessLogMiddleware:
    """Pure ASGI, outermost of the app's own middleware: it sees every answer, refusals included."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or not access_log.isEnabledFor(logging.INFO):
            return await self.app(scope, receive, send)
        t0 = time.perf_counter()
        status = 0

        async def sending(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            route = scope.get("route")
            path = getattr(route, "path", None) or "(no route)"
            access_log.handle(_prototype.record(
                (scope["method"], path, status, (time.perf_counter() - t0) * 1000,
                 "key" if sends_key(scope["headers"]) else "anonymous")))
