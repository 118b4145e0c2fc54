"""Build the gazetteer from PostGIS, and fetch changed rows for incremental updates.

Addresses are read in chunks of ids, each one query whose two aggregates return one bytes
value of fixed-width binary rows (ids, coordinates, and a hashtext() of each label: number,
building, unit, room, group) and one of `code<TAB>full_text` lines: a few dozen large values
instead of 1.6M rows, numpy columns without a Python object per row. The distinct labels (a
few thousand) are read once and parsed with registry.text. With a snapshot of its own the load
reads every other chunk on a second connection (pg_export_snapshot), while a thread builds the
name index.
"""
from __future__ import annotations

import logging
import threading
import time
from collections import Counter

import numpy as np
from sqlalchemy import Connection, text

from registry.search.gazetteer import (STATUS_CODES, AddressStore, Div, Gazetteer, Item,
                                       Place, Rec)
from registry.search.names import NameIndex
from registry.settings import get_settings
from registry.text import InvalidText, parse_house_number, village_name_variants

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


def load_gazetteer(conn: Connection, *, text_keys: bool | str = True) -> Gazetteer:
    """Read everything the engine needs from the registry (one consistent snapshot if the
    connection is not already inside a transaction with writes). The name index is built in a
    second thread while the addresses stream in (that thread computes pinyin; this one mostly
    waits for the server). `text_keys`: build the exact-text fast path now (True), in a
    background thread ("thread": the service, so that start-up is not delayed) or not at all."""
    t0 = time.perf_counter()
    own_snapshot = not conn.in_transaction()
    if own_snapshot:
        conn = conn.execution_options(isolation_level="REPEATABLE READ")  # one snapshot for every read
    snapshot_time = time.time()  # before the snapshot is taken: every change announced earlier is in it
    snapshot = conn.execute(text("SELECT pg_current_snapshot()::text")).scalar_one()
    divisions, successors, former = load_divisions(conn)
    places, aliases = load_places(conn)
    facilities, heritage = load_items(conn)
    names = NameIndex()
    names.dialect = get_settings().search_dialect_pinyin  # REGISTRY_SEARCH_DIALECT_PINYIN
    gaz = Gazetteer(divisions, places, facilities, heritage, names, None, successors)  # type: ignore[arg-type]
    gaz.by_code = _codes(divisions)
    gaz.snapshot, gaz.snapshot_time = snapshot, snapshot_time
    add_former_codes(conn, gaz.by_code, divisions)
    failure: list[BaseException] = []

    def build_names() -> None:
        try:
            for d in divisions.values():
                index_division(gaz, d)
            for old_id, (new_id, old_names) in former.items():
                for name, note in old_names:
                    for form, _how in division_forms_of(name, divisions.get(new_id)):
                        names.add("division", new_id, form, "former", note)
            for p in places.values():
                index_place(gaz, p, aliases.get(p.id, ()))
            for it in (*facilities.values(), *heritage.values()):
                index_item(gaz, it)
        except BaseException as exc:  # pragma: no cover - surfaced below
            failure.append(exc)

    t1 = time.perf_counter()
    worker = threading.Thread(target=build_names, name="gazetteer-names")
    worker.start()
    try:
        gaz.addresses = load_addresses(conn, parallel=own_snapshot)
    finally:
        t2 = time.perf_counter()
        worker.join()
    if failure:
        raise failure[0]
    t3 = time.perf_counter()
    _place_divisions(places, divisions, gaz.addresses)
    if text_keys == "thread":
        threading.Thread(target=gaz.addresses.build_text_keys, name="gazetteer-text-keys", daemon=True).start()
    elif text_keys:
        gaz.addresses.build_text_keys()
    gaz.load_seconds = time.perf_counter() - t0
    log.info("gazetteer loaded in %.1f s (entities %.1f, addresses %.1f, then names %.1f more, places %.1f): %s",
             gaz.load_seconds, t1 - t0, t2 - t1, t3 - t2, time.perf_counter() - t3, gaz.counts())
    return gaz


