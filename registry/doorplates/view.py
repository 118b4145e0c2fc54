"""What a scan shows: the plate resolved to its *current* address in one query.

The token carries only the plate id, so whatever happened to the address since the plate was
printed — renumbering, a renamed street, a township merged into another (the village re-parented) —
the scan reads today's rows: the standard address is composed from the current division chain and
address parts with `registry.text.compose_address` (the loader's own rule), its pinyin is written by
the place-name rules (`place_name_pinyin`: specific and generic apart, `Renmin Lu`), and the nearest
civil-affairs facility of each category comes from a PostGIS KNN search (`<->`) in the same query.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection, text

from registry.as_of import printed_among
from registry.doorplates.nearby import (  # noqa: F401 - all five still read from here too
    SERVICE_CATEGORIES, distance_m, navigation, nearest_services, quote_all)
from registry.doorplates.plates import KIND_NAMES, plate_code, plate_history, plate_record
from registry.doorplates.tokens import KeyRing, scan_url
from registry.errors import NotFound

# One row, one column: every value in a JSON array (a wide row costs the drivers more than the query).
# The division chain is walked upwards with a recursive CTE (any depth; cheap to plan), the street
# and compound are scalar subqueries: the statement plans in a fraction of a millisecond even
# before psycopg prepares it.
_FIELDS: tuple[tuple[str, str], ...] = (
    ("id", "p.id"), ("address_id", "p.address_id"), ("kind", "p.kind"), ("status", "p.status"),
    ("replaced_by_id", "p.replaced_by_id"), ("reason", "p.reason"), ("issued_at", "p.issued_at"),
    ("ended_at", "p.ended_at"), ("key_id", "p.key_id"), ("version", "p.version"),
    ("street_id", "a.street_id"), ("compound_id", "a.compound_id"), ("division_id", "a.division_id"),
    ("group_no", "a.group_no"), ("number", "a.number"), ("building", "a.building"), ("unit", "a.unit"),
    ("room", "a.room"), ("full_text", "a.full_text"), ("code", "a.code"), ("address_status", "a.status"),
    ("lon", "ST_X(a.geom)"), ("lat", "ST_Y(a.geom)"),
    ("street_info", "(SELECT json_build_array(s.name, s.pinyin) FROM place_names s WHERE s.id = a.street_id)"),
    ("compound_info", "(SELECT json_build_array(c.name, c.category, c.pinyin) FROM place_names c "
                      "WHERE c.id = a.compound_id)"),
    ("chain", """(WITH RECURSIVE up(id, parent_id, name, level, code, depth) AS (
        SELECT d.id, d.parent_id, d.name, d.level, coalesce(d.mca_code, d.nbs_code), 0
        FROM divisions d WHERE d.id = a.division_id
        UNION ALL
        SELECT d.id, d.parent_id, d.name, d.level, coalesce(d.mca_code, d.nbs_code), up.depth + 1
        FROM divisions d JOIN up ON d.id = up.parent_id WHERE up.depth < 8)
      SELECT json_agg(json_build_array(id, name, level, code) ORDER BY depth DESC) FROM up)"""),
)
# Only the scan reads these: the address's versions with when each was written (the text the plate
# was printed with, `registry.as_of.printed_among`) and the live end of a replaced plate's chain
# (a replacement may itself be replaced; a cycle stops where it closes, as the loop it replaces did).
_SCAN_ONLY: tuple[tuple[str, str], ...] = (
    ("versions", """(SELECT json_agg(json_build_array(v.full_text, c.created_at) ORDER BY v.version)
      FROM (SELECT h.version, h.full_text, h.change_set_id FROM addresses_history h WHERE h.id = a.id
            UNION ALL SELECT a.version, a.full_text, a.change_set_id) v
      LEFT JOIN change_sets c ON c.id = v.change_set_id)"""),
    ("successor", """(WITH RECURSIVE ch(id, key_id, status, replaced_by_id, path, stop) AS (
        SELECT r.id, r.key_id, r.status, r.replaced_by_id, ARRAY[p.id], r.replaced_by_id IS NULL OR r.id = p.id
        FROM doorplates r WHERE r.id = p.replaced_by_id
        UNION ALL
        SELECT r.id, r.key_id, r.status, r.replaced_by_id, ch.path || ch.id,
               r.replaced_by_id IS NULL OR r.id = ANY(ch.path || ch.id)
        FROM doorplates r JOIN ch ON r.id = ch.replaced_by_id WHERE NOT ch.stop)
      SELECT json_build_array(id, key_id, status, path) FROM ch WHERE stop LIMIT 1)"""),
)
FIELD_NAMES = tuple(name for name, _ in _FIELDS) + ("services",) + tuple(name for name, _ in _SCAN_ONLY)

_SELECT = f"""
SELECT json_build_array({", ".join(expr for _, expr in _FIELDS)}{{services}})
FROM doorplates p
JOIN addresses a ON a.id = p.address_id
"""
# The nearest active facilities by PostGIS KNN (`<->`, one GiST index scan); the page keeps the first
# of each civil-affairs category. The plate id is the statement's only parameter, so PostgreSQL
# settles on one generic plan for the statement that psycopg prepares (planning these joins costs
# more than running them).
NEAREST_FACILITIES = 12
_SERVICES = f"""
LEFT JOIN LATERAL (
    SELECT json_agg(json_build_array(f.category, f.name, f.address_text, f.phone, ST_X(f.geom), ST_Y(f.geom)))
           AS services
    FROM (SELECT f.category, f.name, f.address_text, f.phone, f.geom
          FROM facilities f
          WHERE f.status = 'active' AND f.geom IS NOT NULL AND a.geom IS NOT NULL
          ORDER BY f.geom <-> a.geom
          LIMIT {NEAREST_FACILITIES}) f
) svc ON true
"""
# Run on the driver's cursor (psycopg placeholders): no ORM-side result processing on the hot path.
SCAN_SQL = (_SELECT.replace("{services}", ", svc.services, " + ", ".join(expr for _, expr in _SCAN_ONLY))
            + _SERVICES + "WHERE p.id = %s")
# The plate and its address only, for a reader that holds the divisions, place names and facilities
# in process (registry/serving/reference.py completes the row): the versions only when the address
# has history (every real change bumps the version: a version 1 has none, and printed_among needs
# two), the successor chain only for a replaced plate.
_HELD = ("street_info", "compound_info", "chain")
SLIM_FIELD_NAMES = tuple(name for name, _ in _FIELDS if name not in _HELD) + ("versions", "successor")
_VERSIONS, _SUCCESSOR = (expr for _, expr in _SCAN_ONLY)
# Without its WHERE clause, for the readers of many plates at once (registry/serving/scan.py, the
# scan store's build): `SLIM_SELECT + "WHERE …"`.
SLIM_SELECT = f"""
SELECT json_build_array({", ".join(expr for name, expr in _FIELDS if name not in _HELD)},
    CASE WHEN a.version > 1 THEN {_VERSIONS} END,
    CASE WHEN p.replaced_by_id IS NOT NULL THEN {_SUCCESSOR} END)
