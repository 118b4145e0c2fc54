"""`registry match IN.csv --column 地址 -o OUT.csv`: batch matching from the command line.

The input columns are kept and the match columns appended, rows in input order. The gazetteer
is loaded once from the registry's database (a few seconds at city scale)."""
from __future__ import annotations

import csv
import time
from pathlib import Path
from typing import Callable

from sqlalchemy import Engine

from registry.errors import InvalidQuery
from registry.search.batch import COLUMNS, _cell, formatted
from registry.search.loading import load_gazetteer
from registry.search.validate import MAX_BATCH_ROWS

OUT_COLUMNS = tuple(c for c in COLUMNS if c not in ("row", "input"))


def match_file(engine: Engine, infile: Path, column: str, out: Path | None,
               progress: Callable[[str, int, int], None] | None = None) -> str:
    try:
        with open(infile, encoding="utf-8-sig", newline="") as f:
            rows = list(csv.reader(f))
    except FileNotFoundError:
        raise InvalidQuery(f"文件不存在 / no such file: {infile}", parameter="infile") from None
    except UnicodeDecodeError:
        raise InvalidQuery(f"文件应为 UTF-8 / the file must be UTF-8: {infile}", parameter="infile") from None
    if not rows:
        raise InvalidQuery(f"文件为空 / the file is empty: {infile}", parameter="infile")
    header, data = rows[0], rows[1:]
    if column not in header:
        raise InvalidQuery(f"没有列“{column}”，有：{', '.join(header)} / no column {column!r}; columns: "
                           f"{', '.join(header)}", parameter="column")
    if len(data) > MAX_BATCH_ROWS * 10:
        raise InvalidQuery(f"行数过多 / too many rows: {len(data)}", parameter="infile")
    k = header.index(column)
    out = out or infile.with_name(infile.stem + ".matched.csv")
    with engine.connect() as conn:
        gaz = load_gazetteer(conn)
        conn.rollback()
    t0 = time.perf_counter()
    matched = low = 0
    total = len(data)
    with open(out, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(header + [c for c in OUT_COLUMNS if c not in header])
        queries = [r[k] if k < len(r) else "" for r in data]
        n = 0
        for recs in formatted(gaz, queries, "records"):
            for rec in recs:
                row = data[n]
                n += 1
                w.writerow(row + [_cell(rec.get(c)) for c in OUT_COLUMNS if c not in header])
                matched += rec.get("id") is not None
                low += bool(rec.get("low_confidence"))
            if progress is not None:
                progress("匹配 / matching", n, total)
    seconds = time.perf_counter() - t0
    rate = total / seconds if seconds > 0 else 0.0
    return (f"{total} 行 / rows → {out}: {matched} matched, {low} low-confidence, "
            f"{total - matched} unmatched ({rate:,.0f} rows/s)")
