"""The search engine: the steps in order, the filters, and the explain trace.

    prepare (query.py) → scan (parse.py) → interpret: candidates from the matched names and
    their doors (resolve.py) → finalize and order (rank.py)

`search()` answers free text; `structured()` answers fields (county, township, street, number
…) through the same steps with each field matched on its own; `match_one()` is the batch
form (the best result and its confidence, no explain).
"""
from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass

from registry.search.gazetteer import CITY_PREFIX, Gazetteer
from registry.search.parse import EDIT_MODES, Match, scan
from registry.search.query import PreparedQuery, prepare, query_text
from registry.search.rank import (LOW_CONFIDENCE, PARTIAL_FACTOR, TAIL_WEIGHT, Hit, address_id, apply_distance,
                                  describe, finalize, free_of, order, rec_fields, to_dict)
from registry.search.resolve import container_kind, resolve

KINDS = ("address", "place", "division", "facility", "heritage")
MAX_CONTAINERS = 24
MAX_DOORS = 5
MAX_OTHERS = 40
ESCALATE_BELOW = 0.85
BOUNDS_MEMO_FROM = 16  # candidates: with more, the bounds' greedy choices are remembered for the query
PRUNE_MARGIN = 0.12  # containers that cannot come within this of the best are not resolved  # a first pass scoring less than this is retried with fuzzy spans everywhere


@dataclass
class Filters:
    kinds: frozenset[str] | None = None
    division_id: int | None = None
    bbox: tuple[float, float, float, float] | None = None
    near: tuple[float, float] | None = None

    def accepts(self, hit: Hit) -> bool:
        if self.kinds is not None and hit.kind not in self.kinds:
            return False
        if self.division_id is not None and self.division_id not in hit.division_set:
            return False
        if self.bbox is not None:
            x0, y0, x1, y1 = self.bbox
            if math.isnan(hit.lon) or not (x0 <= hit.lon <= x1 and y0 <= hit.lat <= y1):
                return False
        return True


@dataclass
class Outcome:
    gaz: Gazetteer
    hits: list[Hit]
    pq: PreparedQuery | None  # None on the exact path, which does not prepare the query (prepared())
    matches: list[Match]
    passes: list[str]
    elapsed_ms: float
    query: str = ""

    def prepared(self) -> PreparedQuery:
        return self.pq if self.pq is not None else prepare(self.query)


def _entity_hit(gaz: Gazetteer, m: Match, partial: bool) -> Hit | None:
    if m.kind == "place":
        p = gaz.places.get(m.eid)
        if p is None:
            return None
        return Hit("place", p.id, m, partial=partial, division_set=p.divisions, lon=p.lon, lat=p.lat)
    if m.kind == "division":
        d = gaz.divisions.get(m.eid)
        if d is None or d.status != "active":
            return None
        return Hit("division", d.id, m, partial=partial, division_set=frozenset(d.chain), lon=d.lon, lat=d.lat)
    items = gaz.facilities if m.kind == "facility" else gaz.heritage
    it = items.get(m.eid)
    if it is None:
        return None
    return Hit(m.kind, it.id, m, division_set=frozenset(gaz.chain_of(it.division_id)), lon=it.lon, lat=it.lat)


def _shadowed(m: Match, exact: list[Match]) -> bool:
    """A fuzzy reading of characters that name another place exactly is not a candidate, nor is
    a shorter name inside it: 人民路999号 must not become 仁民路999号 (or a door of a hamlet
    人民) because 人民路 lacks door 999."""
    for e in exact:
        if e.eid == m.eid or not (e.start <= m.start and m.end <= e.end):
            continue
        # inside a longer exact name (菊园 in 菊园街), or a fuzzy reading of the same characters
        if m.mode != "exact" or e.atoms > m.atoms:
            return True
    return False


def _division_set(gaz: Gazetteer, kind: str, eid: int):
    if kind == "place":
        p = gaz.places.get(eid)
        return p.divisions if p is not None else ()
    if kind == "division":
        return gaz.chain_of(eid)
    it = (gaz.facilities if kind == "facility" else gaz.heritage).get(eid)
    return gaz.chain_of(it.division_id) if it is not None else ()


_UNRESOLVED = object()


