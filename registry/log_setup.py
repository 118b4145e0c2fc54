"""The processes' log lines, one format for the `registry` command and the API's workers.

`configure(level)` sends every logger's records to stderr as `2026-12-02 06:30:01,123 INFO name: message`.
The API writes a line per request (api/access_log.py), so the time stamp is made once a second:
`time.strftime` on every record cost about as much as the rest of the line.
"""
from __future__ import annotations

import logging
import sys
import time

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


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


def configure(level: int | str) -> None:
    """The root logger at `level`, to stderr; as logging.basicConfig, nothing when it has handlers already."""
    root = logging.getLogger()
    if root.handlers:
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(SecondFormatter(FORMAT))
    root.addHandler(handler)
    root.setLevel(level)
