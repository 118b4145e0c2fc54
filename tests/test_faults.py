"""registry/faults.py: a checkpoint does nothing unless REGISTRY_FAULT_KILL_AT names it, then the
process dies of a real SIGKILL; the trace lists the points passed."""
from __future__ import annotations

import os
import signal

import pytest

from registry import faults


def _in_child(env: dict[str, str], names: list[str]) -> int:
    """Pass `names` as checkpoints in a forked child with `env`; its exit code (-9: SIGKILLed)."""
    pid = os.fork()
    if pid == 0:
        code = 3
        try:
            os.environ.update(env)
            faults.reset()
            for name in names:
                faults.checkpoint(name)
            code = 0
        finally:
            os._exit(code)
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])


@pytest.mark.parametrize("spec,dies", [("b", True), ("b:2", True), ("b:3", False), ("#4", True), ("#6", False),
                                       ("c", False), ("a:x", False)])
def test_should_sigkill_only_at_the_point_named(spec, dies):
    code = _in_child({faults.KILL_AT: spec}, ["a", "b", "a", "b", "d"])
    assert code == (-signal.SIGKILL if dies else 0)


def test_should_trace_every_point_passed_and_nothing_when_unset(tmp_path, monkeypatch):
    trace = tmp_path / "trace.txt"
    assert _in_child({faults.TRACE: str(trace)}, ["load.rows", "load.rows", "load.commit"]) == 0
    assert trace.read_text().splitlines() == ["load.rows", "load.rows", "load.commit"]
    monkeypatch.delenv(faults.KILL_AT, raising=False)
    monkeypatch.delenv(faults.TRACE, raising=False)
    faults.reset()
    faults.checkpoint("load.rows")  # unset: nothing happens, and nothing is read again
    assert faults._armed is False
