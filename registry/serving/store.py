"""The scan store: every live plate's finished public answer (JSON and page), built ahead, on disk.

A render-cache miss composes its answer (the division chain, the nearest service of each category,
the navigation links, the JSON or the page): ~300–450 µs of a worker's CPU, most of a miss. With
`REGISTRY_SCAN_STORE_DIR` set, a miss reads the plate's row as always and, when the store holds an
answer made of that very row, serves the stored bytes instead of composing them again.

An entry is used only when all of these hold, so that a stored answer is never older than the data:

- the store was built for this `REGISTRY_PUBLIC_BASE_URL` and by this code (`composer`: a digest of
  the code that composes answers, given by the API; any other code leaves the store unused);
- the fingerprint of the scan's row as read now (the plate, its address, its street and compound,
  the division chain, the nearest facilities: everything `compose` reads, `fingerprint`) is the one
  the answer was made of: an edited address, a renamed street or division, a new facility nearby,
  a revoked plate all give another fingerprint and the answer is composed as before;
- the request's token is the one the answer carries (the report link is made of it).

Only plain answers are stored (a plate in service, not replaced, its address in use; the page
without the thank-you note): everything else is composed as before.

Layout: `<dir>/current` is a symlink to one generation directory (`gen-<UTC time>`), replaced
atomically by a build; a worker looks again at most every `RELOAD_CHECK_SECONDS` and opens the new
one. A generation holds `meta.json`, `ids.npy` (plate ids, ascending), `checks.npy` (per plate:
row fingerprint, token digest), `offsets.npy` (per plate and variant, into `answers.bin`), the two
zstd dictionaries trained on sample answers (`dict-json.bin`, `dict-html.bin`) and `answers.bin`
(each answer compressed with its variant's dictionary: ~360 and ~290 bytes for a 3 kB JSON answer
and an 8 kB page, unpacked in ~3 µs; zlib with a preset dictionary gave ~520 and ~440 bytes and
took ~22 µs). The arrays and the answers are memory-mapped: the workers of a host share one copy in
the page cache.
"""
from __future__ import annotations

import hashlib
import json
import logging
import mmap
import os
import time
from bisect import bisect_left
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import zstandard

log = logging.getLogger(__name__)

FORMAT = 2  # 1: zlib with a preset dictionary
VARIANTS = ("json", "html")
CURRENT = "current"
RELOAD_CHECK_SECONDS = 10.0  # how often a worker looks whether a newer generation was published
DICTIONARY_BYTES = 65_536  # 112 kB saves another 5 % for a slower build; 32 kB costs 6 %
DICTIONARY_SAMPLE = 800  # answers of each variant the dictionary is trained on
PACK_LEVEL = 9  # level 19 saves ~8 % and takes ×20 the time
STALE_ADVICE = "; most were not: rebuild it (registry plates scan-store build)"
GENERATIONS_KEPT = 2  # the current one and the one before (a worker may still have it open)
_ZSTD_DICT_MAGIC = b"\x37\xa4\x30\xec"  # a trained dictionary; anything else is raw content


class StoreError(Exception):
    """A store directory that cannot be read or written (the CLI says so; the API serves without it)."""


def _digest64(data: bytes) -> int:
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "little")


def fingerprint(row: dict[str, Any]) -> int:
    """What a scan's answer is made of, as one 64-bit number: the row `compose` reads, serialized."""
    return _digest64(orjson.dumps(row))


def token_digest(token: str) -> int:
    return _digest64(token.encode())


def train_dictionary(answers: Sequence[bytes]) -> bytes:
    """A zstd dictionary trained on sample answers (their common strings: the page's markup, the keys)."""
    if len(answers) >= 8:
        try:
            return zstandard.train_dictionary(DICTIONARY_BYTES, list(answers)).as_bytes()
        except zstandard.ZstdError:  # too little to train on (a small registry)
            pass
    return b"".join(answers)[-DICTIONARY_BYTES:]  # a raw-content dictionary of what there is


def _dictionary(blob: bytes) -> zstandard.ZstdCompressionDict:
    kind = zstandard.DICT_TYPE_AUTO if blob.startswith(_ZSTD_DICT_MAGIC) else zstandard.DICT_TYPE_RAWCONTENT
    return zstandard.ZstdCompressionDict(blob, dict_type=kind)


class Packer:
    """Compresses answers with one variant's dictionary (one per process: not shared across threads)."""

    def __init__(self, dictionary: bytes) -> None:
        self._c = zstandard.ZstdCompressor(level=PACK_LEVEL, dict_data=_dictionary(dictionary),
                                           write_content_size=True, write_checksum=False)

    def __call__(self, body: bytes) -> bytes:
        return self._c.compress(body)


class Unpacker:
    def __init__(self, dictionary: bytes) -> None:
        self._d = zstandard.ZstdDecompressor(dict_data=_dictionary(dictionary))

    def __call__(self, packed: bytes) -> bytes:
        return self._d.decompress(packed)


