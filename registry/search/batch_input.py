"""The rows of a batch (CSV with a header, or JSON lines), read as the body arrives.

`RowReader(content_type, column)`: `feed(chunk)` as the bytes come, `finish()` for (rows, 'csv' |
'jsonl'). The bytes are cut at newlines and each run of whole lines is decoded and parsed at once,
so the body is never held whole: UTF-8, GBK and GB18030 never use the byte 0x0A inside a
character, so a run of lines decodes as it would inside the whole body. The rules are those of
reading the whole body (`registry.text.encoding.decode_text`): the Content-Type's charset wins;
without one, a body that decodes as UTF-8 is UTF-8, else GB18030 — a rule about the whole body, so
without a charset the bytes are also kept until the end and, when a line does not decode as UTF-8,
the body is read again as GB18030 from its start (or refused as decode_text refuses it). A CSV
record may span lines (a quoted field with a newline): lines are parsed only up to a newline
where the quotes seen are even, the rest waits for more bytes.

Errors name the line (1-based, the header is line 1, as a spreadsheet numbers them): bytes that
do not decode, a broken CSV line, a field over MAX_FIELD_CHARS, a JSON line that is not a string
or an object; more than MAX_BATCH_ROWS rows, an empty body and no data rows are refused too.
"""
from __future__ import annotations

import codecs
import csv
import json

from registry.errors import InvalidQuery
from registry.search.validate import MAX_BATCH_ROWS
from registry.text.encoding import choose_encoding, decode_text, normalize_encoding

DEFAULT_COLUMNS = ("地址", "address", "q", "query", "addr")
JSONL_TYPES = ("application/x-ndjson", "application/jsonl", "application/json-lines", "application/json")
# Longer than any address by far; checked here rather than left to csv.field_size_limit, which is
# process-wide (loaders/readers.py raises it to 1 MiB when imported).
MAX_FIELD_CHARS = 100_000
# Codecs whose multi-byte characters never contain the byte 0x0A (lines can be decoded one run at
# a time); any other codec a caller names is read once the body is whole.
_LINE_SAFE = frozenset({"utf-8", "utf-8-sig", "gbk", "gb18030", "ascii", "latin-1", "iso8859-1"})


def pick_column(header: list[str], column: str | None) -> int:
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


def _field_too_long(n: int) -> InvalidQuery:
    return InvalidQuery(f"第 {n} 行的字段超过 {MAX_FIELD_CHARS:,} 个字符 / line {n} has a field longer than "
                        f"{MAX_FIELD_CHARS:,} characters", parameter="body", line=n)


def charset_of(content_type: str) -> str | None:
    for param in (content_type or "").split(";")[1:]:
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset":
            return value.strip().strip('"') or None
    return None


class _Lines:
    """The csv reader's input: lines handed over as they are decoded. A csv reader asks again
    after a StopIteration, so one reader parses the whole body."""

    def __init__(self) -> None:
        self.pending: list[str] = []
        self.pos = 0

    def __iter__(self):
        return self

    def __next__(self) -> str:
        if self.pos < len(self.pending):
            line = self.pending[self.pos]
            self.pos += 1
            return line
        self.pending, self.pos = [], 0
        raise StopIteration


class _CsvRows:
    def __init__(self, column: str | None) -> None:
        self.column = column
        self.lines = _Lines()
        self.reader = csv.reader(self.lines)
        self.k: int | None = None
        self.held = ""  # decoded lines after the last newline where the quotes seen were even
        self.header_seen = False

    def add(self, text: str, rows: "_Rows", final: bool) -> None:
        text = self.held + text if self.held else text
        self.held = ""
        if not final and '"' in text:
            cut = _even_quote_end(text)
            text, self.held = text[:cut], text[cut:]
        if not text:
            return
        parts = text.split("\n")
        last = parts.pop()  # "" after a final newline
        self.lines.pending = [p + "\n" for p in parts] + ([last] if last else [])
        self.lines.pos = 0
        reader = self.reader
        try:
            for row in reader:
                if self.k is None:
                    self.header_seen = True
                    self.k = pick_column(row, self.column)
                    continue
                if any(len(cell) > MAX_FIELD_CHARS for cell in row):
                    raise _field_too_long(reader.line_num)
                k = self.k
                rows.add(row[k] if k < len(row) else "")
        except csv.Error as exc:  # a field over csv's field limit, a broken quote…: the line, never a 500
            n = reader.line_num
            raise InvalidQuery(f"CSV 第 {n} 行无法读取 / CSV line {n} cannot be read: {exc}", parameter="body",
                               line=n) from None

    def end(self, rows: "_Rows") -> None:
        if self.held:
            self.add("", rows, final=True)
        if not self.header_seen:
            raise InvalidQuery("CSV 为空 / the CSV is empty", parameter="body")


def _even_quote_end(text: str) -> int:
    """The end of the longest prefix of whole lines of `text` with an even number of quotes."""
    cut = 0
    odd = False
    start = 0
    while True:
        nl = text.find("\n", start)
        if nl < 0:
            return cut
        if text.count('"', start, nl) % 2:
            odd = not odd
        start = nl + 1
        if not odd:
            cut = start