FROM doorplates p
JOIN addresses a ON a.id = p.address_id
"""
SLIM_SQL = SLIM_SELECT + "WHERE p.id = %s"
# The same without the services, for many plates at once (print runs).
FACES_SQL = _SELECT.replace("{services}", ", NULL" * (1 + len(_SCAN_ONLY))) + "WHERE p.id = ANY(%s)"


def _cursor(conn: Connection):
    # Let SQLAlchemy know of the transaction the driver opens, so the request ends in COMMIT: a
    # ROLLBACK (the pool's reset of an unknown open transaction) makes psycopg drop every prepared
    # statement of the connection, and this query would be planned again on every scan.
    if not conn.in_transaction():
        conn.begin()
    return conn.connection.dbapi_connection.cursor()


def fetch_rows(conn: Connection, plate_ids: list[int]) -> dict[int, dict[str, Any]]:
    """The scan rows (without services) of many plates, by id."""
    with _cursor(conn) as cur:
        cur.execute(FACES_SQL, (list(plate_ids),))
        rows = [dict(zip(FIELD_NAMES, r[0])) for r in cur.fetchall()]
    return {r["id"]: r for r in rows}


def fetch_row(conn: Connection, plate_id: int) -> dict[str, Any] | None:
    with _cursor(conn) as cur:
        cur.execute(SCAN_SQL, (plate_id,))
        found = cur.fetchone()
    return scan_row(found)


def scan_row(found) -> dict[str, Any] | None:
    """The row of SCAN_SQL (one JSON array) by field name; None when the plate does not exist."""
    return dict(zip(FIELD_NAMES, found[0])) if found else None


def dependencies(row: dict[str, Any]) -> set[tuple[str, int]]:
    """The rows (table, id) a plate's public page is made of, besides its divisions and the nearby
    facilities (renders are dropped whole when any division or facility changes)."""
    deps = {("doorplates", row["id"]), ("addresses", row["address_id"])}
    for table, key in (("place_names", "street_id"), ("place_names", "compound_id"), ("doorplates", "replaced_by_id")):
        if row.get(key):
            deps.add((table, row[key]))
    if row.get("successor"):
        deps.update(("doorplates", pid) for pid in [row["successor"][0], *row["successor"][3]])
    return deps


_NUMBERED = re.compile(r"^(.+?)(号|幢|单元|室|组)$")
_NUMBER_PINYIN = {"号": "Hao", "幢": "Zhuang", "单元": "Danyuan", "室": "Shi", "组": "Zu"}
_text = None  # registry.text, imported on first use (it loads pypinyin; importing this module does not)


def _texts():
    global _text
    if _text is None:
        import registry.text

        _text = registry.text
    return _text


@lru_cache(maxsize=200_000)
def name_pinyin(name: str, natural_village: bool = False) -> str:
    return _texts().place_name_pinyin(name, natural_village=natural_village)


@lru_cache(maxsize=50_000)
def part_pinyin(part: str) -> str:
    """`12-1号` → `12-1 Hao`, `5幢` → `5 Zhuang`, a name → its place-name pinyin."""
    m = _NUMBERED.match(part)
    if m and not re.search(r"[\u4e00-\u9fff]", m[1]):
        return f"{m[1]} {_NUMBER_PINYIN[m[2]]}"
    return name_pinyin(part)


@lru_cache(maxsize=20_000)
def _folded_village(name: str) -> str:
    return _texts().fold_village_suffix(name)


class _Chain:
    """What a division chain gives every address under it, worked out once per chain: keyed by its
    content ([id, name, level, code] each), so a renamed or re-parented division is another chain.
    Its lists and dicts are shared by every scan of the chain: read, never changed."""

    __slots__ = ("chain", "by_level", "_divisions")

    def __init__(self, key: tuple[tuple[Any, ...], ...]) -> None:
        self.chain = [{"code": code, "name": name, "level": level} for _id, name, level, code in key]
        self.by_level = {d["level"]: d["name"] for d in self.chain}
        self._divisions: list[dict[str, Any]] | None = None

    def divisions(self) -> list[dict[str, Any]]:
        """The page's `divisions` (each with its pinyin), a fresh list of fresh dicts."""
        if self._divisions is None:
            self._divisions = [{**d, "pinyin": name_pinyin(d["name"])} for d in self.chain]
        return [d.copy() for d in self._divisions]


