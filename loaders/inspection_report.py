"""Writing a round's report to a file: .html (with the SVG map), .pdf or .csv."""
from __future__ import annotations

from pathlib import Path

from sqlalchemy import Connection

from loaders.errors import FileError
from registry.inspection.report import build_report, report_csv, report_html, report_pdf


def write_report(conn: Connection, round_number: int, path: Path) -> Path:
    suffix = path.suffix.lower()
    if suffix not in (".html", ".htm", ".pdf", ".csv"):
        raise FileError("unsupported_format", f"报告格式应为 .html、.pdf 或 .csv：{path.name}",
                        f"the report is written as .html, .pdf or .csv, not {path.name}")
    rep = build_report(conn, round_number)
    if suffix == ".pdf":
        path.write_bytes(report_pdf(rep))
    elif suffix == ".csv":
        path.write_text(report_csv(rep), encoding="utf-8")
    else:
        path.write_text(report_html(rep), encoding="utf-8")
    return path
