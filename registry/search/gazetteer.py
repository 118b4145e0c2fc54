"""The in-memory gazetteer: divisions, place names, facilities, heritage items and addresses,
derived from PostGIS (see `registry.search.loading`) and never written back.

Divisions, places and items are a few tens of thousands of small Python objects. The 1.6M
addresses are compact numpy columns (ids, container ids, parsed number/building/unit/room,
coordinates) plus one bytes blob holding `code<TAB>full_text` lines, with three sorted views
(CSR) for the lookups the resolver makes: doors of a street by number, rooms of a compound by
building, doors of a village by number. Changes after the load go to a small overlay (a dict
of records) and mask the base row, so no array is ever rebuilt for one change.
"""
from __future__ import annotations

import struct
import threading
import time
import zlib
from dataclasses import dataclass, field

import numpy as np

from registry.search.names import NameIndex

FIELDS = ("village", "street", "compound", "group", "main", "sub", "pre", "suf", "bld", "unit", "room")
ROW = {f: k + 1 for k, f in enumerate(FIELDS)}  # positions in the row tuples of AddressStore.select
STATUS_CODES = {"active": 1, "planned": 2}
STATUS_NAMES = {v: k for k, v in STATUS_CODES.items()}
LEVELS = ("province", "city", "county", "township", "village")
SUFFIX_CHARS = "甲乙丙丁"
CITY_PREFIX = "浙江省湖州市"


@dataclass(slots=True)
class Div:
    id: int
    level: str
    name: str
    full_name: str
    parent_id: int | None
    code: str
    status: str
    chain: tuple[int, ...] = ()  # itself, then its parents up to the province
    prefix: str = ""  # the standard text of the chain down to this division (province first)
    lon: float = float("nan")
    lat: float = float("nan")
    nbs_code: str = ""
    mca_code: str = ""


@dataclass(slots=True)
class Place:
    id: int
    category: str  # road, compound, natural_village, bridge, river, hill …
    name: str
    division_id: int
    county_id: int
    status: str
    lon: float
    lat: float
    pinyin: str | None = None
    divisions: frozenset = frozenset()  # every division its addresses (or itself) lie in


@dataclass(slots=True)
class Item:
    id: int
    kind: str  # facility | heritage
    category: str
    name: str
    division_id: int
    lon: float
    lat: float
    address_text: str | None = None
    level: str | None = None
    former: tuple[str, ...] = ()


@dataclass(slots=True)
class Rec:
    """An address changed since the load (the overlay)."""
    id: int
    village: int
    street: int
    compound: int
    group: int
    main: int
    sub: int
    pre: int
    suf: int
    bld: int
    unit: int
    room: int
    lon: float
    lat: float
    status: int
    code: str
    full_text: str


# The first sort key after the container in each sorted view (see AddressStore.gather).
CSR_KEYS = {"street": "main", "compound": "bld", "village": "main"}


@dataclass
class Csr:
    """Rows of one container kind sorted by (container, key, …): spans by container id."""
    order: np.ndarray  # row numbers
    key: np.ndarray  # the first sort key after the container, in `order` order
    spans: dict[int, tuple[int, int]]


@dataclass
class Cand:
    """A set of candidate addresses: base rows (numpy) and overlay records."""
    base: np.ndarray
    over: list[Rec]

    def __len__(self) -> int:
        return len(self.base) + len(self.over)


_STRUCT_CODES = {"|i1": "b", "|u1": "B", "<i2": "h", "<u2": "H", "<i4": "i", "<u4": "I", "<i8": "q", "<u8": "Q"}


def _row_struct(dtype: np.dtype) -> struct.Struct | None:
    """A struct reading one record of `packed` from its bytes (None when the layout has padding
    or a type it does not know): `packed[rows].tolist()` builds each tuple field by field."""
    codes, offset = [], 0
    for name in dtype.names:
        ft, off = dtype.fields[name][:2]
        code = _STRUCT_CODES.get(ft.str)
        if code is None or off != offset:
            return None
        codes.append(code)
        offset += ft.itemsize
    return struct.Struct("<" + "".join(codes)) if offset == dtype.itemsize else None


