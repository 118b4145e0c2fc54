"""`registry match IN.csv --column 地址 -o OUT.csv`: batch matching from the command line.

The input columns are kept and the match columns appended, rows in input order. The input is
read in the encoding given (`--encoding`), else detected (UTF-8 with or without a BOM, else
GB18030/GBK: registry.text.encoding); the output is UTF-8 with a BOM by default, which Excel
opens right. The gazetteer is loaded once from the registry's database (a few seconds at city
scale). Everything a user can get wrong (no such file, a directory, an empty file, bytes in the
wrong encoding, no such column) is refused as InvalidQuery before the database is touched."""
from __future__ import annotations

import csv
import io
import os
import time
from pathlib import Path
from typing import Callable

from sqlalchemy import Engine

from registry.errors import InvalidQuery
from registry.search.batch import COLUMNS, STATUSES, _cell, _pick_column, count_statuses, formatted
from registry.search.gazetteer import Gazetteer
from registry.search.loading import load_gazetteer
from registry.search.validate import MAX_BATCH_ROWS
from registry.text.encoding import OUTPUT_ENCODINGS, decode_text, normalize_encoding

OUT_COLUMNS = tuple(c for c in COLUMNS if c not in ("row", "input"))
DEFAULT_OUTPUT_ENCODING = "utf-8-sig"
_STATUS_LABELS = {"matched": "匹配 matched", "partial": "部分 partial", "ambiguous": "歧义 ambiguous",
                  "low_confidence": "低置信 low-confidence", "unmatched": "未匹配 unmatched"}


def read_table(infile: Path, column: str, encoding: str | None = None) -> tuple[list[str], list[list[str]], int, str]:
    """(header, data rows, index of the address column, codec read with)."""
    if infile.is_dir():
        raise InvalidQuery(f"{infile} 是目录，不是 CSV 文件 / {infile} is a directory, not a CSV file",
                           parameter="infile")
    try:
        data = infile.read_bytes()
    except FileNotFoundError:
        raise InvalidQuery(f"文件不存在 / no such file: {infile}", parameter="infile") from None
    except OSError as exc:
        raise InvalidQuery(f"无法读取文件 / cannot read {infile}: {exc.strerror}", parameter="infile") from None
    if not data.strip():
        raise InvalidQuery(f"文件为空 / the file is empty: {infile}", parameter="infile")
    text, codec = decode_text(data, normalize_encoding(encoding, "encoding"), parameter="infile", what=infile.name)
    try:
        rows = [r for r in csv.reader(io.StringIO(text, newline="")) if r and any(c.strip() for c in r)]
    except csv.Error as exc:
        raise InvalidQuery(f"CSV 格式错误 / malformed CSV in {infile}: {exc}", parameter="infile") from None
    header, body = rows[0], rows[1:]
    k = _pick_column(header, column)
    if not body:
        raise InvalidQuery(f"文件没有数据行 / the file has a header but no rows: {infile}", parameter="infile")
    if len(body) > MAX_BATCH_ROWS * 10:
        raise InvalidQuery(f"行数过多 / too many rows: {len(body)}", parameter="infile")
    return header, body, k, codec


def _output_encoding(name: str | None) -> str:
    key = (name or DEFAULT_OUTPUT_ENCODING).strip().lower().replace("_", "-")
    key = {"utf8": "utf-8", "utf8-sig": "utf-8-sig", "gbk": "gb18030"}.get(key, key)
    if key not in OUTPUT_ENCODINGS:
        raise InvalidQuery(f"输出编码只能是 {', '.join(OUTPUT_ENCODINGS)} / the output encoding must be one of "
                           f"{', '.join(OUTPUT_ENCODINGS)}, got {name!r}", parameter="output-encoding")
    return key


def _check_out(out: Path, infile: Path) -> None:
    if out.is_dir():
        raise InvalidQuery(f"输出 {out} 是目录 / the output {out} is a directory", parameter="out")
    if not out.parent.is_dir():
        raise InvalidQuery(f"输出目录不存在 / no such directory for the output: {out.parent}", parameter="out")
    if out.exists() and infile.exists() and out.resolve() == infile.resolve():
        raise InvalidQuery(f"输出不能覆盖输入 / the output would overwrite the input: {out}", parameter="out")


def summary_line(total: int, out: Path, counts: dict[str, int], seconds: float) -> str:
    rate = total / seconds if seconds > 0 else 0.0
    parts = ", ".join(f"{_STATUS_LABELS[s]} {counts[s]}" for s in
                      ("matched", "partial", "ambiguous", "low_confidence", "unmatched"))
    return f"{total} 行 / rows → {out}: {parts} ({rate:,.0f} rows/s)"


def match_file(engine: Engine | Callable[[], Engine] | None, infile: Path, column: str, out: Path | None,
               progress: Callable[[str, int, int], None] | None = None, *, encoding: str | None = None,
               output_encoding: str | None = None, gazetteer: Gazetteer | None = None) -> str:
    """Match `infile` into `out` (default IN.matched.csv); the summary line, counting each row once
    by its status (matched, partial, ambiguous, low_confidence, unmatched). `gazetteer` spares
    the load from `engine` (tests)."""
    header, data, k, _ = read_table(infile, column, encoding)
    out_codec = _output_encoding(output_encoding)
    out = out or infile.with_name(infile.stem + ".matched.csv")
    _check_out(out, infile)
    if gazetteer is None:
        engine = engine() if callable(engine) else engine  # made only once the input is known good
        with engine.connect() as conn:
            gaz = load_gazetteer(conn)
            conn.rollback()
    else:
        gaz = gazetteer
    t0 = time.perf_counter()
    counts = dict.fromkeys(STATUSES, 0)
    total = len(data)
    added = [c for c in OUT_COLUMNS if c not in header]
    part = out.with_name(out.name + ".part")  # a failed run leaves no half-written OUT behind
    try:
        with open(part, "w", encoding=out_codec, newline="") as f:
            w = csv.writer(f)
            w.writerow(header + added)
            queries = [r[k] if k < len(r) else "" for r in data]
            n = 0
            for recs in formatted(gaz, queries, "records"):
                for rec in recs:
                    w.writerow(data[n] + [_cell(rec.get(c)) for c in added])
                    n += 1
                count_statuses(recs, counts)
                if progress is not None:
                    progress("匹配 / matching", n, total)
        os.replace(part, out)
    except OSError as exc:
        raise InvalidQuery(f"无法写入输出 / cannot write {out}: {exc.strerror}", parameter="out") from None
    finally:
        part.unlink(missing_ok=True)
    return summary_line(total, out, counts, time.perf_counter() - t0)
