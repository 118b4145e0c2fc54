"""Steps 2 and 3 — find the gazetteer's names in the query and score each match.

Every text run of the prepared query is scanned from each unit for the longest keys the name
index knows, in three alphabets:

- characters (exact; the form may be a former name, an alias or an abbreviation);
- folded syllables, which catches homophones (艾山 → 爱山, 人敏路 → 人民路), typed pinyin
  (renminlu) and mixtures (人民lu);
- initials, for runs with typed initials (rml).

Then, only where those left characters unexplained (a "gap"), spans overlapping the gap are
looked up with one character deleted on either side (SymSpell), which finds a dropped, extra,
swapped or wrong character (入民路, 人路, 民人路). `fuzzy="all"` looks up every span: the
engine escalates to it when the first pass finds nothing convincing.

A match's score is the entry's base score (standard name 1.0, former name 0.97, …) times the
similarity of the aligned units: 1 for the same character, 0.97 for a typed syllable, 0.9 for
a homophone, 0.8 for a sound-alike, 0.85 for an initial (`unit_similarity`); a match with
edits scores 1 − 0.5 × (optimal-string-alignment distance) / (name length), so a dropped,
extra, wrong or swapped character in a 4-character name scores 0.875. A look-alike character
(形近字, registry.text.lookalike: 己/已, 未/末) counts LOOKALIKE_EDIT of an edit: below a
homophone, above a wrong character.

Sound-alikes are the dialect confusions of Zhejiang (z/zh, c/ch, s/sh, an/ang, en/eng, in/ing,
n/l: `registry.text.fold_syllable`); typed pinyin with them is also looked up letter by letter
under `keys.dialect_letters`, scoring DIALECT_LETTERS (an exact reading scores 0.96). With
`NameIndex.dialect` off (REGISTRY_SEARCH_DIALECT_PINYIN=false) only exact readings match.

A span may match only a name of a compatible kind (`compatible_kind`): when both the query's
span and the name end in a generic of a township, village, street or compound, the kinds must
agree (or one generic end the other), so 织里镇 is never read as the street 织里路 by one edit of
its generic, nor the 凤凰街 of 凤凰街道 as the street 凤凰街.
"""
from __future__ import annotations

from dataclasses import dataclass

from rapidfuzz.distance import OSA

from registry.search.keys import dialect_letters, fold, segmentable_bounds
from registry.search.names import SEP, Entry, NameIndex
from registry.search.query import PreparedQuery, Unit
from registry.text.components import GENERIC_KINDS
from registry.text.lookalike import is_lookalike

EDIT_COST = 0.5
MIN_SCORE = 0.55
FUZZY_MAX_SPAN = 9
LOOKALIKE_EDIT = 0.6  # a look-alike substitution, in edits (a wrong character is 1)
DIALECT_LETTERS = 0.88  # typed pinyin matched only under the dialect letter key
HOMOPHONE_SIM, SOUNDALIKE_SIM = 0.9, 0.8  # a Han character of the same / a dialect-confused reading
TYPED_SIM, TYPED_SOUNDALIKE_SIM, INITIAL_SIM = 0.97, 0.88, 0.85
# Kinds that a generic makes certain: a township's 镇/乡/街道, a village's 村/社区, a street's 路/街,
# a compound's 小区/花园/苑 (a natural village's 浜/桥/港 also name bridges and rivers: not certain).
EDIT_MODES = frozenset({"edit", "lookalike"})
STRICT_KINDS = frozenset({"county", "township", "village", "street", "compound"})

# Generics that say a query span's kind: not the county's 区/县/市 (小区 typed 百合俞区 ends in 区)
# nor one-character compound endings (苑, 园, 府, 城 end other names too).
_SPAN_GENERICS = [g for g in GENERIC_KINDS if GENERIC_KINDS[g] in STRICT_KINDS and GENERIC_KINDS[g] != "county"
                  and not (GENERIC_KINDS[g] == "compound" and len(g) < 2)]
# character → (generic, position of that character in it + 1), longest generics first
_GENERIC_AT: dict[str, list[tuple[str, int]]] = {}
for _g in sorted(_SPAN_GENERICS, key=lambda g: -len(g)):
    for _k, _c in enumerate(_g):
        _GENERIC_AT.setdefault(_c, []).append((_g, _k + 1))


def span_generic(text: str, start: int, end: int) -> str | None:
    """The generic that ends the query's span text[start:end], or runs on past its end (the 凤凰街
    of 凤凰街道 ends in a township's 街道): it says what kind of name the span is shaped like."""
    if end - start < 2:
        return None
    for g, k in _GENERIC_AT.get(text[end - 1], ()):
        a = end - k
        if a > start and text.startswith(g, a):
            return g
    return None


