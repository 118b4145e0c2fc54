"""The forms of an address row, each worked out once per load.

Rows share most of their work: ~1.6M addresses hang off tens of thousands of (village,
street/compound/natural village, group) contexts and a few thousand distinct (number, building,
unit, room) forms. `AddressForms` resolves, checks and renders each distinct context and form
once (COPY-escaped, with its piece of the standard text); `AddressLoad.feed` then does two dict
lookups, a coordinate check and one f-string per row.
"""
from __future__ import annotations

from typing import NamedTuple

from registry.loading.base import copy_text
from registry.loading.compose import FastComposer
from registry.loading.directory import DivisionDirectory, DivisionInfo, Issue, PlaceDirectory, clean_name
from registry.loading.reasons import encode_params
from registry.text import InvalidText, parse_building, parse_group, parse_house_number, parse_room, parse_unit

MAX_FIELD_CHARS = 200
_N = "\\N"


class RowContext(NamedTuple):
    """What the division, street/compound/natural village and group columns of a row come to."""

    key: int  # the normalized (division, street, compound, group) part of the natural key, interned
    division: DivisionInfo | None
    issue: Issue | None
    prefix: str | None  # staged key columns division_id .. group_no, COPY text
    head: str | None  # the standard text up to the door number, COPY-escaped (None: compose per row)
    names: dict | None  # compose_address arguments of the context
    warn_cols: str | None  # staged warn, warn_detail


class RowParts(NamedTuple):
    """What the number, building, unit and room columns of a row come to."""

    key: int  # the normalized (number, building, unit, room) part of the natural key, interned
    issue: Issue | None
    suffix: str | None  # staged number .. room, COPY text
    tail: str | None  # door number + building/unit/room text, COPY-escaped
    values: dict | None  # compose_address arguments of the parts


def standard_building(raw: str) -> str:
    try:
        return f"{parse_building(raw)}幢"
    except InvalidText:
        s = clean_name(raw).upper()
        if len(s) in (1, 2) and s[0].isascii() and s[0].isalpha() and s[1:] in ("", "幢", "栋", "座"):
            return f"{s[0]}幢"
        raise


# Each sub-address part: the reason code of a bad value and its standard form.
PART_FORMS = {
    "building": ("bad_building", standard_building),
    "unit": ("bad_unit", lambda raw: f"{parse_unit(raw)}单元"),
    "room": ("bad_room", lambda raw: f"{parse_room(raw)}室"),
    "group": ("bad_group", lambda raw: f"{parse_group(raw)}组"),
}


