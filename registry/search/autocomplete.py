"""Autocomplete: names that start with what was typed (characters, pinyin or initials), and,
once a street or compound is typed with the start of a number, its doors.

`吴兴区人民` → places and divisions starting with 人民 in 吴兴区; `renm` / `rml` → 人民路 …;
`吴兴区人民路12` → 人民路12号, 人民路12-1号, 人民路120号 … of 吴兴区.
"""
from __future__ import annotations

import bisect
import re

import numpy as np

from registry.search.gazetteer import Gazetteer
from registry.search.names import NameIndex
from registry.search.parse import scan
from registry.search.query import prepare
from registry.search.rank import KIND_RANK
from registry.search.resolve import container_kind

_TRAILING_DIGITS = re.compile(r"(\d{1,5})$")


class _Sorted:
    def __init__(self, names: NameIndex) -> None:
        self.version = names.version
        chars, py, ini = [], [], []
        for n, e in enumerate(names.entries):
            if not e.alive or e.how == "specific":
                continue
            chars.append((e.text, n))
            if e.readings:
                py.append(("".join(e.readings[0]), n))
                ini.append(("".join(s[0] for s in e.readings[0]), n))
        self.chars = sorted(chars)
        self.py = sorted(py)
        self.ini = sorted(ini)

    @staticmethod
    def prefixed(table: list[tuple[str, int]], prefix: str, cap: int = 400) -> list[int]:
        i = bisect.bisect_left(table, (prefix, -1))
        out = []
        while i < len(table) and table[i][0].startswith(prefix) and len(out) < cap:
            out.append(table[i][1])
            i += 1
        return out


def _sorted(gaz: Gazetteer) -> _Sorted:
    cached = getattr(gaz, "_autocomplete", None)
    if cached is None or cached.version != gaz.names.version:
        cached = _Sorted(gaz.names)
        gaz._autocomplete = cached  # type: ignore[attr-defined]
    return cached


def _entity_divisions(gaz: Gazetteer, kind: str, eid: int):
    if kind == "place":
        p = gaz.places.get(eid)
        return p.divisions if p else ()
    if kind == "division":
        return gaz.chain_of(eid)
    it = (gaz.facilities if kind == "facility" else gaz.heritage).get(eid)
    return gaz.chain_of(it.division_id) if it else ()


def autocomplete(gaz: Gazetteer, q: str, *, limit: int = 10, kinds: frozenset[str] | None = None) -> list[dict]:
    with gaz.lock:
        return _autocomplete(gaz, q, limit, kinds)


def _autocomplete(gaz, q, limit, kinds):
    pq = prepare(q)
    text = pq.text
    if not text:
        return []
    # Leading divisions typed in full narrow the rest: 吴兴区人民 → 人民… within 吴兴区.
    within: list[int] = []
    rest_start = 0
    matches = scan(pq, gaz.names, "none")
    while True:
        lead = [m for m in matches if m.kind == "division" and m.start == rest_start and m.mode == "exact"
                and m.end < len(text)]
        if not lead:
            break
        m = max(lead, key=lambda m: m.end)
        within.append(m.eid)
        rest_start = m.end
    rest = text[rest_start:]
    out: list[dict] = []
    digits = _TRAILING_DIGITS.search(rest)
    if digits and digits.start() > 0 and (kinds is None or "address" in kinds):
        out += _doors(gaz, rest[: digits.start()], digits.group(1), within, limit)
    sorted_keys = _sorted(gaz)
    if rest.isascii():
        cands = sorted_keys.prefixed(sorted_keys.py, rest) + sorted_keys.prefixed(sorted_keys.ini, rest)
    else:
        cands = sorted_keys.prefixed(sorted_keys.chars, rest)
    seen: set[tuple[str, int]] = set()
    scored = []
    for n in cands:
        e = gaz.names.entries[n]
        key = (e.kind, e.eid)
        if key in seen or not e.alive or (kinds is not None and e.kind not in kinds):
            continue
        divs = _entity_divisions(gaz, e.kind, e.eid)
        if any(w not in divs for w in within):
            continue
        seen.add(key)
        scored.append((len(e.text), KIND_RANK.get(e.kind, 9) if e.kind != "division" else 0, e.text, e))
    scored.sort(key=lambda t: t[:3])
    for _, _, _, e in scored[: max(0, limit - len(out))]:
        out.append(_suggestion(gaz, e.kind, e.eid, e.text))
    return out[:limit]


def _suggestion(gaz: Gazetteer, kind: str, eid: int, typed: str) -> dict:
    if kind == "place":
        p = gaz.places[eid]
        d = gaz.divisions.get(p.division_id)
        return {"text": p.name, "kind": "place", "id": eid, "category": p.category,
                "address": (d.prefix if d else "") + p.name, "matched": typed}
    if kind == "division":
        d = gaz.divisions[eid]
        return {"text": d.name, "kind": "division", "id": eid, "level": d.level, "code": d.code,
                "address": d.prefix, "matched": typed}
    it = (gaz.facilities if kind == "facility" else gaz.heritage)[eid]
    d = gaz.divisions.get(it.division_id)
    return {"text": it.name, "kind": kind, "id": eid, "category": it.category,
            "address": (d.prefix if d else "") + it.name, "matched": typed}


def _doors(gaz: Gazetteer, name: str, digits: str, within: list[int], limit: int) -> list[dict]:
    store = gaz.addresses
    out: list[dict] = []
    for n in gaz.names.live(gaz.names.chars.get(name)):
        e = gaz.names.entries[n]
        ck = container_kind(store, e.kind, e.eid)
        if ck not in ("street", "village"):
            continue
        if any(w not in _entity_divisions(gaz, e.kind, e.eid) for w in within):
            continue
        cand = store.gather(ck, e.eid)
        main, _ = store.values(cand, "main")
        prefix = int(digits)
        mask = np.zeros(len(main), dtype=bool)
        for k in range(0, 6 - len(digits)):
            lo, hi = prefix * 10**k, (prefix + 1) * 10**k
            mask |= (main >= lo) & (main < hi)
        for f in ("bld", "unit", "room"):
            vals, _ = store.values(cand, f)
            mask &= vals == 0
        rows = cand.base[mask]
        rows = rows[np.argsort(main[mask], kind="stable")][:limit]
        for i in rows.tolist():
            rec = store.record(i)
            out.append({"text": rec["full_text"], "kind": "address", "id": rec["id"], "code": rec["code"],
                        "address": rec["full_text"], "matched": name + digits})
        if len(out) >= limit:
            break
    return out[:limit]
