"""The addresses of the gazetteer, read from PostGIS as numpy columns.

Addresses are read in chunks of ids, each one query whose two aggregates return one bytes
value of fixed-width binary rows (ids, coordinates, and a hashtext() of each label: number,
building, unit, room, group) and one of `code<TAB>full_text` lines: a few dozen large values
instead of 1.6M rows, numpy columns without a Python object per row. The distinct labels (a
few thousand) are read once and parsed with registry.text. With a snapshot of its own the load
reads every other chunk on a second connection (pg_export_snapshot). `fetch_addresses` reads
the current state of a few rows for the overlay of incremental updates.
"""
from __future__ import annotations

import logging
import threading
import time

import numpy as np
from sqlalchemy import Connection, text

from registry.search.entity_loading import float_or_nan
from registry.search.gazetteer import STATUS_CODES, AddressStore, Rec
from registry.text import InvalidText, parse_house_number

log = logging.getLogger(__name__)


# Per row the server sends fixed-width binary: ids, coordinates and a hashtext() of each label
# (number, building, unit, room, group). The distinct labels — a few thousand — are read once and
# parsed here with registry.text; the hashes map every row to its parsed values with numpy.
# (Parsing 1.6M labels in SQL cost ~5 µs a row; hashing them costs a fraction of that.)
LABELS = ("number", "building", "unit", "room", "group_no")
_EXPRESSIONS = [
    "a.id::int8",
    "a.division_id::int4",
    "COALESCE(a.street_id, 0)::int4",
    "COALESCE(a.compound_id, 0)::int4",
    *(f"hashtext(a.{label})" for label in LABELS),
    "COALESCE(ST_X(a.geom), 'NaN')::float8",
    "COALESCE(ST_Y(a.geom), 'NaN')::float8",
    "(CASE a.status WHEN 'active' THEN 1 ELSE 2 END)::int4",
]
_NAMES = ("id", "village", "street", "compound", *(f"h_{label}" for label in LABELS), "lon", "lat", "status")
_TYPES = ("i8", "i4", "i4", "i4", "i4", "i4", "i4", "i4", "i4", "f8", "f8", "i4")
_SEND = {"i8": "int8send", "i4": "int4send", "f8": "float8send"}
# One bytea per row: the columns in network byte order, back to back (fixed width).
_PACKED = " || ".join(f"{_SEND[t]}({e})" for e, t in zip(_EXPRESSIONS, _TYPES))
CHUNK_ROWS_LOG2 = 16  # rows are aggregated server-side in chunks of ids (65,536 ids each)
_LIVE = "a.status <> 'retired'"
_DISTINCT_LABELS = text(f"""
    SELECT {", ".join(f"a.{label}" for label in LABELS)},
           {", ".join(f"hashtext(a.{label}) AS h_{label}" for label in LABELS)},
           {", ".join(f"GROUPING(a.{label}) AS g_{label}" for label in LABELS)}
    FROM addresses a WHERE {_LIVE}
    GROUP BY GROUPING SETS ({", ".join(f"(a.{label})" for label in LABELS)})
""")


def parse_labels(codes: dict[str, dict[str, int]], number: str, building: str, unit: str, room: str,
                 group_no: str) -> dict[str, int]:
    """The engine's integer parts of one address's labels (see AddressStore)."""
    out = {"main": 0, "sub": 0, "pre": 0, "suf": 0}
    if number:
        try:
            hn = parse_house_number(number)
            out.update(main=hn.main, sub=hn.sub or 0, pre=1 if hn.prefix else 0,
                       suf="甲乙丙丁".index(hn.suffix) + 1 if hn.suffix else 0)
        except InvalidText:
            digits = "".join(c if c.isdigit() else " " for c in number).split()
            out["main"] = int(digits[0]) if digits and len(digits[0]) <= 6 else 0
    out["bld"] = _label_code(codes, "bld", building, "幢")
    out["unit"] = _label_code(codes, "unit", unit, "单元")
    out["room"] = _label_code(codes, "room", room, "室")
    g = (group_no or "").removesuffix("组")
    out["group"] = int(g) if g.isdigit() and len(g) <= 4 else 0
    return out


def _label_code(codes: dict[str, dict[str, int]], kind: str, value: str, suffix: str) -> int:
    if not value:
        return 0
    core = value.strip().removesuffix(suffix)
    if core.isdigit() and core.isascii() and not core.startswith("0") and len(core) <= 9:
        return int(core)
    if kind == "bld" and len(core) == 1 and core.isascii() and core.isalpha():
        return -ord(core.upper())
    return intern_label(codes, kind, value)


