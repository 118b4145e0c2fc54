"""Basic CQL2 in its text encoding (OGC 21-065, conformance class `basic-cql2`) → a SQL WHERE.

What is understood: comparisons `= <> < <= > >=` between a queryable and a literal (either side),
`AND` / `OR` / `NOT` and parentheses, `[NOT] LIKE '…'` (`%` and `_` wildcards), `[NOT] IN (…)`,
`IS [NOT] NULL`; string, number and boolean literals, `DATE('…')` and `TIMESTAMP('…')`. The
attributes are the collection's queryables only. Values never enter the SQL text: every literal is a
bound parameter, and attribute names come from the collection's own definitions. A filter that does
not parse, names an unknown attribute or compares mismatched types is an InvalidQuery naming
`filter` and the position.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from registry.errors import InvalidQuery
from registry.features.collections import Collection

_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<string>'(?:[^']|'')*')
  | (?P<number>-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)
  | (?P<op><>|<=|>=|=|<|>)
  | (?P<punct>[(),])
  | (?P<qident>"[^"]+")
  | (?P<ident>[A-Za-z_][A-Za-z0-9_:.\-]*)
""", re.VERBOSE)
_KEYWORDS = {"AND", "OR", "NOT", "LIKE", "IN", "IS", "NULL", "TRUE", "FALSE", "DATE", "TIMESTAMP"}
MAX_FILTER_LENGTH = 4000


@dataclass(frozen=True)
class Token:
    kind: str
    value: str
    pos: int


def _bad(message_zh: str, message_en: str, pos: int | None = None) -> InvalidQuery:
    where = f"（第 {pos + 1} 个字符）" if pos is not None else ""
    where_en = f" (at character {pos + 1})" if pos is not None else ""
    return InvalidQuery(f"filter 无效{where}：{message_zh} / invalid filter{where_en}: {message_en}",
                        parameter="filter")


def _tokens(text: str) -> list[Token]:
    out, i = [], 0
    while i < len(text):
        m = _TOKEN.match(text, i)
        if m is None:
            raise _bad(f"无法识别 {text[i:i + 10]!r}", f"cannot read {text[i:i + 10]!r}", i)
        kind = m.lastgroup
        if kind != "ws":
            value = m.group()
            if kind == "ident" and value.upper() in _KEYWORDS:
                kind, value = "kw", value.upper()
            out.append(Token(kind, value, i))
        i = m.end()
    out.append(Token("end", "", len(text)))
    return out


