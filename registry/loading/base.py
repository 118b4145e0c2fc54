"""The machinery every bulk load shares: the batch handed over by a reader, the COPY into a
temporary staging table, the report, and the change set that wraps one load.

A load runs inside the caller's transaction, under a SAVEPOINT: a dry run, a load that changes
nothing, or an error roll back to it, and the caller's COMMIT makes the whole load visible at
once. Killing the process at any moment therefore leaves the registry as it was (PostgreSQL
aborts the open transaction), and running the same load again does the whole work again.
"""
from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator, Sequence

import numpy as np
from sqlalchemy import Connection, text

from registry.changes import apply_change_set, audit, open_change_set
from registry.faults import checkpoint
from registry.loading.reasons import RowIssue, decode_params

log = logging.getLogger(__name__)

ProgressFn = Callable[[str, int, int], None]
IssueSink = Callable[[Iterator[RowIssue]], None]
MAX_KEPT_ISSUES = 1000  # kept in the report; the reject file gets them all


def no_progress(stage: str, done: int, total: int) -> None:
    return None


@dataclass
class RowBatch:
    """A chunk of source rows, already mapped onto the registry's field names.

    `values[field]` is a list of str/None aligned with `rows` (source row numbers). Points come
    as `lon`/`lat` float arrays in CGCS2000 (NaN where missing or invalid); other geometries as
    `wkb` (CGCS2000 WKB or None). `issues[i]` is a reader-level fault of row i ((code, params)),
    which wins over everything else; `geom_issues[i]` a fault of its geometry alone.
    """

    rows: list[int]
    values: dict[str, list]
    lon: np.ndarray | None = None
    lat: np.ndarray | None = None
    wkb: list | None = None
    geom_types: list | None = None
    issues: list | None = None
    geom_issues: list | None = None

    def __len__(self) -> int:
        return len(self.rows)

    def column(self, name: str) -> list:
        found = self.values.get(name)
        return found if found is not None else [None] * len(self.rows)


@dataclass
class LoadReport:
    kind: str
    source: str
    checksum: str | None = None
    read: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    retired: int = 0
    rejected: int = 0
    warnings: int = 0
    places_created: int = 0
    aliases_added: int = 0
    plates: dict[str, int] = field(default_factory=dict)  # doorplates that followed their addresses
    change_set_id: int | None = None
    dry_run: bool = False
    noop: bool = False
    reasons: Counter = field(default_factory=Counter)
    issues: list[RowIssue] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        out = {k: getattr(self, k) for k in ("read", "inserted", "updated", "unchanged", "retired", "rejected",
                                               "warnings")}
        if self.places_created:
            out["places_created"] = self.places_created
        if self.aliases_added:
            out["aliases_added"] = self.aliases_added
        out.update(self.plates)
        return out

    @property
    def changed(self) -> bool:
        return bool(self.inserted or self.updated or self.retired or self.places_created or self.aliases_added)

    def summary(self) -> str:
        c = self.counts()
        head = (f"读入 read {c['read']:,} · 新增 inserted {c['inserted']:,} · 更新 updated {c['updated']:,} · "
                f"未变 unchanged {c['unchanged']:,} · 注销 retired {c['retired']:,} · 拒绝 rejected {c['rejected']:,}")
        if self.warnings:
            head += f" · 警告 warnings {self.warnings:,}"
        if self.places_created:
            head += f" · 新登记地名 places created {self.places_created:,}"
        if self.plates.get("plates_suspended"):
            head += f" · 门牌暂停 plates suspended {self.plates['plates_suspended']:,}"
        if self.plates.get("plates_restored"):
            head += f" · 门牌恢复 plates restored {self.plates['plates_restored']:,}"
        return head


class Timer:
    def __init__(self, report: LoadReport) -> None:
        self.report = report

    def __call__(self, name: str):
        report = self.report

        class _T:
            def __enter__(self_inner):
                checkpoint("load." + name.replace(" ", "_"))  # each phase of a load is a step of its progress
                self_inner.t = time.perf_counter()

            def __exit__(self_inner, *exc):
                report.timings[name] = report.timings.get(name, 0.0) + time.perf_counter() - self_inner.t
                log.debug("%s: %.2f s", name, report.timings[name])

        return _T()


# --- COPY ---------------------------------------------------------------------------------------
_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
NULL = "\\N"


def copy_text(value: Any) -> str:
    """One value in PostgreSQL's COPY text format."""
    if value is None:
        return NULL
    if isinstance(value, str):
        return value.translate(_ESCAPES)
    if isinstance(value, bool):
        return "t" if value else "f"
    return str(value)


