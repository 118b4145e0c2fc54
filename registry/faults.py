"""Fault injection for the crash tests: named checkpoints along an operation's progress.

The registry's long writing operations (a load, an inspection apply, an adjustment) call
`checkpoint(name)` at each step of their progress: every batch of rows streamed, each phase
(validate, match, insert, reparent, lines, markers, change set …), just before and just after
COMMIT. Nothing happens unless the process's environment says so:

REGISTRY_FAULT_KILL_AT=NAME[:K]   SIGKILL this process at the K-th pass (default 1) of checkpoint NAME
REGISTRY_FAULT_KILL_AT=#N         SIGKILL it at the N-th checkpoint passed, whatever its name
REGISTRY_FAULT_TRACE=FILE         append the name of every checkpoint passed to FILE, one a line

The kill is a real SIGKILL sent by the process to itself: no handler, no `finally`, no COMMIT, the
connection's socket closed by the kernel, as when the machine's OOM killer or an operator's
`kill -9` strikes. tests/faults_campaign.py enumerates the checkpoints a normal run passes, kills
a run at each of a spread of them and checks that the registry is exactly as before or as after.

These are test hooks read straight from the environment (never set in production), not settings:
with neither variable set a checkpoint costs one lookup in `os.environ`.
"""
from __future__ import annotations

import os
import signal

KILL_AT = "REGISTRY_FAULT_KILL_AT"
TRACE = "REGISTRY_FAULT_TRACE"

_passes: dict[str, int] = {}
_total = 0


def checkpoint(name: str) -> None:
    """A step of an operation's progress; SIGKILL here when REGISTRY_FAULT_KILL_AT names it."""
    environ = os.environ
    if KILL_AT in environ or TRACE in environ:
        _hit(name, environ.get(KILL_AT), environ.get(TRACE))


def reset() -> None:
    """Forget the passes counted so far (a process forked to run one more operation)."""
    global _total
    _passes.clear()
    _total = 0


def _hit(name: str, kill_at: str | None, trace: str | None) -> None:
    global _total
    _total += 1
    k = _passes[name] = _passes.get(name, 0) + 1
    if trace:
        with open(trace, "a", encoding="utf-8") as f:
            f.write(name + "\n")
    if kill_at and _matches(kill_at, name, k, _total):
        os.kill(os.getpid(), signal.SIGKILL)


def _matches(spec: str, name: str, k: int, total: int) -> bool:
    if spec.startswith("#"):
        return spec[1:].isdigit() and int(spec[1:]) == total
    point, _, nth = spec.rpartition(":") if ":" in spec else (spec, "", "1")
    return point == name and nth.isdigit() and int(nth) == k