class AddressForms:
    """The contexts and parts of one load's rows, each distinct one resolved once (the caches
    `contexts` and `parts_seen` are keyed by the raw column values)."""

    def __init__(self, divisions: DivisionDirectory, places: PlaceDirectory, composer: FastComposer, *,
                 create_places: bool) -> None:
        self.divisions = divisions
        self.places = places
        self.composer = composer
        self.create_places = create_places
        self.contexts: dict[tuple, RowContext] = {}
        self.parts_seen: dict[tuple, RowParts] = {}
        self._caches: dict[str, dict] = {k: {} for k in ("number", "building", "unit", "room", "group", "id")}
        self._interned: dict[tuple, int] = {}

    def context(self, code, county, township, village, street, compound, nv, group) -> RowContext:
        division = None
        try:
            code = code.strip() if code else None
            village = village.strip() if village else None
            if code:
                division = self.divisions.by_code_or_issue(code)
            elif village:
                division = self.divisions.by_names_or_issue((county or "").strip() or None,
                                                            (township or "").strip() or None, village)
            else:
                raise Issue("missing_field", field="division_code / 区划代码")
            street = street.strip() if street else None
            compound = compound.strip() if compound else None
            nv = nv.strip() if nv else None
            if compound and nv:
                raise Issue("conflicting_fields", what_zh="同一行既有小区又有自然村",
                            what_en="a row names both a compound and a natural village")
            group_text = self._part("group", group.strip()) if group and group.strip() else None
            create = self.create_places
            street_ref = compound_ref = None
            warn = None
            if street:
                self._check_length("street", street)
                street_ref = self.places.resolve("road", street, division, create=create)
                if street_ref.alias_of is not None:
                    warn = ("former_place_name", {"name": street, "current": street_ref.name})
            if compound or nv:
                self._check_length("compound", compound or nv)
                compound_ref = self.places.resolve("compound" if compound else "natural_village", compound or nv,
                                                   division, create=create)
                if compound_ref.alias_of is not None and warn is None:
                    warn = ("former_place_name", {"name": compound or nv, "current": compound_ref.name})
            names = dict(county=division.county_name, township=division.township_name, village=division.name,
                         street=street_ref.name if street_ref else None,
                         compound=compound_ref.name if compound_ref and compound else None,
                         natural_village=compound_ref.name if compound_ref and nv else None, group=group_text)
            prefix = "\t".join((str(division.id), str(street_ref.id) if street_ref else _N,
                                str(compound_ref.id) if compound_ref else _N, group_text or ""))
            head = None if (street_ref and compound_ref) else copy_text(self.composer.head(**names))
            warn_cols = f"{warn[0]}\t{copy_text(encode_params(warn[1]))}" if warn else f"{_N}\t{_N}"
            key = self._interned.setdefault(("c", prefix), len(self._interned))
            return RowContext(key, division, None, prefix, head, names, warn_cols)
        except Issue as issue:
            return RowContext(-1, division, issue, None, None, None, None)

    def parts(self, number, building, unit, room) -> RowParts:
        try:
            hn = number_text = number_main = None
            if number and number.strip():
                hn, number_text, number_main = self._number(number.strip())
            b = self._part("building", building.strip()) if building and building.strip() else None
            u = self._part("unit", unit.strip()) if unit and unit.strip() else None
            r = self._part("room", room.strip()) if room and room.strip() else None
            if hn is None and b is None:
                raise Issue("incomplete_address", what_zh="需要门牌号或楼幢号",
                            what_en="a house number or a building is required")
            if u is not None and b is None:
                raise Issue("incomplete_address", what_zh="有单元号而没有楼幢号", what_en="a unit without a building")
            if r is not None and b is None and hn is None:
                raise Issue("incomplete_address", what_zh="有室号而没有门牌号或楼幢号",
                            what_en="a room without a house number or building")
            suffix = "\t".join((number_text or "", _N if number_main is None else str(number_main), b or "", u or "",
                                r or ""))
            tail = copy_text((number_text or "") + self.composer.tail(b, u, r))
            key = self._interned.setdefault(("p", suffix), len(self._interned))
            return RowParts(key, None, suffix, tail, dict(number=hn, building=b, unit=u, room=r))
        except Issue as issue:
            return RowParts(-1, issue, None, None, None)

    def _check_length(self, name: str, value: str) -> None:
        if len(value) > MAX_FIELD_CHARS:
            raise Issue("field_too_long", field=name, length=len(value), limit=MAX_FIELD_CHARS)

    def _part(self, kind: str, raw: str) -> str:
        cache = self._caches[kind]
        hit = cache.get(raw)
        if hit is None:
            code, parse = PART_FORMS[kind]
            if len(raw) > MAX_FIELD_CHARS:
                hit = Issue("field_too_long", field=kind, length=len(raw), limit=MAX_FIELD_CHARS)
            else:
                try:
                    hit = parse(raw)
                except InvalidText:
                    hit = Issue(code, value=raw)
            cache[raw] = hit
        if isinstance(hit, Issue):
            raise hit.with_traceback(None)
        return hit

    def _number(self, raw: str):
        cache = self._caches["number"]
        hit = cache.get(raw)
        if hit is None:
            if len(raw) > MAX_FIELD_CHARS:
                hit = Issue("field_too_long", field="number", length=len(raw), limit=MAX_FIELD_CHARS)
            else:
                try:
                    hn = parse_house_number(raw)
                    hit = (hn, hn.standard, hn.main)
                except InvalidText:
                    hit = Issue("bad_number", value=raw)
            cache[raw] = hit
        if isinstance(hit, Issue):
            raise hit.with_traceback(None)
        return hit

    @staticmethod
    def address_id(raw: str) -> int:
        """A row's `id` column: a registered address's identifier."""
        s = raw.strip()
        if s.endswith(".0"):
            s = s[:-2]
        if not s.isdigit() or not s.isascii() or int(s) < 1 or int(s) > 2**62:
            raise Issue("bad_id", value=raw)
        return int(s)