def _upper_bound(pq: PreparedQuery, m: Match, dset, doors_possible: bool, door_atoms: int,
                 divisions: list[Match], places: list[Match]) -> float:
    """The best score a candidate found through `m` could reach: the divisions it lies in and
    (for a container of doors) the other places and all number parts explained, and everything
    left unexplained counted as trailing noise (half weight). Never below what finalize gives.
    (_Bounds computes the same, remembering its greedy choices, for queries with many candidates.)"""
    weight = m.weight
    used = [(m.start, m.end)]
    for d in divisions:
        if d.eid in dset and free_of(used, d.start, d.end):
            weight += d.weight
            used.append((d.start, d.end))
    explained_numbers = 0
    if doors_possible:
        for p in places:
            if p.eid != m.eid and free_of(used, p.start, p.end):
                weight += p.weight
                used.append((p.start, p.end))
        explained_numbers = door_atoms
    return _bound(pq, m, weight, used, explained_numbers, doors_possible, door_atoms)


def _bound(pq: PreparedQuery, m: Match, weight: float, used, explained_numbers: int, doors_possible: bool,
           door_atoms: int) -> float:
    """The bound from what the greedy choice explained (`weight` over the spans `used`), the rest
    counted as trailing noise: `_upper_bound` and `_Bounds` end here, so the formula is one."""
    named = sum(b - a for a, b in used)
    unexplained = max(pq.atoms - named - explained_numbers, 0)
    bound = (weight + explained_numbers) / max(named + explained_numbers + TAIL_WEIGHT * unexplained, 1e-9)
    if door_atoms and not doors_possible and m.kind != "address":
        bound *= PARTIAL_FACTOR
    return min(bound, 1.0)


class _Bounds:
    """`_upper_bound` for a query with many candidates (吴家… read as a hundred names of a few
    townships): the greedy choice of divisions depends only on the candidate's division set and
    the match's span, and the choice of places only on the spans taken so far (unless it took
    the candidate itself), so both are remembered for the query. The weights are added in the
    same order as `_upper_bound` adds them: the bounds are the same to the last bit."""

    __slots__ = ("pq", "door_atoms", "divisions", "places", "_div_memo", "_place_memo")

    def __init__(self, pq: PreparedQuery, door_atoms: int, divisions: list[Match], places: list[Match]) -> None:
        self.pq = pq
        self.door_atoms = door_atoms
        self.divisions = divisions
        self.places = places
        self._div_memo: dict = {}
        self._place_memo: dict = {}

    def _divisions_taken(self, dset, start: int, end: int) -> tuple[tuple[float, ...], tuple[tuple[int, int], ...]]:
        key = (dset, start, end)
        got = self._div_memo.get(key)
        if got is None:
            weights: list[float] = []
            used = [(start, end)]
            for d in self.divisions:
                if d.eid in dset and free_of(used, d.start, d.end):
                    weights.append(d.weight)
                    used.append((d.start, d.end))
            got = self._div_memo[key] = (tuple(weights), tuple(used))
        return got

    def _places_taken(self, used: tuple[tuple[int, int], ...], exclude: int) -> tuple[tuple[float, ...], tuple]:
        got = self._place_memo.get(used)
        if got is None:
            got = self._place_memo[used] = self._take_places(used, None)
        weights, spans, eids = got
        if exclude in eids:  # the greedy choice took the candidate itself: choose without it
            weights, spans, _ = self._take_places(used, exclude)
        return weights, spans

    def _take_places(self, used: tuple, exclude: int | None) -> tuple[tuple[float, ...], tuple, frozenset]:
        weights: list[float] = []
        spans = list(used)
        eids = []
        for p in self.places:
            if p.eid != exclude and free_of(spans, p.start, p.end):
                weights.append(p.weight)
                spans.append((p.start, p.end))
                eids.append(p.eid)
        return tuple(weights), tuple(spans), frozenset(eids)

    def __call__(self, pq: PreparedQuery, m: Match, dset, doors_possible: bool, door_atoms: int,
                 divisions: list[Match], places: list[Match]) -> float:
        """_upper_bound's signature (the lists and the query are the ones given at creation)."""
        weight = m.weight
        div_weights, used = self._divisions_taken(dset, m.start, m.end)
        for w in div_weights:
            weight += w
        explained_numbers = 0
        if doors_possible:
            place_weights, used = self._places_taken(used, m.eid)
            for w in place_weights:
                weight += w
            explained_numbers = door_atoms
        return _bound(pq, m, weight, used, explained_numbers, doors_possible, door_atoms)


def _straddles_division(m: Match, spans: list[tuple[int, int, int]]) -> bool:
    """A fuzzy reading (an edit, a homophone) over characters that name a division exactly (道金泉 of
    凤凰街道金泉社区, 爱山街道 read as 龙山街道, 镇星路 of 千金镇星路 as 振兴路): the characters are that
    division's, not a typo of another name."""
    for a, b, eid in spans:
        if m.start < b and a < m.end and not (m.kind == "division" and m.eid == eid):
            return True
    return False


