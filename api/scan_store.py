"""Building and opening the scan store (registry/serving/store.py): every live plate's public answers,
JSON and page, composed ahead by the same code the API's scan composes them with.

`build(url, root, base_url=…)` reads the plates in id ranges with the slim statement the API's
scans read (`view.SLIM_SELECT`), completes each row from the divisions, place names and facilities
held in process exactly as a serving worker does (`registry.serving.reference.Reference`), composes
both answers (`api.routes.doorplates.ok_body`) and stores them with the row's fingerprint and the
token's digest, in one process per core (forked; each its own connection). A plate whose answer
is not a plain one (replaced, revoked, suspended, its address retired, a tie among its nearest
facilities, a retired signing key) is left out: its scans are composed as before.

`composer_digest()` names the code that composes answers: a digest of the registry's and the API's
source files and templates and of the libraries that shape an answer. A store built by other code
is not used.
"""
from __future__ import annotations

import hashlib
import logging
import multiprocessing
import os
import random
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from api.routes.doorplates import ok_body
from registry.doorplates.tokens import LIVE_KEYS_SQL, KeyRing
from registry.doorplates.view import SLIM_SELECT, compose
from registry.serving import store as scan_store
from registry.serving.reference import Reference

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent.parent
_COMPOSING_TREES = ("registry", "api")
_COMPOSING_SUFFIXES = (".py", ".html", ".css", ".js", ".json", ".csv", ".txt", ".tsv")
_COMPOSING_LIBRARIES = ("jinja2", "markupsafe", "orjson", "pypinyin", "numpy")
RANGE_IDS = 20_000  # plate ids a task composes (~10 s of one core at the full city)
_SAMPLE_RANGES = 40  # the dictionaries' sample answers come from this many places of the id range


def composer_digest() -> str:
    """A digest of the code that composes a scan's answer (conservative: any source change counts)."""
    h = hashlib.blake2b(digest_size=16)
    for tree in _COMPOSING_TREES:
        for path in sorted((ROOT / tree).rglob("*")):
            if path.suffix in _COMPOSING_SUFFIXES and "__pycache__" not in path.parts and path.is_file():
                h.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes() + b"\0")
    for lib in _COMPOSING_LIBRARIES:
        try:
            h.update(f"{lib}={metadata.version(lib)}".encode())
        except metadata.PackageNotFoundError:
            h.update(f"{lib}=-".encode())
    return h.hexdigest()


def open_store(settings) -> scan_store.ScanStore | None:
    """The lifespan's store when REGISTRY_SCAN_STORE_DIR is set (its current generation may be absent)."""
    if settings.scan_store_dir is None:
        return None
    return scan_store.ScanStore(settings.scan_store_dir, base_url=settings.public_base_url,
                                composer=composer_digest())


# The live plates of an id range. Which of them get a stored answer is compose's rule alone
# (`_Composer.answers`), so that every live plate not stored is counted as left out.
_RANGE_SQL = SLIM_SELECT + "WHERE p.id >= %s AND p.id < %s AND p.status IN ('issued', 'active') ORDER BY p.id"


@dataclass
class BuildReport:
    path: Path
    plates: int  # stored
    left_out: int  # live plates composed at scan time instead
    answer_bytes: int
    seconds: float


