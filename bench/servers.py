"""The servers the benches measure: started, waited for, watched and stopped in one way.

- `start_server(cmd, port, env=…)`: the command (uvicorn or `registry serve`) in a process group of
  its own, waited for until `http://127.0.0.1:<port><ready_path>` answers 200; a server that exits or
  does not answer within `limit` seconds is stopped and the bench ends with one line.
- `stop_server(proc)`: SIGTERM to the whole group (the supervisor and its workers), SIGKILL after
  `grace` seconds.
- `group_cpu_seconds` / `wait_idle`: the CPU a server's processes use, and waiting until its own
  start-up work (the search gazetteer's background load …) is done, so it is not measured as the
  cost of requests.
- `serve_in_thread(app)`: an ASGI app served by uvicorn in a thread of the bench itself (for a bench
  that builds its apps with settings of its own).
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator, Mapping, Sequence

ROOT = Path(__file__).resolve().parent.parent
REGISTRY = str(ROOT / ".venv" / "bin" / "registry")
UVICORN = str(ROOT / ".venv" / "bin" / "uvicorn")


def free_port() -> int:
    """A TCP port nobody listens on at the moment (the kernel's choice)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(cmd: Sequence[str], port: int, *, env: Mapping[str, str] | None = None, ready_path: str = "/healthz",
                 limit: float = 60.0, quiet: bool = True) -> subprocess.Popen:
    """Start `cmd` (listening on 127.0.0.1:`port`) and return once `ready_path` answers 200.
    `env` is added to this process's environment; `quiet` sends the server's output to /dev/null."""
    out = subprocess.DEVNULL if quiet else None
    proc = subprocess.Popen(list(cmd), cwd=ROOT, env={**os.environ, **(env or {})}, stdout=out, stderr=out,
                            start_new_session=True)
    url = f"http://127.0.0.1:{port}{ready_path}"
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the server exited with {proc.returncode}: {' '.join(cmd)}")
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                if r.status == 200:
                    return proc
        except OSError:
            time.sleep(0.3)
    stop_server(proc)
    raise SystemExit(f"the server did not answer {ready_path} within {limit:.0f} s: {' '.join(cmd)}")


def stop_server(proc: subprocess.Popen, grace: float = 20.0) -> None:
    """Stop a server started by `start_server` and every process of its group."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def group_cpu_seconds(pgid: int) -> float:
    """CPU seconds used so far by the processes of a process group (the server and its workers)."""
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:  # field 5 (pgrp) of stat, counted after the command name
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


def wait_idle(proc: subprocess.Popen, log: Callable[[str], None], *, limit: float = 600.0) -> float:
    """Wait until the server stops using CPU on its own (start-up work such as the search gazetteer's
    background load would otherwise be measured as request cost). Returns the seconds waited."""
    start = time.monotonic()
    last = group_cpu_seconds(proc.pid)
    while time.monotonic() - start < limit:
        time.sleep(1.0)
        now = group_cpu_seconds(proc.pid)
        if now - last < 0.05:
            return time.monotonic() - start
        last = now
    log("  (the server is still busy on its own; measuring anyway)")
    return time.monotonic() - start


@contextmanager
def serve_in_thread(app) -> Iterator[str]:
    """Serve an ASGI app with uvicorn in a thread (lifespan on); yields its base URL."""
    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="error", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()
