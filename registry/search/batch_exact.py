"""The batch's exact path: rows that are standard address texts, answered without the engine.

An agency's list is mostly the registry's own standard texts (浙江省湖州市吴兴区…123号, with or
without 浙江省 / 湖州市). For such a row the engine (registry.search.engine.run) prepares the
query, finds it unchanged and takes its exact path (`exact_hit`: one lookup of the text among the
stored standard texts). Here that answer is given for a whole chunk of rows at once — the keys
computed row by row, the lookups, liveness and record fields read with numpy for the chunk —
but only where the engine's answer is certain without preparing the row:

- `normalize(row) == row` is certain (registry.text.normalize.is_normal: digits and plain Han),
  and the row holds no financial numeral (壹…仟: query.prepare reads those before normalizing);
  prepare's other rewrite needs latin letters, which such a row has none of;
- the row has an ASCII digit: the number grammar (registry.text.house_number) reads every digit
  run as a number part at least (its `bare` rule), so the query has the numbers the exact path
  asks for;
- what is left after 浙江省 / 湖州市 has at least 6 characters and names no overlay record
  (a change since the generation: left to the engine, which reads the overlay first);
- exactly one live stored address has that text (two doors with one text are not exact).

Every other row goes to the engine. The answer is the one `match_one` gives for an exact hit
(the levels as `exact_hit` lists them, confidence 1, "exact match"); tests/search/
test_batch_exact.py checks it against the engine row by row.
"""
from __future__ import annotations

import numpy as np

from registry.search.engine import DIGIT, EXACT_NUMBER_FIELDS, exact_levels
from registry.search.gazetteer import CITY_PREFIX, FIELDS, Gazetteer, text_key
from registry.search.validate import MAX_QUERY_CHARS
from registry.text.normalize import is_normal

FINANCIAL = frozenset("壹贰叁肆伍陆柒捌玖拾佰仟")
EXACT_REASON = "精确匹配 / exact match"
_F = {f: k for k, f in enumerate(FIELDS)}
_NUMBER_LEVELS = tuple((name, _F[f]) for name, f in EXACT_NUMBER_FIELDS)


def exact_tail(raw: str) -> str | None:
    """The text after 浙江省 / 湖州市 under which the engine would look `raw` up exactly, when
    that is certain without preparing it (see above); None otherwise."""
    if DIGIT.search(raw) is None or not is_normal(raw) or not FINANCIAL.isdisjoint(raw):
        return None
    if len(raw) > MAX_QUERY_CHARS:  # what check_text refuses of such a row (no control character, not blank)
        return None
    tail = raw[3:] if raw.startswith("浙江省") else raw
    if tail.startswith("湖州市"):
        tail = tail[3:]
    return tail if len(tail) >= 6 else None


def exact_answers(gaz: Gazetteer, rows: list[str], row_tails: list[str | None] | None = None) -> dict[int, dict]:
    """{position in rows: match_one's answer} for the rows answered exactly (`row_tails`: their
    exact_tail, when known). Call with gaz.lock held."""
    store = gaz.addresses
    if store.key_sorted is None or store.key_order is None:
        return {}
    wanted: list[int] = []
    tails: list[str] = []
    overlay = store.overlay_by_text
    for j, raw in enumerate(rows):
        tail = exact_tail(raw) if row_tails is None else row_tails[j]
        if tail is not None and tail not in overlay:
            wanted.append(j)
            tails.append(tail)
    if not wanted:
        return {}
    keys = np.fromiter((text_key(t.encode("utf-8")) for t in tails), dtype=np.int64, count=len(tails))
    key_sorted = np.asarray(store.key_sorted)
    lo = np.searchsorted(key_sorted, keys, "left")
    hi = np.searchsorted(key_sorted, keys, "right")
    key_order = np.asarray(store.key_order)
    alive = store.alive
    text_end = np.asarray(store.text_end)
    buf = store.text_buf
    # the first row of each key's range, its liveness and the span of its line, for the whole chunk
    first = key_order[np.minimum(lo, len(key_order) - 1)]
    first_alive = alive[first].tolist()
    ends = text_end[first]
    starts = np.where(first > 0, text_end[np.maximum(first - 1, 0)] + 1, 0)
    first, starts, ends, lo, hi = first.tolist(), starts.tolist(), ends.tolist(), lo.tolist(), hi.tolist()
    found_j: list[int] = []
    found_row: list[int] = []
    found_line: list[tuple[str, str]] = []
    for n, (j, tail, a, b) in enumerate(zip(wanted, tails, lo, hi)):
        if a == b:
            continue
        standard = CITY_PREFIX + tail
        if b - a == 1:  # one stored text with this key (almost always)
            if not first_alive[n]:
                continue
            code, _, full = buf[starts[n]:ends[n]].decode("utf-8").partition("\t")
            if full == standard:
                found_j.append(j)
                found_row.append(first[n])
                found_line.append((code, full))
            continue
        hit = None
        for k in range(a, b):
            i = int(key_order[k])
            if not alive[i]:
                continue
            start = int(text_end[i - 1]) + 1 if i > 0 else 0
            code, _, full = buf[start:int(text_end[i])].decode("utf-8").partition("\t")
            if full == standard:
                if hit is not None:
                    hit = None  # two doors with one text: not exact
                    break
                hit = (i, code, full)
        else:
            if hit is not None:
                found_j.append(j)
                found_row.append(hit[0])
                found_line.append((hit[1], hit[2]))
    if not found_j:
        return {}
    idx = np.asarray(found_row, dtype=np.int64)
    parts = np.asarray(store.packed)[idx].tolist()
    ids = np.asarray(store.ids)[idx].tolist()
    out: dict[int, dict] = {}
    street_k, compound_k = _F["street"], _F["compound"]
    for j, p, aid, (code, full) in zip(found_j, parts, ids, found_line):
        levels = exact_levels(gaz, county_named=True, street=p[street_k], compound=p[compound_k],
                              numbers=[(name, p[k]) for name, k in _NUMBER_LEVELS])
        out[j] = {"id": int(aid), "kind": "address", "address": full, "code": code, "confidence": 1.0,
                  "levels": levels, "reason": EXACT_REASON, "low_confidence": False, "partial": False,
                  "ambiguous": 0}
    return out