def driver_connection(conn: Connection):
    """The psycopg 3 connection under a SQLAlchemy Connection (same transaction)."""
    return conn.connection.driver_connection


class Stager:
    """Streams COPY text into a table; writing happens in a background thread (psycopg's
    QueuedLibpqWriter) so that Python normalizes the next chunk while the server parses this one."""

    def __init__(self, conn: Connection, table: str, columns: Sequence[str]) -> None:
        from psycopg.copy import QueuedLibpqWriter

        self._cursor = driver_connection(conn).cursor()
        sql = f"COPY {table} ({', '.join(columns)}) FROM STDIN"
        self._cm = self._cursor.copy(sql, writer=QueuedLibpqWriter(self._cursor))
        self._copy = self._cm.__enter__()
        self.rows = 0
        self._closed = False

    def write(self, lines: list[str]) -> None:
        if lines:
            self._copy.write("".join(lines))
            self.rows += len(lines)

    def close(self, exc: BaseException | None = None) -> None:
        if self._closed:
            return
        self._closed = True
        if exc is None:
            self._cm.__exit__(None, None, None)
        else:
            self._cm.__exit__(type(exc), exc, exc.__traceback__)
        self._cursor.close()


# --- the change set around a load ---------------------------------------------------------------
class LoadTransaction:
    """SAVEPOINT + change set + session settings for one load."""

    def __init__(self, conn: Connection, *, kind: str, actor: str, source: str, checksum: str | None,
                 reason: str | None, approval_ref: str | None, details: dict[str, Any] | None) -> None:
        self.conn = conn
        self.kind = kind
        self.actor = actor
        self._nested = conn.begin_nested()
        # Bulk-friendly settings for this transaction only.
        conn.execute(text("SET LOCAL work_mem = '256MB'"))
        conn.execute(text("SET LOCAL maintenance_work_mem = '1GB'"))
        # PostGIS functions carry high cost estimates, so statements over a few thousand staged
        # rows cross the JIT threshold and spend ~0.6 s each compiling what runs in 20 ms.
        conn.execute(text("SET LOCAL jit = off"))
        self.change_set_id = open_change_set(conn, kind=kind, author=actor, source=source, reason=reason,
                                             approval_ref=approval_ref, checksum=checksum, details=details or {})
        checkpoint("load.change_set_opened")

    def finish(self, report: LoadReport, *, dry_run: bool) -> None:
        """Apply the change set (or roll everything back for a dry run or a no-op load)."""
        report.dry_run = dry_run
        if dry_run or not report.changed:
            report.noop = not report.changed
            self._nested.rollback()
            report.change_set_id = None
            return
        counts = report.counts()
        counts["reasons"] = dict(report.reasons)
        checkpoint("load.change_set_apply")
        apply_change_set(self.conn, self.change_set_id, actor=self.actor, counts=counts)
        self._nested.commit()
        checkpoint("load.savepoint_released")
        report.change_set_id = self.change_set_id

    def abort(self) -> None:
        if self._nested.is_active:
            self._nested.rollback()


def scratch_table(conn: Connection, base: str) -> str:
    """A name for an UNLOGGED work table private to this session.

    Unlogged rather than TEMP: it goes through shared_buffers (temp tables get only
    temp_buffers) and parallel workers can scan it. It is created inside the load's savepoint,
    so a crash or a rollback removes it with everything else; the load drops it when done.
    """
    pid = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
    return f"{base}_{pid}"


def issues_from(conn: Connection, sql: str, params: dict[str, Any] | None = None) -> Iterator[RowIssue]:
    """Stream (row, code, detail) rows of a query as RowIssues, with a server-side cursor."""
    raw = driver_connection(conn)
    with raw.cursor(name="load_issues") as cur:
        cur.itersize = 5000
        cur.execute(sql, params or {})
        for row_no, code, detail in cur:
            yield RowIssue(int(row_no), code, decode_params(detail))


def collect_issues(report: LoadReport, issues: Iterable[RowIssue], sink: IssueSink | None) -> None:
    """Count issues into the report, keep the first ones, and hand the stream to `sink`."""

    def counted() -> Iterator[RowIssue]:
        for issue in issues:
            if len(report.issues) < MAX_KEPT_ISSUES:
                report.issues.append(issue)
            yield issue

    stream = counted()
    if sink is None:
        for _ in stream:
            pass
    else:
        sink(stream)
        for _ in stream:  # whatever the sink did not consume
            pass


__all__ = [
    "LoadReport", "LoadTransaction", "NULL", "RowBatch", "Stager", "Timer", "audit", "collect_issues",
    "copy_text", "driver_connection", "issues_from", "no_progress", "scratch_table",
]
