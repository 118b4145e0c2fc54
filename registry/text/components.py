"""Rule-based tokenizer: address text → components, by generic suffixes only.

No gazetteer here: a name is recognised by its generic (省 市 区 县 街道 镇 乡
村 社区 路 街 小区 浜 …) and numbers by their suffix (号 幢 单元 室 楼 组).  The
search engine later checks the names against the gazetteer; this layer only
has to cut in the right places most of the time.

How a cut is chosen, scanning left to right from the current position:

1. a number component starting here (``12号之1``, ``5幢``, ``2单元``,
   ``301室``, ``3组``, ``3楼``, ``3-2-301``) is taken first;
2. otherwise the earliest generic, before the next number, whose specific is
   long enough and whose kind fits the division hierarchy (province → city →
   county → township, each at most once, none after a street or compound):
   so in ``德清县新市镇`` the 市 of 新市 cannot be a city;
3. a generic directly following a non-division name is absorbed and its
   kind wins (荻港 + 村 → village 荻港村, 潘公桥 + 路 → street 潘公桥路,
   浮星桥 + 社区居委会 → village, 虹星桥 + 镇 → township);
4. what is left before the next number is ``unknown``.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import InvalidText
from .house_number import NumberPart, match_number_part, parse_house_number
from .normalize import fold_village_suffix, normalize

KINDS = ("province", "city", "county", "township", "village", "street", "compound",
         "natural_village", "group", "number", "building", "unit", "room", "floor", "unknown")

#: Division kinds, in hierarchy order.
_DIVISION_LEVEL = {"province": 0, "city": 1, "county": 2, "township": 3}


@dataclass(frozen=True)
class Component:
    """One piece of an address.

    ``value`` is a :class:`HouseNumber` for ``number``; an int for
    ``building`` (a str for a lettered block: ``"A"``), ``unit``, ``group``
    and ``floor``; the digits as a str for ``room``; the short form for
    ``village`` (荻港村委会 → 荻港村); None otherwise.
    """

    kind: str
    text: str
    value: object = None


# (generic, kind, shortest specific, characters that must not follow)
_GENERICS: list[tuple[str, str, int, str]] = [
    ("自治区", "province", 2, ""), ("省", "province", 2, ""),
    ("市", "city", 2, "镇场"),          # 新市镇 / 练市镇 are townships
    ("区", "county", 2, ""), ("县", "county", 2, ""),
    ("街道办事处", "township", 2, ""), ("街道", "township", 2, ""),
    ("镇", "township", 2, ""), ("乡", "township", 2, ""),
    ("社区居民委员会", "village", 1, ""), ("社区居委会", "village", 1, ""),
    ("村民委员会", "village", 1, ""), ("居民委员会", "village", 1, ""),
    ("村委会", "village", 1, ""), ("居委会", "village", 1, ""),
    ("社区", "village", 1, ""), ("村", "village", 1, ""),
    ("自然村", "natural_village", 1, ""),
    *((g, "natural_village", 1, "") for g in "浜兜埭坞岙圩漾溇湾墩坝桥港庄宅"),
    ("大道", "street", 1, ""), ("大街", "street", 1, ""), ("国道", "street", 1, ""),
    ("省道", "street", 1, ""), ("公路", "street", 1, ""),
    ("路", "street", 1, ""), ("街", "street", 1, ""), ("巷", "street", 1, ""), ("弄", "street", 1, ""),
    ("小区", "compound", 1, ""), ("花园", "compound", 1, ""), ("家园", "compound", 1, ""),
    ("公寓", "compound", 1, ""), ("新村", "compound", 1, ""), ("山庄", "compound", 1, ""),
    ("大厦", "compound", 1, ""), ("广场", "compound", 1, ""), ("园区", "compound", 1, ""),
    ("工业区", "compound", 1, ""), ("苑", "compound", 1, ""),
    # 府/园/城 end many compound names but also 雉城, so demand two characters.
    ("府", "compound", 2, ""), ("园", "compound", 2, ""), ("城", "compound", 2, ""),
]
#: generic → the kind of name it ends (路 → street, 镇 → township, 社区 → village …).
GENERIC_KINDS: dict[str, str] = {g: kind for g, kind, _, _ in _GENERICS}
#: Generics longest first (街道 before 街), for suffix tests.
GENERICS_LONGEST_FIRST: tuple[str, ...] = tuple(sorted(GENERIC_KINDS, key=lambda g: (-len(g), g)))


def name_generic(name: str) -> str | None:
    """The generic a name ends with, the longest known (凤凰街道 → 街道, 凤凰街 → 街, 阳岸新村 → 新村);
    None when it has none (the specific is never empty)."""
    for g in GENERICS_LONGEST_FIRST:
        if len(name) > len(g) and name.endswith(g):
            return g
    return None


def name_kind(name: str) -> str | None:
    """The kind a name's generic says it is: 织里镇 → township, 织里路 → street, 织里 → None."""
    g = name_generic(name)
    return GENERIC_KINDS[g] if g is not None else None


