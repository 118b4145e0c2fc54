"""Which text encoding a file or a request body is in: the one rule the loaders, `registry match`
and `POST /v1/match` share.

Agencies' lists come out of Excel as UTF-8 with a BOM, plain UTF-8, or GBK (Excel's "CSV" on a
Chinese Windows). The rule: a given encoding wins; else a UTF-8 BOM means UTF-8; else text that
decodes as UTF-8 is UTF-8; else GB18030, a superset of GBK and GB2312 (GBK text that happens to be
valid UTF-8 is practically nonexistent for Chinese text).
"""
from __future__ import annotations

import codecs

from registry.errors import InvalidQuery

#: What a user may name (`--encoding`, a Content-Type's charset); "auto" detects.
INPUT_ENCODINGS = ("auto", "utf-8", "gb18030", "gbk")
#: What `registry match` may write: UTF-8 with a BOM (Excel reads it right), plain UTF-8, GB18030.
OUTPUT_ENCODINGS = ("utf-8-sig", "utf-8", "gb18030")
_ALIASES = {"utf8": "utf-8", "utf-8": "utf-8", "utf_8": "utf-8", "utf-8-sig": "utf-8", "utf8-sig": "utf-8",
            "gb18030": "gb18030", "gbk": "gbk", "cp936": "gbk", "gb2312": "gb18030", "gb-2312": "gb18030",
            "auto": "auto"}


class UnknownEncoding(InvalidQuery):
    code = "unknown-encoding"


class UndecodableText(InvalidQuery):
    code = "undecodable-text"


def normalize_encoding(name: str | None, parameter: str = "encoding") -> str | None:
    """None for "auto"/absent, else the codec's name; an unknown name is refused, naming it."""
    if name is None:
        return None
    key = name.strip().strip('"').lower()
    if key in _ALIASES:
        return None if _ALIASES[key] == "auto" else _ALIASES[key]
    try:
        return codecs.lookup(key).name
    except LookupError:
        raise UnknownEncoding(f"未知的编码 {name}（可用 {', '.join(INPUT_ENCODINGS)}）/ unknown encoding {name!r} "
                              f"(use one of: {', '.join(INPUT_ENCODINGS)})", parameter=parameter) from None


def choose_encoding(given: str | None, *, bom: bool, utf8_ok: bool) -> str:
    """The codec to read with: `given` if any (utf-8 with a BOM reads as utf-8-sig), else detected
    from whether the bytes start with a UTF-8 BOM and whether they decode as UTF-8."""
    if given:
        name = normalize_encoding(given)
        if name is not None:
            return "utf-8-sig" if name in ("utf-8", "utf_8") and bom else name
    if bom:
        return "utf-8-sig"
    if utf8_ok:
        return "utf-8"
    return "gb18030"


def decode_text(data: bytes, given: str | None = None, *, parameter: str = "body", what: str = "") -> tuple[str, str]:
    """(text, codec) of bytes held in memory. Bytes that do not decode are refused naming the line
    (1-based, as a spreadsheet numbers them with the header as line 1) and the codec tried."""
    bom = data.startswith(codecs.BOM_UTF8)
    utf8_error = None
    if not given or normalize_encoding(given, parameter) is None:
        try:
            text = data.decode("utf-8-sig")
            return text, "utf-8-sig" if bom else "utf-8"
        except UnicodeDecodeError as exc:
            utf8_error = exc
    codec = choose_encoding(given, bom=bom, utf8_ok=False)
    try:
        return data.decode(codec), codec
    except UnicodeDecodeError as exc:
        if utf8_error is not None and utf8_error.start > exc.start:
            # Detected, and neither reads: the text is in the codec that read further (a UTF-8
            # list with one pasted GBK line), so name the line where that one stopped.
            exc, codec = utf8_error, "utf-8-sig" if bom else "utf-8"
        line = data.count(b"\n", 0, exc.start) + 1
        where = f"{what}：" if what else ""
        where_en = f"{what}: " if what else ""
        raise UndecodableText(
            f"{where}第 {line} 行不是有效的 {codec} 编码文本，请指定正确的编码 / {where_en}line {line} is not valid "
            f"{codec} text; name the right encoding", parameter=parameter, line=line, encoding=codec) from None


__all__ = ["INPUT_ENCODINGS", "OUTPUT_ENCODINGS", "UndecodableText", "UnknownEncoding", "choose_encoding",
           "decode_text", "normalize_encoding"]