def _codes(divisions: dict[int, Div]) -> dict[str, list]:
    """code -> its readings under each authority (an active division preferred), settled per
    request by `registry.divisions.settle_code`, the rule the database lookups use."""
    from registry.divisions import AUTHORITIES, CodeMatch

    out: dict[str, list] = {}
    for authority in AUTHORITIES:
        best: dict[str, Div] = {}
        for d in divisions.values():
            c = d.mca_code if authority == "mca2025" else d.nbs_code
            if c and (c not in best or (d.status == "active" and best[c].status != "active")):
                best[c] = d
        for c, d in best.items():
            out.setdefault(c, []).append(CodeMatch(d.id, authority, c, d.name, d.level, d.status))
    return out


def add_former_codes(conn: Connection, by_code: dict[str, list], divisions: dict[int, Div]) -> None:
    """Codes a division carried before an adjustment (division_codes) that no division carries now
    read as that division, so a filter by an old code still finds its addresses."""
    from registry.divisions import CodeMatch

    for r in conn.execute(text("SELECT DISTINCT ON (code, authority) code, authority, division_id FROM division_codes "
                               "ORDER BY code, authority, valid_from DESC")).all():
        d = divisions.get(r.division_id)
        if d is None or r.code in by_code or r.authority not in ("nbs2023", "mca2025"):
            continue
        by_code.setdefault(r.code, []).append(CodeMatch(d.id, r.authority, r.code, d.name, d.level, d.status))


# -- divisions ---------------------------------------------------------------------------------
def load_divisions(conn: Connection):
    rows = conn.execute(text("""
        SELECT id, level, name, full_name, parent_id, nbs_code, mca_code, status,
               ST_X(ST_PointOnSurface(geom)) AS lon, ST_Y(ST_PointOnSurface(geom)) AS lat
        FROM divisions
    """)).all()
    divisions: dict[int, Div] = {}
    for r in rows:
        divisions[r.id] = Div(r.id, r.level, r.name, r.full_name, r.parent_id, r.mca_code or r.nbs_code or "",
                              r.status, lon=r.lon if r.lon is not None else float("nan"),
                              lat=r.lat if r.lat is not None else float("nan"), nbs_code=r.nbs_code or "",
                              mca_code=r.mca_code or "")
    finish_divisions(divisions)
    # Former names: earlier versions of a division with another name …
    former: dict[int, tuple[int, list[tuple[str, str]]]] = {}
    for r in conn.execute(text("""
        SELECT DISTINCT h.id, h.name, h.full_name FROM divisions_history h JOIN divisions d ON d.id = h.id
        WHERE h.name <> d.name
    """)).all():
        if r.id in divisions and divisions[r.id].status == "active":
            former.setdefault(r.id, (r.id, []))[1].append((r.full_name, r.name))
    # … villages moved to another township by an adjustment, under their former township's name
    # (德清县乾元镇联合村 for 联合村, now under 康乾街道) …
    for r in conn.execute(text("""
        SELECT DISTINCT h.id, p.name AS township FROM divisions_history h JOIN divisions d ON d.id = h.id
        JOIN divisions p ON p.id = h.parent_id
        WHERE d.level = 'village' AND h.parent_id IS DISTINCT FROM d.parent_id
    """)).all():
        d = divisions.get(r.id)
        if d is not None and d.status == "active":
            former.setdefault(r.id, (r.id, []))[1].append((r.township + d.full_name, r.township + d.name))
    # … and abolished divisions, resolved to the division that took over their children.
    successors: dict[int, int] = {}
    votes: dict[int, Counter] = {}
    for r in conn.execute(text("""
        SELECT h.parent_id AS old_id, d.parent_id AS new_id, count(*) AS n
        FROM divisions_history h JOIN divisions d ON d.id = h.id
        WHERE h.parent_id IN (SELECT id FROM divisions WHERE status = 'abolished')
          AND d.parent_id IS DISTINCT FROM h.parent_id
        GROUP BY 1, 2
    """)).all():
        votes.setdefault(r.old_id, Counter())[r.new_id] += r.n
    for old_id, c in votes.items():
        new_id = c.most_common(1)[0][0]
        if new_id in divisions and divisions[new_id].status == "active":
            successors[old_id] = new_id
            old = divisions[old_id]
            former.setdefault(old_id, (new_id, []))[1].append((old.full_name, old.name))
    return divisions, successors, former