class _Composer:
    """What a build process holds: the reference data, the keys, the dictionaries, its connection."""

    def __init__(self, url: str, base_url: str) -> None:
        self.url, self.base_url = url, base_url
        self.conn = None
        self.dictionaries: tuple[bytes, bytes] | None = None
        self._packers: tuple[scan_store.Packer, ...] = ()  # made in the process that packs (not shared)
        with self._connect() as conn:
            # the scans' reference data as a serving worker holds it (registry/serving/reference.py)
            self.reference = Reference.read_at_once(lambda sql, params: conn.execute(sql, params).fetchall())
            self.ring = KeyRing(ttl=float("inf"))
            self.ring.store(conn.execute(LIVE_KEYS_SQL).fetchall())
            self.bounds = conn.execute("SELECT min(id), max(id), count(*) FROM doorplates "
                                       "WHERE status IN ('issued', 'active')").fetchone()

    def _connect(self):
        import psycopg
        from psycopg.types.json import set_json_loads

        from registry.db.engine import libpq_url
        from registry.serving.pool import TIME_ZONE

        conn = psycopg.connect(libpq_url(self.url), autocommit=True, application_name="registry-scan-store")
        set_json_loads(orjson.loads, conn)  # as the API's read pool decodes the row (registry/serving/pool.py)
        # a range's statement looks costly to the planner: its JIT compilation took ~1.2 s of every
        # 5,000 rows' 1.3 s (the rows themselves are index lookups)
        conn.execute("SET jit = off")
        # the read pool's session time zone: the timestamps inside the row's JSON are written in it, and
        # the row's fingerprint must be the one a worker computes
        conn.execute("SELECT set_config('TimeZone', %s, false)", (TIME_ZONE,))
        return conn

    def rows(self, start: int, stop: int) -> list[list[Any]]:
        if self.conn is None or self.conn.closed:
            self.conn = self._connect()
        return [r[0] for r in self.conn.execute(_RANGE_SQL, (start, stop)).fetchall()]

    def answers(self, found: list[Any]) -> tuple[int, int, int, bytes, bytes] | None:
        """(plate id, row fingerprint, token digest, JSON, page) of one slim row, or None: not a plain answer."""
        row = self.reference.row(found)
        if row is None:
            return None
        try:
            token = self.ring.loaded_token_for(row["id"], row["key_id"])
        except Exception:  # noqa: BLE001 - a retired key: the scan itself refuses the token
            return None
        result = compose(row, base_url=self.base_url, token=token, token_for=self.ring.loaded_token_for)
        if result.state != "ok" or result.replacement is not None:
            return None
        return (row["id"], scan_store.fingerprint(row), scan_store.token_digest(token),
                ok_body(result, token, html=False), ok_body(result, token, html=True))

    def part(self, bounds: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray, bytes, int]:
        """One id range packed: ids, checks, lengths, answers, plates left out."""
        assert self.dictionaries is not None
        if len(self._packers) != len(self.dictionaries):
            self._packers = tuple(scan_store.Packer(d) for d in self.dictionaries)
        ids, checks, lengths, chunks, left_out = [], [], [], [], 0
        for found in self.rows(*bounds):
            made = self.answers(found)
            if made is None:
                left_out += 1
                continue
            plate_id, fp, td, *bodies = made
            packed = [pack(b) for b, pack in zip(bodies, self._packers)]
            ids.append(plate_id)
            checks.append((fp, td))
            lengths.append([len(p) for p in packed])
            chunks.extend(packed)
        return (np.array(ids, dtype=np.int64), np.array(checks, dtype=np.uint64).reshape(-1, 2),
                np.array(lengths, dtype=np.int64).reshape(-1, len(scan_store.VARIANTS)), b"".join(chunks), left_out)


_CHILD: _Composer | None = None


def _child_part(bounds: tuple[int, int]):
    assert _CHILD is not None
    return _CHILD.part(bounds)


def _child_start() -> None:
    assert _CHILD is not None
    _CHILD.conn = None  # the parent's connection is not this process's


def build(url: str, root: Path, *, base_url: str, processes: int | None = None,
          progress=None) -> BuildReport:
    """Compose every live plate's answers into a new generation of `root` and publish it."""
    global _CHILD
    t0 = time.monotonic()
    composer = _Composer(url, base_url)
    low, high, live = composer.bounds
    ranges = [] if low is None else [(s, min(s + RANGE_IDS, high + 1)) for s in range(low, high + 1, RANGE_IDS)]
    composer.dictionaries = _dictionaries(composer, low, high)
    meta = {"base_url": base_url, "composer": composer_digest(), "database": _database_name(url)}
    writer = scan_store.GenerationWriter(root, meta, dict(zip(scan_store.VARIANTS, composer.dictionaries)))
    processes = max(1, min(processes or os.cpu_count() or 1, len(ranges) or 1))
    left_out = done = 0
    try:
        if processes == 1:
            parts = map(composer.part, ranges)
            pool = None
        else:
            if composer.conn is not None:
                composer.conn.close()
                composer.conn = None
            _CHILD = composer
            pool = multiprocessing.get_context("fork").Pool(processes, initializer=_child_start)
            parts = pool.imap(_child_part, ranges)  # in order: the parts come in ascending ids
        try:
            for ids, checks, lengths, answers, out in parts:
                writer.add_part(ids, checks, lengths, answers)
                left_out += out
                done += len(ids)
                if progress is not None:
                    progress(done + left_out, live)
        finally:
            if pool is not None:
                pool.terminate()
                pool.join()
            _CHILD = None
        path = writer.publish()
    except BaseException:
        writer.abandon()
        raise
    finally:
        if composer.conn is not None:
            composer.conn.close()
    return BuildReport(path, done, left_out, int(writer.meta["answer_bytes"]), time.monotonic() - t0)


def _dictionaries(composer: _Composer, low: int | None, high: int | None) -> tuple[bytes, bytes]:
    """The two preset dictionaries, from plates spread over the id range (seeded: the same store each run)."""
    samples: list[tuple[bytes, bytes]] = []
    if low is not None:
        rnd = random.Random(0)
        starts = sorted(rnd.randrange(low, high + 1) for _ in range(_SAMPLE_RANGES))
        for s in starts:
            for found in composer.rows(s, s + 200)[:scan_store.DICTIONARY_SAMPLE // _SAMPLE_RANGES]:
                made = composer.answers(found)
                if made is not None:
                    samples.append((made[3], made[4]))
    return (scan_store.train_dictionary([s[0] for s in samples]), scan_store.train_dictionary([s[1] for s in samples]))


def _database_name(url: str) -> str:
    from sqlalchemy.engine import make_url

    u = make_url(url)
    return f"{u.host}:{u.port}/{u.database}"
