"""Normalization of address and place-name text.

The loader normalizes the 1.6M stored addresses and the search engine
normalizes every query with the same function, so the two meet on one form:
half-width, simplified, lower-case latin, no spaces or punctuation, no noise
words, Arabic digits in number positions, one spelling per variant
(幢 for 栋/座, 号 for 號/#, 单元 for 単元).

Also here: folding of the committee forms in which the NBS lists villages and
communities (``祝良村委会`` → ``祝良村``) and the variants people write.
"""

from __future__ import annotations

import os
import re
import threading
import unicodedata

from .numerals import NUMERAL_CHARS, replace_number_numerals

# ---------------------------------------------------------------- simplified

# Characters OpenCC t2s leaves alone but that have a standard simplified form
# in the 通用规范汉字表; found in old village registers and doorplates.
_PLACE_NAME_OVERRIDES = str.maketrans({
    "嶴": "岙",   # coastal/hill hamlets (xx嶴)
    "衞": "卫",
    "衖": "弄",   # lane, Wu-area old spelling
    "邨": "村",   # old compounds: xx新邨
})
_OVERRIDDEN_CHARS = frozenset(chr(c) for c in _PLACE_NAME_OVERRIDES)

_converter = None
_traditional_chars: frozenset[str] | None = None
_converter_lock = threading.Lock()


def _load_converter():
    """Create the OpenCC converter once; it is slow to build and pure Python. Once built it is
    returned without the lock: a process forked while another thread held it (batch matching)
    would wait for it forever."""
    global _converter, _traditional_chars
    if _converter is not None:
        return _converter
    with _converter_lock:
        if _converter is None:
            import opencc

            conv = opencc.OpenCC("t2s")
            conv.convert("")        # force its lazy dictionary load now
            _traditional_chars = _read_traditional_chars(opencc.__file__)
            _converter = conv
    return _converter


def _read_traditional_chars(opencc_file: str) -> frozenset[str] | None:
    """Characters t2s may change, so plain simplified text can skip OpenCC.

    Almost every address arrives simplified already and OpenCC costs ~0.1 ms
    per string; the loader calls this 1.6M times.  None (always convert) if
    the dictionary is not where this package version keeps it.
    """
    path = os.path.join(os.path.dirname(opencc_file), "dictionary", "TSCharacters.txt")
    try:
        with open(path, encoding="utf-8") as f:
            chars = {line.split("\t", 1)[0] for line in f if "\t" in line}
    except OSError:
        return None
    return frozenset(chars)


def to_simplified(text: str) -> str:
    """Traditional → simplified Chinese (OpenCC t2s plus place-name fixes).

    ``吳興區`` → ``吴兴区``, ``南潯`` → ``南浔``; simplified text is returned
    unchanged (``乾元镇`` stays, it is not 干元).
    """
    if not _OVERRIDDEN_CHARS.isdisjoint(text):
        text = text.translate(_PLACE_NAME_OVERRIDES)
    conv = _converter or _load_converter()
    if _traditional_chars is not None and _traditional_chars.isdisjoint(text):
        return text
    return conv.convert(text)


# ----------------------------------------------------------------- normalize

_CONTROL_OR_SPACE = re.compile(
    r"[\x00-\x1f\x7f-\x9f\u00ad\u200b-\u200f\u2028-\u202e\u2060-\u2064\ufeff]|\s+")
_VARIANTS = str.maketrans({
    "〇": "零",
    "単": "单",          # Japanese form, seen in pasted 単元
    "‐": "-", "‑": "-", "‒": "-", "–": "-", "—": "-", "―": "-", "−": "-", "﹣": "-",
})
_VARIANT_CHARS = frozenset(chr(c) for c in _VARIANTS)
_NUM = f"[{NUMERAL_CHARS}]"
_CIRCLE_ZERO = re.compile(rf"(?<={_NUM})○|○(?={_NUM})")
# Innermost bracket pair with its content; applied until none is left.
_ASIDE = re.compile(r"[(\[【〔〖][^()\[\]【】〔〕〖〗]*[)\]】〕〗]")
# Words that place the door relative to something else; they never name it.
NOISE_WORDS = ("附近", "旁边", "[斜正]?对面", "隔壁", "门口", "一带", "边上", "周边", "周围")
_NOISE = re.compile(rf"(?:{'|'.join(NOISE_WORDS)})的?")
_HASH_NUMBER = re.compile(rf"(?<={_NUM})#")
_PUNCT = re.compile(r"[^\w-]|_")
_DASH_RUN = re.compile(r"-{2,}")
# A dash survives only inside a number (12-1号, 3-2-301, 12号-1).
_LONE_DASH = re.compile(rf"(?<![0-9a-z号{NUMERAL_CHARS}])-|-(?![0-9a-z{NUMERAL_CHARS}])")
_HAO_BUILDING = re.compile(r"(?<=\d)号(?=[幢栋座])")
_BUILDING_VARIANT = re.compile(r"(?<=[0-9a-z])[栋座]")


def _normalize_once(text: str) -> str:
    # The `in` guards only skip work: the loader runs this 1.6M times.
    s = unicodedata.normalize("NFKC", text)
    s = _CONTROL_OR_SPACE.sub("", s)
    s = to_simplified(s).lower()
    if not _VARIANT_CHARS.isdisjoint(s):
        s = s.translate(_VARIANTS)
    if "○" in s:
        s = _CIRCLE_ZERO.sub("零", s)
    while True:
        stripped = _ASIDE.sub("", s)
        if stripped == s:
            break
        s = stripped
    s = _NOISE.sub("", s)
    if "#" in s:
        s = _HASH_NUMBER.sub("号", s)
    s = _PUNCT.sub("", s)
    if "-" in s:
        s = _LONE_DASH.sub("", _DASH_RUN.sub("-", s))
    s = replace_number_numerals(s)
    if "号" in s:
        s = _HAO_BUILDING.sub("", s)
    if "栋" in s or "座" in s:
        s = _BUILDING_VARIANT.sub("幢", s)
    return s