def compatible_kind(query_generic: str | None, entry: Entry) -> bool:
    """A span may match only a name of a compatible kind: 织里镇 (township) is not 织里路 (street),
    金泉社区 (village) not 金泉小区 (compound). Generics one of which ends the other are compatible:
    a typo in a longer generic (阳岸欣村 for 阳岸新村) leaves a shorter one."""
    g = entry.generic
    if query_generic is None or g is None or query_generic == g:
        return True
    qk, ek = GENERIC_KINDS[query_generic], GENERIC_KINDS[g]
    if qk == ek or qk not in STRICT_KINDS or ek not in STRICT_KINDS:
        return True
    return g.endswith(query_generic) or query_generic.endswith(g)


@dataclass(slots=True)
class Match:
    start: int  # characters of the normalized query
    end: int
    entry: int
    kind: str
    eid: int
    score: float
    mode: str  # exact | pinyin | homophone | initials | edit
    how: str  # the entry's form: name, full, short, former, alias …
    text: str  # the query's text of the span
    name: str  # the entry's text
    edits: float = 0.0  # the edit distance of an edit match (a look-alike counts LOOKALIKE_EDIT)

    @property
    def atoms(self) -> int:
        return self.end - self.start

    @property
    def weight(self) -> float:
        return self.score * (self.end - self.start)

    def overlaps(self, start: int, end: int) -> bool:
        return self.start < end and start < self.end


def unit_similarity(u: Unit, char: str, syl: str, dialect: bool = True) -> float:
    if u.kind == "han":
        if u.char == char:
            return 1.0
        if u.syl == syl:
            return HOMOPHONE_SIM
        if dialect and u.fsyl == fold(syl):
            return SOUNDALIKE_SIM
        return 0.0
    if u.kind == "py":
        if u.syl == syl:
            return TYPED_SIM
        if dialect and u.fsyl == fold(syl):
            return TYPED_SOUNDALIKE_SIM
        return 0.0
    return INITIAL_SIM if syl[:1] == u.syl else 0.0


def _cost(sim: float) -> float:
    return 1.0 - sim if sim > 0 else EDIT_COST + 0.5 * EDIT_COST  # a wrong character: 0.75


def compare_same_length(units: list[Unit], entry: Entry, dialect: bool = True) -> tuple[float, str]:
    best, how = 0.0, "exact"
    text = entry.text
    for reading in entry.readings or [tuple(text)]:
        cost = 0.0
        kinds = set()
        for u, c, s in zip(units, text, reading):
            sim = unit_similarity(u, c, s, dialect)
            cost += _cost(sim)
            if sim < 1.0:
                kinds.add("initials" if u.kind == "ini" else "pinyin" if u.kind == "py"
                          else "homophone" if sim > 0 else "edit")
        score = 1.0 - cost / len(text)
        if score > best:
            best = score
            how = ("edit" if "edit" in kinds else "initials" if "initials" in kinds
                   else "pinyin" if "pinyin" in kinds else "homophone" if kinds else "exact")
    return best, how


def scan(pq: PreparedQuery, names: NameIndex, fuzzy: str = "gaps", edit_readings: dict | None = None) -> list[Match]:
    """All name matches in the query (best score per span and entry). `edit_readings`: the edit
    readings of span texts already looked up (by `_edit_readings`), shared by the passes of one
    query."""
    found: dict[tuple[int, int, int], Match] = {}
    entries = names.entries
    text = pq.text

    generics: dict[tuple[int, int], str | None] = {}
    dialect = names.dialect

    def add(units: list[Unit], i: int, j: int, n: int, score: float, mode: str, edits: float = 0.0) -> None:
        if score < MIN_SCORE:
            return
        e = entries[n]
        score *= e.base
        start, end = units[i].start, units[j - 1].end
        if e.generic is not None:
            sg = generics.get((start, end), 0)
            if sg == 0:
                sg = generics[(start, end)] = span_generic(text, start, end)
            if sg is not None and sg != e.generic and not compatible_kind(sg, e):
                if len(pq.refused) < 20:
                    pq.refused.append({"rule": "incompatible_kind", "text": text[start:end], "name": e.text,
                                       "note": f"“{text[start:end]}”以“{sg}”结尾，不是“{e.generic}” / ends in a "
                                               f"{GENERIC_KINDS[sg]} generic, not a {GENERIC_KINDS[e.generic]}"})
                return
        key = (start, end, n)
        old = found.get(key)
        if old is None or old.score < score:
            found[key] = Match(start, end, n, e.kind, e.eid, score, mode, e.how, text[start:end], e.text, edits)

    max_len = names.max_len
    for run in pq.runs:
        units = run.units
        n_units = len(units)
        has_ini = any(u.kind == "ini" for u in units)
        # characters
        covered = [False] * n_units
        for i in range(n_units):
            if units[i].kind != "han":
                continue
            key = ""
            for j in range(i, min(n_units, i + max_len)):
                u = units[j]
                if u.kind != "han":
                    break
                key += u.char
                if key not in names.char_prefixes:
                    break
                lst = names.live(names.chars.get(key))
                for n in lst:
                    add(units, i, j + 1, n, 1.0, "exact")
                if lst and j > i:
                    for k in range(i, j + 1):
                        covered[k] = True
        # sounds: only needed where the characters left something unexplained
        clean = all(covered)
        if clean and fuzzy != "all":
            continue
        for i in range(0 if clean else n_units):
            u0 = units[i]
            if u0.kind != "ini":
                key = ""
                for j in range(i, min(n_units, i + max_len)):
                    u = units[j]
                    if u.kind == "ini":
                        break
                    key = u.fsyl if j == i else key + SEP + u.fsyl
                    if key not in names.sound_prefixes:
                        break
                    lst = names.live(names.sound.get(key))
                    if lst:
                        span = units[i:j + 1]
                        same: dict[str, tuple[float, str]] = {}  # many entities share a name
                        for n in lst:
                            if (u0.start, u.end, n) in found and found[(u0.start, u.end, n)].mode == "exact":
                                continue
                            e = entries[n]
                            r = same.get(e.text)
                            if r is None:
                                r = same[e.text] = compare_same_length(span, e, dialect)
                            add(units, i, j + 1, n, r[0], r[1])
        if has_ini or any(u.kind == "py" for u in units):
            _latin(pq, run.units, names, found, add, dialect)
        if fuzzy != "none":
            _fuzzy(run.units, names, found, add, fuzzy == "all", {} if edit_readings is None else edit_readings)
    return list(found.values())


