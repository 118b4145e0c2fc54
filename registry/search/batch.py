"""Batch matching: a list of free-form addresses (CSV with a header, or JSON lines) in, one
result per row out, in input order.

Output columns: row (1-based, in input order), input, id, kind, address (the standard text),
code, confidence, levels (|-separated), low_confidence, status, reason. A row that cannot be
searched (empty, too long, control characters) gets no id and says why; it never stops the batch.

`status` is one of STATUSES, exactly one per row, so that a summary counts each row once: a
street found without its number is `partial`, not `matched`.

How a batch is answered (`answers`): each distinct text once (a row repeated later gets the same
answer); the standard texts among them for a whole chunk at once (registry.search.batch_exact:
the answer the engine would give, without preparing the row); the rest by the engine
(`match_one`), in worker processes forked from this one when there are enough of them. The rows
are read as the body arrives (registry.search.batch_input).
"""
from __future__ import annotations

import csv
import io
import json
import os
from collections import deque
from collections.abc import Iterable, Iterator

from registry.errors import RegistryError
from registry.search.batch_exact import exact_answers, exact_tail
from registry.search.batch_input import (DEFAULT_COLUMNS, MAX_FIELD_CHARS, RowReader, parse_body,  # noqa: F401
                                         pick_column as _pick_column)
from registry.search.engine import match_one
from registry.search.gazetteer import Gazetteer
from registry.search.validate import check_text

COLUMNS = ("row", "input", "id", "kind", "address", "code", "confidence", "levels", "low_confidence", "status",
           "reason")
# In the order a row is classified: the first that applies wins.
STATUSES = ("unmatched", "partial", "ambiguous", "low_confidence", "matched")


def answer_one(gaz: Gazetteer, q: str) -> dict:
    """The engine's answer for one row (match_one), or why the row cannot be searched."""
    try:
        check_text(q, "row")
        return match_one(gaz, q)
    except RegistryError as exc:
        return {"id": None, "kind": None, "address": None, "code": None, "confidence": 0.0, "levels": [],
                "low_confidence": True, "reason": f"无法查询 / not searchable: {exc.message}"}


def _record(n: int, q: str, result: dict) -> dict:
    rec = {"row": n, "input": q, **result}
    rec["status"] = status_of(rec)
    return rec


def match_rows(gaz: Gazetteer, rows: Iterable[str]) -> Iterator[dict]:
    """Row by row through the engine (no exact path, no de-duplication): what `answers` must equal."""
    for n, q in enumerate(rows, start=1):
        yield _record(n, q, answer_one(gaz, q))


def status_of(rec: dict) -> str:
    """One of STATUSES for a matched row (see match_one's partial / ambiguous / low_confidence)."""
    if rec.get("id") is None:
        return "unmatched"
    if rec.get("partial"):
        return "partial"
    if rec.get("ambiguous"):
        return "ambiguous"
    if rec.get("low_confidence"):
        return "low_confidence"
    return "matched"


def count_statuses(recs: Iterable[dict], counts: dict[str, int] | None = None) -> dict[str, int]:
    """Rows per status (every status present, zeros included), added to `counts` if given."""
    counts = counts if counts is not None else dict.fromkeys(STATUSES, 0)
    for rec in recs:
        counts[rec["status"]] += 1
    return counts


def _csv_line(rec: dict) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow([_cell(rec.get(c)) for c in COLUMNS])
    return buf.getvalue()


def _cell(v) -> str:
    t = type(v)  # by exact type, most frequent first (bool before int: it is one)
    if t is str:
        return v
    if v is None:
        return ""
    if t is float:
        return f"{v:.4f}"
    if t is bool:
        return "true" if v else "false"
    if t is list:
        return "|".join(v)
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return f"{v:.4f}"
    if isinstance(v, list):
        return "|".join(v)
    return str(v)


def _csv_cells(rec: dict) -> list[str]:
    """[_cell(rec.get(c)) for c in COLUMNS], with the usual types inline (a third of a row's cost)."""
    g = rec.get
    rid, kind, address, code, conf, levels, low, status, why = (
        g("id"), g("kind"), g("address"), g("code"), g("confidence"), g("levels"), g("low_confidence"), g("status"),
        g("reason"))
    return [_cell(g("row")), _cell(g("input")), str(rid) if type(rid) is int else _cell(rid),
            kind if type(kind) is str else _cell(kind), address if type(address) is str else _cell(address),
            code if type(code) is str else _cell(code), f"{conf:.4f}" if type(conf) is float else _cell(conf),
            "|".join(levels) if type(levels) is list else _cell(levels),
            ("true" if low else "false") if type(low) is bool else _cell(low),
            status if type(status) is str else _cell(status), why if type(why) is str else _cell(why)]


def _format(recs: list[dict], fmt: str) -> str:
    if fmt == "csv":
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerows(map(_csv_cells, recs))
        return buf.getvalue()
    return "".join(json.dumps({c: rec.get(c) for c in COLUMNS}, ensure_ascii=False) + "\n" for rec in recs)


# --- answering a batch ----------------------------------------------------------------------------
CHUNK_ROWS = 500  # rows per piece of output
EXACT_CHUNK = 1000  # distinct rows looked up exactly under one hold of the gazetteer's lock
# Engine rows are matched by worker processes forked from this one, one per core, when there may
# be at least this many (a fork costs its workers ~0.1-0.2 CPU-s of first-touched pages; an engine
# row ~1 ms): they inherit the gazetteer (the address columns are the shared generation's mapped
# files, registry.search.generation, so nothing of them is copied; the small objects are shared
# copy-on-write) with this process's overlay of changes, so they answer exactly as it does.
PARALLEL_MIN_ROWS = 1000
TASK_ROWS = 25  # engine rows per task: small, so that the processes finish together
_worker_gaz: Gazetteer | None = None


