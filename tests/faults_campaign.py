"""Fault campaigns: an operation of the `registry` command SIGKILLed at checkpoints along its own
progress (registry/faults.py), with the registry checked to be exactly as before or as after.

A campaign works in a database of its own, copied from a template holding the state before
(`CREATE DATABASE … TEMPLATE`). It runs the command once with the trace on, to learn the
checkpoints a normal run passes, in order, and the state after; then, for each of a spread of
those checkpoints, it kills a run there and compares the fingerprint of every table (row count
and md5 of its rows, ordered) with the before and after fingerprints — anything else is a half
state — and, after a few of them, re-runs the command, which must complete with the state after.

The runs are children forked from the test process (imports done once: a run costs the
operation's own time, not Python's start-up, 15 s on a busy machine); each opens its own
connections. A timestamp column enters the fingerprint only as NULL / NOT NULL (now() differs
between two runs of the same operation), and so does a transaction id (search_changes.xid).
Sequences are put back to the template's values after a kill: PostgreSQL does not give back the
numbers a rolled-back transaction drew, so without that the re-run's new rows would get other ids
than the reference run's.
"""
from __future__ import annotations

import os
import signal
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

KILLED = -signal.SIGKILL
# Kill points per campaign in the suite; FAULT_CAMPAIGN_POINTS=0 kills at every checkpoint a run passes.
POINTS = int(os.environ.get("FAULT_CAMPAIGN_POINTS", "20")) or 10**6
# Kills by time as well (the parent's SIGKILL at a fraction of the reference run, mid-statement
# as likely as not); none in the suite.
TIMED = int(os.environ.get("FAULT_CAMPAIGN_TIMED", "0"))


@dataclass
class KillResult:
    point: str  # the checkpoint, as REGISTRY_FAULT_KILL_AT names it
    state: str  # "before" or "after"
    rerun_exit: int | None


@dataclass
class CampaignReport:
    points_passed: int  # checkpoints a normal run passes
    results: list[KillResult] = field(default_factory=list)
    seconds: float = 0.0
    spent: dict[str, float] = field(default_factory=dict)  # seconds per part: runs, fingerprints, copies

    def summary(self) -> str:
        before = sum(r.state == "before" for r in self.results)
        parts = ", ".join(f"{k} {v:.1f} s" for k, v in self.spent.items())
        return (f"{len(self.results)} kill points of {self.points_passed}: {before} before, "
                f"{len(self.results) - before} after, {self.seconds:.1f} s ({parts})")

    def timed(self, part: str, fn, *args, **kwargs):
        t = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            self.spent[part] = self.spent.get(part, 0.0) + time.perf_counter() - t


def libpq(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


# --- the state of a database -------------------------------------------------------------------
def fingerprint(url: str) -> dict[str, tuple[int, str]]:
    """{table: (rows, md5 of its rows in order)} for every table of the public schema."""
    with psycopg.connect(libpq(url), autocommit=True) as c:
        c.execute("SET extra_float_digits = 1")
        cols: dict[str, list[str]] = {}
        for table, column, kind in c.execute("""
                SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod)
                FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
                WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND c.relname <> 'spatial_ref_sys'
                ORDER BY c.relname, a.attnum"""):
            ident = '"' + column.replace('"', '""') + '"'
            run_dependent = kind.startswith("timestamp") or kind in ("xid", "xid8")
            cols.setdefault(table, []).append(f"({ident} IS NULL)" if run_dependent else ident)
        sql = " UNION ALL ".join(
            f"SELECT '{t}', count(*), md5(coalesce(string_agg(r, E'\\n' ORDER BY r), '')) "
            f"FROM (SELECT ROW({', '.join(cs)})::text AS r FROM \"{t}\") s" for t, cs in cols.items())
        return {t: (int(n), h) for t, n, h in c.execute(sql)}


def differences(a: dict, b: dict) -> list[str]:
    return [f"{t}: {a.get(t)} vs {b.get(t)}" for t in sorted(set(a) | set(b)) if a.get(t) != b.get(t)]


def sequences(url: str) -> dict[str, tuple[int, bool]]:
    with psycopg.connect(libpq(url), autocommit=True) as c:
        names = [r[0] for r in c.execute("""SELECT quote_ident(schemaname) || '.' || quote_ident(sequencename)
                                            FROM pg_sequences""")]
        return {n: tuple(c.execute(f"SELECT last_value, is_called FROM {n}").fetchone()) for n in names}


def reset_sequences(url: str, values: dict[str, tuple[int, bool]]) -> None:
    with psycopg.connect(libpq(url), autocommit=True) as c:
        for name, (value, called) in values.items():
            c.execute("SELECT setval(%s, %s, %s)", (name, value, called))


def copy_database(admin_url: str, template: str, name: str) -> None:
    """`name` made as a copy of `template` (nobody may be connected to it). An existing `name` is
    renamed out of the way, not dropped: DROP DATABASE forces a checkpoint of the whole cluster,
    seconds on a busy server; `drop_database` drops the renamed ones too, once, at the end."""
    with psycopg.connect(libpq(admin_url), autocommit=True) as c:
        if c.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            k = c.execute("SELECT count(*) FROM pg_database WHERE starts_with(datname, %s)",
                          (f"{name}~",)).fetchone()[0]
            _retry(c, f'ALTER DATABASE "{name}" RENAME TO "{name}~{k}"', end_backends_of=name)
        _retry(c, f'CREATE DATABASE "{name}" TEMPLATE "{template}"')


def _retry(c, sql: str, end_backends_of: str | None = None) -> None:
    """Run `sql` while the database is in use for a moment: the backend of a killed run on its way
    out of `end_backends_of` (a campaign's own work database) is ended; nobody else's ever is."""
    for attempt in range(50):
        try:
            c.execute(sql)
            return
        except psycopg.errors.ObjectInUse:
            if attempt == 49:
                raise
            if end_backends_of:
                c.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                          (end_backends_of,))
            time.sleep(0.1)