# -- writing -----------------------------------------------------------------------------------------------
class GenerationWriter:
    """A new generation in `<root>/gen-…`: parts appended in ascending plate id order, then `publish`."""

    def __init__(self, root: Path, meta: dict[str, Any], dictionaries: dict[str, bytes]) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
        self.path = self.root / f"gen-{stamp}"
        self.path.mkdir()
        self.meta = dict(meta, format=FORMAT, variants=list(VARIANTS),
                         built_at=datetime.now(timezone.utc).isoformat(timespec="seconds"))
        for name, blob in dictionaries.items():
            (self.path / f"dict-{name}.bin").write_bytes(blob)
        self._answers = open(self.path / "answers.bin", "wb")
        self._ids: list[np.ndarray] = []
        self._checks: list[np.ndarray] = []
        self._lengths: list[np.ndarray] = []
        self._last_id = -1

    def add_part(self, ids: np.ndarray, checks: np.ndarray, lengths: np.ndarray, answers: bytes) -> None:
        """`ids` ascending and above every id before; `checks` (n, 2) uint64; `lengths` (n, variants)."""
        if len(ids):
            if int(ids[0]) <= self._last_id or np.any(np.diff(ids) <= 0):
                raise StoreError("scan store parts must come in ascending plate id order")
            self._last_id = int(ids[-1])
        self._ids.append(np.asarray(ids, dtype=np.int64))
        self._checks.append(np.asarray(checks, dtype=np.uint64).reshape(-1, 2))
        self._lengths.append(np.asarray(lengths, dtype=np.int64).reshape(-1, len(VARIANTS)))
        self._answers.write(answers)

    def publish(self) -> Path:
        """Write the arrays and meta, then point `current` at this generation (atomically)."""
        self._answers.close()
        ids = np.concatenate(self._ids) if self._ids else np.zeros(0, np.int64)
        checks = np.concatenate(self._checks) if self._checks else np.zeros((0, 2), np.uint64)
        lengths = np.concatenate(self._lengths) if self._lengths else np.zeros((0, len(VARIANTS)), np.int64)
        offsets = np.zeros(lengths.size + 1, dtype=np.int64)
        np.cumsum(lengths.ravel(), out=offsets[1:])
        if offsets[-1] != (self.path / "answers.bin").stat().st_size:
            raise StoreError("scan store: the answers written do not add up to their lengths")
        np.save(self.path / "ids.npy", ids)
        np.save(self.path / "checks.npy", checks)
        np.save(self.path / "offsets.npy", offsets)
        self.meta["plates"] = int(len(ids))
        self.meta["answer_bytes"] = int(offsets[-1])
        (self.path / "meta.json").write_text(json.dumps(self.meta, ensure_ascii=False, indent=2) + "\n")
        link = self.root / f".{CURRENT}-{os.getpid()}"
        if link.is_symlink() or link.exists():
            link.unlink()
        os.symlink(self.path.name, link)
        os.replace(link, self.root / CURRENT)  # a rename: readers see the old or the new, never none
        _prune(self.root, keep=self.path.name)
        return self.path

    def abandon(self) -> None:
        """A build that failed: its directory goes, `current` stays as it was."""
        self._answers.close()
        _remove_tree(self.path)


def _generations(root: Path) -> list[Path]:
    return sorted(p for p in root.glob("gen-*") if p.is_dir())


def _prune(root: Path, keep: str) -> None:
    gens = [g for g in _generations(root) if g.name != keep]
    for old in gens[:max(0, len(gens) - (GENERATIONS_KEPT - 1))]:
        _remove_tree(old)


def _remove_tree(path: Path) -> None:
    for child in path.iterdir():
        child.unlink()
    path.rmdir()


