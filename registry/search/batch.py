"""Batch matching: a list of free-form addresses (CSV with a header, or JSON lines) in, one
result per row out, in input order.

Output columns: row (1-based, in input order), input, id, kind, address (the standard text),
code, confidence, levels (|-separated), low_confidence, status, reason. A row that cannot be
searched (empty, too long, control characters) gets no id and says why; it never stops the batch.

`status` is one of STATUSES, exactly one per row, so that a summary counts each row once: a
street found without its number is `partial`, not `matched`.
"""
from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Iterable, Iterator

from registry.errors import InvalidQuery, RegistryError
from registry.search.engine import match_one
from registry.search.gazetteer import Gazetteer
from registry.search.validate import MAX_BATCH_ROWS, check_text
from registry.text.encoding import decode_text, normalize_encoding

COLUMNS = ("row", "input", "id", "kind", "address", "code", "confidence", "levels", "low_confidence", "status",
           "reason")
# In the order a row is classified: the first that applies wins.
STATUSES = ("unmatched", "partial", "ambiguous", "low_confidence", "matched")
DEFAULT_COLUMNS = ("地址", "address", "q", "query", "addr")


def _pick_column(header: list[str], column: str | None) -> int:
    clean = [h.strip().lstrip("\ufeff") for h in header]
    if column:
        if column in clean:
            return clean.index(column)
        raise InvalidQuery(f"CSV 没有列“{column}”，有：{', '.join(clean)} / the CSV has no column {column!r}; "
                           f"it has: {', '.join(clean)}", parameter="column")
    for name in DEFAULT_COLUMNS:
        if name in clean:
            return clean.index(name)
    if len(clean) == 1:
        return 0
    raise InvalidQuery(f"请用 column 指定地址列（{', '.join(clean)}）/ name the address column with column= "
                       f"(one of: {', '.join(clean)})", parameter="column")


# Longer than any address by far; checked here rather than left to csv.field_size_limit, which is
# process-wide (loaders/readers.py raises it to 1 MiB when imported).
MAX_FIELD_CHARS = 100_000


def _field_too_long(n: int) -> None:
    raise InvalidQuery(f"第 {n} 行的字段超过 {MAX_FIELD_CHARS:,} 个字符 / line {n} has a field longer than "
                       f"{MAX_FIELD_CHARS:,} characters", parameter="body", line=n)


def read_csv_rows(text: str, column: str | None = None) -> list[str]:
    reader = csv.reader(io.StringIO(text))
    try:
        header = next(reader, None)
        if header is None:
            raise InvalidQuery("CSV 为空 / the CSV is empty", parameter="body")
        k = _pick_column(header, column)
        rows = []
        for row in reader:
            if any(len(cell) > MAX_FIELD_CHARS for cell in row):
                _field_too_long(reader.line_num)
            rows.append(row[k] if k < len(row) else "")
        return rows
    except csv.Error as exc:  # a field over csv's field limit, a broken quote…: the line, never a 500
        n = reader.line_num
        raise InvalidQuery(f"CSV 第 {n} 行无法读取 / CSV line {n} cannot be read: {exc}", parameter="body",
                           line=n) from None


def read_jsonl_rows(text: str, column: str | None = None) -> list[str]:
    rows: list[str] = []
    keys = (column,) if column else DEFAULT_COLUMNS
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InvalidQuery(f"第 {n} 行不是 JSON / line {n} is not JSON: {exc.msg}", parameter="body",
                               line=n) from None
        except RecursionError:  # nested thousands deep: the parser's stack, not the caller's fault to see
            raise InvalidQuery(f"第 {n} 行嵌套过深 / line {n} is nested too deep", parameter="body",
                               line=n) from None
        if len(line) > MAX_FIELD_CHARS:
            _field_too_long(n)
        if isinstance(value, str):
            rows.append(value)
        elif isinstance(value, dict):
            found = next((value[k] for k in keys if k in value), None)
            rows.append(found if isinstance(found, str) else "")
        else:
            raise InvalidQuery(f"第 {n} 行应为字符串或对象 / line {n} must be a string or an object",
                               parameter="body", line=n)
    return rows


def _charset(content_type: str) -> str | None:
    for param in (content_type or "").split(";")[1:]:
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset":
            return value.strip().strip('"') or None
    return None