@lru_cache(maxsize=20_000)
def _chain_of(key: tuple[tuple[Any, ...], ...]) -> _Chain:
    return _Chain(key)


def _chain(row) -> _Chain:
    return _chain_of(tuple(map(tuple, row["chain"] or ())))


def warm_chain(chain) -> None:
    """Work out what the scans under a division chain ([id, name, level, code] each, province first)
    compose from it: its entry and the pinyin of its names (registry.serving.reference, on a load)."""
    held = _chain_of(tuple(map(tuple, chain)))
    held.divisions()
    for level in ("province", "city", "county", "township"):
        if held.by_level.get(level):
            part_pinyin(held.by_level[level])
    village = held.by_level.get("village")
    if village:
        part_pinyin(_folded_village(village))


def warm_place(name: str, category: str | None, pinyin: str | None) -> None:
    """The same for a place name: a natural village's pinyin, or a name's without a stored one."""
    if category == "natural_village":
        name_pinyin(name, True)
    elif not pinyin and name:
        part_pinyin(name)


@dataclass
class AddressParts:
    chain: list[dict[str, Any]]  # province first
    street: str | None = None
    street_pinyin: str | None = None
    compound: str | None = None
    compound_pinyin: str | None = None
    natural_village: str | None = None
    group: str = ""
    number: str = ""
    building: str = ""
    unit: str = ""
    room: str = ""
    full_text: str = ""
    by_level: dict[str, str] = field(default_factory=dict)

    def level(self, name: str) -> str | None:
        return self.by_level.get(name)

    def components(self) -> list[tuple[str, str | None]]:
        """(text, stored pinyin) of the standard address, in the order compose_address writes them."""
        level = self.by_level.get
        out: list[tuple[str, str | None]] = [(level("province") or "", None), (level("city") or "", None),
                                             (level("county") or "", None), (level("township") or "", None)]
        if self.street:
            out += [(self.street, self.street_pinyin), (self.number, None)]
        elif not self.compound:
            village = level("village")
            out += [(_folded_village(village) if village else "", None),
                    (self.natural_village or "", "natural_village"), (self.group, None), (self.number, None)]
        if self.compound:
            out.append((self.compound, self.compound_pinyin))
            if not self.street:
                out.append((self.number, None))
        out += [(self.building, None), (self.unit, None), (self.room, None)]
        return [(t, p) for t, p in out if t]

    def standard_text(self) -> str:
        level = self.by_level.get
        try:
            return _texts().compose_address(
                province=level("province") or "浙江省", city=level("city") or "湖州市",
                county=level("county") or "", township=level("township") or "",
                village=level("village"), street=self.street, compound=self.compound,
                natural_village=self.natural_village, group=self.group or None, number=self.number or None,
                building=self.building or None, unit=self.unit or None, room=self.room or None,
            )
        except Exception:  # odd legacy parts: the stored standard text is still right
            return self.full_text

    def pinyin(self) -> str:
        words = []
        for part, stored in self.components():
            if stored == "natural_village":
                words.append(name_pinyin(part, True))
            else:
                words.append(stored or part_pinyin(part))
        return " ".join(w for w in words if w)