def _latin(pq: PreparedQuery, units: list[Unit], names: NameIndex, found: dict, add, dialect: bool = True) -> None:
    """Typed latin: whole pinyin spellings at the letter level (changanlu is chang'an lu as
    well as chan'gan lu, so no segmentation is trusted), and initials letter by letter."""
    entries = names.entries
    text = pq.text
    # letters: Han units give their syllable, latin units their letters; a name may start or
    # end inside a latin run only where a syllable boundary can fall (not an in nanjie)
    bounds: dict[int, bool] = {}  # character position in text -> boundary allowed
    i = 0
    while i < len(units):
        u = units[i]
        if u.kind == "han":
            i += 1
            continue
        j = i
        while j + 1 < len(units) and units[j + 1].kind != "han" and units[j + 1].start == units[j].end:
            j += 1
        a, b = units[i].start, units[j].end
        for off, ok in enumerate(segmentable_bounds(text[a:b])):
            bounds[a + off] = ok or off == 0 or a + off == b
        i = j + 1
    letters: list[str] = []
    pos: list[tuple[int, bool]] = []  # (unit index, a name may start here) per letter
    char_at: list[int] = []
    for k, u in enumerate(units):
        if u.kind == "han":
            for c_i, c in enumerate(u.syl):
                letters.append(c)
                pos.append((k, c_i == 0))
                char_at.append(-1)
        else:
            for c_pos in range(u.start, u.end):
                letters.append(text[c_pos])
                pos.append((k, bounds.get(c_pos, True)))
                char_at.append(c_pos)
    L = "".join(letters)
    n = len(L)
    ends_ok = [False] * (n + 1)
    for idx in range(1, n + 1):
        k, _ = pos[idx - 1]
        u = units[k]
        if u.kind == "han":
            ends_ok[idx] = idx == n or pos[idx][0] != k
        else:
            ends_ok[idx] = bounds.get(char_at[idx - 1] + 1, True)
    for a in range(n):
        k0, is_start = pos[a]
        if not is_start:
            continue
        for b in range(a + 2, min(n, a + 48) + 1):
            if not ends_ok[b]:
                continue
            lst = names.letters.get(L[a:b])
            via_dialect = False
            if not lst and dialect and b - a >= 4:
                lst = names.dialect_letters.get(dialect_letters(L[a:b]))
                via_dialect = True
            if not lst:
                continue
            k1 = pos[b - 1][0]
            span = units[k0:k1 + 1]
            if b - a < 4 or all(u.kind == "han" for u in span):
                continue  # Han only: the character and sound scans have it; 2–3 letters: too vague
            span_chars = text[units[k0].start:units[k1].end]
            for n_ in names.live(lst):
                e = entries[n_]
                if len(e.text) < 2:
                    continue
                hans = [u.char for u in span if u.kind == "han"]
                it = iter(e.text)
                score = 0.96 if all(c in it for c in hans) else 0.85
                if via_dialect:
                    score = min(score, DIALECT_LETTERS)
                key = (units[k0].start, units[k1].end, n_)
                old = found.get(key)
                if old is None or old.score < score * e.base:
                    found[key] = Match(key[0], key[1], n_, e.kind, e.eid, score * e.base, "pinyin", e.how,
                                       span_chars, e.text)
    # initials, one letter per unit (xan is x-a-n, not x + an); a span takes whole latin runs
    # (the letters typed for one name: ld of ldl is not a name)
    iu: list[Unit] = []
    run_start: list[bool] = []
    run_end: list[bool] = []
    for u_i, u in enumerate(units):
        if u.kind == "han":
            iu.append(u)
            run_start.append(True)
            run_end.append(True)
        else:
            for c_i in range(u.start, u.end):
                iu.append(Unit(c_i, c_i + 1, "ini", None, text[c_i], text[c_i], text[c_i]))
                run_start.append(c_i == 0 or not (text[c_i - 1].isascii() and text[c_i - 1].isalpha()))
                run_end.append(c_i + 1 >= len(text) or not (text[c_i + 1].isascii() and text[c_i + 1].isalpha()))
    m = len(iu)
    for i in range(m):
        if not run_start[i]:
            continue
        key = ""
        ini = False
        for j in range(i, min(m, i + names.max_len)):
            u = iu[j]
            key += u.init
            ini = ini or u.kind == "ini"
            if key not in names.initial_prefixes:
                break
            if ini and run_end[j]:
                span = iu[i:j + 1]
                for n_ in names.live(names.initials.get(key)):
                    if len(entries[n_].text) == len(span):
                        score, mode = compare_same_length(span, entries[n_], dialect)
                        add(iu, i, j + 1, n_, score, mode)


