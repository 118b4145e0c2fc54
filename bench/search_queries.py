"""The query set of the search bench: every class of issue 4, generated from the stored data.

Each query has a class, the text, and the expected result (kind, id). A query is generated only
when, with perfect knowledge of the registry, it names exactly one record: levels are dropped
only while what is left is still unique, and an ambiguous name gets the smallest division
prefix (county, then township, then village) that makes it unique. The generator uses its own
means (pypinyin, OpenCC s2t, its own typo and numeral writers), not the engine's.

Perturbations (issue 10) follow one fixed model that knows nothing of the engine: a typo is a
homophone (by pypinyin's exact reading), a wrong, dropped, doubled or swapped character at any
position of the name, its generic included; a dialect confusion swaps one of z/zh, c/ch, s/sh,
an/ang, en/eng, in/ing, n/l in one syllable of a name typed as pinyin; a look-alike replaces one
character by one of its 形近字 (the kept table, data/reference/lookalike_chars_pycorrector.txt).
A perturbed query that another record explains as well as the intended one (another name at
the same edit distance or with the same reading, a typo that is itself a name, a numeral that
joins the door number) is not dropped: it goes to the class `ambiguous`, reported on its own
row. The class `unknown_street` writes a street the registry does not have (the specific part
replaced by two random characters, no name within one edit of it): the right answer is the
division written (the township, or the village when it is written), `partial`; a door is a
confident wrong answer.
"""
from __future__ import annotations

import random
import unicodedata
from collections import defaultdict
from dataclasses import dataclass

import numpy as np
from pypinyin import Style, lazy_pinyin

from pypinyin.pinyin_dict import pinyin_dict

from registry.search.gazetteer import Gazetteer

CLASSES = ("full", "missing_levels", "village_short", "typo", "pinyin", "initials", "mixed_pinyin", "traditional",
           "fullwidth", "numerals", "subaddress", "noise", "former", "places", "combined", "number_variants",
           "missing_number", "unknown_street", "dialect_pinyin", "lookalike", "division_former", "ambiguous")
# `division_former` draws on the townships' former names in the gazetteer: the real adjustments that
# `registry load reference` applies (旧馆镇 → 旧馆街道 …); with none loaded the class stays empty.


@dataclass
class BenchQuery:
    cls: str
    q: str
    kind: str
    id: int
    note: str = ""


_CN = "零一二三四五六七八九"