# -- reading -----------------------------------------------------------------------------------------------
class Generation:
    """One published generation, memory-mapped."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self.meta = json.loads((path / "meta.json").read_text())
            if self.meta.get("format") != FORMAT:
                raise StoreError(f"scan store {path}: format {self.meta.get('format')!r}, this code reads {FORMAT}")
            ids = np.load(path / "ids.npy", mmap_mode="r")
            checks = np.load(path / "checks.npy", mmap_mode="r")
            offsets = np.load(path / "offsets.npy", mmap_mode="r")
            self.unpackers = tuple(Unpacker((path / f"dict-{v}.bin").read_bytes()) for v in VARIANTS)
            with open(path / "answers.bin", "rb") as f:
                size = os.fstat(f.fileno()).st_size
                self._answers = mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ) if size else b""
            n = len(ids)
            if checks.shape != (n, 2) or offsets.shape != (n * len(VARIANTS) + 1,) or \
                    (n and int(offsets[-1]) != size):
                raise StoreError(f"scan store {path}: its arrays do not fit together (a build cut short?)")
        except (OSError, ValueError, KeyError, zstandard.ZstdError) as exc:
            raise StoreError(f"scan store {path}: {exc}") from exc
        # Plain memoryviews of the mapped arrays: an item is a Python int at once (a numpy scalar of a
        # memmap cost ~3 µs a lookup, half of the store's own work a miss besides unpacking).
        self._ids, self._checks, self._offsets = _ints(ids, "q"), _ints(checks, "Q"), _ints(offsets, "q")

    def find(self, plate_id: int) -> int | None:
        ids = self._ids
        i = bisect_left(ids, plate_id)
        return i if i < len(ids) and ids[i] == plate_id else None

    def checks_of(self, i: int) -> tuple[int, int]:
        return self._checks[2 * i], self._checks[2 * i + 1]

    def answer(self, i: int, variant: int) -> bytes:
        k = i * len(VARIANTS) + variant
        return self.unpackers[variant](self._answers[self._offsets[k]:self._offsets[k + 1]])

    def close(self) -> None:
        if isinstance(self._answers, mmap.mmap):
            self._answers.close()


def _ints(array: np.ndarray, kind: str) -> memoryview:
    """A flat memoryview of a mapped 64-bit array (an empty one: memoryview cannot cast a zero shape)."""
    if array.size == 0:
        return memoryview(b"").cast(kind)
    return memoryview(np.ascontiguousarray(array)).cast("B").cast(kind)


class ScanStore:
    """The API's view of a store directory: the current generation when it fits this API (its base
    URL and composer), looked for again every RELOAD_CHECK_SECONDS. Used from one event loop."""

    def __init__(self, root: str | Path, *, base_url: str, composer: str) -> None:
        self.root = Path(root)
        self.base_url = base_url
        self.composer = composer
        self.generation: Generation | None = None
        self._target: str | None = None
        self._checked = 0.0
        self.served = self.stale = self.absent = 0  # for the benches and the status command
        self.refresh(force=True)

    def refresh(self, *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._checked < RELOAD_CHECK_SECONDS:
            return
        self._checked = now
        target = current_target(self.root)
        if target == self._target:
            return
        self._target = target
        old, self.generation = self.generation, None
        if target is not None:
            self.generation = self._open(self.root / target)
        if old is not None:
            old.close()

    def _open(self, path: Path) -> Generation | None:
        try:
            gen = Generation(path)
        except StoreError as exc:
            log.warning("%s; scans are composed without it", exc)
            return None
        meta = gen.meta
        reason = unserved_reason(meta, base_url=self.base_url, composer=self.composer)
        if reason is None:
            log.info("scan store %s: %s plates, built %s", path, f"{meta.get('plates', 0):,}", meta.get("built_at"))
            return gen
        log.warning("scan store %s %s: not used (rebuild it: registry plates scan-store build)", path, reason)
        gen.close()
        return None

    def answer(self, plate_id: int, row: dict[str, Any], token: str, html: bool) -> bytes | None:
        """The stored answer of this plate when it was made of exactly this row and token; else None."""
        self.refresh()
        gen = self.generation
        if gen is None:
            return None
        i = gen.find(plate_id)
        if i is None:
            self.absent += 1
            return None
        row_check, token_check = gen.checks_of(i)
        if row_check != fingerprint(row) or token_check != token_digest(token):
            self.stale += 1
            return None
        self.served += 1
        return gen.answer(i, 1 if html else 0)

    def close(self) -> None:
        """Closed by the read path at shutdown; says what the store did for this worker, so that an
        operator sees when it has gone stale (most lookups recomposed: time to rebuild it)."""
        looked = self.served + self.stale + self.absent
        if looked:
            log.info("scan store: %s of %s misses served from it, %s recomposed (their rows changed since the "
                     "build), %s not in it%s", f"{self.served:,}", f"{looked:,}", f"{self.stale:,}",
                     f"{self.absent:,}", STALE_ADVICE if self.stale + self.absent > self.served else "")
        if self.generation is not None:
            self.generation.close()
            self.generation = None


def current_target(root: Path) -> str | None:
    """The generation `current` points at (a directory name), or None when nothing was published."""
    try:
        return os.readlink(root / CURRENT)
    except OSError:
        return None


def unserved_reason(meta: dict[str, Any], *, base_url: str, composer: str) -> str | None:
    """Why an API with this base URL and composer does not serve a generation of this meta; None: it does."""
    if meta.get("base_url") != base_url:
        return f"was built for {meta.get('base_url')}, this API prints {base_url}"
    if meta.get("composer") != composer:
        return "was built by other code than this API's"
    return None


def status(root: str | Path) -> dict[str, Any] | None:
    """The current generation's meta (with its path), or None when nothing was published."""
    root = Path(root)
    target = current_target(root)
    if target is None:
        return None
    try:
        meta = json.loads((root / target / "meta.json").read_text())
    except (OSError, ValueError) as exc:
        raise StoreError(f"scan store {root / target}: {exc}") from exc
    return dict(meta, path=str(root / target))