def _fuzzy(units: list[Unit], names: NameIndex, found: dict, add, everywhere: bool, readings: dict) -> None:
    n_units = len(units)
    if n_units < 2:
        return
    covered = [False] * n_units
    if not everywhere:
        pos = {u.start: k for k, u in enumerate(units)}
        ends = {u.end: k for k, u in enumerate(units)}
        for m in found.values():
            if m.score >= 0.8 and m.atoms >= 2 and m.start in pos and m.end in ends:
                for k in range(pos[m.start], ends[m.end] + 1):
                    covered[k] = True
        if all(covered):
            return
    entries = names.entries
    # entries already found without edits, with their spans
    clean: dict[int, list[tuple[int, int]]] = {}
    for m in found.values():
        if m.mode not in EDIT_MODES:
            clean.setdefault(m.entry, []).append((m.start, m.end))
    for i in range(n_units):
        first = units[i]
        if first.kind != "han":
            continue
        # the span units[i:j], grown one unit at a time: its text, and whether all of it is covered
        t = first.char
        start = first.start
        all_covered = covered[i]
        for j in range(i + 2, min(n_units, i + FUZZY_MAX_SPAN) + 1):
            last = units[j - 1]
            if last.kind != "han":
                break
            t += last.char
            all_covered = all_covered and covered[j - 1]
            if not everywhere and all_covered:
                continue
            got = readings.get(t)
            if got is None:
                got = _edit_readings(names, t, readings)
            end = last.end
            for n, raw, mode, d in got:
                if not entries[n].alive or (start, end, n) in found:
                    continue
                # around a clean match of the same name (道沈家路), or shifted over it (泉社区报 for
                # 金泉社区 read exactly): a neighbour's character, not a typo
                spans = clean.get(n)
                if spans and any(start < b and a < end for a, b in spans):
                    continue
                add(units, i, j, n, raw, mode, d)


def _edit_readings(names: NameIndex, t: str, cache: dict) -> tuple[tuple[int, float, str, float], ...]:
    """(entry, score before the entry's base, mode, edits) of every name within one deletion of
    the span text `t` on either side (SymSpell) that scores at least MIN_SCORE, each entry once,
    in lookup order; dead entries included (the caller filters them). Kept in `cache` (the
    engine's second pass reads the first pass's spans again)."""
    cands: list[int] = list(names.deletions.get(t, ()))
    if len(t) >= 3:
        for k in range(len(t)):
            d = t[:k] + t[k + 1:]
            cands.extend(names.chars.get(d, ()))
            cands.extend(names.deletions.get(d, ()))
    entries = names.entries
    out = []
    for n in dict.fromkeys(cands):
        name = entries[n].text
        d = OSA.distance(t, name)  # optimal string alignment: a swap is one edit
        mode = "edit"
        if d and len(t) == len(name):
            diff = [(a, b) for a, b in zip(t, name) if a != b]
            if len(diff) == d and all(is_lookalike(a, b) for a, b in diff):
                d, mode = d * LOOKALIKE_EDIT, "lookalike"  # 形近字: 己/已, 未/末
        raw = 1.0 - EDIT_COST * d / len(name)
        if raw >= MIN_SCORE:  # below it, add() keeps nothing
            out.append((n, raw, mode, d))
    got = cache[t] = tuple(out)
    return got