def cn_number(n: int) -> str:
    """123 → 一百二十三 (the generator's own writer)."""
    if n < 10:
        return _CN[n]
    if n < 20:
        return "十" + (_CN[n % 10] if n % 10 else "")
    if n < 100:
        return _CN[n // 10] + "十" + (_CN[n % 10] if n % 10 else "")
    if n < 1000:
        rest = n % 100
        s = _CN[n // 100] + "百"
        if rest == 0:
            return s
        if rest < 10:
            return s + "零" + _CN[rest]
        return s + (_CN[rest // 10] + "十" + (_CN[rest % 10] if rest % 10 else ""))
    return "".join(_CN[int(d)] for d in str(n))


def cn_digits(s: str) -> str:
    return "".join(_CN[int(c)] if c.isdigit() else c for c in s)


def fullwidth(s: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in s)


_s2t = None


def traditional(s: str) -> str:
    global _s2t
    if _s2t is None:
        import opencc

        _s2t = opencc.OpenCC("s2t")
    return _s2t.convert(s)


def _py(name: str, style: str) -> str:
    syl = lazy_pinyin(name, style=Style.TONE if style == "tones" else Style.NORMAL)
    if style == "spaced":
        return " ".join(syl)
    if style == "caps":
        return "".join(s.capitalize() for s in syl)
    return "".join(syl)


def _initials(name: str) -> str:
    return "".join(s[0] for s in lazy_pinyin(name))


class Truth:
    """Ground truth over the stored addresses: names, chains, uniqueness counts."""

    def __init__(self, gaz: Gazetteer) -> None:
        self.gaz = gaz
        s = gaz.addresses
        self.n = len(s.ids)
        col = s.col
        divs = gaz.divisions
        vill_ids = col["village"]
        uniq_v = np.unique(vill_ids)
        town_of = {v: (divs[v].parent_id if v in divs else 0) for v in uniq_v.tolist()}
        county_of = {v: (divs[t].parent_id if t in divs else 0) for v, t in town_of.items()}
        lut_t = np.vectorize(lambda v: town_of.get(v, 0), otypes=[np.int64])
        lut_c = np.vectorize(lambda v: county_of.get(v, 0), otypes=[np.int64])
        self.village = vill_ids.astype(np.int64)
        self.township = lut_t(vill_ids) if self.n else np.zeros(0, np.int64)
        self.county = lut_c(vill_ids) if self.n else np.zeros(0, np.int64)
        # name codes: the same written name -> the same code (人民路 in three counties)
        codes: dict[str, int] = {}
        self.place_code: dict[int, int] = {}
        for pid, p in gaz.places.items():
            self.place_code[pid] = codes.setdefault(p.name, len(codes) + 1)
        self.name_codes = codes
        max_pid = max(gaz.places) if gaz.places else 0
        lut = np.zeros(max_pid + 2, dtype=np.int64)
        for pid, c in self.place_code.items():
            lut[pid] = c
        self.street_code = lut[np.clip(col["street"], 0, max_pid + 1)] * (col["street"] > 0)
        self.compound_code = lut[np.clip(col["compound"], 0, max_pid + 1)] * (col["compound"] > 0)
        # initials codes of streets
        icodes: dict[str, int] = {}
        ilut = np.zeros(max_pid + 2, dtype=np.int64)
        for pid, p in gaz.places.items():
            ilut[pid] = icodes.setdefault(_initials(p.name), len(icodes) + 1)
        self.street_icode = ilut[np.clip(col["street"], 0, max_pid + 1)] * (col["street"] > 0)
        self.compound_icode = ilut[np.clip(col["compound"], 0, max_pid + 1)] * (col["compound"] > 0)
        pcodes: dict[str, int] = {}
        plut = np.zeros(max_pid + 2, dtype=np.int64)
        for pid, p in gaz.places.items():
            plut[pid] = pcodes.setdefault("".join(lazy_pinyin(p.name)), len(pcodes) + 1)
        self.street_pcode = plut[np.clip(col["street"], 0, max_pid + 1)] * (col["street"] > 0)
        self.counts: dict[tuple[str, str], dict[int, int]] = {}
        for keyname in ("door", "door_initials", "door_pinyin"):
            for scope in ("city", "county", "township", "village"):
                k = self._key(keyname, scope)
                u, c = np.unique(k, return_counts=True)
                self.counts[(keyname, scope)] = dict(zip(u.tolist(), c.tolist()))
        self.all_names = set(codes) | {d.name for d in divs.values()} | {d.full_name for d in divs.values()}
        self.kind_names: dict[str, set[str]] = {
            "place": set(codes),
            "division": {d.name for d in divs.values()} | {d.full_name for d in divs.values()},
            "facility": {x.name for x in gaz.facilities.values()},
            "heritage": {x.name for x in gaz.heritage.values()},
        }
        self.name_list = sorted(self.all_names)
        self.by_sound: dict[str, set[str]] = defaultdict(set)
        for n in self.name_list:
            self.by_sound["".join(lazy_pinyin(n))].add(n)

    def elsewhere(self, name: str, kind: str) -> bool:
        """The name also names something of another kind."""
        return any(name in names for k, names in self.kind_names.items() if k != kind)

    def typo_ambiguous(self, typo: str, intended: str) -> bool:
        """Another name is as close to the typo as the intended one (or sounds the same)."""
        from rapidfuzz import process
        from rapidfuzz.distance import DamerauLevenshtein

        if len(self.by_sound.get("".join(lazy_pinyin(intended)), ())) > 1:
            return True
        # another name that reads exactly like the typo
        if any(n != intended for n in self.by_sound.get("".join(lazy_pinyin(typo)), ())):
            return True
        d = DamerauLevenshtein.distance(typo, intended)
        close = process.extract(typo, self.name_list, scorer=DamerauLevenshtein.distance, score_cutoff=d, limit=None)
        return any(name != intended for name, _, _ in close)

    def _key(self, keyname: str, scope: str) -> np.ndarray:
        col = self.gaz.addresses.col
        name = {"door_initials": self.street_icode, "door_pinyin": self.street_pcode}.get(keyname, self.street_code)
        compound = self.compound_icode if keyname == "door_initials" else self.compound_code
        parts = [name, compound, col["group"], col["main"], col["sub"], col["pre"], col["suf"], col["bld"],
                 col["unit"], col["room"]]
        if scope != "city":
            parts.append({"county": self.county, "township": self.township, "village": self.village}[scope])
        h = np.zeros(self.n, dtype=np.uint64)
        for p in parts:
            h = (h * np.uint64(1_000_003)) ^ p.astype(np.int64).astype(np.uint64)
        return h.astype(np.int64)

    def unique_scope(self, i: int, keyname: str = "door") -> str | None:
        for scope in ("city", "county", "township", "village"):
            k = self._key_one(i, keyname, scope)
            if self.counts[(keyname, scope)].get(k, 0) == 1:
                return scope
        return None

    def _key_one(self, i: int, keyname: str, scope: str) -> int:
        col = self.gaz.addresses.col
        name = {"door_initials": self.street_icode, "door_pinyin": self.street_pcode}.get(keyname, self.street_code)[i]
        compound = (self.compound_icode if keyname == "door_initials" else self.compound_code)[i]
        parts = [name, compound] + [col[f][i] for f in ("group", "main", "sub", "pre", "suf", "bld",
                                                                     "unit", "room")]
        if scope != "city":
            parts.append({"county": self.county, "township": self.township, "village": self.village}[scope][i])
        h = np.uint64(0)
        with np.errstate(over="ignore"):
            for p in parts:
                h = (h * np.uint64(1_000_003)) ^ np.uint64(np.int64(p).astype(np.uint64))
        return int(np.int64(h))

    # -- text pieces ---------------------------------------------------------------------------
    def prefix(self, i: int, scope: str, county_short: bool = False) -> str:
        divs = self.gaz.divisions
        if scope == "city":
            return ""
        county = divs[int(self.county[i])].name
        if county_short and len(county) > 2:
            county = county[:-1]
        if scope == "county":
            return county
        town = divs[int(self.township[i])].name
        if scope == "township":
            return county + town
        return county + town + divs[int(self.village[i])].name

    def label(self, i: int) -> tuple[str, str]:
        """(full_text, the part after the township) of a stored address."""
        code, full = self.gaz.addresses.text(i)
        town = self.gaz.divisions[int(self.township[i])]
        return full, full[len(town.prefix):] if full.startswith(town.prefix) else full

    def kind(self, i: int) -> str:
        col = self.gaz.addresses.col
        if col["street"][i] > 0:
            return "street"
        p = self.gaz.places.get(int(col["compound"][i]))
        if p is not None and p.category == "natural_village":
            return "natural"
        return "flat" if p is not None else "village"


def _door(main: int, sub: int, pre: int, suf: int) -> str:
    return f"{'附' if pre else ''}{main}{'甲乙丙丁'[suf - 1] if suf else ''}{'-' + str(sub) if sub else ''}号"


class Generator:
    def __init__(self, gaz: Gazetteer, seed: int = 7) -> None:
        self.gaz = gaz
        self.t = Truth(gaz)
        self.rng = random.Random(seed)
        s = gaz.addresses
        alive = np.flatnonzero(s.alive)
        self.rows = {"street": [], "flat": [], "natural": [], "village": []}
        order = alive.copy()
        np.random.default_rng(seed).shuffle(order)
        for i in order[: min(len(order), 60_000)].tolist():
            self.rows[self.t.kind(i)].append(i)
        self.homophones = self._homophone_pool()

    def _homophone_pool(self) -> dict[str, list[str]]:
        chars = set()
        for name in self.t.all_names:
            chars.update(c for c in name if "\u4e00" <= c <= "\u9fff")
        by_syl: dict[str, list[str]] = defaultdict(list)
        for c in sorted(chars):
            by_syl[lazy_pinyin(c)[0]].append(c)
        return by_syl

    def _pick(self, kind: str) -> int | None:
        rows = self.rows.get(kind) or []
        return self.rng.choice(rows) if rows else None

    def _scoped(self, i: int, keyname: str = "door", county_short: bool = False) -> str | None:
        scope = self.t.unique_scope(i, keyname)
        if scope is None:
            return None
        return self.t.prefix(i, scope, county_short=county_short)

    def _expect(self, i: int) -> tuple[str, int]:
        return "address", int(self.gaz.addresses.ids[i])

    def _parts(self, i: int) -> dict:
        col = self.gaz.addresses.col
        return {f: int(col[f][i]) for f in ("street", "compound", "group", "main", "sub", "pre", "suf", "bld", "unit",
                                            "room", "village")}

    def _tail(self, i: int, number_writer=None, sub_writer=None) -> tuple[str, str]:
        """(container name, what follows it) of an address, written afresh."""
        p = self._parts(i)
        gaz = self.gaz
        if p["street"]:
            name = gaz.places[p["street"]].name
            door = _door(p["main"], p["sub"], p["pre"], p["suf"])
            if number_writer:
                door = number_writer(p)
            rest = door
            if p["compound"]:
                rest += gaz.places[p["compound"]].name
            rest += self._sub(p, sub_writer)
            return name, rest
        if p["compound"] and gaz.places[p["compound"]].category != "natural_village":
            name = gaz.places[p["compound"]].name
            return name, self._sub(p, sub_writer)
        village = gaz.divisions[p["village"]].name
        nv = gaz.places[p["compound"]].name if p["compound"] else ""
        door = _door(p["main"], p["sub"], p["pre"], p["suf"]) if p["main"] else ""
        if number_writer and p["main"]:
            door = number_writer(p)
        group = f"{p['group']}组" if p["group"] else ""
        return village + nv, group + door + self._sub(p, sub_writer)

    def _sub(self, p: dict, writer=None) -> str:
        if writer is not None:
            return writer(p)
        out = ""
        if p["bld"]:
            out += f"{p['bld'] if p['bld'] > 0 else chr(-p['bld'])}幢"
        if p["unit"]:
            out += f"{p['unit']}单元"
        if p["room"]:
            out += f"{p['room']}室"
        return out

    # -- classes ----------------------------------------------------------------------------------
    def generate(self, per_class: int) -> list[BenchQuery]:
        out: list[BenchQuery] = []
        for cls in CLASSES:
            if cls == "ambiguous":
                continue
            fn = getattr(self, f"q_{cls}")
            made, tries = 0, 0
            while made < per_class and tries < per_class * 20:
                tries += 1
                q = fn()
                if q is not None:
                    out.append(q)
                    made += q.cls == cls  # an inherently ambiguous query is kept, on its own row
        return out


    def _any_row(self, kinds=("street", "flat", "natural")) -> int | None:
        return self._pick(self.rng.choice([k for k in kinds if self.rows.get(k)] or ["street"]))

    def q_full(self):
        i = self._any_row()
        if i is None:
            return None
        full, _ = self.t.label(i)
        return BenchQuery("full", full, *self._expect(i))

    def q_missing_levels(self):
        i = self._any_row()
        if i is None:
            return None
        scope = self.t.unique_scope(i)
        if scope is None:
            return None
        full, rest = self.t.label(i)
        options = []
        if scope == "city":
            options += [rest, "湖州" + rest, "湖州市" + rest]
        if scope in ("city", "county"):
            options += [self.t.prefix(i, "county", county_short=True) + rest, self.t.prefix(i, "county") + rest]
        options += [self.t.prefix(i, "township") + rest, full.replace("浙江省湖州市", "", 1)]
        return BenchQuery("missing_levels", self.rng.choice(options), *self._expect(i), note=scope)

    def q_village_short(self):
        r = self.rng.random()
        if r < 0.5:  # a village or community by its short form (祝良村 for 祝良村委会, XX社区 for XX社区居委会)
            vids = [d for d in self.gaz.divisions.values() if d.level == "village" and d.status == "active"]
            d = self.rng.choice(vids)
            same = [x for x in vids if x.name == d.name]
            if self.t.elsewhere(d.name, "division"):
                return None
            prefix = ""
            if len(same) > 1:
                t = self.gaz.divisions[d.parent_id]
                prefix = t.name
            return BenchQuery("village_short", prefix + d.name, "division", d.id)
        i = self._pick("natural")
        if i is None:
            return None
        prefix = self._scoped(i)
        if prefix is None:
            return None
        name, rest = self._tail(i)
        village = self.gaz.divisions[int(self.t.village[i])]
        committee = village.full_name if self.rng.random() < 0.5 else village.name
        name = name.replace(village.name, committee, 1)
        if not prefix:
            prefix = self.t.prefix(i, "county")
        return BenchQuery("village_short", prefix + name + rest, *self._expect(i))

    def _typo(self, name: str) -> tuple[str, str, bool] | None:
        """(typo, kind, inherently ambiguous) by the fixed model: any position, the generic too."""
        kinds = ["homophone"] + (["wrong", "drop", "extra", "swap"] if len(name) >= 3 else [])
        kind = self.rng.choice(kinds)
        chars = list(name)
        k = self.rng.randrange(len(chars))
        if kind == "homophone":
            pool = [c for c in self.homophones.get(lazy_pinyin(chars[k])[0], []) if c != chars[k]]
            if not pool:
                return None
            chars[k] = self.rng.choice(pool)
        elif kind == "wrong":
            pool = [c for cs in self.homophones.values() for c in cs]
            chars[k] = self.rng.choice(pool)
        elif kind == "drop":
            del chars[k]
        elif kind == "extra":
            chars.insert(k, chars[k])
        elif kind == "swap":
            if k + 1 >= len(chars) or chars[k] == chars[k + 1]:
                return None
            chars[k], chars[k + 1] = chars[k + 1], chars[k]
        out = "".join(chars)
        if out == name:
            return None
        return out, kind, self._ambiguous(out, name)

    def _ambiguous(self, out: str, name: str) -> bool:
        # a numeral next to the door number reads as part of it (村四1幢 → 41幢); a typo that is a
        # name itself, or as close to another name: the text names more than one record
        return (out[-1] in "零一二三四五六七八九十百千两" or out in self.t.all_names
                or self.t.typo_ambiguous(out, name))

    def q_typo(self):
        i = self._any_row(("street", "flat"))
        if i is None:
            return None
        prefix = self._scoped(i)
        if prefix is None:
            return None
        name, rest = self._tail(i)
        if self.rng.random() < 0.2:  # a typo in the township: 艾山街道 for 爱山街道
            town = self.gaz.divisions[int(self.t.township[i])].name
            county = self.gaz.divisions[int(self.t.county[i])].name
            t = self._typo(town)
            if t is None:
                return None
            return BenchQuery("ambiguous" if t[2] else "typo", county + t[0] + name + rest, *self._expect(i),
                              note="typo township:" + t[1])
        t = self._typo(name)
        if t is None:
            return None
        if not prefix:
            prefix = self.t.prefix(i, "county")
        return BenchQuery("ambiguous" if t[2] else "typo", prefix + t[0] + rest, *self._expect(i), note="typo " + t[1])

    def q_pinyin(self):
        i = self._pick("street")
        if i is None:
            return None
        prefix = self._scoped(i, "door_pinyin")
        if prefix is None:
            return None
        p = self._parts(i)
        name = self.gaz.places[p["street"]].name
        style = self.rng.choice(["joined", "spaced", "tones", "caps"])
        door = f"{p['main']}" + (f"-{p['sub']}" if p["sub"] else "")
        if p["pre"] or p["suf"] or p["compound"] or p["bld"]:
            return None
        sep = self.rng.choice([" ", ""])
        return BenchQuery("pinyin", prefix + _py(name, style) + sep + door, *self._expect(i), note=style)

    def q_initials(self):
        i = self._pick("street")
        if i is None:
            return None
        p = self._parts(i)
        if p["pre"] or p["suf"] or p["compound"] or p["bld"]:
            return None
        prefix = self._scoped(i, "door_initials")
        if prefix is None:
            return None
        name = self.gaz.places[p["street"]].name
        door = f"{p['main']}" + (f"-{p['sub']}" if p["sub"] else "")
        return BenchQuery("initials", prefix + _initials(name) + door, *self._expect(i))

    def q_mixed_pinyin(self):
        i = self._pick("street")
        if i is None:
            return None
        prefix = self._scoped(i, "door_pinyin")
        if prefix is None:
            return None
        p = self._parts(i)
        if p["compound"] or p["bld"]:
            return None
        name = self.gaz.places[p["street"]].name
        k = self.rng.randrange(1, len(name))
        mixed = name[:k] + "".join(lazy_pinyin(name[k:]))
        return BenchQuery("mixed_pinyin", prefix + mixed + _door(p["main"], p["sub"], p["pre"], p["suf"]),
                          *self._expect(i))

    def q_traditional(self):
        i = self._any_row()
        if i is None:
            return None
        full, _ = self.t.label(i)
        return BenchQuery("traditional", traditional(full.replace("浙江省", "", 1)), *self._expect(i))

    def q_fullwidth(self):
        i = self._any_row()
        if i is None:
            return None
        prefix = self._scoped(i)
        if prefix is None:
            return None
        name, rest = self._tail(i)
        return BenchQuery("fullwidth", fullwidth(prefix + name + rest), *self._expect(i))

    def q_numerals(self):
        i = self._any_row()
        if i is None:
            return None
        prefix = self._scoped(i)
        if prefix is None:
            return None

        def number(p):
            s = f"{'附' if p['pre'] else ''}{cn_number(p['main'])}{'甲乙丙丁'[p['suf'] - 1] if p['suf'] else ''}号"
            return s + (f"之{cn_number(p['sub'])}" if p["sub"] else "")

        def sub(p):
            out = ""
            if p["bld"] > 0:
                out += f"{cn_number(p['bld'])}幢"
            elif p["bld"]:
                out += f"{chr(-p['bld'])}幢"
            if p["unit"]:
                out += f"{cn_number(p['unit'])}单元"
            if p["room"]:
                out += f"{cn_digits(str(p['room']))}室"
            return out

        name, rest = self._tail(i, number, sub)
        if "组" in rest:
            rest = rest.replace(f"{self._parts(i)['group']}组", f"{cn_number(self._parts(i)['group'])}组", 1)
        return BenchQuery("numerals", prefix + name + rest, *self._expect(i))

    def q_subaddress(self):
        i = self._pick("flat")
        if i is None:
            return None
        prefix = self._scoped(i)
        if prefix is None:
            return None
        p = self._parts(i)
        if p["bld"] <= 0 or not p["unit"] or not p["room"]:
            return None
        style = self.rng.choice(["栋", "座", "幢-no-室", "dash", "号楼"])
        b, u, r = p["bld"], p["unit"], p["room"]
        sub = {"栋": f"{b}栋{u}单元{r}室", "座": f"{b}座{u}单元{r}", "幢-no-室": f"{b}幢{u}单元{r}",
               "dash": f"{b}-{u}-{r}", "号楼": f"{b}号楼{u}单元{r}室"}[style]
        name, _ = self._tail(i)
        if p["street"]:
            name = self.gaz.places[p["compound"]].name
        return BenchQuery("subaddress", prefix + name + sub, *self._expect(i), note=style)

    def q_noise(self):
        i = self._any_row()
        if i is None:
            return None
        prefix = self._scoped(i)
        if prefix is None:
            return None
        name, rest = self._tail(i)
        style = self.rng.choice(["附近", "(某某超市)", "（便利店）", "spaces", "punct", "旁边"])
        if style == "spaces":
            q = " ".join([prefix, name, rest]).strip()
            q = q.replace("号", " 号", 1)
        elif style == "punct":
            q = f"{prefix}，{name}、{rest}。"
        else:
            q = prefix + name + rest + style
        return BenchQuery("noise", q, *self._expect(i), note=style)

    def q_former(self):
        formers = [(e.text, e.eid) for e in self.gaz.names.entries
                   if e.alive and e.how == "former" and e.kind == "place"]
        if not formers:
            return None
        former, pid = self.rng.choice(formers)
        cand = self.gaz.addresses.gather("street", pid)
        rows = cand.base.tolist()
        if not rows or former in self.t.name_codes:
            return None
        i = self.rng.choice(rows)
        prefix = self._scoped(i)
        if prefix is None:
            return None
        if not prefix:
            prefix = self.t.prefix(i, "county")
        _, rest = self._tail(i)
        return BenchQuery("former", prefix + former + rest, *self._expect(i))

    def q_places(self):
        r = self.rng.random()
        gaz = self.gaz
        if r < 0.4:
            pool = [p for p in gaz.places.values() if p.category in ("natural_village", "bridge", "river", "hill",
                                                                      "compound")]
            if not pool:
                return None
            p = self.rng.choice(pool)
            if self.t.elsewhere(p.name, "place"):
                return None
            same = [x for x in gaz.places.values() if x.name == p.name]
            prefix = ""
            if len(same) > 1:
                d = gaz.divisions.get(p.division_id)
                chain = [gaz.divisions[c] for c in (d.chain if d else ())]
                town = next((c for c in chain if c.level == "township"), None)
                county = next((c for c in chain if c.level == "county"), None)
                same_t = [x for x in same if town and town.id in x.divisions]
                if town is None or len(same_t) > 1:
                    village = next((c for c in chain if c.level == "village"), None)
                    same_v = [x for x in same if village and village.id in x.divisions]
                    if village is None or len(same_v) > 1:
                        return None
                    prefix = (county.name if county else "") + (town.name if town else "") + village.name
                else:
                    prefix = (county.name if county else "") + town.name
            return BenchQuery("places", prefix + p.name, "place", p.id)
        items = list(gaz.facilities.values()) if r < 0.8 else list(gaz.heritage.values())
        if not items:
            return None
        it = self.rng.choice(items)
        if sum(1 for x in items if x.name == it.name) > 1 or self.t.elsewhere(it.name, it.kind):
            return None
        return BenchQuery("places", it.name, it.kind, it.id)

    def q_combined(self):
        i = self._pick("street")
        if i is None:
            return None
        p = self._parts(i)
        if p["compound"] or p["sub"] or p["pre"] or p["suf"]:
            return None
        scope = self.t.unique_scope(i)
        if scope is None:
            return None
        county = self.gaz.divisions[int(self.t.county[i])].name
        town = self.gaz.divisions[int(self.t.township[i])].name
        name = self.gaz.places[p["street"]].name
        t = self._typo(name)
        if t is None or t[1] != "homophone":
            t = self._typo(name)
        if t is None:
            return None
        short = county[:-1] if len(county) > 2 else county
        q = short + town + t[0] + cn_number(p["main"]) + "号" + self.rng.choice(["附近", "旁边", "(超市)", ""])
        return BenchQuery("ambiguous" if t[2] else "combined", traditional(q), *self._expect(i), note="combined " + t[1])

    def q_number_variants(self):
        rows = self.rows.get("street") or []
        dash = [i for i in rows[:20000] if self.gaz.addresses.col["sub"][i] > 0 and not
                self.gaz.addresses.col["compound"][i]]
        if not dash:
            return None
        i = self.rng.choice(dash)
        prefix = self._scoped(i)
        if prefix is None:
            return None
        p = self._parts(i)
        m, s = p["main"], p["sub"]
        style = self.rng.choice([f"{m}号之{s}", f"{m}号-{s}", f"{m}之{s}号", f"{m}-{s}号", f"{m}-{s}"])
        head = f"{'附' if p['pre'] else ''}"
        name = self.gaz.places[p["street"]].name
        if p["suf"]:
            return None
        return BenchQuery("number_variants", prefix + name + head + style, *self._expect(i), note=style)

    def q_missing_number(self):
        i = self._pick("street")
        if i is None:
            return None
        p = self._parts(i)
        sid = p["street"]
        street = self.gaz.places[sid]
        same = [x for x in self.gaz.places.values() if x.name == street.name]
        county = self.gaz.divisions[int(self.t.county[i])]
        town = self.gaz.divisions[int(self.t.township[i])]
        prefix = ""
        if len(same) > 1:
            if sum(1 for x in same if county.id in x.divisions) == 1:
                prefix = county.name
            elif sum(1 for x in same if town.id in x.divisions) == 1:
                prefix = county.name + town.name
            else:
                return None
        mains = self.gaz.addresses.col["main"][self.gaz.addresses.gather("street", sid).base]
        missing = int(mains.max()) + self.rng.randrange(200, 900) if len(mains) else 999
        return BenchQuery("missing_number", prefix + street.name + f"{missing}号", "place", sid)

    # -- issue 10: streets the registry lacks, dialect pinyin, look-alikes, former divisions ---------
    _STREET_GENERICS = ("大道", "大街", "公路", "中路", "东路", "西路", "南路", "北路", "路", "街", "巷", "弄")

    def q_unknown_street(self):
        """A street the registry does not have, in a division it has: 东林镇碑匆路145号."""
        i = self._pick("street")
        if i is None:
            return None
        p = self._parts(i)
        name = self.gaz.places[p["street"]].name
        generic = next((g for g in self._STREET_GENERICS if name.endswith(g) and len(name) > len(g)), None)
        if generic is None:
            return None
        pool = self._name_chars()
        new = self.rng.choice(pool) + self.rng.choice(pool) + generic
        if new in self.t.all_names or self._near_name(new):
            return None
        county = self.gaz.divisions[int(self.t.county[i])]
        town = self.gaz.divisions[int(self.t.township[i])]
        village = self.gaz.divisions[int(self.t.village[i])]
        style = self.rng.choice(["county+township", "township", "county+township+village"])
        prefix = {"county+township": county.name + town.name, "township": town.name,
                  "county+township+village": county.name + town.name + village.name}[style]
        if style == "township" and sum(1 for d in self.gaz.divisions.values() if d.name == town.name) > 1:
            prefix = county.name + town.name
        want = village if style.endswith("village") else town
        door = _door(p["main"], p["sub"], p["pre"], p["suf"])
        return BenchQuery("unknown_street", prefix + new + door, "division", want.id, note=f"{style} (was {name})")

    def _name_chars(self) -> list[str]:
        if not hasattr(self, "_chars"):
            self._chars = sorted({c for cs in self.homophones.values() for c in cs} - set("零一二三四五六七八九十百千两"))
        return self._chars

    def _near_name(self, text: str) -> bool:
        from rapidfuzz import process
        from rapidfuzz.distance import DamerauLevenshtein

        return bool(process.extract(text, self.t.name_list, scorer=DamerauLevenshtein.distance, score_cutoff=1,
                                    limit=1))

    def q_dialect_pinyin(self):
        """A street typed as pinyin with one Zhejiang confusion: zhongshan → zongshan, renmin → renming."""
        i = self._pick("street")
        if i is None:
            return None
        p = self._parts(i)
        if p["pre"] or p["suf"] or p["compound"] or p["bld"]:
            return None
        prefix = self._scoped(i, "door_pinyin")
        if prefix is None:
            return None
        name = self.gaz.places[p["street"]].name
        syl = lazy_pinyin(name)
        options = []
        for k, s in enumerate(syl):
            for t, rule in _dialect_variants(s):
                if t in _SYLLABLES:
                    options.append((k, t, rule))
        if not options:
            return None
        k, t, rule = self.rng.choice(options)
        typed = syl[:k] + [t] + syl[k + 1:]
        sep = self.rng.choice(["", " "])
        text = sep.join(typed)
        door = f"{p['main']}" + (f"-{p['sub']}" if p["sub"] else "")
        joined = "".join(typed)
        ambiguous = (bool(self.t.by_sound.get(joined, set()) - {name}) or len(self.t.by_sound.get("".join(syl), ())) > 1
                     or bool(self._dialect_names().get(joined, set()) - {name}))
        return BenchQuery("ambiguous" if ambiguous else "dialect_pinyin", prefix + text + " " + door,
                          *self._expect(i), note=f"dialect {rule}")

    def _dialect_names(self) -> dict[str, set[str]]:
        """Every name's pinyin with one dialect confusion → the names (xingandadao: 新港大道 and 新安大道)."""
        if not hasattr(self, "_dialect_map"):
            out: dict[str, set[str]] = defaultdict(set)
            for n in self.t.name_list:
                syl = lazy_pinyin(n)
                for k, s in enumerate(syl):
                    for t, _ in _dialect_variants(s):
                        out["".join(syl[:k] + [t] + syl[k + 1:])].add(n)
            self._dialect_map = out
        return self._dialect_map

    def q_lookalike(self):
        """One character of the container's name replaced by a look-alike (未/末, 己/已)."""
        from registry.text.lookalike import lookalike_table

        i = self._any_row(("street", "flat"))
        if i is None:
            return None
        prefix = self._scoped(i)
        if prefix is None:
            return None
        name, rest = self._tail(i)
        table = lookalike_table()
        spots = [k for k, c in enumerate(name) if c in table]
        if not spots:
            return None
        k = self.rng.choice(spots)
        out = name[:k] + self.rng.choice(sorted(table[name[k]])) + name[k + 1:]
        if not prefix:
            prefix = self.t.prefix(i, "county")
        cls = "ambiguous" if self._ambiguous(out, name) else "lookalike"
        return BenchQuery(cls, prefix + out + rest, *self._expect(i), note=f"lookalike {name[k]}→{out[k]}")

    def q_division_former(self):
        """A township written by a former name (a renamed or merged township)."""
        formers = [(e.text, e.eid) for e in self.gaz.names.entries
                   if e.alive and e.how == "former" and e.kind == "division"
                   and self.gaz.divisions.get(e.eid) is not None and self.gaz.divisions[e.eid].level == "township"]
        if not formers:
            return None
        former, tid = self.rng.choice(formers)
        rows = [i for i in self.rows["street"][:20000] if int(self.t.township[i]) == tid]
        if not rows or former in self.t.all_names:
            return None
        i = self.rng.choice(rows)
        if self.t.unique_scope(i) not in ("city", "county", "township"):
            return None
        county = self.gaz.divisions[int(self.t.county[i])].name
        name, rest = self._tail(i)
        return BenchQuery("division_former", county + former + name + rest, *self._expect(i), note=former)


def _dialect_variants(s: str) -> list[tuple[str, str]]:
    """The syllable with one Zhejiang confusion applied, each way: zhong → zong, san → sang, nan → lan."""
    out = []
    for long, short in (("zh", "z"), ("ch", "c"), ("sh", "s")):
        if s.startswith(long):
            out.append((short + s[2:], f"{long}→{short}"))
        elif s.startswith(short):
            out.append((long + s[1:], f"{short}→{long}"))
    if s[:1] == "n" and s[:2] != "ng":
        out.append(("l" + s[1:], "n→l"))
    elif s[:1] == "l":
        out.append(("n" + s[1:], "l→n"))
    for long, short in (("ang", "an"), ("eng", "en"), ("ing", "in")):
        if s.endswith(long):
            out.append((s[:-len(long)] + short, f"{long}→{short}"))
        elif s.endswith(short):
            out.append((s[:-len(short)] + long, f"{short}→{long}"))
    return out


def _syllables() -> frozenset[str]:
    out = set()
    for readings in pinyin_dict.values():
        for r in readings.split(","):
            r = "".join(c for c in unicodedata.normalize("NFKD", r) if not unicodedata.combining(c))
            if r.isascii() and r.isalpha():
                out.add(r)
    return frozenset(out)


_SYLLABLES = _syllables()


def nfkc(s: str) -> str:
    return unicodedata.normalize("NFKC", s)
