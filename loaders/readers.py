"""Reading input files as a stream of batches: CSV (UTF-8 or GB18030/GBK), and through pyogrio
(GDAL) GeoPackage, Shapefile, GeoJSON and FlatGeobuf.

Nothing reads a whole file into memory. A CSV is first scanned once in 1 MiB blocks (SHA-256,
UTF-8 validity, line lengths, line count), so that a wrong encoding, a binary file or a 2 GB
line is refused before anything is loaded; then it is parsed record by record. GDAL formats are
read in feature windows (skip/max), except GeoJSON, which GDAL parses whole anyway.

Row numbers in messages and reject files: for a CSV the line where the record starts (the header
is line 1, as a spreadsheet shows it); for the other formats the feature's position (1-based).
"""
from __future__ import annotations

import codecs
import csv
import hashlib
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from loaders.errors import FileError
from registry.text.encoding import UnknownEncoding, choose_encoding

log = logging.getLogger(__name__)

MAX_LINE_BYTES = 1 << 20  # 1 MiB: a real row is under 1 KB; beyond this it is not a CSV row
BLOCK = 1 << 20
FORMATS = ("csv", "gpkg", "shp", "geojson", "fgb", "xlsx")
_EXT = {".csv": "csv", ".txt": "csv", ".tsv": "csv", ".gpkg": "gpkg", ".shp": "shp", ".geojson": "geojson",
        ".json": "geojson", ".fgb": "fgb", ".xlsx": "xlsx"}
_DRIVERS = {"gpkg": "GPKG", "shp": "ESRI Shapefile", "geojson": "GeoJSON", "fgb": "FlatGeobuf"}
_SHP_SIDECARS = (".shp", ".shx", ".dbf", ".prj", ".cpg")

csv.field_size_limit(MAX_LINE_BYTES)


@dataclass
class RawBatch:
    rows: list[int]
    columns: dict[str, list]  # source column -> values as read (str, "" or None; not stripped)
    wkb: list | None = None  # GDAL formats: the geometry as WKB (source CRS)
    issues: list | None = None  # per row: (code, params) or None


def detect_format(path: Path, given: str | None) -> str:
    if given:
        fmt = given.lower().lstrip(".")
        fmt = {"shapefile": "shp", "json": "geojson", "flatgeobuf": "fgb", "geopackage": "gpkg"}.get(fmt, fmt)
        if fmt not in FORMATS:
            raise FileError("unsupported_format", f"不支持的格式 {given}（支持 {', '.join(FORMATS)}）",
                            f"unsupported format {given!r} (supported: {', '.join(FORMATS)})")
        return fmt
    fmt = _EXT.get(path.suffix.lower())
    if fmt is None:
        raise FileError("unsupported_format", f"无法从扩展名判断格式：{path.name}，请用 --format 指定",
                        f"cannot tell the format of {path.name} from its extension; give --format")
    return fmt


def _check_exists(path: Path) -> None:
    if not path.exists():
        raise FileError("file_not_found", f"文件不存在：{path}", f"file not found: {path}")
    if path.is_dir():
        raise FileError("file_not_found", f"这是一个目录：{path}", f"{path} is a folder, not a file")


def sha256_of(paths: list[Path]) -> str:
    h = hashlib.sha256()
    for p in paths:
        with open(p, "rb") as f:
            while block := f.read(BLOCK):
                h.update(block)
    return h.hexdigest()


class Source:
    """A readable input: its columns, CRS as declared, row count (estimate), batches."""

    format: str
    path: Path
    columns: list[str]
    declared_crs: str | None
    checksum: str
    estimated_rows: int | None
    geometry_type: str | None = None
    layer: str | None = None

    def batches(self, size: int) -> Iterator[RawBatch]:  # pragma: no cover - interface
        raise NotImplementedError

    def raw_rows(self) -> Iterator[tuple[int, dict[str, str | None]]]:
        """Every row again (for the reject file), as the original values by column."""
        for batch in self.batches(50_000):
            for i, row_no in enumerate(batch.rows):
                values = {c: batch.columns[c][i] for c in self.columns}
                if batch.wkb is not None:
                    values["geometry_wkt"] = _wkt(batch.wkb[i])
                yield row_no, values