def _label_tables(conn: Connection, codes: dict[str, dict[str, int]]) -> dict[str, tuple]:
    """Per label column: (sorted hashes, parsed values by field, colliding hashes)."""
    parsed: dict[str, dict[int, dict[str, int]]] = {label: {} for label in LABELS}
    seen: dict[str, dict[int, str]] = {label: {} for label in LABELS}
    collide: dict[str, set[int]] = {label: set() for label in LABELS}
    for r in conn.execute(_DISTINCT_LABELS).mappings():
        for label in LABELS:
            if r[f"g_{label}"] != 0:
                continue
            value, h = r[label] or "", r[f"h_{label}"]
            if h in seen[label] and seen[label][h] != value:
                collide[label].add(h)
            seen[label][h] = value
            args = {"number": "", "building": "", "unit": "", "room": "", "group_no": ""}
            args[label] = value
            parsed[label][h] = parse_labels(codes, **args)
    tables = {}
    for label in LABELS:
        hashes = np.array(sorted(parsed[label]), dtype=np.int64)
        fields = {f: np.array([parsed[label][h][f] for h in hashes.tolist()], dtype=np.int32)
                  for f in ("main", "sub", "pre", "suf", "bld", "unit", "room", "group")}
        tables[label] = (hashes, fields, collide[label])
    return tables


_FROM_LABEL = {"number": ("main", "sub", "pre", "suf"), "building": ("bld",), "unit": ("unit",), "room": ("room",),
               "group_no": ("group",)}


def _packed_columns(buf: bytes) -> dict[str, np.ndarray]:
    """Split the fixed-width big-endian rows built by `_PACKED` into native numpy columns."""
    dtype = np.dtype([(name, ">" + t) for name, t in zip(_NAMES, _TYPES)])
    rows = np.frombuffer(buf, dtype=dtype)
    return {name: rows[name].astype(np.dtype(t)) for name, t in zip(_NAMES, _TYPES)}


_CHUNK = f"""
    SELECT string_agg(s.packed, ''::bytea) AS packed, convert_to(string_agg(s.line, ''), 'UTF8') AS lines
    FROM (SELECT a.id, {_PACKED} AS packed, a.code || E'\\t' || a.full_text || E'\\n' AS line
          FROM addresses a WHERE a.id >= %(lo)s AND a.id < %(hi)s AND {_LIVE} ORDER BY a.id) s
"""
_CHUNK_SORTED = f"""
    SELECT string_agg(s.packed, ''::bytea ORDER BY s.id) AS packed,
           convert_to(string_agg(s.line, '' ORDER BY s.id), 'UTF8') AS lines
    FROM (SELECT a.id, {_PACKED} AS packed, a.code || E'\\t' || a.full_text || E'\\n' AS line
          FROM addresses a WHERE a.id >= %(lo)s AND a.id < %(hi)s AND {_LIVE}) s
"""


class _Chunk:
    __slots__ = ("packed", "lines")

    def __init__(self, packed, lines) -> None:
        self.packed, self.lines = packed, lines


def _fetch_chunk(conn: Connection, sql: str, lo: int, hi: int) -> _Chunk:
    """One chunk, read in binary (bytea as raw bytes, not hex) on the DBAPI connection."""
    with conn.connection.dbapi_connection.cursor(binary=True) as cur:
        cur.execute(sql, {"lo": lo, "hi": hi})
        packed, lines = cur.fetchone()
    return _Chunk(packed, lines)


def _snapshot_helper(conn: Connection) -> Connection | None:
    """A second connection reading the same snapshot (pg_export_snapshot), or None."""
    try:
        snapshot = conn.execute(text("SELECT pg_export_snapshot()")).scalar_one()
    except Exception:  # pragma: no cover - e.g. a standby or an old server
        return None
    if not all(c.isalnum() or c == "-" for c in snapshot):
        return None
    other = conn.engine.connect().execution_options(isolation_level="REPEATABLE READ")
    other.exec_driver_sql(f"SET TRANSACTION SNAPSHOT '{snapshot}'")
    other.exec_driver_sql("SET LOCAL jit = off")
    return other