def finish_divisions(divisions: dict[int, Div]) -> None:
    for d in divisions.values():
        chain, cur, seen = [], d, set()
        while cur is not None and cur.id not in seen:
            seen.add(cur.id)
            chain.append(cur.id)
            cur = divisions.get(cur.parent_id) if cur.parent_id else None
        d.chain = tuple(chain)
        names = [divisions[i].name for i in reversed(chain)]
        d.prefix = "".join(names)


def division_forms(d: Div) -> list[tuple[str, str]]:
    return division_forms_of(d.full_name, d) + ([(d.name, "name")] if d.name != d.full_name else [])


def division_forms_of(full_name: str, d: Div | None) -> list[tuple[str, str]]:
    level = d.level if d is not None else ""
    forms: list[tuple[str, str]] = []
    if level == "village":
        variants = village_name_variants(full_name)
        for i, v in enumerate(variants):
            how = "full" if v == full_name else ("name" if d is not None and v == d.name else None)
            if how is None:
                if any(v.endswith(s) for s in ("村", "社区", "居委会", "委员会", "村委会")):
                    how = "variant"
                elif full_name.endswith("居委会"):
                    # a community's bare name, as a specific part (月河街道浮星桥 → 浮星桥社区), below a
                    # hamlet or street named so
                    how = "specific"
                else:
                    continue  # the bare 祝良 of 祝良村: names far more hamlets and streets than villages
            forms.append((v, how))
        return forms
    forms.append((full_name, "name"))
    if level == "township" and full_name.endswith("街道"):
        forms.append((full_name + "办事处", "variant"))
    for suffix in ("街道", "省", "市", "区", "县", "镇", "乡"):
        if full_name.endswith(suffix) and len(full_name) - len(suffix) >= 2:
            forms.append((full_name[: -len(suffix)], "short"))
            break
    return forms


def index_division(gaz: Gazetteer, d: Div) -> None:
    if d.status != "active":
        return
    for form, how in division_forms(d):
        gaz.names.add("division", d.id, form, how)


# -- places ------------------------------------------------------------------------------------
def load_places(conn: Connection, ids: list[int] | None = None):
    where = "WHERE p.status NOT IN ('retired', 'abolished')" if ids is None else "WHERE p.id = ANY(:ids)"
    rows = conn.execute(text(f"""
        SELECT p.id, p.category, p.name, p.pinyin, p.division_id, p.county_id, p.status,
               ST_X(ST_PointOnSurface(p.geom)) AS lon, ST_Y(ST_PointOnSurface(p.geom)) AS lat
        FROM place_names p {where}
    """), {"ids": ids or []}).all()
    places = {
        r.id: Place(r.id, r.category, r.name, r.division_id, r.county_id, r.status,
                    r.lon if r.lon is not None else float("nan"), r.lat if r.lat is not None else float("nan"),
                    r.pinyin)
        for r in rows
    }
    where_a = "" if ids is None else "WHERE place_name_id = ANY(:ids)"
    aliases: dict[int, list[tuple[str, str, str]]] = {}
    for r in conn.execute(text(f"""
        SELECT place_name_id, name, kind, used_from, used_until FROM place_name_aliases {where_a}
        ORDER BY id
    """), {"ids": ids or []}).all():
        period = ""
        if r.used_from or r.used_until:
            period = f"{r.used_from or ''}–{r.used_until or ''}"
        aliases.setdefault(r.place_name_id, []).append((r.name, r.kind, period))
    return places, aliases


def index_place(gaz: Gazetteer, p: Place, aliases) -> None:
    if p.status in ("retired", "abolished"):
        return
    gaz.names.add("place", p.id, p.name, "name")
    for name, kind, period in aliases:
        gaz.names.add("place", p.id, name, kind if kind in ("former", "alias", "abbreviation") else "alias", period)


