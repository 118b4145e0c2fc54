"""Search keys: per-character pinyin, sound folding and the segmentation of typed latin.

Both sides of a match go through these functions: the gazetteer when it indexes a name, the
query when it is read. `registry.text` gives whole-string keys (`to_pinyin`, `homophone_key`);
the engine needs them per character and per syllable; the sound folding itself is
`registry.text.fold_syllable`, the rule `homophone_key` uses.
"""
from __future__ import annotations

import unicodedata
from functools import lru_cache

from pypinyin import Style, lazy_pinyin, pinyin
from pypinyin.pinyin_dict import pinyin_dict

from registry.text import fold_syllable, pinyin_syllables


def _strip_tones(p: str) -> str:
    p = unicodedata.normalize("NFKD", p)
    return "".join(c for c in p if not unicodedata.combining(c)).replace("ü", "v").replace("u:", "v")


def _syllable_set() -> frozenset[str]:
    out: set[str] = set()
    for readings in pinyin_dict.values():
        for p in readings.split(","):
            p = _strip_tones(p)
            if p.isalpha() and p.isascii():
                out.add(p)
    # Lone consonants (m, n, ng, hm …) are interjections, never place-name syllables; as
    # units they would eat the initials people type (rml).
    return frozenset(s for s in out if any(v in s for v in "aeiouv"))


SYLLABLES = _syllable_set()
MAX_SYLLABLE = max(map(len, SYLLABLES))

@lru_cache(maxsize=4096)
def fold(s: str) -> str:
    """The sound class of one toneless syllable (zh→z, n→l, -ng→-n, hu→w …)."""
    return fold_syllable(s)


def dialect_letters(letters: str) -> str:
    """A segmentation-free key for pinyin typed with Zhejiang confusions, applied alike to a
    name's letters and to the letters typed: zh/ch/sh → z/c/s, ng → n, n → l, so zongsanlu,
    zhongshanlu and zhongsanlu collide, and so do xinganlu and xinganglu (whatever the
    syllable boundaries). Only a candidate key: a match through it scores below an exact reading."""
    return letters.replace("zh", "z").replace("ch", "c").replace("sh", "s").replace("ng", "n").replace("n", "l")


_char_cache: dict[str, str] = {}


def is_han(c: str) -> bool:
    o = ord(c)
    return 0x4E00 <= o <= 0x9FFF or 0x3400 <= o <= 0x4DBF or 0xF900 <= o <= 0xFAFF or 0x20000 <= o <= 0x3134F


def char_syllable(c: str) -> str:
    """The reading of a character on its own (place-name readings preferred: 长 → chang)."""
    s = _char_cache.get(c)
    if s is None:
        syl = pinyin_syllables(c)
        s = syl[0] if syl else c
        if not s.isascii():
            s = lazy_pinyin(c, style=Style.NORMAL, errors=lambda x: [x])[0]
        _char_cache[c] = s
    return s


_heteronyms: dict[str, tuple[str, ...]] = {}
# Characters of place names that people read (and type) more than one way. Other characters'
# rarer readings (路 luo, 港 hong …) would only add noise to the sound keys.
POLYPHONES = frozenset("长朝重行单曾查解乐会藏角堡厦石盛广柏都便和降仇缪洞圩尉六莘涌薄落校沈蚌埔泊弄")


def char_readings(c: str) -> tuple[str, ...]:
    """The toneless readings of a character, its place-name reading first (长 → chang, zhang);
    one reading unless it is a known place-name polyphone."""
    r = _heteronyms.get(c)
    if r is None:
        first = char_syllable(c)
        default = lazy_pinyin(c, style=Style.NORMAL, errors=lambda x: [x])[0]
        if c in POLYPHONES:
            others = [_strip_tones(x) for x in pinyin(c, style=Style.TONE, heteronym=True, errors=lambda x: [x])[0]]
            r = tuple(dict.fromkeys([first, default] + [x for x in others if x.isascii() and x.isalpha()]))[:3]
        else:
            # the place-name reading, and pypinyin's own when it differs (苕: tiao, shao)
            r = tuple(dict.fromkeys(x for x in (first, default) if x.isascii() and x.isalpha())) or (first,)
        _heteronyms[c] = r
    return r