def parts_from_row(row) -> AddressParts:
    return _parts(row, _chain(row))


def _parts(row, chain: _Chain) -> AddressParts:
    street, street_pinyin = row["street_info"] or (None, None)
    compound, category, compound_pinyin = row["compound_info"] or (None, None, None)
    natural = compound if category == "natural_village" else None
    if natural:
        compound = compound_pinyin = None
    # A building plate (楼牌) or unit plate (单元牌) hangs on a representative address of its building
    # or unit: it shows the address down to its own level only.
    kind = row.get("kind")
    unit = row["unit"] or "" if kind != "building" else ""
    room = row["room"] or "" if kind not in ("building", "unit") else ""
    return AddressParts(
        chain.chain, street, street_pinyin, compound, compound_pinyin, natural,
        row["group_no"] or "", row["number"] or "", row["building"] or "", unit, room,
        row["full_text"] if kind in ("door", "flat", None) else "", chain.by_level,
    )


def plate_face(kind: str, parts: AddressParts) -> dict[str, str]:
    """What the plate itself shows: a name (with pinyin) and a number, by the plate's kind."""
    if parts.compound:
        base = [parts.compound]
    elif parts.street:
        base = [parts.street, parts.number]
    else:
        base = [parts.natural_village or (parts.level("village") or ""), parts.group, parts.number]
    if kind == "door":
        if parts.street:
            names, number = [parts.street], parts.number
        elif parts.compound:
            names, number = [parts.compound], parts.number
        else:
            names = [parts.natural_village or (parts.level("village") or "")]
            number = f"{parts.group}{parts.number}"
    elif kind == "building":
        names, number = base, parts.building
    elif kind == "unit":
        names, number = base + [parts.building], parts.unit
    else:
        names, number = base + [parts.building, parts.unit], parts.room
    names = [n for n in names if n]
    pinyin = " ".join(
        (parts.street_pinyin if n == parts.street and parts.street_pinyin else
         parts.compound_pinyin if n == parts.compound and parts.compound_pinyin else
         name_pinyin(n, True) if n == parts.natural_village else part_pinyin(n))
        for n in names
    )
    return {"name": "".join(names), "pinyin": pinyin, "number": number or ""}


