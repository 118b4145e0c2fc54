"""Step 4 — resolve the door: number, group, building, unit and room within a container.

A container is a street (doors by number), a compound or natural village (rooms by building,
or doors by number) or a village (rural doors by number and group). The levels are checked
from the coarsest down; the finest level that exists is returned with the list of levels that
matched. A level the query names but the registry lacks stops the descent: what is returned
is then the record at the last matched level if the registry has one, else nothing (the
caller returns the container itself as a partial match) — never a different door.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from registry.search.gazetteer import ROW, AddressStore
from registry.search.query import PreparedQuery

SUB_LEVELS = (("bld", "building"), ("unit", "unit"), ("room", "room"))
_MAIN, _SUB, _PRE, _SUF = ROW["main"], ROW["sub"], ROW["pre"], ROW["suf"]
_GROUP, _BLD, _UNIT, _ROOM = ROW["group"], ROW["bld"], ROW["unit"], ROW["room"]
_POS = {"bld": _BLD, "unit": _UNIT, "room": _ROOM}


@dataclass
class Doors:
    refs: list  # base row numbers or overlay records: the doors at the finest matched level
    levels: list[str] = field(default_factory=list)  # number, group, building, unit, room
    missing: list[str] = field(default_factory=list)  # levels the query names that do not exist
    finer_only: int = 0  # records below the matched level when none exists at it
    used_parts: list[str] = field(default_factory=list)  # query number parts explained


def container_kind(store: AddressStore, kind: str, eid: int) -> str | None:
    if kind == "place":
        if eid in store.csr["street"].spans or store.overlay_by["street"].get(eid):
            return "street"
        if eid in store.csr["compound"].spans or store.overlay_by["compound"].get(eid):
            return "compound"
        return None
    if kind == "division":
        if eid in store.csr["village"].spans or store.overlay_by["village"].get(eid):
            return "village"
    return None


def _code(store: AddressStore, kind: str, value) -> int:
    if isinstance(value, int):
        return value
    if kind == "bld" and isinstance(value, str) and len(value) == 1 and value.isalpha():
        return -ord(value.upper())
    if isinstance(value, str) and value.isdigit():
        return int(value)
    code = store.code_of(kind, str(value).upper())
    return code if code is not None else -999_999_999


def resolve(store: AddressStore, container: str, cid: int, pq: PreparedQuery) -> Doors | None:
    """Doors in the container for the query's number parts; None if the query names none."""
    number = pq.get("number")
    group = pq.get("group")
    bld = pq.get("building")
    unit = pq.get("unit")
    room = pq.get("room")
    floor = pq.get("floor")
    bld_part = "building"
    if bld is None and floor is not None:
        bld, floor = floor, None  # 凤凰小区3楼301: building 3 (3号楼) when no building is named
        bld_part = "floor"
    if number is None and group is None and bld is None and unit is None and room is None:
        return None
    levels: list[str] = []
    used: list[str] = []
    values = {"bld": _code(store, "bld", bld) if bld is not None else None,
              "unit": _code(store, "unit", unit) if unit is not None else None,
              "room": _code(store, "room", room) if room is not None else None}

    if container == "street":
        if number is None:
            return Doors([], [], ["number"])
        rows = store.select("street", cid, key=number[0])
    elif container == "compound":
        eq = {"main": number[0]} if number is not None and bld is None else None
        rows = store.select("compound", cid, key=values["bld"], eq=eq)
        if bld is not None:
            if not rows:
                return Doors([], [], ["building"])
            levels.append("building")
            used.append(bld_part)
    else:
        eq = {"group": group} if group is not None and number is None else None
        rows = store.select("village", cid, key=number[0] if number is not None else None, eq=eq)

    if number is not None:
        main, sub, pre, suf = number
        rows = [r for r in rows if r[_MAIN] == main and r[_SUB] == sub and r[_PRE] == pre and r[_SUF] == suf]
        if not rows:
            return Doors([], levels, ["number"], used_parts=used)
        levels.append("number")
        used.append("number")
    if group is not None:
        rows = [r for r in rows if r[_GROUP] == group]
        if not rows:
            return Doors([], levels, ["group"], used_parts=used)
        levels.append("group")
        used.append("group")

    missing: list[str] = []
    stopped = False
    last = -1
    for k, (f, name) in enumerate(SUB_LEVELS):
        if f == "bld" and container == "compound":
            if bld is not None:
                last = k
            continue
        value = values[f]
        if value is None:
            continue  # 凤凰小区5幢301: the unit is not said; any unit with room 301
        pos = _POS[f]
        narrowed = [r for r in rows if r[pos] == value]
        if not narrowed:
            missing.append(name)
            stopped = True
            break
        rows = narrowed
        levels.append(name)
        used.append(bld_part if f == "bld" else name)
        last = k
    if floor is not None and not stopped and room is None:
        narrowed = [r for r in rows if r[_ROOM] > 0 and r[_ROOM] // 100 == floor]
        if narrowed:
            rows = narrowed
            used.append("floor")
    # the record at the finest matched level: every finer part empty
    finer = [_POS[f] for f, _ in SUB_LEVELS[last + 1:]]
    if not finer:
        exact = rows
    elif len(finer) == 1:
        a, = finer
        exact = [r for r in rows if r[a] == 0]
    elif len(finer) == 2:
        a, b = finer
        exact = [r for r in rows if r[a] == 0 and r[b] == 0]
    else:
        exact = [r for r in rows if all(r[p] == 0 for p in finer)]
    refs = [r[0] for r in exact]
    return Doors(refs, levels, missing, 0 if refs else len(rows), used)