def _place_divisions(places: dict[int, Place], divisions: dict[int, Div], store: AddressStore) -> None:
    village = store.col["village"]
    found: dict[int, set[int]] = {}
    for col in ("street", "compound"):
        c = store.col[col]
        m = c > 0
        if not m.any():
            continue
        pairs = np.unique(c[m].astype(np.int64) * (1 << 32) + village[m].astype(np.int64))
        for cid, vid in zip((pairs >> 32).tolist(), (pairs & 0xFFFFFFFF).tolist()):
            found.setdefault(cid, set()).add(vid)
    for p in places.values():
        p.divisions = place_division_set(p, found.get(p.id, ()), divisions)


def place_division_set(p: Place, villages, divisions: dict[int, Div]) -> frozenset:
    out: set[int] = set()
    for vid in villages:
        d = divisions.get(vid)
        out.update(d.chain if d is not None else (vid,))
    for did in (p.division_id, p.county_id):
        d = divisions.get(did)
        if d is not None:
            out.update(d.chain)
    return frozenset(out)


# -- facilities and heritage -------------------------------------------------------------------
def load_items(conn: Connection, kind: str | None = None, ids: list[int] | None = None):
    facilities: dict[int, Item] = {}
    heritage: dict[int, Item] = {}
    params = {"ids": ids or []}
    if kind in (None, "facility"):
        where = "WHERE status = 'active'" if ids is None else "WHERE id = ANY(:ids)"
        for r in conn.execute(text(f"""
            SELECT id, category, name, division_id, address_text, status,
                   ST_X(geom) AS lon, ST_Y(geom) AS lat FROM facilities {where}
        """), params).all():
            it = Item(r.id, "facility", r.category, r.name, r.division_id, _f(r.lon), _f(r.lat), r.address_text)
            if r.status == "active":
                facilities[r.id] = it
    if kind in (None, "heritage"):
        where = "WHERE status NOT IN ('delisted', 'retired')" if ids is None else "WHERE id = ANY(:ids)"
        for r in conn.execute(text(f"""
            SELECT id, category, name, level, division_id, former_names, status,
                   ST_X(geom) AS lon, ST_Y(geom) AS lat FROM heritage_items {where}
        """), params).all():
            if r.status in ("delisted", "retired"):
                continue
            heritage[r.id] = Item(r.id, "heritage", r.category, r.name, r.division_id, _f(r.lon), _f(r.lat),
                                  None, r.level, tuple(r.former_names or ()))
    return facilities, heritage


def index_item(gaz: Gazetteer, it: Item) -> None:
    gaz.names.add(it.kind, it.id, it.name, "name")
    rest = item_name_less_prefix(gaz, it)
    if rest:
        gaz.names.add(it.kind, it.id, rest, "specific")  # 婚姻登记处 for 吴兴区婚姻登记处
    for name in it.former:
        gaz.names.add(it.kind, it.id, name, "former")


def item_name_less_prefix(gaz: Gazetteer, it: Item) -> str | None:
    """A facility's name less the division name it starts with (吴兴区婚姻登记处 → 婚姻登记处,
    月河街道浮星桥社区居家养老服务照料中心 → 浮星桥社区居家养老服务照料中心): people leave it out."""
    best = ""
    for did in gaz.chain_of(it.division_id) if it.division_id else ():
        d = gaz.divisions.get(did)
        if d is None or d.level == "province":
            continue
        for form in {d.name, d.full_name}:
            if len(form) > len(best) and it.name.startswith(form):
                best = form
    rest = it.name[len(best):]
    return rest if best and len(rest) >= 3 else None


def _f(v) -> float:
    return float(v) if v is not None else float("nan")


# -- addresses ---------------------------------------------------------------------------------
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
                        p["suf"], p["bld"], p["unit"], p["room"], _f(r.lon), _f(r.lat), status_code(r.status),
                        r.code, r.full_text)
    return out


def status_code(name: str) -> int:
    return STATUS_CODES.get(name, 1)