def _wkt(wkb) -> str | None:
    if wkb is None:
        return None
    try:
        import shapely

        return shapely.to_wkt(shapely.from_wkb(wkb), rounding_precision=8)
    except Exception:
        return "<unreadable geometry>"


# --- CSV ----------------------------------------------------------------------------------------
class CsvSource(Source):
    format = "csv"

    def __init__(self, path: Path, *, encoding: str | None = None) -> None:
        _check_exists(path)
        self.path = path
        self.layer = None
        size = path.stat().st_size
        if size == 0:
            raise FileError("empty_file", f"文件为空：{path.name}", f"the file is empty: {path.name}")
        self.checksum, utf8_ok, bom, lines = self._scan(path)
        try:
            self.encoding = choose_encoding(encoding, bom=bom, utf8_ok=utf8_ok)
        except UnknownEncoding:
            raise FileError("bad_encoding", f"未知的编码 {encoding}", f"unknown encoding {encoding!r}") from None
        self.estimated_rows = max(lines - 1, 0)
        header_sample = self._first_line()
        self.delimiter = "\t" if header_sample.count("\t") > header_sample.count(",") else ","
        prj = path.with_suffix(".prj")
        self.declared_crs = prj.read_text(encoding="utf-8", errors="replace").strip() if prj.exists() else None
        records = self._records()
        try:
            _, header = next(records)
        except StopIteration:
            raise FileError("empty_file", f"文件没有表头：{path.name}", f"the file has no header: {path.name}") from None
        self.columns = [c.strip() for c in header]
        if not any(self.columns):
            raise FileError("empty_file", f"表头为空：{path.name}", f"the header of {path.name} is empty")
        dupes = {c for c in self.columns if c and self.columns.count(c) > 1}
        if dupes:
            raise FileError("malformed_csv", f"表头有重复的列：{', '.join(sorted(dupes))}",
                            f"the header repeats column(s): {', '.join(sorted(dupes))}")
        if self.estimated_rows == 0 and next(records, None) is None:
            raise FileError("empty_file", f"文件没有数据行：{path.name}", f"the file has a header but no rows: {path.name}")
        records.close()

    @staticmethod
    def _scan(path: Path) -> tuple[str, bool, bool, int]:
        """One pass in 1 MiB blocks: SHA-256, UTF-8 validity, longest line, line count."""
        h = hashlib.sha256()
        decoder = codecs.getincrementaldecoder("utf-8")()
        utf8_ok = True
        run = 0  # bytes since the last newline
        lines = 0
        line_no = 1
        with open(path, "rb") as f:
            first = True
            while block := f.read(BLOCK):
                h.update(block)
                if first:
                    bom = block.startswith(codecs.BOM_UTF8)
                    if b"\x00" in block[:4096]:
                        raise FileError("malformed_csv", "文件含有二进制内容（NUL 字节），不是 CSV 文本",
                                        "the file contains binary data (NUL bytes): not a CSV text file")
                    first = False
                if utf8_ok:
                    try:
                        decoder.decode(block)
                    except UnicodeDecodeError:
                        utf8_ok = False
                nl = block.find(b"\n")
                if nl < 0:
                    run += len(block)
                else:
                    run += nl
                    if run > MAX_LINE_BYTES:
                        break
                    count = block.count(b"\n")
                    lines += count
                    line_no += count
                    run = len(block) - block.rfind(b"\n") - 1
                if run > MAX_LINE_BYTES:
                    break
            if run > MAX_LINE_BYTES:
                raise FileError("line_too_long", f"第 {line_no} 行超过 {MAX_LINE_BYTES // 1024} KB，不是正常的 CSV 行",
                                f"line {line_no} is longer than {MAX_LINE_BYTES // 1024} KB: not a CSV row",
                                line=line_no)
            if utf8_ok:
                try:
                    decoder.decode(b"", final=True)
                except UnicodeDecodeError:
                    utf8_ok = False
        if run > 0:
            lines += 1
        return h.hexdigest(), utf8_ok, bom, lines

    def _first_line(self) -> str:
        with open(self.path, "rb") as f:
            line = f.readline(MAX_LINE_BYTES)
        return line.decode(self.encoding, errors="replace")

    def _records(self) -> Iterator[tuple[int, list[str]]]:
        """(line where the record starts, fields). The pre-scan has already refused over-long
        lines, and csv.field_size_limit bounds a field that an unbalanced quote runs on."""
        with open(self.path, encoding=self.encoding, newline="") as f:
            reader = csv.reader(f, delimiter=self.delimiter, strict=True)
            last = 0
            while True:
                try:
                    record = next(reader)
                except StopIteration:
                    return
                except csv.Error as exc:
                    raise FileError("malformed_csv",
                                    f"CSV 格式错误（第 {last + 1} 行起，可能引号未闭合）：{exc}",
                                    f"malformed CSV from line {last + 1} (an unbalanced quote?): {exc}",
                                    line=last + 1) from None
                except UnicodeDecodeError:
                    raise FileError("bad_encoding", f"第 {last + 1} 行附近不是 {self.encoding} 编码，请用 --encoding 指定",
                                    f"text near line {last + 1} is not valid {self.encoding}; give the right --encoding",
                                    line=last + 1) from None
                start = last + 1
                last = reader.line_num
                if not record or (len(record) == 1 and not record[0].strip()):
                    continue  # a blank line
                yield start, record

    def batches(self, size: int) -> Iterator[RawBatch]:
        from itertools import islice

        records = self._records()
        next(records)  # header
        ncols = len(self.columns)
        while True:
            chunk = list(islice(records, size))
            if not chunk:
                return
            rows = [start for start, _ in chunk]
            recs = [rec for _, rec in chunk]
            issues = None
            for i in [i for i, rec in enumerate(recs) if len(rec) != ncols]:
                rec = recs[i]
                if len(rec) > ncols and not any(v.strip() for v in rec[ncols:]):
                    recs[i] = rec[:ncols]  # trailing empty fields (a stray delimiter at the end)
                    continue
                if issues is None:
                    issues = [None] * len(recs)
                issues[i] = ("wrong_field_count", {"found": len(rec), "expected": ncols})
                recs[i] = (rec + [""] * ncols)[:ncols]
            yield self._batch(rows, recs, issues)

    def _batch(self, rows: list[int], recs: list[list[str]], issues: list | None) -> RawBatch:
        # Values as read ("" for an empty field): consumers strip, and cache on the raw text.
        return RawBatch(rows, dict(zip(self.columns, zip(*recs))), issues=issues)