class _JsonRows:
    def __init__(self, column: str | None) -> None:
        self.keys = (column,) if column else DEFAULT_COLUMNS
        self.n = 0

    def add(self, text: str, rows: "_Rows", final: bool) -> None:
        keys = self.keys
        for line in text.splitlines():
            self.n += 1
            n = self.n
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
                raise _field_too_long(n)
            if isinstance(value, str):
                rows.add(value)
            elif isinstance(value, dict):
                found = next((value[k] for k in keys if k in value), None)
                rows.add(found if isinstance(found, str) else "")
            else:
                raise InvalidQuery(f"第 {n} 行应为字符串或对象 / line {n} must be a string or an object",
                                   parameter="body", line=n)

    def end(self, rows: "_Rows") -> None:
        pass


class _Rows:
    """The rows kept (at most MAX_BATCH_ROWS; the rest only counted, for the error)."""

    def __init__(self) -> None:
        self.kept: list[str] = []
        self.count = 0

    def add(self, value: str) -> None:
        self.count += 1
        if self.count <= MAX_BATCH_ROWS:
            self.kept.append(value)


class RowReader:
    def __init__(self, content_type: str, column: str | None = None) -> None:
        self.given = normalize_encoding(charset_of(content_type), "charset")  # an unknown charset: refused now
        media = (content_type or "").split(";")[0].strip().lower()
        self.fmt = "jsonl" if media in JSONL_TYPES else "csv"
        self.column = column
        self._start()
        self.raw: list[bytes] | None = [] if self.given is None or self.given not in _LINE_SAFE else None
        self.whole = self.given is not None and self.given not in _LINE_SAFE  # decoded once complete
        self.tail = b""  # bytes after the last newline
        self.lines_before = 0  # newlines decoded so far (for the line an error names)
        self.first = True
        self.nonblank = False
        self.codec: str | None = None
        self.deferred: InvalidQuery | None = None  # a parse error while the encoding is still a guess
        self.fallback = False  # without a charset, a line was not UTF-8: the whole body as decode_text reads it

    def _start(self) -> None:
        self.parser = _JsonRows(self.column) if self.fmt == "jsonl" else _CsvRows(self.column)
        self.rows = _Rows()

    def feed(self, chunk: bytes) -> None:
        if not chunk:
            return
        if not self.nonblank and chunk.strip():
            self.nonblank = True
        if self.raw is not None:
            self.raw.append(chunk)
        if self.whole or self.fallback:
            return
        data = self.tail + chunk if self.tail else chunk
        nl = data.rfind(b"\n")
        if nl < 0:
            self.tail = data
            return
        block, self.tail = data[:nl + 1], data[nl + 1:]
        self._block(block, final=False)

    def _block(self, block: bytes, final: bool) -> None:
        if self.first:
            self.first = False
            self.codec = choose_encoding(self.given, bom=block.startswith(codecs.BOM_UTF8), utf8_ok=True)
            codec = self.codec
        else:
            codec = "utf-8" if self.codec == "utf-8-sig" else self.codec
        try:
            text = block.decode(codec)
        except UnicodeDecodeError:
            if self.given is None:  # not UTF-8 after all: the whole body, read by decode_text's rule
                self.fallback = True
                return
            # decode_text names the line: behind as many newlines as came before, it is the body's
            decode_text(b"\n" * self.lines_before + block, self.given, parameter="body")
            raise  # pragma: no cover - decode_text raised
        self.lines_before += block.count(b"\n")
        if self.deferred is not None:
            return
        try:
            self.parser.add(text, self.rows, final)
        except InvalidQuery as exc:
            if self.given is not None:
                raise
            self.deferred = exc  # refused only if the body turns out to be UTF-8

    def finish(self) -> tuple[list[str], str]:
        if not self.nonblank:
            raise InvalidQuery("请求体为空 / the request body is empty", parameter="body")
        if not self.whole and not self.fallback and (self.tail or self.first):
            self._block(self.tail, final=True)
            self.tail = b""
        if self.whole or self.fallback:
            body = b"".join(self.raw or ())
            self.raw = None
            text, _ = decode_text(body, self.given, parameter="body")
            del body
            self._start()
            self.parser.add(text, self.rows, final=True)
        else:
            self.raw = None
            if self.deferred is not None:
                raise self.deferred
            self.parser.add("", self.rows, final=True)
        self.parser.end(self.rows)
        if self.rows.count > MAX_BATCH_ROWS:
            n = self.rows.count
            raise InvalidQuery(f"行数过多：{n}，最多 {MAX_BATCH_ROWS} / too many rows: {n}, at most "
                               f"{MAX_BATCH_ROWS}", parameter="body", rows=n)
        if not self.rows.kept:
            raise InvalidQuery("没有数据行 / no data rows", parameter="body")
        return self.rows.kept, self.fmt


def parse_body(body: bytes, content_type: str, column: str | None = None) -> tuple[list[str], str]:
    """(rows, 'csv'|'jsonl') of a body held whole (see RowReader)."""
    reader = RowReader(content_type, column)
    reader.feed(body)
    return reader.finish()
