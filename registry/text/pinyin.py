"""Pinyin for search keys and for place-name romanization.

* :func:`pinyin_syllables`, :func:`to_pinyin`, :func:`pinyin_initials` give
  the toneless keys the search engine matches typed pinyin against
  (``renminlu``, ``rml``); ü is written ``v`` there, as IMEs take it.
* :func:`place_name_pinyin` writes a name by the 中国地名汉语拼音字母拼写规则
  (GB 17733 doorplate and sign practice): ``Renmin Lu``, ``Jiefang Beilu``.
* :func:`homophone_key` folds sounds that Huzhou speakers (Wu dialect under
  putonghua) and typists confuse, so 艾山 finds 爱山.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

from pypinyin import Style, lazy_pinyin


# Readings pypinyin gets wrong in place names; phrases win over characters.
_PHRASE_READINGS: dict[str, tuple[str, ...]] = {
    "长兴": ("chang", "xing"),
    "朝阳": ("chao", "yang"),     # a place facing the sun, not 'zhao'
    "苕溪": ("tiao", "xi"),
    "霅溪": ("zha", "xi"),
    "蠡山": ("li", "shan"),
}
_CHAR_READINGS: dict[str, str] = {
    "长": "chang",   # 长兴, 长田, 长岗: place names mean 'long'
    "荻": "di", "浔": "xun", "苕": "tiao", "霅": "zha",
    "圩": "wei",     # Taihu-plain polders, not the southern market 'xu'
    "埭": "dai", "溇": "lou", "浜": "bang", "漾": "yang", "岙": "ao", "便": "bian",
    "幢": "zhuang",  # the building measure word, not the banner 'chuang'
}
# 长 stays zhang as a rank (校长, 站长 …) or in 长子/长辈.  Not after 县/镇/村:
# in an address 长兴县长超村 is far likelier than a 县长.
_ZHANG_BEFORE = set("校院站所队部厂局班社店馆科处首家师兄")
_ZHANG_AFTER = set("子辈老官")
# Surnames read differently before 家 (单家村 = Shanjia Cun).
_SURNAME_READINGS = {"单": "shan", "曾": "zeng", "查": "zha", "解": "xie",
                     "仇": "qiu", "缪": "miao", "翟": "zhai", "盖": "ge", "覃": "qin"}

_HAN = r"\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f"
_TOKENS = re.compile(rf"([{_HAN}]+)|([0-9]+)|([a-zA-Z\u00fc]+)")


# pypinyin costs ~30 µs a character and the gazetteer repeats its names and
# name parts endlessly, hence the cache.
@lru_cache(maxsize=65_536)
def _han_syllables(run: str, v_to_u: bool) -> tuple[str, ...]:
    syl = lazy_pinyin(run, style=Style.NORMAL, v_to_u=v_to_u, errors=lambda s: list(s))
    if len(syl) != len(run):      # never expected; keep one syllable per character
        syl = [lazy_pinyin(c, style=Style.NORMAL, v_to_u=v_to_u, errors=lambda s: [s])[0]
               for c in run]
    fixed = [False] * len(run)
    for phrase, readings in _PHRASE_READINGS.items():
        for m in re.finditer(phrase, run):
            for k, reading in enumerate(readings):
                syl[m.start() + k] = reading
                fixed[m.start() + k] = True
    for i, ch in enumerate(run):
        if fixed[i]:
            continue
        nxt = run[i + 1] if i + 1 < len(run) else ""
        prev = run[i - 1] if i else ""
        if ch in _SURNAME_READINGS and nxt == "家":
            syl[i] = _SURNAME_READINGS[ch]
        elif ch == "长" and (prev in _ZHANG_BEFORE or nxt in _ZHANG_AFTER):
            syl[i] = "zhang"
        elif ch in _CHAR_READINGS:
            syl[i] = _CHAR_READINGS[ch]
    return tuple(syl)


def _syllables(text: str, v_to_u: bool = False) -> list[tuple[str, bool]]:
    """(syllable or token, is_han) pairs; spaces and punctuation are dropped."""
    text = unicodedata.normalize("NFKC", text)
    out: list[tuple[str, bool]] = []
    for m in _TOKENS.finditer(text):
        han, digits, latin = m.groups()
        if han:
            out.extend((s, True) for s in _han_syllables(han, v_to_u))
        else:
            out.append(((digits or latin).lower(), False))
    return out


def pinyin_syllables(text: str) -> list[str]:
    """Toneless lower-case syllables, one per Han character.

    Digit and latin runs pass through as single tokens (``人民路12号`` →
    ren min lu 12 hao); spaces and punctuation are dropped; ü is ``v``.
    Place-name readings are preferred (长兴 chang xing, 苕溪 tiao xi).
    """
    return [s for s, _ in _syllables(text)]


def to_pinyin(text: str) -> str:
    """Syllables joined without spaces: ``人民路`` → ``renminlu``."""
    return "".join(pinyin_syllables(text))


def pinyin_initials(text: str) -> str:
    """First letter of every syllable (``人民路`` → ``rml``); digits kept whole."""
    return "".join(s if not han else s[0] for s, han in _syllables(text))


# ------------------------------------------------------------ romanization

def place_name_pinyin(name: str, *, natural_village: bool = False) -> str:
    """Romanize a place name: specific and generic as separate capitalised words.

    ``人民路`` → ``Renmin Lu``, ``爱山街道`` → ``Aishan Jiedao``,
    ``解放北路`` → ``Jiefang Beilu``, ``西安路`` → ``Xi'an Lu``,
    ``5幢`` → ``5 Zhuang``.  A directional (东南西北中) before a road generic,
    or an ordinal before 村/区, joins the generic when at least two characters
    of specific remain (城北路 stays ``Chengbei Lu``).  Natural villages and
    names with no known generic are written as one word (rule 1.4:
    ``钱家浜`` with ``natural_village=True`` → ``Qianjiabang``).
    """
    # The rules live in registry.text.romanization (imported here: it imports this module).
    from .romanization import romanize
    return romanize(name, one_word=natural_village)


# ------------------------------------------------------------- homophones

# Wu speakers merge hu- with w- (湖/吴, 黄/王 sound alike in Huzhou).
_HU_TO_W = {"hu": "wu", "hua": "wa", "huai": "wai", "huan": "wan", "huang": "wang",
            "hui": "wei", "hun": "wen", "huo": "wo"}


def fold_syllable(s: str) -> str:
    """The sound class of one toneless syllable, by the rules of `homophone_key`."""
    s = _HU_TO_W.get(s, s)
    if s[:2] in ("zh", "ch", "sh"):
        s = s[0] + s[2:]
    if s.startswith("n") and len(s) > 1:
        s = "l" + s[1:]
    if s.endswith("ng") and len(s) > 2:
        s = s[:-1]
    return s


def homophone_key(text: str) -> str:
    """A key under which homophones and usual sound confusions collide.

    From the toneless syllables (tones are dropped):

    * retroflex initials fold into flat ones: zh→z, ch→c, sh→s;
    * n- folds into l- (南/兰, 宁/灵);
    * final -ng folds into -n: ang→an, eng→en, ing→in, ong→on;
    * hu- folds into w- (hu→wu, huang→wang, hui→wei …): 湖/吴 and 黄/王
      are homophones in Huzhou Wu;
    * ü stays v (lv/nv, then nv→lv by the n/l rule).

    So 艾山 and 爱山 (ai shan → aisan), 人敏 and 人民 (renmin) collide.
    Digit and latin tokens are kept lower-cased; syllables are joined
    without separators.
    """
    return "".join(fold_syllable(s) if han else s for s, han in _syllables(text))
