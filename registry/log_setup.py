"""The processes' log lines, one format for the `registry` command and the API's workers.

`configure(level)` sends every logger's records to stderr as `2026-12-02 06:30:01,123 INFO name: message`.
The API writes a line per request (api/access_log.py), so the time stamp is made once a second:
`time.strftime` on every record cost about as much as the rest of the line.

`configure(level, hold_seconds=…)` (the API's workers, REGISTRY_LOG_HOLD_SECONDS) also writes the
lines of INFO and below in batches: a write and a flush to stderr per request line, two system calls,
were a sixth of a cached scan's CPU (bench/bench_serving.py). A line waits at most `hold_seconds`
(a thread writes what is held when no other line comes); a WARNING or an ERROR writes what is held
and then itself at once, so the order of the lines is kept; logging's shutdown writes the rest. What
a process killed outright (SIGKILL, out of memory) held, at most `hold_seconds` of lines, is lost.
"""
from __future__ import annotations

import logging
import os
import sys
import threading
import time

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
HELD_CHARS = 32_768  # held lines are written once they reach this size, whatever their age


class SecondFormatter(logging.Formatter):
    """logging.Formatter with the default time stamp's seconds made once per second (same text)."""

    _second: tuple[int, str] = (-1, "")

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802 (logging's)
        if datefmt:
            return super().formatTime(record, datefmt)
        second = int(record.created)
        cached = self._second  # one tuple: another thread's swap never mixes two seconds
        if cached[0] != second:
            cached = self._second = (second, time.strftime(self.default_time_format, self.converter(record.created)))
        return self.default_msec_format % (cached[1], record.msecs)


class StderrHandler(logging.StreamHandler):
    """The processes' one handler: stderr in FORMAT; with `hold_seconds` > 0, the lines below
    WARNING are written in batches (see the module's text)."""

    def __init__(self, stream=None, hold_seconds: float = 0.0) -> None:
        super().__init__(sys.stderr if stream is None else stream)
        self.setFormatter(SecondFormatter(FORMAT))
        self.hold_seconds = hold_seconds
        self._held: list[str] = []
        self._held_chars = 0
        self._held_since = 0.0
        self._writer: threading.Thread | None = None
        os.register_at_fork(after_in_child=self._forget_held)  # the parent writes what it held

    def emit(self, record: logging.LogRecord) -> None:  # called under the handler's lock (Handler.handle)
        if self.hold_seconds <= 0 or record.levelno >= logging.WARNING:
            self._write_held()
            return super().emit(record)
        try:
            line = self.format(record) + self.terminator
        except Exception:  # noqa: BLE001 - logging's rule: a bad record is reported, never raised
            self.handleError(record)
            return
        now = time.monotonic()
        if not self._held:
            self._held_since = now
            if self._writer is None or not self._writer.is_alive():
                self._start_writer()
        self._held.append(line)
        self._held_chars += len(line)
        if self._held_chars >= HELD_CHARS or now - self._held_since >= self.hold_seconds:
            self._write_held()

    def flush(self) -> None:
        with self.lock:
            self._write_held()
            super().flush()

    def close(self) -> None:
        with self.lock:
            self._write_held()
            self.hold_seconds = 0.0  # closed: nothing is held any more, and the writer thread ends
        super().close()

    def _write_held(self) -> None:
        if not self._held:
            return
        text, self._held, self._held_chars = "".join(self._held), [], 0
        try:
            self.stream.write(text)
            self.stream.flush()
        except Exception:  # noqa: BLE001 - as StreamHandler: stderr gone must not stop the process
            self.handleError(logging.makeLogRecord({"msg": "held log lines"}))

    def _start_writer(self) -> None:
        # the held lines of a quiet spell (no line after them) are written by this thread
        self._writer = threading.Thread(target=self._write_quiet_spells, name="log-writer", daemon=True)
        self._writer.start()

    def _forget_held(self) -> None:
        """In a forked child (the batch's matching processes): the parent's held lines are the
        parent's to write (the child would write them twice), and the writer thread stayed there."""
        self._held, self._held_chars, self._writer = [], 0, None

    def _write_quiet_spells(self) -> None:
        while self.hold_seconds > 0:
            with self.lock:
                due = self._held_since + self.hold_seconds - time.monotonic() if self._held else self.hold_seconds
                if self._held and due <= 0:
                    self._write_held()
                    due = self.hold_seconds
            time.sleep(max(due, 0.01))


def configure(level: int | str, *, hold_seconds: float = 0.0) -> None:
    """The root logger at `level`, to stderr; as logging.basicConfig, nothing when it has handlers
    already, except that a StderrHandler already there takes `hold_seconds` when it is longer (the
    API started in the `registry` command's own process: the command configured logging first)."""
    root = logging.getLogger()
    if root.handlers:
        for handler in root.handlers:
            if isinstance(handler, StderrHandler) and hold_seconds > handler.hold_seconds:
                handler.hold_seconds = hold_seconds
        return
    root.addHandler(StderrHandler(hold_seconds=hold_seconds))
    root.setLevel(level)


def flush() -> None:
    """Write what the root logger's handlers hold (the API's lifespan, at its end)."""
    for handler in logging.getLogger().handlers:
        handler.flush()
