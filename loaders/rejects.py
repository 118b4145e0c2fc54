"""The reject file: one CSV row per refused (or warned) source row, with the original values.

Columns: row (the source row number), reason (a stable code), severity (reject | warning),
message_zh, message_en, then the file's own columns as they were read (and geometry_wkt for
GIS formats). Written in UTF-8 with a byte-order mark so that Excel opens the Chinese text
correctly. The original values are read back from the source only for the rows in the file,
in one forward pass merged with the issues (both are in row order).
"""
from __future__ import annotations

import csv
from pathlib import Path
from typing import Iterator

from loaders.readers import Source
from registry.loading.reasons import RowIssue

HEAD = ["row", "reason", "severity", "message_zh", "message_en"]


class RejectWriter:
    def __init__(self, path: Path, source: Source) -> None:
        self.path = Path(path)
        self.source = source
        self.written = 0

    def __call__(self, issues: Iterator[RowIssue]) -> None:
        f = None
        writer = None
        raw = None
        current: tuple[int, dict] | None = None
        columns = list(self.source.columns)
        try:
            for issue in issues:
                if f is None:
                    self.path.parent.mkdir(parents=True, exist_ok=True)
                    f = open(self.path, "w", encoding="utf-8-sig", newline="")
                    writer = csv.writer(f)
                    raw = self.source.raw_rows()
                    extra = ["geometry_wkt"] if self.source.format != "csv" else []
                    writer.writerow(HEAD + columns + extra)
                    columns = columns + extra
                while current is None or current[0] < issue.row:
                    current = next(raw, None)
                    if current is None:
                        current = (1 << 62, {})
                values = current[1] if current[0] == issue.row else {}
                writer.writerow([issue.row, issue.code, issue.severity, issue.message_zh, issue.message_en]
                                + [values.get(c) if values.get(c) is not None else "" for c in columns])
                self.written += 1
        finally:
            if raw is not None:
                raw.close()
            if f is not None:
                f.close()