class _Parser:
    def __init__(self, text: str, collection: Collection) -> None:
        self.toks = _tokens(text)
        self.i = 0
        self.c = collection
        self.params: dict[str, Any] = {}

    # -- helpers ----------------------------------------------------------------------------
    @property
    def tok(self) -> Token:
        return self.toks[self.i]

    def take(self, kind: str, value: str | None = None) -> Token | None:
        t = self.tok
        if t.kind == kind and (value is None or t.value == value):
            self.i += 1
            return t
        return None

    def expect(self, kind: str, value: str | None = None) -> Token:
        t = self.take(kind, value)
        if t is None:
            want = value or kind
            got = self.tok.value or "结尾 / end"
            raise _bad(f"应为 {want}，却是 {got}", f"expected {want}, got {got}", self.tok.pos)
        return t

    def bind(self, value: Any) -> str:
        name = f"cql_{len(self.params)}"
        self.params[name] = value
        return f":{name}"

    # -- grammar ----------------------------------------------------------------------------
    def parse(self) -> str:
        sql = self.or_()
        if self.tok.kind != "end":
            raise _bad(f"多余的 {self.tok.value}", f"unexpected {self.tok.value}", self.tok.pos)
        return sql

    def or_(self) -> str:
        parts = [self.and_()]
        while self.take("kw", "OR"):
            parts.append(self.and_())
        return parts[0] if len(parts) == 1 else "(" + " OR ".join(parts) + ")"

    def and_(self) -> str:
        parts = [self.not_()]
        while self.take("kw", "AND"):
            parts.append(self.not_())
        return parts[0] if len(parts) == 1 else "(" + " AND ".join(parts) + ")"

    def not_(self) -> str:
        if self.take("kw", "NOT"):
            return f"(NOT {self.not_()})"
        if self.take("punct", "("):
            inner = self.or_()
            self.expect("punct", ")")
            return inner
        return self.predicate()

    def scalar(self) -> tuple[str, str, Any]:
        """(kind, sql, type): a queryable (`prop`) or a bound literal (`lit`)."""
        t = self.tok
        if t.kind in ("ident", "qident"):
            self.i += 1
            name = t.value.strip('"')
            prop = self.c.prop(name)
            if prop is None or not prop.queryable:
                names = ", ".join(p.name for p in self.c.queryables)
                raise _bad(f"{name} 不是可查询属性（可用：{names}）",
                           f"{name} is not a queryable of {self.c.id} (queryables: {names})", t.pos)
            return "prop", f'f."{prop.name}"', prop.type
        if t.kind == "string":
            self.i += 1
            return "lit", self.bind(t.value[1:-1].replace("''", "'")), "string"
        if t.kind == "number":
            self.i += 1
            value = float(t.value) if re.search(r"[.eE]", t.value) else int(t.value)
            return "lit", self.bind(value), "number"
        if t.kind == "kw" and t.value in ("TRUE", "FALSE"):
            self.i += 1
            return "lit", self.bind(t.value == "TRUE"), "boolean"
        if t.kind == "kw" and t.value in ("DATE", "TIMESTAMP"):
            self.i += 1
            self.expect("punct", "(")
            s = self.expect("string")
            self.expect("punct", ")")
            raw = s.value[1:-1]
            try:
                value: Any = date.fromisoformat(raw) if t.value == "DATE" else \
                    datetime.fromisoformat(raw.replace("Z", "+00:00"))
            except ValueError:
                raise _bad(f"{t.value} 的值 {raw!r} 无效", f"{t.value} value {raw!r} is not valid", s.pos) from None
            return "lit", self.bind(value), "date" if t.value == "DATE" else "date-time"
        got = t.value or "结尾 / end"
        raise _bad(f"应为属性或值，却是 {got}", f"expected an attribute or a value, got {got}", t.pos)

    def predicate(self) -> str:
        start = self.tok.pos
        kind, left, ltype = self.scalar()
        negate = bool(self.take("kw", "NOT"))
        if self.take("kw", "LIKE"):
            pat = self.expect("string")
            self._need_text(kind, ltype, "LIKE", start)
            op = "NOT LIKE" if negate else "LIKE"
            return f"({left}::text {op} {self.bind(pat.value[1:-1].replace(chr(39) * 2, chr(39)))})"
        if self.take("kw", "IN"):
            self.expect("punct", "(")
            values = [self._literal_like(ltype)]
            while self.take("punct", ","):
                values.append(self._literal_like(ltype))
            self.expect("punct", ")")
            op = "NOT IN" if negate else "IN"
            return f"({left} {op} ({', '.join(values)}))"
        if negate:
            raise _bad("NOT 之后应为 LIKE 或 IN", "expected LIKE or IN after NOT", self.tok.pos)
        if self.take("kw", "IS"):
            neg = bool(self.take("kw", "NOT"))
            self.expect("kw", "NULL")
            return f"({left} IS {'NOT ' if neg else ''}NULL)"
        op = self.expect("op").value
        rkind, right, rtype = self.scalar()
        if kind == "lit" and rkind == "lit":
            raise _bad("比较的两边至少一边应为属性", "a comparison needs an attribute on one side", start)
        _compatible(ltype, rtype, start)
        return f"({left} {op} {right})"

    def _literal_like(self, ptype: str) -> str:
        kind, sql, ltype = self.scalar()
        if kind != "lit":
            raise _bad("IN 列表中应为值", "IN lists take values", self.tok.pos)
        _compatible(ptype, ltype, self.tok.pos)
        return sql

    @staticmethod
    def _need_text(kind: str, ptype: str, what: str, pos: int) -> None:
        if kind != "prop" or ptype != "string":
            raise _bad(f"{what} 只用于文字属性", f"{what} applies to a text attribute", pos)


_NUMERIC = {"integer", "number"}


def _compatible(a: str, b: str, pos: int) -> None:
    if a == b or (a in _NUMERIC and b in _NUMERIC) or {a, b} <= {"date", "date-time"}:
        return
    raise _bad(f"类型不符：{a} 与 {b}", f"cannot compare {a} with {b}", pos)


def compile_filter(text: str, collection: Collection) -> tuple[str, dict[str, Any]]:
    """(SQL condition over the collection's row alias `f`, bound parameters) for a CQL2-text filter."""
    if len(text) > MAX_FILTER_LENGTH:
        raise _bad(f"过长（最多 {MAX_FILTER_LENGTH} 个字符）", f"too long (at most {MAX_FILTER_LENGTH} characters)")
    if not text.strip():
        raise _bad("为空", "empty")
    parser = _Parser(text, collection)
    return parser.parse(), parser.params