def answers(gaz: Gazetteer, rows: list[str], processes: int | None = None) -> Iterator[dict]:
    """The record of every row, in input order (as match_rows gives them).

    The distinct rows are taken window by window: the exact path for a window, then its other
    rows as engine tasks — with worker processes, the windows are looked up while the workers
    match the engine rows of the earlier ones."""
    first: dict[str, int] = {}
    slot = [first.setdefault(q, len(first)) for q in rows]
    distinct = list(first)
    del first
    tails = [exact_tail(q) for q in distinct]
    if processes is None:  # those without an exact tail are engine rows for sure; the rest almost never
        processes = processes_for(sum(t is None for t in tails))
    known: dict[int, dict] = {}

    def tasks() -> Iterator[list[tuple[int, str]]]:
        for s in range(0, len(distinct), EXACT_CHUNK):
            with gaz.lock:  # no change applied halfway through a window
                found = exact_answers(gaz, distinct[s:s + EXACT_CHUNK], tails[s:s + EXACT_CHUNK])
            for j, a in found.items():
                known[s + j] = a
            engine = [(u, distinct[u]) for u in range(s, min(s + EXACT_CHUNK, len(distinct))) if u not in known]
            for k in range(0, len(engine), TASK_ROWS):
                yield engine[k:k + TASK_ROWS]

    engine = _engine_answers(gaz, tasks(), processes)
    for n, (q, u) in enumerate(zip(rows, slot), start=1):
        a = known.get(u)
        while a is None:  # an engine row, or a window not looked up yet
            got = next(engine, None)
            if got is None:
                a = known[u]
                break
            known[got[0]] = got[1]
            a = known.get(u)
        yield _record(n, q, a)


def _engine_answers(gaz: Gazetteer, tasks: Iterator[list[tuple[int, str]]], processes: int
                    ) -> Iterator[tuple[int, dict]]:
    """(row, answer) of the engine rows in task order: in this thread, or shared between
    `processes - 1` forked workers and this thread. This process takes a task whenever the oldest
    one sent is not done yet, so it matches a share itself: its caches (parsed numbers, names)
    then warm up for the workers of later batches, which start from its state."""
    if processes <= 1:
        for task in tasks:
            for u, q in task:
                yield u, answer_one(gaz, q)
        return
    import multiprocessing

    global _worker_gaz
    _worker_gaz = gaz
    ctx = multiprocessing.get_context("fork")
    workers = processes - 1
    with gaz.lock:  # no change is half-applied in the copy the workers get
        pool = ctx.Pool(workers, initializer=_worker_init)
    try:
        queue: deque[tuple[bool, object]] = deque()  # (sent to the pool?, AsyncResult or answers), in task order
        sent = 0
        source = iter(tasks)
        more = True
        while True:
            while more and sent < 2 * workers:  # each worker a task ahead
                task = next(source, None)
                if task is None:
                    more = False
                    break
                queue.append((True, pool.apply_async(_worker_task, (task,))))
                sent += 1
            if not queue:
                break
            pooled, head = queue[0]
            if pooled and not head.ready() and more:
                task = next(source, None)
                if task is None:
                    more = False
                else:
                    queue.append((False, _worker_task(task, gaz)))
                continue
            queue.popleft()
            if pooled:
                sent -= 1
                yield from head.get()
            else:
                yield from head
        pool.close()  # done: the workers take their sentinel and exit
    finally:
        pool.terminate()  # (a no-op after close; ends them when the caller stopped early)
        pool.join()
        _worker_gaz = None  # a later generation must not leave this one mapped


def _worker_init() -> None:
    import gc
    import signal
    import threading

    # Forked from an API worker, a matching process inherits uvicorn's SIGTERM/SIGINT handlers, which
    # only set a flag: Pool.terminate() could then not end it, and the response would never finish.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    if _worker_gaz is not None:
        _worker_gaz.lock = threading.RLock()  # a lock another thread held at fork time stays held
    # A worker lives for one batch and makes no reference cycles worth collecting; the cyclic
    # collector would only walk (and copy-on-write) the inherited gazetteer.
    gc.freeze()
    gc.disable()


def _worker_task(task: list[tuple[int, str]], gaz: Gazetteer | None = None) -> list[tuple[int, dict]]:
    gaz = gaz or _worker_gaz
    assert gaz is not None
    return [(u, answer_one(gaz, q)) for u, q in task]


def processes_for(rows: int) -> int:
    """Matching processes for `rows` engine rows: one per core (at most 8) from PARALLEL_MIN_ROWS."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return 1 if rows < PARALLEL_MIN_ROWS or cpus < 2 or not _fork_available() else min(cpus, 8)


def _fork_available() -> bool:
    import multiprocessing

    return "fork" in multiprocessing.get_all_start_methods()


def formatted(gaz: Gazetteer, rows: list[str], fmt: str, processes: int | None = None) -> Iterator:
    """Result pieces in input order, `CHUNK_ROWS` rows each: formatted text (fmt csv / jsonl) or
    lists of records (fmt "records")."""
    recs: list[dict] = []
    for rec in answers(gaz, rows, processes):
        recs.append(rec)
        if len(recs) == CHUNK_ROWS:
            yield recs if fmt == "records" else _format(recs, fmt)
            recs = []
    if recs:
        yield recs if fmt == "records" else _format(recs, fmt)


def stream(gaz: Gazetteer, rows: list[str], fmt: str, processes: int | None = None) -> Iterator[str]:
    """The results as CSV (header first) or JSON lines."""
    if fmt == "csv":
        yield ",".join(COLUMNS) + "\n"
    yield from formatted(gaz, rows, fmt, processes)
