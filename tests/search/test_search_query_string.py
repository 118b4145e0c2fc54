"""The search route reads its query string itself (api.routes.search._query, cheaper than
starlette's QueryParams): it must read every query string exactly as `request.query_params` does."""
from __future__ import annotations

import random

from starlette.datastructures import QueryParams
from starlette.requests import Request

from api.routes.search import _query

TRICKY = [
    "", "q=", "q", "&&q=%E4%BA%BA&", "q=%E4%BA%BA%E6%B0%91+%E8%B7%AF", "q=a+b&q=c", "q=%zz%E4%BA",
    "q=%E4%BAabc%BA", "q=%2B%26%3D", "a;b=c", "q=%00x", "%71=1", "q=%e4%ba%ba", "q=%F0%9F%98%80&limit=5",
    "q=%C3%A9%", "q=%2", "=x", "q==", "q=%E4%BA%BA%E6%B0%91%E8%B7%AF123%E5%8F%B7&limit=5&kind=address",
]


def _read(raw: str) -> dict:
    return dict(_query(Request({"type": "http", "query_string": raw.encode("latin-1")})))


def test_should_read_a_query_string_as_starlette_does():
    rnd = random.Random(7)
    pieces = ["%E4", "%BA", "%e4", "%zz", "%", "%2", "%25", "+", "=", "&", "a", "q", "%00", "%FF", "%C3%A9",
              "%E4%BA%BA", ";", "%2B", "%3D", "%26", " "]
    cases = TRICKY + ["".join(rnd.choice(pieces) for _ in range(rnd.randint(0, 12))) for _ in range(3000)]
    cases.append("q=\u00e4")  # not ASCII (a client that did not escape it): starlette reads it
    for raw in cases:
        assert _read(raw) == dict(QueryParams(raw.encode("latin-1"))), raw
