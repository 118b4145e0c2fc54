"""The processes' log lines (registry/log_setup.py): the API's INFO lines (the request log) are
written in batches, yet none is lost, none waits longer than the hold, and the order of the lines
stays what happened."""
from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from registry.log_setup import StderrHandler
from registry.settings import PROJECT_ROOT
from waiting import eventually


@contextmanager
def _logger(path, name: str, **handler_options) -> Iterator[logging.Logger]:
    """A logger of its own writing to `path` through a StderrHandler, closed (and its file) at the end."""
    with path.open("w", encoding="utf-8") as stream:
        handler = StderrHandler(stream, **handler_options)
        logger = logging.getLogger(f"tests.log_lines.{name}")
        logger.handlers[:] = [handler]
        logger.propagate = False
        logger.setLevel(logging.INFO)
        try:
            yield logger
        finally:
            logger.handlers.clear()
            handler.close()


def _lines(path) -> list[str]:
    return [line.split(": ", 1)[1] for line in path.read_text(encoding="utf-8").splitlines()]


def test_should_write_a_held_request_line_within_the_hold_when_no_other_line_follows(tmp_path):
    out = tmp_path / "stderr.log"
    with _logger(out, "quiet", hold_seconds=0.3) as log:
        log.info("GET %s %d", "/p/{token}", 200)
        assert out.read_text() == ""  # held: no write for this line yet
        assert eventually(lambda: _lines(out) == ["GET /p/{token} 200"], seconds=5), out.read_text()


def test_should_write_the_held_lines_before_a_warning_in_the_order_they_happened(tmp_path):
    out = tmp_path / "stderr.log"
    with _logger(out, "order", hold_seconds=60) as log:
        log.info("GET /healthz 200")
        log.info("GET /v1/search 200")
        log.warning("读副本不可用 / replica down")
        assert _lines(out) == ["GET /healthz 200", "GET /v1/search 200", "读副本不可用 / replica down"]


def test_should_write_every_line_at_once_without_a_hold(tmp_path):
    out = tmp_path / "stderr.log"
    with _logger(out, "plain") as log:
        log.info("registry API ready")
        assert _lines(out) == ["registry API ready"]


def test_should_write_the_held_lines_once_they_fill_a_batch(tmp_path):
    out = tmp_path / "stderr.log"
    with _logger(out, "full", hold_seconds=60) as log:
        for i in range(2000):  # ~100 kB of lines: several batches, long before the hold ends
            log.info("GET /p/{token} 200 %d", i)
        written = _lines(out)
        assert written and written == [f"GET /p/{{token}} 200 {i}" for i in range(len(written))]


def test_should_lose_no_held_line_when_the_process_ends(tmp_path):
    # a worker that ends normally (uvicorn's shutdown, then the interpreter's) writes what it held
    code = ("import logging; from registry.log_setup import configure; configure('INFO', hold_seconds=60); "
            "log = logging.getLogger('registry.access'); [log.info('GET /p/{token} 200 %d', i) for i in range(3)]")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=PROJECT_ROOT, timeout=60)
    assert res.returncode == 0, res.stderr
    assert [line.split(": ", 1)[1] for line in res.stderr.splitlines()] == [f"GET /p/{{token}} 200 {i}" for i in range(3)]


def test_should_write_each_held_line_once_when_the_process_forks(tmp_path):
    # the batch's matching processes are forked from a worker that may hold request lines
    out = tmp_path / "stderr.log"
    with _logger(out, "fork", hold_seconds=60) as log:
        log.info("GET /p/{token} 200")
        pid = os.fork()
        if pid == 0:  # the child: its own warning, then gone without the interpreter's shutdown
            try:
                log.warning("matching process started")
            finally:
                os._exit(0)
        os.waitpid(pid, 0)
        log.info("POST /v1/match 200")
    assert sorted(_lines(out)) == ["GET /p/{token} 200", "POST /v1/match 200", "matching process started"]


def test_should_hold_lines_in_a_handler_the_command_configured_before_the_api_started():
    # `registry serve --workers 1` runs the API in the command's process, whose logging is set up first
    root = logging.getLogger()
    saved = root.handlers[:]
    handler = StderrHandler(sys.stderr)
    root.handlers[:] = [handler]
    try:
        from registry.log_setup import configure

        configure("INFO", hold_seconds=0.5)
        assert root.handlers == [handler] and handler.hold_seconds == 0.5
    finally:
        root.handlers[:] = saved