@dataclass
class Scan:
    """A resolved scan. `state` is "ok", "suspended" (the address is retired), "replaced" or "revoked"."""

    state: str
    plate: dict[str, Any]
    body: dict[str, Any]
    replacement: dict[str, Any] | None = None


def resolve(conn: Connection, plate_id: int, *, ring: KeyRing, base_url: str, agency: bool = False,
            token: str | None = None) -> Scan:
    row = fetch_row(conn, plate_id)
    if row is None:
        raise NotFound(f"门牌 {plate_code(plate_id)} 不存在 / plate {plate_id} not found", parameter="token")
    result = compose(row, base_url=base_url, token=token,
                     token_for=lambda pid, key_id: ring.token_for(conn, pid, key_id))
    if agency:
        record = plate_record(row)
        record["history"] = plate_history(conn, plate_id)
        from registry.doorplates.scans import scan_counts

        record["scans"] = scan_counts(conn, plate_id)
        record["open_reports"] = conn.execute(
            text("SELECT count(*) FROM doorplate_reports WHERE plate_id = :id AND status = 'open'"),
            {"id": plate_id}).scalar_one()
        result.body["plate"] = {**result.plate, **record}
        result.body["address"]["status"] = row["address_status"]
        result.body["address"]["registered_text"] = row["full_text"]
    return result


def compose(row: dict[str, Any], *, base_url: str, token: str | None,
            token_for: Callable[[int, int | None], str]) -> Scan:
    """The public scan of a SCAN_SQL row, without another query: `token_for(plate_id, key_id)`
    signs the replacing plate's link (any exception: the plate is named without a link)."""
    chain = _chain(row)
    parts = _parts(row, chain)
    address_text = parts.standard_text()
    face = plate_face(row["kind"], parts)
    plate_public = {"id": row["id"], "code": plate_code(row["id"]), "kind": row["kind"],
                    "kind_name": KIND_NAMES[row["kind"]], "verified": True}
    lon, lat = row["lon"], row["lat"]
    services = nearest_services(lon, lat, row["services"])
    state = "ok" if row["status"] in ("issued", "active") else row["status"]
    if state == "ok" and row["address_status"] == "retired":
        # a path that retired the address without follow_addresses: never show a retired address as valid
        state = "suspended"
    body: dict[str, Any] = {
        "plate": plate_public,
        "address": {
            "id": row["address_id"],
            "text": address_text,
            "pinyin": parts.pinyin(),
            "code": row["code"],
            "divisions": chain.divisions(),
            "street": parts.street,
            "compound": parts.compound,
            "natural_village": parts.natural_village,
            "number": parts.number or None,
            "building": parts.building or None,
            "unit": parts.unit or None,
            "room": parts.room or None,
            "location": {"crs": "EPSG:4490", "coordinates": [round(lon, 7), round(lat, 7)]} if lon is not None else None,
        },
        "plate_text": face,
        # no directions to a door the registry no longer lists
        "navigation": navigation(lon, lat, address_text) if state != "suspended" else None,
        "services": services,
    }
    if token:
        body["report_url"] = scan_url(base_url, token) + "/report"
    if row["status"] in ("issued", "active"):  # ok, or suspended by its retired address just above
        # A plate printed before a division adjustment (or any re-parenting) still shows the
        # address then: the page gives today's address and the printed one as 原… (registry/as_of.py).
        printed = printed_among(row["versions"] or [], row["issued_at"])
        if printed:
            body["address"]["printed_text"] = printed
    if state == "suspended":
        body["address"]["status"] = "retired"
    replacement = None
    if row["replaced_by_id"]:
        # the plate that is live now, at the end of the chain (SCAN_SQL follows it)
        nxt_id, nxt_key, nxt_status, _path = row["successor"]
        replacement = {"id": row["replaced_by_id"], "code": plate_code(row["replaced_by_id"]),
                       "current": {"id": nxt_id, "code": plate_code(nxt_id), "status": nxt_status}}
        try:
            replacement["url"] = scan_url(base_url, token_for(nxt_id, nxt_key))
        except Exception:  # its key was retired: name it, without a link
            pass
    return Scan(state, plate_public, body, replacement)