def name_readings(name: str, max_readings: int = 4) -> list[tuple[str, ...]]:
    """Readings of a Han name, one syllable per character, most likely first: in context by the
    place-name rules (长兴 chang xing), character by character, pypinyin's own phrase reading
    (朝阳 zhao yang), then other readings of polyphonic characters (长田 zhang tian) — people
    type any of them. Names without a polyphonic character have one reading (cheap: cached
    per character)."""
    per = [char_readings(c) for c in name]
    base = tuple(r[0] for r in per)
    out: list[tuple[str, ...]] = [base]
    if all(len(r) == 1 for r in per):
        return out

    def add(r) -> None:
        r = tuple(r)
        if len(r) == len(name) and all(x.isascii() and x.isalpha() for x in r) and r not in out:
            out.append(r)

    ctx = tuple(pinyin_syllables(name))
    if len(ctx) == len(name) and ctx != base:
        out.insert(0, ctx) if all(x.isascii() and x.isalpha() for x in ctx) else None
    add(lazy_pinyin(name, style=Style.NORMAL, errors=lambda x: list(x)))
    first = list(out[0])
    for k, options in enumerate(per):
        for alt in options[1:3]:
            if len(out) >= max_readings:
                break
            add(first[:k] + [alt] + first[k + 1:])
    return out[:max_readings]


def segmentable_bounds(run: str) -> list[bool]:
    """For each position 0..len(run): can a pinyin syllable boundary fall there? (Both sides
    split into whole syllables.) shaonanjie: after shao and after nan, not inside nan."""
    n = len(run)
    pre = [False] * (n + 1)
    pre[0] = True
    for i in range(n):
        if pre[i]:
            for k in range(1, min(MAX_SYLLABLE, n - i) + 1):
                if run[i:i + k] in SYLLABLES:
                    pre[i + k] = True
    suf = [False] * (n + 1)
    suf[n] = True
    for i in range(n - 1, -1, -1):
        for k in range(1, min(MAX_SYLLABLE, n - i) + 1):
            if suf[i + k] and run[i:i + k] in SYLLABLES:
                suf[i] = True
                break
    return [pre[i] and suf[i] for i in range(n + 1)]


def latin_units(run: str) -> list[tuple[int, int, str, str]]:
    """Cut a latin run into pinyin syllables and initials: (start, end, text, 'py'|'ini').

    Fewest units wins, a syllable costs less than a lone letter (an initial): `renminlu` →
    ren min lu, `rml` → r m l, `rmlu` → r m lu, `xian` → xian (not xi an).
    """
    n = len(run)
    INF = 1 << 30
    cost = [INF] * (n + 1)
    back: list[tuple[int, str]] = [(0, "")] * (n + 1)
    cost[0] = 0
    for i in range(n):
        if cost[i] == INF:
            continue
        for k in range(1, min(MAX_SYLLABLE, n - i) + 1):
            piece = run[i:i + k]
            if piece in SYLLABLES and cost[i] + 2 < cost[i + k]:
                cost[i + k] = cost[i] + 2
                back[i + k] = (i, "py")
        if cost[i] + 3 < cost[i + 1]:
            cost[i + 1] = cost[i] + 3
            back[i + 1] = (i, "ini")
    out = []
    j = n
    while j > 0:
        i, kind = back[j]
        out.append((i, j, run[i:j], kind))
        j = i
    out.reverse()
    return out


def strip_latin_tones(text: str) -> str:
    """rén mín lù → ren min lu; other characters untouched."""
    if text.isascii():
        return text
    out = []
    for c in text:
        if c.isascii() or is_han(c):
            out.append(c)
            continue
        d = unicodedata.normalize("NFKD", c)
        base = "".join(x for x in d if not unicodedata.combining(x))
        out.append("v" if c in "üǖǘǚǜÜ" else (base if base.isascii() and base.isalpha() else c))
    return "".join(out)