def drop_database(admin_url: str, name: str, *, wait: bool = True) -> None:
    """`name` and the copies `copy_database` renamed out of its way. With `wait=False` the drops
    run in a psql of their own while the tests go on (each DROP DATABASE waits for a checkpoint)."""
    import subprocess

    from registry.db.cluster import find_bin_dir
    from registry.settings import Settings

    with psycopg.connect(libpq(admin_url), autocommit=True) as c:
        old = [r[0] for r in c.execute("SELECT datname FROM pg_database WHERE starts_with(datname, %s)", (f"{name}~",))]
        names = [name, *old]
        if wait:
            for n in names:
                c.execute(f'DROP DATABASE IF EXISTS "{n}" WITH (FORCE)')
            return
        for n in names:  # nobody may use them from now on
            c.execute(f'ALTER DATABASE "{n}" ALLOW_CONNECTIONS false')
            c.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (n,))
    drops = [arg for n in names for arg in ("-c", f'DROP DATABASE IF EXISTS "{n}" WITH (FORCE)')]
    subprocess.Popen([str(find_bin_dir(Settings()) / "psql"), "-q", "-X", libpq(admin_url), *drops],
                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)


# --- one run of the command, in a forked child ---------------------------------------------------
WARM = ("loaders.cli", "loaders.run", "loaders.city", "loaders.progress", "loaders.adjust_cli", "loaders.changes_cli",
        "registry.inspection", "registry.adjustments", "registry.reparenting", "registry.boundaries",
        "data.generate.markers")


_command = None


def warm():
    """Import here, once, what the commands import lazily, and build the click command of `registry`
    (typer builds it anew on every call: 0.1–0.4 s): each forked child then starts warm."""
    global _command
    import importlib

    import typer

    for name in WARM:
        importlib.import_module(name)
    if _command is None:
        from loaders.cli import app

        _command = typer.main.get_command(app)
    return _command


def run_cli(url: str, args: list[str], *, log: Path, kill_at: str | None = None, trace: Path | None = None,
            env: dict[str, str] | None = None, kill_after: float | None = None, timeout: float = 120.0) -> int:
    """Run `registry ARGS` against `url` in a child forked from this process; its exit code
    (negative: the signal that ended it). Output goes to `log`. `kill_after`: seconds after which
    this process SIGKILLs the child (if it is still running)."""
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # the child: never returns into the test process
        code = 70
        try:
            fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            os.dup2(fd, 1)
            os.dup2(fd, 2)
            # pytest's capture replaced sys.stdout/err: the child's output goes to its log
            sys.stdout = sys.stderr = open(fd, "w", encoding="utf-8", buffering=1, closefd=False)
            code = _child(url, args, kill_at, trace, env or {})
        except BaseException:
            traceback.print_exc()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    started = time.monotonic()
    deadline = started + timeout
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        if kill_after is not None and time.monotonic() - started >= kill_after:
            os.kill(pid, signal.SIGKILL)
            kill_after = None
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            raise AssertionError(f"registry {' '.join(args)} did not end within {timeout:.0f} s: {log.read_text()}")
        time.sleep(0.005)


def _child(url: str, args: list[str], kill_at: str | None, trace: Path | None, env: dict[str, str]) -> int:
    import click

    from registry import faults
    from registry.settings import get_settings

    for name in (faults.KILL_AT, faults.TRACE, "REGISTRY_LOADER_PAUSE_AT"):
        os.environ.pop(name, None)
    os.environ.update(env)
    os.environ["REGISTRY_DATABASE_URL"] = url
    if kill_at:
        os.environ[faults.KILL_AT] = kill_at
    if trace:
        os.environ[faults.TRACE] = str(trace)
    faults.reset()
    get_settings.cache_clear()
    command = warm()
    sys.argv = ["registry", *args]
    try:
        result = command.main(args, prog_name="registry", standalone_mode=False)
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.exceptions.ClickException as exc:
        exc.show()
        return exc.exit_code
    return result if isinstance(result, int) else 0


