"""Step 5 — score, rank and explain.

Every candidate (an address, or a place / division / facility / heritage item) gets
components, addok-style:

- `name`: the score of the name match that found it (see registry.search.parse);
- `division`: the share of the division levels named in the query that it lies in;
- `number`: 1 when every number part (number, group, building, unit, room) exists,
  0 when one the query names does not (a partial match), absent when the query has none;
- `coverage`: how much of the query the candidate explains: the characters of the matched
  names (weighted by their match score) and of the number parts that exist, over all
  characters (those after the last explained one count half: trailing shop names);
- `distance`: with `near=`, exp(-km / 5), used to order near-equal candidates.

score = coverage × 0.5^(divisions named that contradict it) × (0.8 if partial): a door in another
county than the one named ranks below that county's street without the door.

Precision rules (issue 10), each noted in the result's `explain.rules` and its components:

- a part of the query shaped like a whole name (a specific of two or more characters and the
  generic of a township, village, street or compound: 佩林路, 报结街) that no chosen name explains
  counts against the answer: a door is then not the door written (its score × UNEXPLAINED_DOOR_FACTOR,
  component `unexplained_name`), and a division or place becomes `partial` (× UNEXPLAINED_NAME_FACTOR):
  the answer is the deepest level that did match, never a door elsewhere;
- a door in another division than one written (a contradiction) loses its confidence: its score
  is capped at CONTRADICTED_DOOR_CAP, below LOW_CONFIDENCE;
- a result found through a name read with DOUBTFUL_NAME_EDITS edits or more (坪茶路 → 茶园路; the
  unexplained characters glued to the span count as edits: 郑师北路 → 塘北路) is a guess, not an
  answer to act on: × UNEXPLAINED_DOOR_FACTOR and capped at DOUBTFUL_NAME_CAP, below the division
  that did match.

A result with score < LOW_CONFIDENCE is marked `low_confidence`: it is the best the registry
has, but not a match to act on without a look. Two results of one kind within
AMBIGUITY_GAP of each other are marked `ambiguous` (e.g. 人民路123号 in three counties), and
low_confidence too (`is_confident`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from registry.search.gazetteer import Gazetteer, Rec
from registry.search.parse import EDIT_MODES, Match
from registry.text.components import GENERIC_KINDS
from registry.search.query import PreparedQuery
from registry.search.resolve import Doors

LOW_CONFIDENCE = 0.6
UNEXPLAINED_DOOR_FACTOR = 0.3
UNEXPLAINED_NAME_FACTOR = 0.8
CONTRADICTED_DOOR_CAP = 0.55
DOUBTFUL_NAME_EDITS = 2  # a name read with this many edits (or more) is a guess: 坪茶路 for 茶园路
DOUBTFUL_NAME_CAP = 0.55
NAME_SHAPE_KINDS = frozenset({"township", "village", "street", "compound"})
NAME_SHAPE_MIN_SPECIFIC = 2
# generics of those kinds, by their last character (the name-shape test looks at segment ends)
_SHAPE_GENERICS: dict[str, list[str]] = {}
for _g in sorted(GENERIC_KINDS, key=lambda g: -len(g)):
    if GENERIC_KINDS[_g] in NAME_SHAPE_KINDS:
        _SHAPE_GENERICS.setdefault(_g[-1], []).append(_g)
AMBIGUITY_GAP = 0.01
PARTIAL_FACTOR = 0.8
CONTRADICTION_FACTOR = 0.5
TAIL_WEIGHT = 0.5
KIND_RANK = {"address": 0, "place": 1, "facility": 2, "heritage": 2, "division": 3}
LEVEL_OF_CATEGORY = {"road": "street", "street": "street", "compound": "compound",
                     "natural_village": "natural_village"}
HOW_LABEL = {"exact": "精确 exact", "pinyin": "拼音 pinyin", "homophone": "同音 homophone",
             "initials": "首字母 initials", "edit": "近似 edit", "lookalike": "形近字 look-alike"}


@dataclass
class Hit:
    kind: str  # address | place | division | facility | heritage
    eid: int
    container: Match | None
    ref: object = None  # address: base row number or overlay Rec
    doors: Doors | None = None
    partial: bool = False
    division_set: frozenset | tuple = ()
    street: int = 0
    compound: int = 0
    village: int = 0
    score: float = 0.0
    rank: float = 0.0
    components: dict = field(default_factory=dict)
    levels: list[str] = field(default_factory=list)
    chosen: list[Match] = field(default_factory=list)
    contradictions: list[Match] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    former: list[dict] = field(default_factory=list)
    ambiguous: int = 0
    unexplained: list[str] = field(default_factory=list)  # name-shaped parts no chosen name explains
    rules: list[dict] = field(default_factory=list)  # precision rules that changed the score
    name_gap: int = 0  # characters outside number parts that no chosen name explains
    coverage: float = 0.0
    door_query: bool = False
    described: bool = False
    lon: float = float("nan")
    lat: float = float("nan")
    record: dict | None = None  # an address's AddressStore.record, when already read (the exact-text path)


def _consistent(hit: Hit, m: Match) -> bool:
    if m.kind == "division":
        return m.eid in hit.division_set
    if m.kind == "place" and hit.kind == "address":
        return m.eid == hit.street or m.eid == hit.compound
    return False


def free_of(spans: list[tuple[int, int]], start: int, end: int) -> bool:
    for a, b in spans:
        if start < b and a < end:
            return False
    return True


def unexplained_names(text: str, covered: list[tuple[int, int]], end: int | None = None) -> list[str]:
    """Parts of the query outside `covered` shaped like a whole name: 报结街 in 金泉社区报结街1号
    when nothing explains it (a specific of NAME_SHAPE_MIN_SPECIFIC+ characters and a generic).
    Only before `end` when given (what trails a door is a shop or building name: 12号万达广场)."""
    n = len(text) if end is None else min(end, len(text))
    mask = bytearray(n)
    for a, b in covered:
        mask[a:b] = b"\x01" * (b - a)
    out: list[str] = []
    i = 0
    while i < n:
        if mask[i]:
            i += 1
            continue
        j = i
        while j < n and not mask[j]:
            j += 1
        # the longest piece of the segment, from its start, that ends in a generic
        for p in range(j, i + NAME_SHAPE_MIN_SPECIFIC, -1):
            g = next((g for g in _SHAPE_GENERICS.get(text[p - 1], ()) if text.startswith(g, p - len(g))
                      and p - len(g) - i >= NAME_SHAPE_MIN_SPECIFIC), None)
            if g is not None:
                out.append(text[i:p])
                break
        i = j
    return out


def _glued(text: str, m: Match, covered: list[tuple[int, int]]) -> int:
    """Han characters right before or after an edit match that nothing explains: they belong to
    the name written (郑师北路 read as 师北路 → 塘北路 is two edits, not one)."""
    n = 0
    for step, pos in ((-1, m.start - 1), (1, m.end)):
        while 0 <= pos < len(text) and "\u4e00" <= text[pos] <= "\u9fff" and free_of(covered, pos, pos + 1):
            n += 1
            pos += step
    return n


def finalize(gaz: Gazetteer, pq: PreparedQuery, hit: Hit, others: list[Match]) -> None:
    """Choose the query's other matches that agree with the candidate, then score it.
    `others`: the query's division and place matches, best first."""
    c = hit.container
    chosen: list[Match] = [c] if c is not None else []
    spans = [(c.start, c.end)] if c is not None else []
    dset = hit.division_set
    is_address = hit.kind == "address"
    street, compound = hit.street, hit.compound
    rejected: list[Match] = []
    for m in others:
        if m is c:
            continue
        if m.kind == "division":
            if m.eid not in dset:
                rejected.append(m)
                continue
        elif not (is_address and (m.eid == street or m.eid == compound)):
            continue
        if free_of(spans, m.start, m.end):
            chosen.append(m)
            spans.append((m.start, m.end))
    contradictions: list[Match] = []
    bad: list[tuple[int, int]] = []
    for m in rejected:
        if m.score < 0.9 or m.atoms < 2:
            continue
        if free_of(spans, m.start, m.end) and free_of(bad, m.start, m.end):
            contradictions.append(m)
            bad.append((m.start, m.end))
    explained = 0.0
    named = 0
    last_end = 0
    for m in chosen:
        explained += m.score * m.atoms
        named += m.atoms
        if m.end > last_end:
            last_end = m.end
    used = hit.doors.used_parts if hit.doors is not None else ()
    number_atoms = 0
    unexplained_parts = []
    for p in pq.numbers:
        number_atoms += p.end - p.start
        if p.kind in used:
            explained += p.end - p.start
            if p.end > last_end:
                last_end = p.end
        else:
            unexplained_parts.append(p)
    # what trails the last explained character counts half (a shop name after the door), except
    # number parts: a door number the candidate does not have is never noise
    tail_numbers = sum(p.end - p.start for p in unexplained_parts if p.start >= last_end)
    tail = max(pq.atoms - last_end - tail_numbers, 0)
    coverage = explained / max(last_end + tail_numbers + TAIL_WEIGHT * tail, 1e-9) if pq.atoms else 0.0
    coverage = min(coverage, 1.0)
    if pq.has_door_parts and hit.kind != "address":
        hit.partial = True  # the query names a door this result cannot have
    factor = 1.0
    rules: list[dict] = []
    covered = spans + bad + [(p.start, p.end) for p in pq.numbers]
    ends = pq.shape_ends
    if ends is None:  # once per query: most have no name-shaped generic outside what matched
        text = pq.text
        ends = pq.shape_ends = [p + 1 for p, ch in enumerate(text) if ch in _SHAPE_GENERICS]
    unexplained: list[str] = []
    if ends and any(free_of(covered, p - 1, p) for p in ends):
        door_end = max((p.end for p in pq.numbers if p.kind in used), default=None) if is_address else None
        unexplained = unexplained_names(pq.text, covered, door_end)
    if unexplained:
        if is_address:
            factor = UNEXPLAINED_DOOR_FACTOR
            rules.append({"rule": "unexplained_name", "text": unexplained, "factor": UNEXPLAINED_DOOR_FACTOR,
                          "note": "写明的名称未找到，这不是所写的门牌 / a name written is not found: not the door written"})
        else:
            factor = UNEXPLAINED_NAME_FACTOR
            hit.partial = True
            rules.append({"rule": "unexplained_name", "text": unexplained, "factor": UNEXPLAINED_NAME_FACTOR,
                          "note": "写明的名称未找到，返回上一级 / a name written is not found: partial"})
    score = coverage * (CONTRADICTION_FACTOR ** len(contradictions)) * (PARTIAL_FACTOR if hit.partial else 1.0)
    score *= factor
    # the container, or a street / compound chosen beside it (a village's door on 东湖路 read from 利东路)
    for m in chosen:
        if m.mode not in EDIT_MODES or (m is not c and m.kind != "place"):
            continue
        edits = m.edits + _glued(pq.text, m, covered)
        if edits >= DOUBTFUL_NAME_EDITS:
            before = score
            score = min(score * UNEXPLAINED_DOOR_FACTOR, DOUBTFUL_NAME_CAP)  # below what did match
            rules.append({"rule": "doubtful_name", "cap": DOUBTFUL_NAME_CAP, "before": round(before, 4),
                          "edits": edits, "note": f"“{m.text}”与“{m.name}”相差 {edits:g} 处，只是猜测 / “{m.text}” is "
                                                  f"{edits:g} edits from “{m.name}”: a guess"})
            break
    if is_address and contradictions and score > CONTRADICTED_DOOR_CAP:
        rules.append({"rule": "contradicted_door", "cap": CONTRADICTED_DOOR_CAP, "before": round(score, 4),
                      "note": "门牌在所写区划之外 / the door lies outside a division written"})
        score = CONTRADICTED_DOOR_CAP
    hit.unexplained = unexplained
    hit.rules = rules
    hit.name_gap = max(pq.atoms - number_atoms - named, 0)
    hit.score = round(score, 4)
    hit.rank = score
    hit.coverage = coverage
    hit.chosen = chosen
    hit.contradictions = contradictions
    hit.door_query = pq.has_door_parts