def interpret(gaz: Gazetteer, pq: PreparedQuery, matches: list[Match], filters: Filters,
              doors_of: dict | None = None) -> list[Hit]:
    """Candidates from the matched names and their doors, scored and ordered. `doors_of`: the
    doors already resolved for this query by (container kind, id), shared by the passes of one
    run (resolving depends on the container and the query's number parts only)."""
    if doors_of is None:
        doors_of = {}
    div_spans = [(m.start, m.end, m.eid) for m in matches if m.kind == "division" and m.mode == "exact"
                 and m.atoms >= 3 and m.how in ("name", "full", "variant", "former")]
    if div_spans:
        kept = []
        for m in matches:
            if m.mode == "exact" or not _straddles_division(m, div_spans):
                kept.append(m)
            elif len(pq.refused) < 40:
                pq.refused.append({"rule": "over_division", "text": m.text, "name": m.name,
                                   "note": "这些字是区划名称 / these characters name a division exactly"})
        matches = kept
    # Per entity, its best match without edits and its best with: 翠苑园花 is 翠苑花园 swapped even
    # though its specific part 翠苑 matches exactly; the finalize step decides which explains more.
    groups: dict[tuple[str, int], list[Match | None]] = {}
    for m in matches:
        g = groups.setdefault((m.kind, m.eid), [None, None])
        k = 1 if m.mode in EDIT_MODES else 0
        old = g[k]
        if old is None or (m.weight, m.score) > (old.weight, old.score):
            g[k] = m
    exact = [m for m in matches if m.mode == "exact" and m.kind != "division" and m.atoms >= 2
             and m.how in ("name", "former", "alias", "abbreviation", "full")]
    store = gaz.addresses
    door_query = pq.has_door_parts
    door_atoms = sum(p.end - p.start for p in pq.numbers) if door_query else 0
    by_weight = sorted(matches, key=lambda m: (-m.weight, -m.score))
    div_matches = [m for m in by_weight if m.kind == "division"][:MAX_OTHERS]
    place_matches = [m for m in by_weight if m.kind == "place"][:MAX_OTHERS]
    upper_bound = (_Bounds(pq, door_atoms, div_matches, place_matches) if len(groups) > BOUNDS_MEMO_FROM
                   else _upper_bound)
    entities = []
    for (kind, eid), (clean, edit) in groups.items():
        options = [m for m in (clean, edit) if m is not None and not _shadowed(m, exact)]
        if not options:
            continue
        # a village's bare specific (定安 of 定安村) names the village, not a container of doors
        ck = container_kind(store, kind, eid) if door_query and kind in ("place", "division") and any(
            m.how != "specific" for m in options) else None
        dset = _division_set(gaz, kind, eid)
        if len(options) == 1:
            top = options[0]
            bound = upper_bound(pq, top, dset, ck is not None, door_atoms, div_matches, place_matches)
        else:
            bound = max(upper_bound(pq, m, dset, ck is not None, door_atoms, div_matches, place_matches)
                        for m in options)
            top = max(options, key=lambda m: (m.weight, m.score))
        entities.append((bound, top.weight, kind, eid, ck, options))
    entities.sort(key=lambda t: (-t[0], -t[1]))
    others = [m for m in by_weight if m.kind in ("division", "place")][:MAX_OTHERS]
    out: list[Hit] = []
    best = 0.0
    for bound, _w, kind, eid, ck, options in entities[:MAX_CONTAINERS]:
        if out and bound < best - PRUNE_MARGIN:
            break
        doors = None
        if ck is not None:
            doors = doors_of.get((ck, eid), _UNRESOLVED)
            if doors is _UNRESOLVED:
                doors = doors_of[(ck, eid)] = resolve(store, ck, eid, pq)
        for m in options:
            hits: list[Hit] = []
            if doors is not None and 0 < len(doors.refs) <= MAX_DOORS:
                for ref in doors.refs:
                    village, street, compound, lon, lat = rec_fields(gaz, ref)
                    hits.append(Hit("address", address_id(gaz, ref), m, ref=ref, doors=doors,
                                    partial=bool(doors.missing), division_set=gaz.chain_set(village),
                                    street=street, compound=compound, village=village, lon=lon, lat=lat))
                if ck == "village":  # the village itself too: the answer when the door is not the one written
                    hit = _entity_hit(gaz, m, partial=True)
                    if hit is not None:
                        hits.append(hit)
            else:
                hit = _entity_hit(gaz, m, partial=door_query and kind in ("place", "division"))
                if hit is not None:
                    if doors is not None:
                        hit.doors = doors
                        if len(doors.refs) > MAX_DOORS:
                            doors.finer_only = len(doors.refs)
                    hits.append(hit)
            for h in hits:
                if not filters.accepts(h):
                    continue
                finalize(gaz, pq, h, others)
                apply_distance(h, filters.near)
                out.append(h)
                best = max(best, h.score)
    return order(out)