# --- the campaign --------------------------------------------------------------------------------
def spread(names: list[str], n: int) -> list[str]:
    """n checkpoints spread evenly over the run (all when it passes fewer), as NAME:K specs;
    the first and the last are always in."""
    specs, seen = [], {}
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        specs.append(f"{name}:{seen[name]}")
    if len(specs) <= n:
        return specs
    picks = sorted({round(i * (len(specs) - 1) / (n - 1)) for i in range(n)})
    return [specs[i] for i in picks]


def run_campaign(admin_url: str, template: str, work: str, url: str, args: list[str], tmp: Path, *,
                 points: int = 20, rerun_exits: tuple[int, ...] = (0,), after_rerun_exits: tuple[int, ...] = (0,),
                 reruns: int = 2, timed: int = 0, env: dict[str, str] | None = None) -> CampaignReport:
    """Kill `registry ARGS` at `points` checkpoints; `url` is the work database's URL. A re-run
    after a kill that left the state before must exit with one of `rerun_exits`, after one that
    left the state after with one of `after_rerun_exits` (an adjustment already made is refused);
    both must end in the state after. `reruns`: how many of the kills that left the state before
    are followed by a re-run (spread over the run; every kill that left the state after is: it
    costs no copy). `timed`: that many kills more, by time (spread over the reference run's
    duration), each followed by a re-run. `env`: more environment for the runs."""
    started = time.perf_counter()
    warm()
    try:
        return _campaign(admin_url, template, work, url, args, tmp, points, rerun_exits, after_rerun_exits,
                         reruns, timed, started, env or {})
    finally:
        drop_database(admin_url, work, wait=False)


def _campaign(admin_url, template, work, url, args, tmp, points, rerun_exits, after_rerun_exits, reruns,
              timed, started, env) -> CampaignReport:
    report = CampaignReport(points_passed=0)
    report.timed("copies", copy_database, admin_url, template, work)
    before, seqs = report.timed("fingerprints", fingerprint, url), sequences(url)
    trace = tmp / "trace.txt"
    t = time.perf_counter()
    code = report.timed("reference run", run_cli, url, args, log=tmp / "reference.log", trace=trace, env=env)
    duration = time.perf_counter() - t
    assert code == 0, (tmp / "reference.log").read_text()
    after = report.timed("fingerprints", fingerprint, url)
    assert after != before, "the operation changed nothing: nothing to test"
    passed = trace.read_text(encoding="utf-8").splitlines()
    report.points_passed = len(passed)
    report.timed("copies", copy_database, admin_url, template, work)
    chosen = spread(passed, points)
    rerun_at = {chosen[round(k * (len(chosen) - 2) / max(reruns - 1, 1))] for k in range(reruns)} if reruns else set()
    in_state_before = True
    by_time = [f"after {duration * (k + 1) / (timed + 1):.2f} s" for k in range(timed)]
    for i, point in enumerate(chosen + by_time):
        if not in_state_before:
            report.timed("copies", copy_database, admin_url, template, work)
        log = tmp / f"kill_{i:02d}.log"
        if point in by_time:
            delay = float(point.split()[1])
            code = report.timed("killed runs", run_cli, url, args, log=log, kill_after=delay, env=env)
            assert code in (KILLED, 0), f"{point}: exit {code}: {log.read_text()}"
        else:
            code = report.timed("killed runs", run_cli, url, args, log=log, kill_at=point, env=env)
            assert code == KILLED, f"{point}: the run was not killed (exit {code}): {log.read_text()}"
        now = report.timed("fingerprints", fingerprint, url)
        if now == before:
            state = "before"
        elif now == after:
            state = "after"
        else:
            raise AssertionError(f"killed at {point}: a half state, neither before nor after:\n  "
                                 + "\n  ".join(differences(now, before)))
        rerun = None
        in_state_before = state == "before"
        if in_state_before:
            reset_sequences(url, seqs)
        if state == "after" or point in rerun_at or point in by_time:
            rerun = report.timed("re-runs", run_cli, url, args, log=log, env=env)
            allowed = rerun_exits if state == "before" else after_rerun_exits
            assert rerun in allowed, f"{point}: the re-run exited {rerun}: {log.read_text()}"
            got = report.timed("fingerprints", fingerprint, url)
            assert got == after, f"{point}: the re-run did not give the state after:\n  " + "\n  ".join(
                differences(got, after))
            in_state_before = False
        report.results.append(KillResult(point, state, rerun))
    report.seconds = time.perf_counter() - started
    return report