def describe(gaz: Gazetteer, hit: Hit) -> None:
    """Levels, components and former names of a candidate that will be shown (finalize only
    scores; most candidates are never shown)."""
    if hit.described:
        return
    hit.described = True
    chosen, contradictions = hit.chosen, hit.contradictions
    levels: list[str] = []
    named_levels = {gaz.divisions[m.eid].level for m in chosen if m.kind == "division" and m.eid in gaz.divisions}
    for lvl in ("province", "city", "county", "township", "village"):
        if lvl in named_levels:
            levels.append(lvl)
    if hit.kind == "division" and hit.container is not None:
        own = gaz.divisions.get(hit.eid)
        if own is not None and own.level not in levels:
            levels.append(own.level)
    for m in chosen:
        if m.kind == "place":
            p = gaz.places.get(m.eid)
            lvl = LEVEL_OF_CATEGORY.get(p.category, "place") if p is not None else "place"
            if lvl not in levels:
                levels.append(lvl)
    if hit.doors is not None:
        levels += [lvl for lvl in hit.doors.levels if lvl not in levels]
    n_div = len([m for m in chosen if m.kind == "division"])
    hit.components = {
        "name": round(hit.container.score, 3) if hit.container is not None else None,
        "division": round(n_div / (n_div + len(contradictions)), 3) if n_div + len(contradictions) else None,
        "number": (0.0 if hit.partial else 1.0) if hit.door_query else None,
        "coverage": round(hit.coverage, 3),
        **hit.components,  # distance, when near= was given
    }
    for r in hit.rules:
        hit.components[r["rule"]] = r.get("factor", r.get("cap"))
    hit.levels = levels
    for m in chosen:
        if m.how == "former":
            hit.former.append({"name": m.name, "current": _current_name(gaz, m), "kind": m.kind})
        elif m.how in ("alias", "abbreviation"):
            hit.former.append({"name": m.name, "current": _current_name(gaz, m), "kind": m.kind, "form": m.how})


