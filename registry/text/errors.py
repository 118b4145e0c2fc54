"""Errors raised by the text layer.

Every error is a ``ValueError`` so callers that only know the standard library
can still catch it; they all derive from :class:`InvalidText`, itself the
domain's ``InvalidQuery``, so the API answers them as 400 problem+json.

Messages name the offending text in Chinese and English because they reach
both the clerks at the doorplate counter and the English-reading API users.
"""

from __future__ import annotations

from registry.errors import InvalidQuery


class InvalidText(InvalidQuery, ValueError):
    """Some text could not be read as the thing it was supposed to be."""

    #: What the text should have been, used in the message (Chinese, English).
    what_zh = "文本"
    what_en = "text"

    def __init__(self, text: object, reason_zh: str = "", reason_en: str = "") -> None:
        self.text = text
        self.reason_zh = reason_zh
        self.reason_en = reason_en
        zh = f"无效的{self.what_zh}：“{text}”"
        en = f"invalid {self.what_en}: {text!r}"
        if reason_zh:
            zh += f"（{reason_zh}）"
        if reason_en:
            en += f" ({reason_en})"
        super().__init__(f"{zh} / {en}", parameter=getattr(self, "parameter_name", None))


class InvalidNumeral(InvalidText):
    what_zh = "数字"
    what_en = "numeral"


class InvalidHouseNumber(InvalidText):
    what_zh = "门牌号"
    what_en = "house number"


class InvalidBuilding(InvalidText):
    what_zh = "楼幢号"
    what_en = "building number"


class InvalidUnit(InvalidText):
    what_zh = "单元号"
    what_en = "unit number"


class InvalidRoom(InvalidText):
    what_zh = "室号"
    what_en = "room number"


class InvalidGroup(InvalidText):
    what_zh = "村民小组号"
    what_en = "villagers' group number"


class InvalidAddressPart(InvalidText):
    what_zh = "地址组成部分"
    what_en = "address component"