_INT_BOUNDS = {np.dtype(t): (int(np.iinfo(t).min), int(np.iinfo(t).max)) for t in (np.int32, np.int64)}


def _equal_range(keys: np.ndarray, key: int) -> tuple[int, int]:
    """Where `key` starts and ends in the sorted `keys`: both ends in one searchsorted call for
    32- and 64-bit integers (when key + 1 still fits), else two."""
    bounds = _INT_BOUNDS.get(keys.dtype)
    if bounds is not None and bounds[0] <= key < bounds[1]:
        lo, hi = keys.searchsorted(np.array((key, key + 1), dtype=keys.dtype)).tolist()
        return lo, hi
    return int(np.searchsorted(keys, key, "left")), int(np.searchsorted(keys, key, "right"))


class AddressStore:
    """The addresses: in memory (built by registry.search.loading) or attached to the files of a
    shared generation (registry.search.generation), read-only there; the liveness mask and the
    overlay are always this process's own."""

    def __init__(self, columns: dict[str, np.ndarray], text_buf: bytes, text_end: np.ndarray,
                 codes: dict[str, dict[str, int]]) -> None:
        self.ids: np.ndarray = columns["id"]
        # One structured array: a row's parts come out in one call (`packed[rows].tolist()`);
        # the columns are views into it.
        self.packed = np.empty(len(self.ids), dtype=[(f, columns[f].dtype) for f in FIELDS])
        for f in FIELDS:
            self.packed[f] = columns.pop(f)
        self.lon: np.ndarray = columns["lon"]
        self.lat: np.ndarray = columns["lat"]
        self.status: np.ndarray = columns["status"]
        # the exact-text fast path: keys of the standard texts (after 浙江省湖州市), sorted;
        # built after the load by build_text_keys (until then the fast path is skipped)
        self.key_order: np.ndarray | None = None
        self.key_sorted: np.ndarray | None = None
        self.text_buf = text_buf
        self.text_end = text_end
        self.codes = codes  # non-numeric building/unit/room labels -> negative codes
        self._init_views()
        self.csr = {kind: self._csr(kind, (first,)) for kind, first in CSR_KEYS.items()}

    def _init_views(self) -> None:
        """The column views and this process's own state: the liveness mask and the overlay."""
        self.col = {f: self.packed[f] for f in FIELDS}
        # the records as rows of bytes, read by one struct (select): same tuples, a third of the time
        self._row_struct = _row_struct(self.packed.dtype) if self.packed.flags.c_contiguous else None
        self._row_bytes = (self.packed.view(np.uint8).reshape(-1, self.packed.dtype.itemsize)
                           if self._row_struct is not None else None)
        self.alive = np.ones(len(self.ids), dtype=bool)
        self.dead = 0  # base rows superseded by the overlay (none: skip the liveness filter)
        self.overlay_by_text: dict[str, int] = {}
        self.overlay: dict[int, Rec] = {}
        self.overlay_by: dict[str, dict[int, set[int]]] = {"street": {}, "compound": {}, "village": {}}

    # -- the arrays of a shared generation ---------------------------------------------------
    def arrays(self) -> dict[str, np.ndarray]:
        """Every array of the store by file name (registry.search.generation writes them)."""
        out = {"id": self.ids, "packed": self.packed, "lon": self.lon, "lat": self.lat, "status": self.status,
               "text_end": self.text_end}
        if self.key_order is not None and self.key_sorted is not None:
            out.update(key_order=self.key_order, key_sorted=self.key_sorted)
        for kind, csr in self.csr.items():
            spans = np.array([(c, s, e) for c, (s, e) in csr.spans.items()], dtype=np.int64).reshape(-1, 3)
            out.update({f"csr_{kind}_order": csr.order, f"csr_{kind}_key": csr.key, f"csr_{kind}_spans": spans})
        return out

    @classmethod
    def attached(cls, arrays: dict[str, np.ndarray], text_buf, codes: dict[str, dict[str, int]]) -> "AddressStore":
        """A store over arrays read from files (memory-mapped, read-only) and a text buffer that
        slices to bytes (bytes or mmap.mmap)."""
        self = cls.__new__(cls)
        self.ids, self.packed = arrays["id"], arrays["packed"]
        self.lon, self.lat, self.status = arrays["lon"], arrays["lat"], arrays["status"]
        self.key_order, self.key_sorted = arrays.get("key_order"), arrays.get("key_sorted")
        self.text_buf, self.text_end = text_buf, arrays["text_end"]
        self.codes = codes
        self._init_views()
        self.csr = {}
        for kind in CSR_KEYS:
            spans = arrays[f"csr_{kind}_spans"]
            self.csr[kind] = Csr(arrays[f"csr_{kind}_order"], arrays[f"csr_{kind}_key"],
                                 {c: (s, e) for c, s, e in spans.tolist()})
        return self

    def __len__(self) -> int:
        return int(self.alive.sum()) + len(self.overlay)

    def _csr(self, container: str, keys: tuple[str, ...]) -> Csr:
        """Rows with a container, sorted by (container, first key): one argsort of a composite
        int64 (the order inside one container and key does not matter)."""
        c = self.col[container]
        k = self.col[keys[0]]
        rows = np.flatnonzero(c > 0)
        composite = (c[rows].astype(np.int64) << 32) | (k[rows].astype(np.int64) + (1 << 31))
        order = rows[np.argsort(composite, kind="stable")].astype(np.int32)
        cs = c[order]
        spans: dict[int, tuple[int, int]] = {}
        if len(cs):
            uniq, first = np.unique(cs, return_index=True)
            last = np.append(first[1:], len(cs))
            spans = dict(zip(uniq.tolist(), zip(first.tolist(), last.tolist())))
        return Csr(order, k[order].copy(), spans)

    # -- reading ---------------------------------------------------------------------------
    def gather(self, container: str, cid: int, key: int | None = None) -> Cand:
        """Addresses in a container (street/compound/village id), optionally with its first key."""
        csr = self.csr[container]
        span = csr.spans.get(cid)
        if span is None:
            base = np.zeros(0, dtype=np.int32)
        else:
            s, e = span
            if key is not None:
                lo, hi = _equal_range(csr.key[s:e], key)
                s, e = s + lo, s + hi
            base = csr.order[s:e]
            if self.dead and len(base) and not self.alive[base].all():
                base = base[self.alive[base]]
        over: list[Rec] = []
        ids = self.overlay_by[container].get(cid)
        if ids:
            first = CSR_KEYS[container]
            for i in ids:
                r = self.overlay.get(i)
                if r is not None and (key is None or getattr(r, first) == key):
                    over.append(r)
        return Cand(base, over)

    def select(self, container: str, cid: int, key: int | None = None,
               eq: dict[str, int] | None = None) -> list[tuple]:
        """Rows of a container as tuples (ref, *FIELDS): ref is a base row number or a Rec.
        `eq` pre-filters large sets with numpy; small ones are filtered by the caller."""
        cand = self.gather(container, cid, key)
        base = cand.base
        if eq and len(base) > 64:
            mask = None
            for f, v in eq.items():
                m = self.col[f][base] == v
                mask = m if mask is None else mask & m
            base = base[mask]
        if not len(base):
            out = []
        elif self._row_struct is not None:
            parts = self._row_struct.iter_unpack(self._row_bytes[base].tobytes())
            out = [(i, *t) for i, t in zip(base.tolist(), parts)]
        else:
            out = [(i,) + t for i, t in zip(base.tolist(), self.packed[base].tolist())]
        for r in cand.over:
            row = (r,) + tuple(getattr(r, f) for f in FIELDS)
            if not eq or all(row[ROW[f]] == v for f, v in eq.items()):
                out.append(row)
        return out

    def values(self, cand: Cand, field_name: str) -> tuple[np.ndarray, list[int]]:
        return self.col[field_name][cand.base], [getattr(r, field_name) for r in cand.over]

    def where(self, cand: Cand, field_name: str, value: int) -> Cand:
        b, o = self.values(cand, field_name)
        return Cand(cand.base[b == value], [r for r, v in zip(cand.over, o) if v == value])

    def where_floor(self, cand: Cand, floor: int) -> Cand:
        b, o = self.values(cand, "room")
        fb = np.where(b >= 1000, b // 100, np.where(b >= 100, b // 100, -1))
        return Cand(cand.base[fb == floor], [r for r, v in zip(cand.over, o) if v > 0 and v // 100 == floor])

    def record(self, cand_ref: int | Rec) -> dict:
        """A result record (id, code, full_text, coordinates, parts) for a base row or a Rec."""
        if isinstance(cand_ref, Rec):
            r = cand_ref
            out = {f: getattr(r, f) for f in FIELDS}
            out.update(id=r.id, lon=r.lon, lat=r.lat, status=STATUS_NAMES.get(r.status, "active"),
                       code=r.code, full_text=r.full_text)
            return out
        i = int(cand_ref)
        if self._row_struct is not None:
            out = dict(zip(FIELDS, self._row_struct.unpack(self._row_bytes[i].tobytes())))
        else:
            out = {f: int(self.col[f][i]) for f in FIELDS}
        code, text = self.text(i)
        # .item(): the Python number, without a numpy scalar on the way
        out.update(id=self.ids.item(i), lon=float(self.lon.item(i)), lat=float(self.lat.item(i)),
                   status=STATUS_NAMES.get(int(self.status.item(i)), "active"), code=code, full_text=text)
        return out

    def shown(self, cand_ref: int | Rec) -> tuple[str, str, str]:
        """(code, full_text, status) of a base row or a Rec: the parts of `record` an answer shows
        besides the village and coordinates a candidate already carries (rank.to_dict)."""
        if isinstance(cand_ref, Rec):
            return cand_ref.code, cand_ref.full_text, STATUS_NAMES.get(cand_ref.status, "active")
        i = int(cand_ref)
        code, text = self.text(i)
        return code, text, STATUS_NAMES.get(int(self.status.item(i)), "active")

    def text(self, i: int) -> tuple[str, str]:
        ends = self.text_end
        start = ends.item(i - 1) + 1 if i > 0 else 0
        line = self.text_buf[start:ends.item(i)].decode("utf-8")
        code, _, text = line.partition("\t")
        return code, text

    def refs(self, cand: Cand) -> list[int | Rec]:
        return [int(i) for i in cand.base] + list(cand.over)

    def build_text_keys(self) -> None:
        """Key every standard text (a second or two at city scale; run in a thread)."""
        n = len(self.ids)
        prefix = CITY_PREFIX.encode("utf-8")
        lines = bytes(self.text_buf).split(b"\n")

        def key(line: bytes) -> int:
            tail = line[line.index(b"\t") + 1:]
            return text_key(tail[len(prefix):] if tail.startswith(prefix) else tail)

        keys = np.fromiter((key(line) for line in lines[:n]), dtype=np.int64, count=n)
        del lines
        order = np.argsort(keys, kind="stable").astype(np.int32)
        self.key_sorted, self.key_order = keys[order], order

    def by_text(self, standard: str) -> int | Rec | None:
        """The live address whose standard text (with or without 浙江省湖州市) is exactly this."""
        tail = standard[6:] if standard.startswith(CITY_PREFIX) else standard
        aid = self.overlay_by_text.get(tail)
        if aid is not None and aid in self.overlay:
            return self.overlay[aid]
        if self.key_sorted is None or self.key_order is None:
            return None
        key = text_key(tail.encode("utf-8"))
        lo, hi = _equal_range(self.key_sorted, key)
        found = None
        for k in range(lo, hi):
            i = self.key_order.item(k)
            if self.alive.item(i):
                _, full = self.text(i)
                if full == standard or full == CITY_PREFIX + tail:
                    if found is not None:
                        return None  # two doors with one text (a street through two villages): not exact
                    found = i
        return found

    def row_of_id(self, address_id: int) -> int | None:
        i = int(np.searchsorted(self.ids, address_id))
        if i < len(self.ids) and int(self.ids[i]) == address_id:
            return i
        return None

    def get(self, address_id: int) -> int | Rec | None:
        """The current record of an address by id (overlay first), or None."""
        r = self.overlay.get(address_id)
        if r is not None:
            return r
        i = self.row_of_id(address_id)
        if i is not None and self.alive[i]:
            return i
        return None

    # -- changes ---------------------------------------------------------------------------
    def upsert(self, rec: Rec | None, address_id: int) -> None:
        """Apply one changed address (None or a retired status removes it)."""
        old = self.overlay.pop(address_id, None)
        if old is not None:
            tail = old.full_text[6:] if old.full_text.startswith(CITY_PREFIX) else old.full_text
            if self.overlay_by_text.get(tail) == address_id:
                del self.overlay_by_text[tail]
            for kind, cid in (("street", old.street), ("compound", old.compound), ("village", old.village)):
                if cid:
                    self.overlay_by[kind].get(cid, set()).discard(address_id)
        i = self.row_of_id(address_id)
        if i is not None and self.alive[i]:
            self.alive[i] = False
            self.dead += 1
        if rec is None:
            return
        self.overlay[address_id] = rec
        tail = rec.full_text[6:] if rec.full_text.startswith(CITY_PREFIX) else rec.full_text
        self.overlay_by_text[tail] = address_id
        for kind, cid in (("street", rec.street), ("compound", rec.compound), ("village", rec.village)):
            if cid:
                self.overlay_by[kind].setdefault(cid, set()).add(address_id)

    def code_of(self, kind: str, label: str) -> int | None:
        return self.codes.get(kind, {}).get(label)


def text_key(tail: bytes) -> int:
    """The exact-text key of a standard text: the same in every process (hash() of bytes is
    salted per process, and a shared generation's keys are computed once)."""
    return zlib.crc32(tail) | (len(tail) << 32)


@dataclass
class Gazetteer:
    divisions: dict[int, Div]
    places: dict[int, Place]
    facilities: dict[int, Item]
    heritage: dict[int, Item]
    names: NameIndex
    addresses: AddressStore
    successors: dict[int, int] = field(default_factory=dict)  # abolished division -> today's
    loaded_at: float = field(default_factory=time.time)
    load_seconds: float = 0.0
    changes_applied: int = 0
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False)
    by_code: dict[str, list] = field(default_factory=dict)  # code -> its readings (registry.divisions.CodeMatch)
    _chain_sets: dict[int, frozenset] = field(default_factory=dict, repr=False)
    _township_counties: dict[str, tuple[str, ...]] | None = field(default=None, repr=False)
    # the database snapshot it was read in (pg_current_snapshot()) and the wall-clock time just
    # before it was taken: a shared generation is caught up from there (registry.search.generation)
    snapshot: str | None = None
    snapshot_time: float = 0.0
    generation: object | None = field(default=None, repr=False)  # the attached shared generation, if any

    def code_readings(self, code: str) -> list:
        """The divisions a code names, one per authority (MCA first): for `registry.divisions.settle_code`."""
        return self.by_code.get(code, [])

    def division_by_code(self, code: str) -> Div | None:
        """The division a code names, when its readings agree (None for an unknown or ambiguous code)."""
        ids = {r.division_id for r in self.code_readings(code)}
        return self.divisions.get(ids.pop()) if len(ids) == 1 else None

    def chain_of(self, division_id: int) -> tuple[int, ...]:
        d = self.divisions.get(division_id)
        return d.chain if d is not None else ()

    def chain_set(self, division_id: int) -> frozenset:
        s = self._chain_sets.get(division_id)
        if s is None:
            s = self._chain_sets[division_id] = frozenset(self.chain_of(division_id))
        return s

    def township_counties(self) -> dict[str, tuple[str, ...]]:
        """Township name -> the names of the counties that have a township of that name (made once:
        a change of the divisions loads a new gazetteer)."""
        found = self._township_counties
        if found is None:
            by_name: dict[str, list[str]] = {}
            for d in self.divisions.values():
                county = self.divisions.get(d.parent_id) if d.level == "township" else None
                if county is None or county.level != "county":
                    continue
                names = by_name.setdefault(d.name, [])
                if county.name not in names:  # an abolished township and today's of one name: one county
                    names.append(county.name)
            found = self._township_counties = {k: tuple(v) for k, v in by_name.items()}
        return found

    def counts(self) -> dict[str, int]:
        return {
            "divisions": len(self.divisions), "places": len(self.places), "facilities": len(self.facilities),
            "heritage": len(self.heritage), "addresses": len(self.addresses), "names": self.names.size,
        }