DIGIT = re.compile(r"[0-9]")  # the exact path's test for numbers (and the batch's, registry.search.batch_exact)


def exact_hit(gaz: Gazetteer, text: str) -> Hit | None:
    """The fast path: the query's text (query.query_text) is a standard address text (with or
    without 浙江省 / 湖州市, or without its county too when one county alone completes it): a few
    hash lookups, no parsing. A standard text writes its numbers in digits, and the number grammar
    reads every digit run as a number part: a text without a digit is left to the passes, as a
    query without numbers always was (registry.search.batch_exact reads rows by the same rule)."""
    tail = text
    if tail.startswith("浙江省"):
        tail = tail[3:]
    if tail.startswith("湖州市"):
        tail = tail[3:]
    if len(tail) < 6 or DIGIT.search(tail) is None:
        return None
    ref = gaz.addresses.by_text(CITY_PREFIX + tail)
    county_given = ref is not None
    if ref is None:
        ref = _without_county(gaz, tail)
        if ref is None:
            return None
    rec = gaz.addresses.record(ref)  # kept on the hit: the answer is written from it (rank.to_dict)
    village, street, compound, lon, lat = rec["village"], rec["street"], rec["compound"], rec["lon"], rec["lat"]
    levels = exact_levels(gaz, county_named=county_given, street=street, compound=compound,
                          numbers=[(name, rec[f]) for name, f in EXACT_NUMBER_FIELDS])
    hit = Hit("address", rec["id"], None, ref=ref, division_set=gaz.chain_set(village), street=street,
              compound=compound, village=village, lon=lon, lat=lat, score=1.0, rank=1.0, levels=levels, record=rec)
    hit.components = {"name": 1.0, "division": 1.0, "number": 1.0, "coverage": 1.0}
    hit.described = True
    return hit


EXACT_NUMBER_FIELDS = (("number", "main"), ("group", "group"), ("building", "bld"), ("unit", "unit"), ("room", "room"))


def exact_levels(gaz: Gazetteer, *, county_named: bool, street: int | None, compound: int | None,
                 numbers) -> list[str]:
    """The levels an exact hit names, as the standard text writes them (registry.text.compose_address):
    the county when the query had it, the township, the village of a rural door only (not of a
    street door or a compound), the street, the compound or natural village, then each number
    part present (`numbers`: (level, value) in EXACT_NUMBER_FIELDS' order). The batch's exact path
    (registry.search.batch_exact) answers with these too."""
    levels = ["county", "township"] if county_named else ["township"]
    place = gaz.places.get(compound) if compound else None
    if street:
        levels.append("street")
    elif place is None or place.category == "natural_village":
        levels.append("village")
    if place is not None:
        levels.append("natural_village" if place.category == "natural_village" else "compound")
    levels += [name for name, value in numbers if value]
    return levels


# The lengths of a township's name (孝丰镇, 昌硕街道, 和平镇 …) tried at the start of a county-less text.
TOWNSHIP_NAME_LENGTHS = range(2, 8)


def _without_county(gaz: Gazetteer, tail: str):
    """The one address whose standard text is 浙江省湖州市 + a county + `tail`, `tail` starting with
    a township of that county; None when no county or more than one completes it (the same
    township name in two counties is for the passes to weigh)."""
    counties = gaz.township_counties()
    found = None
    for k in TOWNSHIP_NAME_LENGTHS:
        for county in counties.get(tail[:k], ()):
            ref = gaz.addresses.by_text(CITY_PREFIX + county + tail)
            if ref is not None:
                if found is not None:
                    return None
                found = ref
    return found


