"""The name index of the gazetteer: every name people use for a division, place, facility or
heritage item, under the keys the query is matched with.

An entry is one written form of one entity (祝良村, 祝良村委会, 祝良; 人民路; 东方红路 as the
former name of 解放路 …) with a base score saying how standard the form is. Keys:

- `chars`: the form itself (exact characters; traditional and full-width are gone after
  normalize);
- `sound`: its syllables folded into sound classes (registry.search.keys.fold), which finds
  homophones (艾山 → 爱山), typed pinyin (renminlu) and mixed input (人民lu);
- `initials`: first letters of its syllables (rml → 人民路);
- `deletions`: the form with one character removed (SymSpell), which finds a dropped, extra,
  swapped or wrong character.

Every key maps to a list of entry numbers. Entries are never removed from the lists: an
entity update marks its old entries dead and adds new ones (the lists are filtered on read),
so readers in other threads never see a half-built index.
"""
from __future__ import annotations

from dataclasses import dataclass

from registry.search.keys import dialect_letters, fold, is_han, name_readings
from registry.text import normalize
from registry.text.components import name_generic

# How standard a written form is (multiplies the match score).
BASE = {
    "name": 1.0,  # the standard name: 人民路, 祝良村, 爱山街道
    "full": 1.0,  # the registered form: 祝良村委会, 浮星桥社区居委会
    "variant": 0.99,  # other committee forms: 祝良村村民委员会
    "short": 0.97,  # a standard abbreviation: 吴兴 (吴兴区), 湖州 (湖州市), 祝良 (祝良村)
    "alias": 0.98,
    "abbreviation": 0.97,
    "former": 0.97,  # a former name: resolves to today's record, and says so
    "specific": 0.85,  # the specific part alone: 凤凰 for 凤凰小区
}
MAX_NAME_UNITS = 40
SEP = "|"
# Readings of a name text, shared by every index of the process: a reload (or a test) does
# not compute pinyin again for the names it has seen.
_READINGS: dict[str, tuple[list, list]] = {}


@dataclass(slots=True)
class Entry:
    kind: str  # division | place | facility | heritage
    eid: int
    text: str
    how: str
    base: float
    readings: list[tuple[str, ...]]  # raw syllables, one tuple per reading
    freadings: list[tuple[str, ...]]  # folded syllables
    alive: bool = True
    note: str = ""  # for former names: the period or the old entity
    generic: str | None = None  # the generic it ends with (registry.text.components.name_generic)


class NameIndex:
    def __init__(self) -> None:
        self.entries: list[Entry] = []
        self.by_entity: dict[tuple[str, int], list[int]] = {}
        self.chars: dict[str, list[int]] = {}
        self.char_prefixes: set[str] = set()
        self.sound: dict[str, list[int]] = {}
        self.sound_prefixes: set[str] = set()
        self.initials: dict[str, list[int]] = {}
        self.initial_prefixes: set[str] = set()
        self.deletions: dict[str, list[int]] = {}
        self.letters: dict[str, list[int]] = {}  # concatenated pinyin (renminlu), for typed latin
        self.dialect_letters: dict[str, list[int]] = {}  # the same under keys.dialect_letters
        # REGISTRY_SEARCH_DIALECT_PINYIN: forgive z/zh, c/ch, s/sh, an/ang, en/eng, in/ing, n/l
        self.dialect = True
        self.max_len = 2
        self.version = 0  # bumped on every change (autocomplete rebuilds its sorted keys)
        self.removed = 0  # entities removed (their entries dead): none, and `live` filters nothing

    def __setstate__(self, state: dict) -> None:
        """Unpickling (a shared generation's objects): an index pickled before `removed` was
        kept counts its dead entries."""
        self.__dict__.update(state)
        if "removed" not in state:
            self.removed = sum(1 for e in self.entries if not e.alive)

    # -- building ------------------------------------------------------------------------
    def add(self, kind: str, eid: int, text: str, how: str, note: str = "") -> None:
        """Index one written form, as written and as registry.text.normalize writes it (the
        query is normalized the same way, but OpenCC reads characters in context: 莫乾公路 becomes
        莫干公路 while 乾元镇 stays). Its readings come from the form as written (乾 is qian)."""
        written = "".join(text.split())
        text = normalize(written)
        if written != text and len(written) == len(text) and written and len(written) <= MAX_NAME_UNITS:
            self._add(kind, eid, written, how, note, written)
        self._add(kind, eid, text, how, note, written if len(written) == len(text) else text)

    def _add(self, kind: str, eid: int, text: str, how: str, note: str, reading_text: str) -> None:
        if not text or len(text) > MAX_NAME_UNITS:
            return
        key = (kind, eid)
        for n in self.by_entity.get(key, ()):  # the same form twice: keep the better one
            e = self.entries[n]
            if e.alive and e.text == text:
                if BASE[how] > e.base:
                    e.how, e.base, e.note = how, BASE[how], note
                return
        cached = _READINGS.get(reading_text)
        if cached is None:
            if all(is_han(c) for c in reading_text):
                readings = name_readings(reading_text)
                freadings = list(dict.fromkeys(tuple(fold(s) for s in r) for r in readings))
            else:
                readings, freadings = [], []
            cached = (readings, freadings)
            _READINGS[reading_text] = cached
        readings, freadings = cached
        n = len(self.entries)
        self.version += 1
        self.entries.append(Entry(kind, eid, text, how, BASE[how], readings, freadings, True, note, name_generic(text)))
        self.by_entity.setdefault(key, []).append(n)
        self.max_len = max(self.max_len, len(text))
        _put(self.chars, text, n)
        for k in range(1, len(text) + 1):
            self.char_prefixes.add(text[:k])
        for fr in freadings:
            for k in range(1, len(fr) + 1):
                self.sound_prefixes.add(SEP.join(fr[:k]))
            _put(self.sound, SEP.join(fr), n)
        for letters in {"".join(r) for r in readings[:3]}:
            _put(self.letters, letters, n)
        for letters in {dialect_letters("".join(r)) for r in readings[:3]}:
            _put(self.dialect_letters, letters, n)
        inits = {"".join(s[0] for s in r) for r in readings[:2]}  # the usual readings only
        for ini in inits:
            _put(self.initials, ini, n)
            for k in range(1, len(ini) + 1):
                self.initial_prefixes.add(ini[:k])
        if len(text) >= 3 and how in ("name", "full", "former", "alias", "variant"):
            for d in {text[:k] + text[k + 1:] for k in range(len(text))}:
                _put(self.deletions, d, n)

    def remove_entity(self, kind: str, eid: int) -> None:
        self.version += 1
        self.removed += 1
        for n in self.by_entity.pop((kind, eid), ()):
            self.entries[n].alive = False

    def entity_entries(self, kind: str, eid: int) -> list[Entry]:
        return [self.entries[n] for n in self.by_entity.get((kind, eid), ()) if self.entries[n].alive]

    def live(self, numbers: list[int] | None) -> list[int]:
        """The live entries of an index list (the list itself when no entity was ever removed:
        callers only read it)."""
        if not numbers:
            return []
        if not self.removed:
            return numbers
        entries = self.entries
        return [n for n in numbers if entries[n].alive]

    @property
    def size(self) -> int:
        return len(self.entries)


def _put(index: dict[str, list[int]], key: str, n: int) -> None:
    lst = index.get(key)
    if lst is None:
        index[key] = [n]
    else:
        lst.append(n)