def load_addresses(conn: Connection, parallel: bool = False) -> AddressStore:
    """All live addresses in two aggregated reads per chunk of ids: the server packs the parsed
    parts of each row into fixed-width binary and joins the `code<TAB>full_text` lines, so the
    client receives a few dozen large values instead of 1.6M rows (the per-row cost of a COPY
    read loop in Python is what made loading slow)."""
    t0 = time.perf_counter()
    conn.execute(text("SET LOCAL jit = off"))  # one-off scans: compiling costs more than it saves
    bounds = conn.execute(text(f"SELECT min(a.id), max(a.id) FROM addresses a WHERE {_LIVE}")).one()
    step = 1 << CHUNK_ROWS_LOG2
    ranges = list(range(int(bounds[0]), int(bounds[1]) + 1, step)) if bounds[0] is not None else []
    results: dict[int, object] = {}
    helper = _snapshot_helper(conn) if len(ranges) > 4 and parallel else None
    if helper is not None:
        # a second connection on the same snapshot takes every other chunk: the server has a
        # core to spare while this one waits
        failure: list[BaseException] = []

        def other() -> None:
            try:
                with helper:
                    for lo in ranges[1::2]:
                        results[lo] = _fetch_chunk(helper, _CHUNK, lo, lo + step)
            except BaseException as exc:  # pragma: no cover - surfaced below
                failure.append(exc)

        worker = threading.Thread(target=other, name="gazetteer-addresses")
        worker.start()
        for lo in ranges[0::2]:
            results[lo] = _fetch_chunk(conn, _CHUNK, lo, lo + step)
        worker.join()
        if failure:
            raise failure[0]
    else:
        for lo in ranges:
            results[lo] = _fetch_chunk(conn, _CHUNK, lo, lo + step)
    packed_dtype = np.dtype([(n, ">" + t) for n, t in zip(_NAMES, _TYPES)])
    rows = []
    for lo in ranges:
        r = results[lo]
        if r.packed is None:
            continue
        ids = np.frombuffer(r.packed, dtype=packed_dtype)["id"]
        if len(ids) > 1 and not bool(np.all(ids[1:] > ids[:-1])):
            r = _fetch_chunk(conn, _CHUNK_SORTED, lo, lo + step)
        rows.append(r)
    raw = _packed_columns(b"".join(bytes(r.packed) for r in rows))
    text_buf = b"".join(bytes(r.lines) for r in rows)
    del rows
    ends = np.flatnonzero(np.frombuffer(text_buf, dtype=np.uint8) == 10)
    ends = ends.astype(np.uint32 if len(text_buf) < 2**32 else np.int64)
    if len(ends) != len(raw["id"]):
        raise RuntimeError("address texts and parts disagree (a line break inside a full_text?)")
    codes: dict[str, dict[str, int]] = {"bld": {}, "unit": {}, "room": {}}
    columns = {"id": raw["id"], "village": raw["village"], "street": raw["street"], "compound": raw["compound"],
               "lon": raw["lon"], "lat": raw["lat"], "status": raw["status"].astype(np.int8)}
    tables = _label_tables(conn, codes)
    suspects = np.zeros(len(raw["id"]), dtype=bool)
    for label, (hashes, values, collide) in tables.items():
        h = raw[f"h_{label}"].astype(np.int64)
        idx = np.clip(np.searchsorted(hashes, h), 0, max(len(hashes) - 1, 0))
        found = hashes[idx] == h if len(hashes) else np.zeros(len(h), dtype=bool)
        for f in _FROM_LABEL[label]:
            columns[f] = np.where(found, values[f][idx], 0).astype(np.int32) if len(hashes) else np.zeros(len(h), np.int32)
        suspects |= ~found
        if collide:
            suspects |= np.isin(h, np.array(sorted(collide), dtype=np.int64))
    columns["group"] = columns["group"].astype(np.int16)
    columns["pre"] = columns["pre"].astype(np.int8)
    columns["suf"] = columns["suf"].astype(np.int8)
    if suspects.any():  # a hash shared by two labels (or changed meanwhile): read those rows' labels
        rows = conn.execute(text(f"SELECT a.id, {', '.join('a.' + x for x in LABELS)} FROM addresses a "
                                 "WHERE a.id = ANY(:ids)"), {"ids": raw["id"][suspects].tolist()}).all()
        where = {int(i): k for k, i in zip(np.flatnonzero(suspects).tolist(), raw["id"][suspects].tolist())}
        for r in rows:
            k = where[r.id]
            for f, v in parse_labels(codes, r.number, r.building, r.unit, r.room, r.group_no).items():
                columns[f][k] = v
    store = AddressStore(columns, text_buf, ends, codes)
    log.info("addresses: %d rows in %.1f s", len(columns["id"]), time.perf_counter() - t0)
    return store


def label_of(kind: str, value: str) -> str:
    value = (value or "").strip().upper()
    for suffix in {"bld": ("幢",), "unit": ("单元",), "room": ("室",)}[kind]:
        if value.endswith(suffix):
            value = value[: -len(suffix)]
    return value


def intern_label(codes: dict[str, dict[str, int]], kind: str, value: str) -> int:
    label = label_of(kind, value)
    table = codes.setdefault(kind, {})
    code = table.get(label)
    if code is None:
        code = -(1000 + len(table))
        table[label] = code
    return code


def fetch_addresses(conn: Connection, ids: list[int], store: AddressStore) -> dict[int, Rec | None]:
    """Current state of some addresses (None when retired or gone), for the overlay."""
    out: dict[int, Rec | None] = {i: None for i in ids}
    rows = conn.execute(text(f"""
        SELECT a.id, a.division_id, COALESCE(a.street_id, 0) AS street, COALESCE(a.compound_id, 0) AS compound,
               a.number, a.building, a.unit, a.room, a.group_no, ST_X(a.geom) AS lon, ST_Y(a.geom) AS lat,
               a.status, a.code, a.full_text
        FROM addresses a WHERE a.id = ANY(:ids) AND {_LIVE}
    """), {"ids": ids}).all()
    for r in rows:
        p = parse_labels(store.codes, r.number, r.building, r.unit, r.room, r.group_no)
        out[r.id] = Rec(r.id, r.division_id, r.street, r.compound, p["group"], p["main"], p["sub"], p["pre"],
                        p["suf"], p["bld"], p["unit"], p["room"], float_or_nan(r.lon), float_or_nan(r.lat), status_code(r.status),
                        r.code, r.full_text)
    return out


def status_code(name: str) -> int:
    return STATUS_CODES.get(name, 1)
