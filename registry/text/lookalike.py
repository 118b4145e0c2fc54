"""Look-alike characters (形近字): pairs that OCR and hurried hands confuse (己/已, 未/末, 干/千).

The table is pycorrector's `same_stroke.txt` (PyPI `pycorrector` 1.1.4, `pycorrector/data/`,
Apache License 2.0, © Ming Xu), kept verbatim in
`data/reference/lookalike_chars_pycorrector.txt`: one group of visually similar characters per
line, tab-separated. Every two characters of a group are look-alikes. The source groups
characters that share components (记/纪/妃 with 己) and lacks some classic single-stroke pairs, so
`EXTRA_GROUPS` below adds those (the registry's own addition, marked as such in PROVENANCE.md).

The search uses look-alikes as a cheap edit: cheaper than a wrong character, dearer than a
homophone (see registry.search.parse).
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

SOURCE = Path(__file__).resolve().parent.parent.parent / "data" / "reference" / "lookalike_chars_pycorrector.txt"

#: Pairs the source lacks: one stroke apart, or the same shape with a stroke moved.
EXTRA_GROUPS: tuple[str, ...] = (
    "己已巳", "未末", "干千于", "衣农", "人入八", "土士", "日曰", "戊戌戍", "大太犬", "王玉主",
    "田由甲申", "木术本", "刀力", "毛手", "天夭夫", "白自", "免兔", "候侯", "拔拨", "宇字",
)


def _groups() -> list[str]:
    out: list[str] = []
    if SOURCE.exists():
        for line in SOURCE.read_text(encoding="utf-8").splitlines():
            g = "".join(line.split())
            if len(g) >= 2:
                out.append(g)
    out.extend(EXTRA_GROUPS)
    return out


@lru_cache(maxsize=1)
def lookalike_table() -> dict[str, frozenset[str]]:
    """Character → the characters that look like it (never itself)."""
    table: dict[str, set[str]] = {}
    for g in _groups():
        chars = list(dict.fromkeys(g))
        for c in chars:
            table.setdefault(c, set()).update(x for x in chars if x != c)
    return {c: frozenset(v) for c, v in table.items()}


def lookalikes(c: str) -> frozenset[str]:
    """The look-alikes of one character (empty when the table has none)."""
    return lookalike_table().get(c, frozenset())


def is_lookalike(a: str, b: str) -> bool:
    return a != b and b in lookalike_table().get(a, ())