def run(gaz: Gazetteer, q: str, filters: Filters | None = None) -> Outcome:
    t0 = time.perf_counter()
    filters = filters or Filters()
    text = query_text(q)
    exact = exact_hit(gaz, text)
    if exact is not None and filters.accepts(exact):
        apply_distance(exact, filters.near)
        return Outcome(gaz, [exact], None, [], ["exact"], (time.perf_counter() - t0) * 1000, query=q)
    pq = prepare(q, text)
    passes = ["gaps"]
    doors_of: dict = {}  # what the passes share: the doors resolved, the spans read with edits
    edit_readings: dict = {}
    matches = scan(pq, gaz.names, "gaps", edit_readings)
    hits = interpret(gaz, pq, matches, filters, doors_of)
    if not hits or (hits[0].score < ESCALATE_BELOW and hits[0].name_gap > 0):
        passes.append("all")
        more = scan(pq, gaz.names, "all", edit_readings)
        if len(more) > len(matches):
            hits2 = interpret(gaz, pq, more, filters, doors_of)
            if hits2 and (not hits or hits2[0].rank > hits[0].rank):
                hits, matches = hits2, more
    return Outcome(gaz, hits, pq, matches, passes, (time.perf_counter() - t0) * 1000)


def search(gaz: Gazetteer, q: str, *, limit: int = 10, filters: Filters | None = None,
           explain: bool = False) -> dict:
    """Free-text search: {"results": [...]} (+ "explain" when asked)."""
    with gaz.lock:
        outcome = run(gaz, q, filters)
        results = [to_dict(gaz, h, explain=explain) for h in outcome.hits[:limit]]
    body: dict = {"results": results}
    if explain:
        body["explain"] = explain_trace(outcome)
    return body


def explain_trace(o: Outcome) -> dict:
    pq = o.prepared()
    return {
        "query": pq.raw,
        "normalized": pq.text,
        "steps": ["normalize", "parse", "match names", "resolve doors", "rank"],
        "passes": o.passes,
        "numbers": [{"kind": p.kind, "text": p.text, "span": [p.start, p.end], "value": _jsonable(p.value)}
                    for p in pq.numbers],
        "units": [{"text": pq.text[u.start:u.end], "kind": u.kind, "pinyin": u.syl} for r in pq.runs for u in r.units],
        "matches": [{"text": m.text, "span": [m.start, m.end], "kind": m.kind, "id": m.eid, "name": m.name,
                     "form": m.how, "mode": m.mode, "score": round(m.score, 3)}
                    for m in sorted(o.matches, key=lambda m: (-m.weight, m.start))[:30]],
        "candidates": [{"kind": h.kind, "id": h.eid, "score": h.score, "components": h.components,
                        "levels": h.levels} for h in o.hits[:10] if describe(o.gaz, h) is None],
        # readings the precision rules refused (a name of another kind, a reading over a division)
        "refused": list({(r["rule"], r["text"], r["name"]): r for r in pq.refused}.values()),
        "low_confidence_below": LOW_CONFIDENCE,
        "elapsed_ms": round(o.elapsed_ms, 3),
    }


def _jsonable(v):
    if isinstance(v, tuple):
        main, sub, pre, suf = v
        return {"main": main, "sub": sub or None, "prefix": "附" if pre else None,
                "suffix": "甲乙丙丁"[suf - 1] if suf else None}
    return v


def match_one(gaz: Gazetteer, q: str) -> dict:
    """The best result for one batch row: id, address, code, confidence, levels, reason, and
    whether it is partial (a level the query names was not found) or ambiguous (batch.status_of)."""
    with gaz.lock:
        o = run(gaz, q)
        if not o.hits:
            return {"id": None, "kind": None, "address": None, "code": None, "confidence": 0.0, "levels": [],
                    "reason": "未找到 / no match"}
        top = to_dict(gaz, o.hits[0])
    m = top["match"]
    return {"id": top["id"], "kind": top["kind"], "address": top["address"], "code": top.get("code"),
            "confidence": top["score"], "levels": m["levels"], "reason": m["reason"],
            "low_confidence": top["low_confidence"], "partial": m["partial"], "ambiguous": m.get("ambiguous", 0)}


STRUCTURED_FIELDS = ("county", "township", "village", "street", "compound", "number", "building", "unit", "room")
_SUFFIX = {"number": "号", "building": "幢", "unit": "单元", "room": "室"}


def structured_query(fields: dict[str, str | None]) -> str:
    """Fields in hierarchy order as one address text (bare numbers get their suffix: 5 → 5幢)."""
    parts = []
    for name in STRUCTURED_FIELDS:
        value = (fields.get(name) or "").strip()
        if not value:
            continue
        if name in _SUFFIX and value.replace("-", "").isdigit():
            value += _SUFFIX[name]
        parts.append(value)
    return "".join(parts)


def structured(gaz: Gazetteer, fields: dict[str, str | None], *, limit: int = 10, filters: Filters | None = None,
               explain: bool = False) -> dict:
    body = search(gaz, structured_query(fields), limit=limit, filters=filters, explain=explain)
    if explain:
        body["explain"]["structured"] = {k: v for k, v in fields.items() if v}
    return body
