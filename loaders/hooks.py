"""A test hook to kill a load at a known moment (never set in production).

REGISTRY_LOADER_PAUSE_AT=rows:N    pause once N rows are staged
REGISTRY_LOADER_PAUSE_AT=before_commit    pause after the load, before COMMIT
REGISTRY_LOADER_PAUSE_FILE=path    written when the pause starts (the test waits for it)
The process then sleeps (up to REGISTRY_LOADER_PAUSE_SECONDS, default 120) so the test can
SIGKILL it with the transaction open.
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

_done: set[str] = set()


def maybe_pause(point: str, rows: int = 0) -> None:
    spec = os.environ.get("REGISTRY_LOADER_PAUSE_AT")
    if not spec or spec in _done:
        return
    if spec.startswith("rows:"):
        if point != "rows" or rows < int(spec[5:]):
            return
    elif spec != point:
        return
    _done.add(spec)
    marker = os.environ.get("REGISTRY_LOADER_PAUSE_FILE")
    print(f"paused at {spec} ({rows} rows)", file=sys.stderr, flush=True)
    if marker:
        Path(marker).write_text(f"{spec} {rows} {os.getpid()}\n")
    time.sleep(float(os.environ.get("REGISTRY_LOADER_PAUSE_SECONDS", "120")))