def _current_name(gaz: Gazetteer, m: Match) -> str:
    if m.kind == "division":
        d = gaz.divisions.get(m.eid)
        return d.name if d else ""
    if m.kind == "place":
        p = gaz.places.get(m.eid)
        return p.name if p else ""
    it = (gaz.facilities if m.kind == "facility" else gaz.heritage).get(m.eid)
    return it.name if it else ""


def apply_distance(hit: Hit, near: tuple[float, float] | None) -> None:
    if near is None or math.isnan(hit.lon):
        return
    km = haversine_km(near[0], near[1], hit.lon, hit.lat)
    closeness = math.exp(-km / 5.0)
    hit.components["distance"] = round(closeness, 3)
    hit.components["distance_km"] = round(km, 3)
    hit.rank = hit.score + 0.02 * closeness


def haversine_km(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6371.0 * math.asin(min(1.0, math.sqrt(a)))


def order(hits: list[Hit]) -> list[Hit]:
    best: dict[tuple[str, int], Hit] = {}
    for h in hits:
        key = (h.kind, h.eid)
        old = best.get(key)
        if old is None or h.rank > old.rank:
            best[key] = h
    out = sorted(best.values(), key=lambda h: (-round(h.rank, 4), len(h.contradictions), KIND_RANK.get(h.kind, 9),
                                               h.eid))
    if len(out) > 1:
        top = out[0]
        same = [h for h in out if h.kind == top.kind and top.score - h.score <= AMBIGUITY_GAP]
        if len(same) > 1:
            for h in same:
                h.ambiguous = len(same)
    return out


def reason(gaz: Gazetteer, hit: Hit) -> str:
    """One line, Chinese then English, saying how the result matched."""
    parts: list[str] = []
    c = hit.container
    if c is not None and c.mode != "exact":
        parts.append(f"“{c.text}”按{HOW_LABEL[c.mode].split()[0]}匹配“{c.name}” / “{c.text}” matched “{c.name}” "
                     f"by {HOW_LABEL[c.mode].split()[1]}")
    for f in hit.former:
        if f.get("form"):
            parts.append(f"“{f['name']}”是“{f['current']}”的别名 / “{f['name']}” is an alias of “{f['current']}”")
        else:
            parts.append(f"“{f['name']}”是曾用名，今为“{f['current']}” / former name “{f['name']}”, today “{f['current']}”")
    if hit.unexplained:
        names = "、".join(hit.unexplained)
        if hit.kind == "address":
            parts.append(f"“{names}”未找到，不是所写的门牌 / “{names}” not found: not the door written")
        else:
            parts.append(f"“{names}”未找到，返回上一级 / “{names}” not found: partial match at this level")
    if hit.partial and not hit.unexplained:
        missing = hit.doors.missing if hit.doors is not None else []
        finer = hit.doors.finer_only if hit.doors is not None else 0
        if missing:
            names = {"number": "门牌号", "group": "组", "building": "幢", "unit": "单元", "room": "室"}
            zh = "、".join(names.get(m, m) for m in missing)
            parts.append(f"{zh}不存在，返回上一级 / {', '.join(missing)} not found: partial match")
        elif finer:
            parts.append(f"该级别没有地址记录，其下有 {finer} 条 / no record at this level; {finer} below it")
        else:
            parts.append("部分匹配 / partial match")
    for m in hit.contradictions:
        parts.append(f"“{m.text}”与结果不符 / “{m.text}” does not contain this result")
    if hit.ambiguous:
        parts.append(f"有 {hit.ambiguous} 个同样可能的结果 / ambiguous: {hit.ambiguous} equally likely results")
    if not parts:
        parts.append("精确匹配 / exact match" if hit.score >= 0.999 else "匹配 / matched")
    return "; ".join(parts)


def to_dict(gaz: Gazetteer, hit: Hit, *, explain: bool = False) -> dict:
    describe(gaz, hit)
    out: dict = {"id": hit.eid, "kind": hit.kind}
    if hit.kind == "address":
        rec = hit.record
        if rec is not None:
            village_id, lon, lat = rec["village"], rec["lon"], rec["lat"]
            code, full, status = rec["code"], rec["full_text"], rec["status"]
        else:  # a candidate carries its village and coordinates (rec_fields): the rest from the store
            village_id, lon, lat = hit.village, hit.lon, hit.lat
            code, full, status = gaz.addresses.shown(hit.ref)
        village = gaz.divisions.get(village_id)
        township = gaz.divisions.get(village.parent_id) if village is not None and village.parent_id else None
        name = full[len(township.prefix):] if township is not None and full.startswith(township.prefix) else full
        out.update(name=name, address=full, code=code,
                   division=_div_ref(village), lon=_num(lon), lat=_num(lat), status=status)
    elif hit.kind == "place":
        p = gaz.places[hit.eid]
        d = gaz.divisions.get(p.division_id)
        out.update(name=p.name, category=p.category, address=(d.prefix if d else "") + p.name, code=None,
                   division=_div_ref(d), lon=_num(p.lon), lat=_num(p.lat))
    elif hit.kind == "division":
        d = gaz.divisions[hit.eid]
        out.update(name=d.name, level=d.level, address=d.prefix, code=d.code, division=_div_ref(d),
                   lon=_num(d.lon), lat=_num(d.lat))
    else:
        it = (gaz.facilities if hit.kind == "facility" else gaz.heritage)[hit.eid]
        d = gaz.divisions.get(it.division_id)
        out.update(name=it.name, category=it.category, address=it.address_text or ((d.prefix if d else "") + it.name),
                   code=None, division=_div_ref(d), lon=_num(it.lon), lat=_num(it.lat))
    out["score"] = hit.score
    out["low_confidence"] = not is_confident(hit)
    match = {"levels": hit.levels, "reason": reason(gaz, hit), "components": hit.components,
             "partial": hit.partial}
    if hit.ambiguous:
        match["ambiguous"] = hit.ambiguous
    if hit.former:
        match["former_names"] = hit.former
    out["match"] = match
    if explain:
        out["explain"] = {
            "chosen": [_match_dict(m) for m in hit.chosen],
            "contradictions": [_match_dict(m) for m in hit.contradictions],
            "rules": hit.rules,
            "doors": None if hit.doors is None else {"levels": hit.doors.levels, "missing": hit.doors.missing,
                                                    "finer_only": hit.doors.finer_only},
        }
    return out


def is_confident(hit: Hit) -> bool:
    """An answer to act on: scored at least LOW_CONFIDENCE and not one of several equally likely
    results (人民路123号 in three counties is an answer a third of the time). The calibration
    target, measured by bench/bench_search.py: ≥ 99.8 % of confident answers are right."""
    return hit.score >= LOW_CONFIDENCE and hit.ambiguous <= 1


def _match_dict(m: Match) -> dict:
    return {"text": m.text, "span": [m.start, m.end], "kind": m.kind, "id": m.eid, "name": m.name,
            "form": m.how, "mode": m.mode, "score": round(m.score, 3)}


def _div_ref(d) -> dict | None:
    return {"code": d.code, "name": d.name} if d is not None else None


def _num(v: float) -> float | None:
    return None if v is None or math.isnan(v) else round(float(v), 7)


def rec_fields(gaz: Gazetteer, ref) -> tuple[int, int, int, float, float]:
    """(village, street, compound, lon, lat) of a base row or an overlay record."""
    if isinstance(ref, Rec):
        return ref.village, ref.street, ref.compound, ref.lon, ref.lat
    s = gaz.addresses
    i = int(ref)
    col = s.col
    return (int(col["village"].item(i)), int(col["street"].item(i)), int(col["compound"].item(i)),
            float(s.lon.item(i)), float(s.lat.item(i)))


def address_id(gaz: Gazetteer, ref) -> int:
    return ref.id if isinstance(ref, Rec) else int(gaz.addresses.ids.item(int(ref)))
