"""The standard address text for millions of rows, with `registry.text.compose_address` as
the only authority on its form.

`compose_address` takes ~7-20 µs a call (it re-parses every part). A city load calls it 1.6M
times, so the loader memoises its pieces: the text is the divisions and names (the "head"),
then the door number, then building/unit/room (the "tail"), concatenated. Each distinct head
and each distinct tail is produced by compose_address itself. The split is checked against a
direct call on the first rows of every load and on one row in 500 after that; a difference
stops the load with an error rather than store a wrong text. (A door on a street inside a
compound, 人民路12号凤凰小区…, is composed directly: there the number sits in the middle.)
"""
from __future__ import annotations

from typing import Any

from registry.loading.base import copy_text
from registry.text import compose_address

_PROBE_C, _PROBE_T = "区", "镇"


class ComposeMismatch(RuntimeError):
    pass


class FastComposer:
    CHECK_FIRST = 200
    CHECK_EVERY = 500

    def __init__(self) -> None:
        self._tails: dict[tuple, str] = {}
        self._checks = 0
        self._base = compose_address(county=_PROBE_C, township=_PROBE_T)

    def head(self, **names: Any) -> str:
        """Everything up to the door number: divisions, street or compound or village/natural
        village/group."""
        return compose_address(**names)

    def tail(self, building: Any, unit: Any, room: Any) -> str:
        key = (building, unit, room)
        hit = self._tails.get(key)
        if hit is None:
            if building is None and unit is None and room is None:
                hit = ""
            else:
                full = compose_address(county=_PROBE_C, township=_PROBE_T, building=building, unit=unit, room=room)
                if not full.startswith(self._base):  # pragma: no cover - compose_address changed shape
                    raise ComposeMismatch(f"unexpected composed tail {full!r}")
                hit = full[len(self._base):]
            self._tails[key] = hit
        return hit

    def full(self, names: dict, values: dict) -> str:
        return compose_address(**names, **values)

    def check(self, text: str, names: dict, values: dict) -> None:
        """Compare a memoised (COPY-escaped) text with compose_address, on a sample of rows."""
        self._checks += 1
        if self._checks > self.CHECK_FIRST and self._checks % self.CHECK_EVERY:
            return
        direct = copy_text(compose_address(**names, **values))
        if direct != text:
            raise ComposeMismatch(
                f"地址文本拼接与 compose_address 不一致 / the memoised address text {text!r} differs from "
                f"compose_address {direct!r}; registry.loading.compose needs updating")