# --- GDAL formats through pyogrio ------------------------------------------------------------
def _to_strings(values: np.ndarray) -> list:
    kind = values.dtype.kind
    if kind == "O" or kind == "U":
        out = []
        for v in values.tolist():
            if v is None or (isinstance(v, float) and math.isnan(v)):
                out.append(None)
            elif isinstance(v, bytes):
                out.append(v.decode("utf-8", errors="replace").strip() or None)
            else:
                s = str(v).strip()
                out.append(s or None)
        return out
    if kind == "f":
        out = []
        for v in values.tolist():
            if math.isnan(v):
                out.append(None)
            elif v.is_integer() and abs(v) < 1e15:
                out.append(str(int(v)))
            else:
                out.append(repr(v))
        return out
    if kind in "iu":
        return [str(v) for v in values.tolist()]
    if kind == "b":
        return ["true" if v else "false" for v in values.tolist()]
    if kind == "M":
        return [None if np.isnat(v) else str(v)[:10] if str(v).endswith("T00:00:00.000000000") or len(str(v)) == 10
                else str(v) for v in values]
    return [None if v is None else str(v) for v in values.tolist()]


class OgrSource(Source):
    def __init__(self, path: Path, fmt: str, *, layer: str | None = None, encoding: str | None = None,
                 prefer_layer: str | None = None) -> None:
        import pyogrio

        _check_exists(path)
        self.path = path
        self.format = fmt
        self.encoding = encoding
        if path.stat().st_size == 0:
            raise FileError("empty_file", f"文件为空：{path.name}", f"the file is empty: {path.name}")
        if fmt == "shp":
            files = [path.with_suffix(ext) for ext in _SHP_SIDECARS if path.with_suffix(ext).exists()]
            if not path.with_suffix(".dbf").exists():
                raise FileError("unreadable_file", f"缺少 {path.with_suffix('.dbf').name}",
                                f"{path.with_suffix('.dbf').name} is missing")
        else:
            files = [path]
        self.checksum = sha256_of(files)
        if fmt == "xlsx":
            # A spreadsheet (GDAL's XLSX driver, one layer per sheet): the first row is always the
            # header and every cell is read as text (codes such as 330502003 must not become numbers).
            pyogrio.set_gdal_config_options({"OGR_XLSX_HEADERS": "FORCE", "OGR_XLSX_FIELD_TYPES": "STRING"})
        try:
            layers = [str(name) for name, _ in pyogrio.list_layers(path)]
        except Exception as exc:
            raise FileError("unreadable_file", f"无法读取 {path.name}（文件损坏或格式不符）：{exc}",
                            f"cannot read {path.name} (damaged or not a {fmt} file): {exc}") from None
        if not layers:
            raise FileError("no_layer", f"{path.name} 中没有图层", f"{path.name} has no layer")
        if layer is None:
            if len(layers) == 1:
                layer = layers[0]
            elif prefer_layer in layers:
                layer = prefer_layer
            else:
                raise FileError("no_layer", f"{path.name} 有多个图层，请用 --layer 指定：{', '.join(layers)}",
                                f"{path.name} has several layers; choose one with --layer: {', '.join(layers)}")
        elif layer not in layers:
            raise FileError("no_layer", f"{path.name} 中没有图层 {layer}（有：{', '.join(layers)}）",
                            f"{path.name} has no layer {layer!r} (it has: {', '.join(layers)})")
        self.layer = layer
        try:
            info = pyogrio.read_info(path, layer=layer, encoding=encoding)
        except Exception as exc:
            raise FileError("unreadable_file", f"无法读取图层 {layer}：{exc}", f"cannot read layer {layer!r}: {exc}") from None
        self.columns = [str(c) for c in info["fields"]]
        self.declared_crs = info.get("crs")
        self.geometry_type = info.get("geometry_type")
        count = info.get("features")
        self.estimated_rows = count if count is not None and count >= 0 else None
        if self.estimated_rows == 0:
            raise FileError("empty_file", f"图层 {layer} 没有要素", f"layer {layer!r} has no features")

    def batches(self, size: int) -> Iterator[RawBatch]:
        from pyogrio.raw import read

        if self.format == "geojson":
            size = max(size, self.estimated_rows or 0)  # GDAL parses GeoJSON whole: read it once
        skip = 0
        while True:
            try:
                _meta, _fids, geometry, field_data = read(
                    self.path, layer=self.layer, skip_features=skip, max_features=size, encoding=self.encoding)
            except ValueError as exc:
                if "skip_features" in str(exc) and skip > 0:
                    return  # read past the end
                raise FileError("unreadable_file", f"读取 {self.path.name} 出错（第 {skip + 1} 个要素起）：{exc}",
                                f"error reading {self.path.name} from feature {skip + 1}: {exc}") from None
            except Exception as exc:
                raise FileError("unreadable_file", f"读取 {self.path.name} 出错（第 {skip + 1} 个要素起）：{exc}",
                                f"error reading {self.path.name} from feature {skip + 1}: {exc}") from None
            n = len(field_data[0]) if field_data else (len(geometry) if geometry is not None else 0)
            if n == 0:
                return
            columns = {c: _to_strings(v) for c, v in zip(self.columns, field_data)}
            wkb = list(geometry) if geometry is not None else [None] * n
            yield RawBatch(list(range(skip + 1, skip + n + 1)), columns, wkb=wkb)
            skip += n
            if n < size or (self.estimated_rows is not None and skip >= self.estimated_rows):
                return


def open_source(path: Path, *, fmt: str | None = None, layer: str | None = None, encoding: str | None = None,
                prefer_layer: str | None = None) -> Source:
    path = Path(path)
    kind = detect_format(path, fmt)
    if kind == "csv":
        return CsvSource(path, encoding=encoding)
    return OgrSource(path, kind, layer=layer, encoding=encoding, prefer_layer=prefer_layer)
