"""The request log's records are whole LogRecords: any format an operator configures works, and each
record carries its own time."""
import asyncio
import logging
import os
import time

from api.access_log import AccessLogMiddleware


class _Route:
    path = "/p/{token}"


async def _answer(scope, receive, send):
    scope["route"] = _Route()
    await send({"type": "http.response.start", "status": 410, "headers": []})
    await send({"type": "http.response.body", "body": b""})


def _request(app) -> None:
    scope = {"type": "http", "method": "GET", "path": "/p/SECRET", "headers": [(b"accept", b"text/html")]}

    async def receive():
        return {"type": "http.request", "body": b""}

    async def send(message):
        pass

    asyncio.run(app(scope, receive, send))


def test_should_write_a_whole_record_for_any_configured_format(caplog):
    fmt = logging.Formatter("%(asctime)s %(process)d %(threadName)s %(module)s %(funcName)s %(levelname)s "
                            "%(name)s: %(message)s")
    app = AccessLogMiddleware(_answer)
    with caplog.at_level(logging.INFO, logger="registry.access"):
        before = time.time()
        _request(app)
        time.sleep(0.01)
        _request(app)
    records = [r for r in caplog.records if r.name == "registry.access"]
    assert len(records) == 2
    first, second = records
    line = fmt.format(second)
    assert f" {os.getpid()} " in line and " INFO registry.access: GET /p/{token} 410 " in line
    assert line.endswith("anonymous") and "SECRET" not in line
    assert before - 1 <= first.created < second.created <= time.time()
    assert first.getMessage() != second.getMessage() or first.created != second.created
    assert first.args is not second.args  # each record its own


def test_should_stamp_each_line_as_logging_itself_does_across_seconds():
    # registry.log_setup makes the time stamp once a second: the text must be logging's own
    import logging

    from registry.log_setup import FORMAT, SecondFormatter

    plain, cached = logging.Formatter(FORMAT), SecondFormatter(FORMAT)
    record = logging.LogRecord("registry.access", logging.INFO, __file__, 1, "%s %s", ("GET", "/healthz"), None)
    for created in (1_700_000_000.0, 1_700_000_000.999, 1_700_000_001.0005, 1_699_999_999.5, 1_700_000_001.25):
        record.created, record.msecs = created, (created - int(created)) * 1000
        assert cached.format(record) == plain.format(record)
    assert cached.formatTime(record, "%H") == plain.formatTime(record, "%H")  # a datefmt of its own: as given