def parse_body(body: bytes, content_type: str, column: str | None = None) -> tuple[list[str], str]:
    """(rows, 'csv'|'jsonl'). The body is read in the Content-Type's charset (utf-8, gb18030, gbk),
    detected when it has none. Refuses empty bodies, bytes that do not decode (naming the line)
    and more than MAX_BATCH_ROWS rows."""
    if not body or not body.strip():
        raise InvalidQuery("请求体为空 / the request body is empty", parameter="body")
    text, _ = decode_text(body, normalize_encoding(_charset(content_type), "charset"), parameter="body")
    ct = (content_type or "").split(";")[0].strip().lower()
    if ct in ("application/x-ndjson", "application/jsonl", "application/json-lines", "application/json"):
        rows, fmt = read_jsonl_rows(text, column), "jsonl"
    else:
        rows, fmt = read_csv_rows(text, column), "csv"
    if len(rows) > MAX_BATCH_ROWS:
        raise InvalidQuery(f"行数过多：{len(rows)}，最多 {MAX_BATCH_ROWS} / too many rows: {len(rows)}, at most "
                           f"{MAX_BATCH_ROWS}", parameter="body", rows=len(rows))
    if not rows:
        raise InvalidQuery("没有数据行 / no data rows", parameter="body")
    return rows, fmt


def match_rows(gaz: Gazetteer, rows: Iterable[str]) -> Iterator[dict]:
    for n, q in enumerate(rows, start=1):
        try:
            check_text(q, "row")
            result = match_one(gaz, q)
        except RegistryError as exc:
            result = {"id": None, "kind": None, "address": None, "code": None, "confidence": 0.0, "levels": [],
                      "low_confidence": True, "reason": f"无法查询 / not searchable: {exc.message}"}
        rec = {"row": n, "input": q, **result}
        rec["status"] = status_of(rec)
        yield rec


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
    if v is None:
        return ""
    if isinstance(v, list):
        return "|".join(v)
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return f"{v:.4f}"
    return str(v)


def _format(rec: dict, fmt: str) -> str:
    if fmt == "csv":
        return _csv_line(rec)
    return json.dumps({c: rec.get(c) for c in COLUMNS}, ensure_ascii=False) + "\n"


# --- parallel matching ----------------------------------------------------------------------------
# Large batches are matched by worker processes forked from this one, one per core: they inherit
# the gazetteer (the address columns are the shared generation's mapped files, registry.search.
# generation, so nothing of them is copied; the small objects are shared copy-on-write) with this
# process's overlay of changes, so they answer exactly as it does. Results come back formatted, in
# input order.
PARALLEL_MIN_ROWS = 4000
CHUNK_ROWS = 500
_worker_gaz: Gazetteer | None = None


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


def _chunk(gaz: Gazetteer, first: int, rows: list[str], fmt: str):
    recs = ({**rec, "row": first + k} for k, rec in enumerate(match_rows(gaz, rows)))
    if fmt == "records":
        return list(recs)
    return "".join(_format(rec, fmt) for rec in recs)


def _worker_chunk(task: tuple[int, list[str], str]):
    assert _worker_gaz is not None
    return _chunk(_worker_gaz, *task)


def processes_for(rows: int) -> int:
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return 1 if rows < PARALLEL_MIN_ROWS or cpus < 2 or not _fork_available() else min(cpus, 8)


def _fork_available() -> bool:
    import multiprocessing

    return "fork" in multiprocessing.get_all_start_methods()


def formatted(gaz: Gazetteer, rows: list[str], fmt: str, processes: int | None = None) -> Iterator[str]:
    """Result pieces in input order, `CHUNK_ROWS` rows each: formatted text (fmt csv / jsonl) or
    lists of records (fmt "records"); in parallel processes for large batches."""
    processes = processes_for(len(rows)) if processes is None else processes
    chunks = [(k + 1, rows[k:k + CHUNK_ROWS], fmt) for k in range(0, len(rows), CHUNK_ROWS)]
    if processes <= 1:
        for task in chunks:
            yield _chunk(gaz, *task)
        return
    import multiprocessing

    global _worker_gaz
    _worker_gaz = gaz
    ctx = multiprocessing.get_context("fork")
    with gaz.lock:  # no change is half-applied in the copy the workers get
        pool = ctx.Pool(processes, initializer=_worker_init)
    try:
        yield from pool.imap(_worker_chunk, chunks)
        pool.close()  # done: the workers take their sentinel and exit
    finally:
        pool.terminate()  # (a no-op after close; ends them when the caller stopped early)
        pool.join()
        _worker_gaz = None  # a later generation must not leave this one mapped


def stream(gaz: Gazetteer, rows: list[str], fmt: str, processes: int | None = None) -> Iterator[str]:
    """The results as CSV (header first) or JSON lines."""
    if fmt == "csv":
        yield ",".join(COLUMNS) + "\n"
    yield from formatted(gaz, rows, fmt, processes)