def normalize(text: str) -> str:
    """The registry's matching form of an address or name.

    ``浙江省湖州市吳興區愛山街道 人民路１２３號（某某超市）附近`` →
    ``浙江省湖州市吴兴区爱山街道人民路123号``; ``五幢二单元三零一室`` →
    ``5幢2单元301室``; ``五一路`` keeps its numerals.  Idempotent.
    """
    if not isinstance(text, str):
        raise TypeError(f"normalize() takes str, not {type(text).__name__}")
    # Removing one piece can bring two others together (a noise word split
    # by a space, a dash freed by a bracket); repeat to a fixed point so the
    # stored form and the query form never drift apart.
    result = _normalize_once(text)
    if result == text:  # a fixed point already: the next pass would give the same text again
        return result
    for _ in range(3):
        again = _normalize_once(result)
        if again == result:
            break
        result = again
    return result


_PLAIN: frozenset[str] | None = None
_NUMERAL_HAN = frozenset("零一二两三四五六七八九十百千万")  # 〇 and ○ are rewritten (variants)
_DIGIT_DASH = re.compile(r"(?<=\d)-(?=\d)")


def _plain() -> frozenset[str]:
    """ASCII digits and the CJK unified ideographs no step of normalize rewrites, numerals apart:
    not traditional (t2s), not a place-name override, not a variant (単 〇), not 栋/座, not 第."""
    global _PLAIN
    if _PLAIN is None:
        _load_converter()
        refused = (_traditional_chars or frozenset()) | _OVERRIDDEN_CHARS | _VARIANT_CHARS | _NUMERAL_HAN | set("栋座第")
        _PLAIN = frozenset(chr(c) for c in range(0x4E00, 0xA000) if chr(c) not in refused) | frozenset("0123456789")
    return _PLAIN


def is_normal(text: str) -> bool:
    """Whether ``normalize(text) == text`` is certain without running it (False: not known).

    True for text of ASCII digits and plain simplified Han characters only (NFKC, t2s, the
    variants and punctuation leave those alone), a dash only between two digits, no noise word,
    no 号幢, and Chinese numerals only where ``replace_number_numerals`` leaves them (五一路).
    Costs a few µs where normalize costs ~100; batch matching uses it to skip the engine for
    rows that are standard texts. Always False when the list of traditional characters is
    unknown (OpenCC then converts every text).
    """
    plain = _PLAIN or _plain()
    if _traditional_chars is None or not text:
        return False
    numerals = False
    if not plain.issuperset(text):
        for c in text:
            if c in plain:
                continue
            if c in _NUMERAL_HAN and c not in _traditional_chars:
                numerals = True
            elif c != "-":
                return False
        if "-" in text and text.count("-") != len(_DIGIT_DASH.findall(text)):
            return False
    if "号幢" in text or _NOISE.search(text) is not None:
        return False
    return not numerals or replace_number_numerals(text) == text


# ---------------------------------------------------- villages / communities

_NUMERAL_END = re.compile(f"{_NUM}$")


def _fold_parts(name: str) -> tuple[str, str] | None:
    """(base, 'village'|'community') of a committee or short village name."""
    for suffix in ("社区居民委员会", "社区居委会", "居民委员会", "居委会", "社区"):
        if name.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)], "community"
    for suffix in ("村民委员会", "村委会", "村"):
        if name.endswith(suffix) and len(name) > len(suffix):
            base = name[: -len(suffix)]
            # 祝良村村委会 is 祝良村's committee written with 村 twice; but
            # 新村村委会 is the committee of 新村村, so only fold a doubled
            # 村 when a name of two or more characters is left.
            if suffix != "村" and base.endswith("村") and len(base) >= 3:
                base = base[:-1]
            return base, "village"
    return None


def fold_village_suffix(name: str) -> str:
    """Committee form → the village/community name used in addresses.

    ``祝良村委会`` → ``祝良村``, ``浮星桥社区居委会`` → ``浮星桥社区``,
    ``城东居委会`` → ``城东社区``; any other name is returned unchanged
    (stripped of surrounding space).
    """
    name = name.strip()
    parts = _fold_parts(name)
    if parts is None:
        return name
    base, kind = parts
    return base + ("社区" if kind == "community" else "村")


def village_name_variants(name: str) -> list[str]:
    """Every form people write for a village or community, most formal first.

    ``祝良村委会`` → ``[祝良村委会, 祝良村, 祝良, 祝良村村民委员会]``;
    ``浮星桥社区居委会`` → ``[浮星桥社区居委会, 浮星桥社区, 浮星桥居委会,
    浮星桥, 浮星桥社区居民委员会]``.  The bare form is left out when it would
    be a single character or end in a numeral (``吉山一`` names nothing).
    Names without a village/community suffix come back alone.
    """
    name = name.strip()
    parts = _fold_parts(name)
    if parts is None:
        return [name]
    base, kind = parts
    if kind == "community":
        forms = [f"{base}社区居委会", f"{base}社区", f"{base}居委会", base, f"{base}社区居民委员会"]
    else:
        forms = [f"{base}村委会", f"{base}村", base, f"{base}村村民委员会"]
    if len(base) < 2 or _NUMERAL_END.search(base):
        forms.remove(base)
    forms.append(name)
    return list(dict.fromkeys(forms))
