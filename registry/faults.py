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

These are test hooks read straight from the environment (never set in production), not settings;
the environment is read at the first checkpoint (again after `reset()`), so with neither variable
set a checkpoint costs one comparison.
"""
from __future__ import annotations

import os
import signal

KILL_AT = "REGISTRY_FAULT_KILL_AT"
TRACE = "REGISTRY_FAULT_TRACE"

_passes: dict[str, int] = {}
_total = 0
_armed: bool | None = None  # read from the environment at the first checkpoint (and by reset())


def checkpoint(name: str) -> None:
    """A step of an operation's progress; SIGKILL here when REGISTRY_FAULT_KILL_AT names it."""
    if _armed is not False:
        _hit(name)


def reset() -> None:
    """Forget the passes counted so far and read the environment again (a process forked to run
    one more operation)."""
    global _total, _armed
    _passes.clear()
    _total = 0
    _armed = None


def _hit(name: str) -> None:
    global _total, _armed
    kill_at, trace = os.environ.get(KILL_AT), os.environ.get(TRACE)
    _armed = bool(kill_at or trace)
    if not _armed:
        return
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