_BY_FIRST: dict[str, list[tuple[str, str, int, str]]] = {}
for _entry in sorted(_GENERICS, key=lambda e: -len(e[0])):
    _BY_FIRST.setdefault(_entry[0][0], []).append(_entry)

def _number_here(text: str, pos: int) -> list[NumberPart]:
    """The number parts of the one grammar (registry.text.house_number) that start at `pos`; a
    bare number (12, 12-1 with no 号) counts only at the end of the text (人民路12)."""
    parts = match_number_part(text, pos)
    if parts and parts[0].kind == "number" and "号" not in parts[0].text and parts[0].end != len(text):
        return []
    return parts


def _next_number(text: str, start: int) -> int | None:
    for i in range(start, len(text)):
        if (text[i].isdigit() or text[i] in "附第" or text[i].isascii()) and _number_here(text, i):
            return i
    return None


class _State:
    def __init__(self) -> None:
        self.division_level = -1
        self.past_divisions = False

    def allows(self, kind: str) -> bool:
        level = _DIVISION_LEVEL.get(kind)
        if level is None:
            return True
        return not self.past_divisions and level > self.division_level

    def record(self, kind: str) -> None:
        level = _DIVISION_LEVEL.get(kind)
        if level is None:
            if kind != "unknown":
                self.past_divisions = True
        else:
            self.division_level = level


def _generic_at(text: str, i: int, start: int, end: int, state: _State,
                min_check: bool = True) -> tuple[str, str] | None:
    """The longest acceptable generic beginning at text[i], as (generic, kind)."""
    for generic, kind, min_spec, not_before in _BY_FIRST.get(text[i], ()):
        stop = i + len(generic)
        if stop > end or text[i:stop] != generic:
            continue
        if min_check and i - start < min_spec:
            continue
        if stop < len(text) and text[stop] in not_before:
            continue
        if state.allows(kind):
            return generic, kind
    return None


def _name_component(text: str, pos: int, end: int, state: _State) -> Component | None:
    for i in range(pos, end):
        found = _generic_at(text, i, pos, end, state)
        if found is None:
            continue
        stop, kind = i + len(found[0]), found[1]
        # Absorb a generic that directly follows; a division name is complete
        # as it stands (吴兴区 + 区府路, not 吴兴区区…).
        while stop < end and kind not in _DIVISION_LEVEL:
            more = _generic_at(text, stop, pos, end, state, min_check=False)
            if more is None:
                break
            stop, kind = stop + len(more[0]), more[1]
        name = text[pos:stop]
        value = fold_village_suffix(name) if kind == "village" else None
        return Component(kind, name, value)
    return None


def _number_components(parts: list[NumberPart], previous: Component | None) -> list[Component]:
    p = parts[0]
    if len(parts) == 3:  # 3-2-301
        return [Component(q.kind, q.text, q.value) for q in parts]
    text = p.text
    if p.kind in ("building", "unit", "group", "floor", "room"):
        return [Component(p.kind, text, p.value)]
    if p.kind == "lane":
        if previous is not None and previous.kind == "street":
            # 人民路3弄 is addressed as a street of its own.
            return [Component("street", previous.text + text)]
        return [Component("unknown", text)]
    if "号" not in text:
        # A trailing bare number means what its neighbour suggests.
        before = previous.kind if previous else None
        if before in ("building", "unit", "floor"):
            return [Component("room", text, text)]
        if before not in ("street", "natural_village", "group", "village"):
            return [Component("unknown", text)]
    try:
        return [Component("number", text, parse_house_number(text))]
    except InvalidText:
        return [Component("unknown", text)]


def tokenize_address(text: str) -> list[Component]:
    """Cut an address into components by suffix (see the module docstring).

    ``湖州市吴兴区爱山街道人民路123号`` → city 湖州市, county 吴兴区,
    township 爱山街道, street 人民路, number 123号 (HouseNumber(123)).
    The text is normalized first (idempotent, so normalized input is fine).
    """
    text = normalize(text)
    out: list[Component] = []
    state = _State()
    pos = 0
    while pos < len(text):
        parts = _number_here(text, pos)
        if parts:
            new = _number_components(parts, out[-1] if out else None)
            if parts[0].kind == "lane" and new[0].kind == "street":
                out.pop()
            out.extend(new)
            state.record(new[-1].kind)
            pos = parts[-1].end
        else:
            nxt = _next_number(text, pos + 1)
            end = nxt if nxt is not None else len(text)
            comp = _name_component(text, pos, end, state)
            if comp is None:
                comp = Component("unknown", text[pos:end])
            out.append(comp)
            state.record(comp.kind)
            pos += len(comp.text)
    return _merge_unknowns(out)


def _merge_unknowns(components: list[Component]) -> list[Component]:
    merged: list[Component] = []
    for comp in components:
        if comp.kind == "unknown" and merged and merged[-1].kind == "unknown":
            merged[-1] = Component("unknown", merged[-1].text + comp.text)
        else:
            merged.append(comp)
    return merged
