"""One gazetteer per machine and database, shared by every process: a *generation* on disk whose
address columns every process maps read-only, built once by whichever process takes the lock.

    REGISTRY_GAZETTEER_DIR/<database key>/
        build.lock      flock'ed (exclusive) by the one process building or choosing a generation
        current         the published generation's name (written aside, then os.replace: atomic)
        g-<t>-<pid>/    one generation: <array>.npy (np.load mmap_mode="r"), text.bin (mmap),
                        objects.pickle (divisions, places, facilities, heritage, the name index,
                        label codes: a few tens of thousands of objects each process unpickles)
                        and meta.json, written last: a directory without it is unfinished
            in-use      every process attached holds a shared flock on it for as long as it maps it

A generation no process holds (an exclusive non-blocking flock succeeds) and not published is
deleted by the next process that publishes or attaches. Changes committed after a generation's
snapshot are not in its files: each process follows them itself (the overlay of AddressStore,
fed by LISTEN/NOTIFY in registry.search.freshness) and, on attaching, catches up with the rows
the snapshot does not see (`changes_since`), so two processes on one generation answer the same.
"""
from __future__ import annotations

import fcntl
import json
import logging
import mmap
import os
import pickle
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from sqlalchemy import Connection, Engine, text

from registry.search.gazetteer import AddressStore, Gazetteer
from registry.search.loading import load_gazetteer

log = logging.getLogger(__name__)

FORMAT = 1  # bumped when the files change shape: an older generation is then rebuilt, never read
OBJECTS = ("divisions", "places", "facilities", "heritage", "names", "successors", "by_code")
# More changed rows than this since a generation's snapshot: build a new one rather than catch up.
CATCH_UP_MAX_ROWS = 5000


class GenerationUnusable(Exception):
    """A generation directory that is missing, unfinished, of another format or corrupt."""


@dataclass
class Attached:
    """A process's hold on one generation: the mapped text and the shared flock."""
    path: Path
    meta: dict
    _lock_fd: int | None = field(default=None, repr=False)
    _text: mmap.mmap | None = field(default=None, repr=False)

    def release(self) -> None:
        """Drop the hold (the mappings go with the last reference to the arrays)."""
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def __del__(self) -> None:  # pragma: no cover - the release of a gazetteer dropped without release()
        try:
            self.release()
        except Exception:
            pass


def database_key(engine: Engine, database: str | None = None) -> str:
    u = engine.url
    raw = f"{u.host or 'local'}-{u.port or 5432}-{database or u.database or 'db'}"
    return re.sub(r"[^A-Za-z0-9_.-]", "_", raw)


class SharedGazetteers:
    """The generations of one database under one directory."""

    def __init__(self, engine: Engine, directory: Path) -> None:
        self.engine = engine
        self.root = Path(directory) / database_key(engine)

    # -- the published generation ----------------------------------------------------------------
    def current(self) -> Path | None:
        try:
            name = (self.root / "current").read_text().strip()
        except OSError:
            return None
        return self.root / name if name and "/" not in name else None

    def obtain(self, newer_than: float | None = None) -> Gazetteer:
        """A gazetteer attached to the published generation, or to a new one this process builds
        (under the build lock) when there is none, it is unusable or its snapshot is not newer
        than `newer_than` (the snapshot_time of the generation a rebuild was asked of). A process
        that waited for the lock while another built attaches to that one and catches up."""
        self.root.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.root / "build.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            path = self.current()
            if path is not None and (newer_than is None or snapshot_time(path) > newer_than):
                try:
                    return attach(path, self.engine)
                except GenerationUnusable as exc:
                    log.warning("gazetteer generation %s unusable (%s): building a new one", path.name, exc)
            t0 = time.perf_counter()
            path, objects = self._build()
            gaz = attach(path, self.engine, objects=objects)
            log.info("gazetteer generation %s built and published in %.1f s", path.name, time.perf_counter() - t0)
            self.clean_dropped()
            return gaz
        finally:
            os.close(fd)  # releases the flock
            self.clean()

    def _build(self) -> tuple[Path, dict]:
        """Load, write and publish a generation; its objects (the builder keeps them rather than
        unpickling a second copy)."""
        with self.engine.connect() as conn:
            gaz = load_gazetteer(conn, text_keys=True)
            conn.rollback()
            identity = _identity(conn)
        name = f"g-{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}-{time.monotonic_ns() % 10**6:06d}"
        tmp = self.root / f".build-{name}"
        write(gaz, tmp, identity)
        objects = {k: getattr(gaz, k) for k in OBJECTS}
        objects["codes"] = gaz.addresses.codes
        del gaz  # the in-memory columns go before the mapped ones are attached
        final = self.root / name
        os.rename(tmp, final)
        pointer = self.root / f".current-{os.getpid()}"
        pointer.write_text(name + "\n")
        os.replace(pointer, self.root / "current")
        return final, objects

    def clean_dropped(self) -> None:
        """Delete the folders of databases of the same server that no longer exist, when nothing
        maps them: benches and tests create and drop databases, and a full city's generation is
        about 300 MB on disk. Run after each build (rare), never on the request path."""
        try:
            with self.engine.connect() as conn:
                names = conn.execute(text("SELECT datname FROM pg_database")).scalars().all()
                conn.rollback()
        except Exception as exc:  # pragma: no cover - a cleaning that cannot ask waits for the next build
            log.warning("gazetteer: cannot list the server's databases (%s): no folder removed", exc)
            return
        prefix = database_key(self.engine, "x")[:-1]
        existing = {database_key(self.engine, name) for name in names}
        for folder in self.root.parent.iterdir():
            if not folder.is_dir() or not folder.name.startswith(prefix) or folder.name in existing:
                continue
            if any(_mapped(g) for g in folder.glob("g-*")):
                continue
            log.info("gazetteer: removing %s (its database no longer exists)", folder)
            shutil.rmtree(folder, ignore_errors=True)

    def clean(self) -> None:
        """Delete generations that are neither published nor mapped by any process, and
        unfinished builds whose builder is gone."""
        keep = self.current()
        for p in self.root.iterdir() if self.root.is_dir() else ():
            if not p.is_dir() or p == keep:
                continue
            if p.name.startswith(".build-"):
                pid = p.name.split("-")[-2] if p.name.count("-") >= 3 else ""
                if pid.isdigit() and _alive(int(pid)):
                    continue
                shutil.rmtree(p, ignore_errors=True)
                continue
            if not p.name.startswith("g-"):
                continue
            try:
                fd = os.open(p / "in-use", os.O_RDWR | os.O_CREAT, 0o644)
            except OSError:
                shutil.rmtree(p, ignore_errors=True)
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue  # still mapped somewhere
            shutil.rmtree(p, ignore_errors=True)
            os.close(fd)


def _mapped(generation: Path) -> bool:
    """Whether some process holds the generation (its shared lock on `in-use`)."""
    try:
        fd = os.open(generation / "in-use", os.O_RDWR | os.O_CREAT, 0o644)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # releases the probe's lock
    return False


def snapshot_time(path: Path) -> float:
    try:
        return float(json.loads((path / "meta.json").read_text())["snapshot_time"])
    except (OSError, ValueError, KeyError, TypeError):
        return 0.0


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # pragma: no cover
        return True
    return True


def _identity(conn: Connection) -> dict:
    """What makes a generation belong to this database and not to another of the same name."""
    row = conn.execute(text("SELECT oid::int8 AS oid, (SELECT system_identifier::text FROM pg_control_system()) AS sys "
                            "FROM pg_database WHERE datname = current_database()")).one()
    return {"database_oid": int(row.oid), "system_identifier": row.sys}


# -- files ---------------------------------------------------------------------------------------
def write(gaz: Gazetteer, path: Path, identity: dict) -> None:
    """Write a loaded gazetteer as a generation directory (meta.json last)."""
    path.mkdir(parents=True)
    store = gaz.addresses
    arrays = store.arrays()
    for name, arr in arrays.items():
        np.save(path / f"{name}.npy", np.ascontiguousarray(arr), allow_pickle=False)
    with open(path / "text.bin", "wb") as f:
        f.write(store.text_buf)
    objects = {k: getattr(gaz, k) for k in OBJECTS}
    objects["codes"] = store.codes
    with open(path / "objects.pickle", "wb") as f:
        pickle.dump(objects, f, protocol=pickle.HIGHEST_PROTOCOL)
    (path / "in-use").touch()
    meta = {"format": FORMAT, "snapshot": gaz.snapshot, "snapshot_time": gaz.snapshot_time, "rows": len(store.ids),
            "text_bytes": len(store.text_buf), "arrays": sorted(arrays), "load_seconds": gaz.load_seconds,
            "built_by": os.getpid(), "built_at": time.time(), **identity}
    with open(path / "meta.json.tmp", "w") as f:
        json.dump(meta, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(path / "meta.json.tmp", path / "meta.json")


def attach(path: Path, engine: Engine | None = None, *, objects: dict | None = None) -> Gazetteer:
    """The gazetteer of a generation directory: its arrays mapped read-only, its objects
    unpickled (or `objects`, the builder's own); GenerationUnusable when anything is missing, of
    another format or inconsistent."""
    try:
        meta = json.loads((path / "meta.json").read_text())
    except (OSError, ValueError) as exc:
        raise GenerationUnusable(f"no readable meta.json: {exc}") from None
    if meta.get("format") != FORMAT or not meta.get("snapshot"):
        raise GenerationUnusable(f"format {meta.get('format')!r}, expected {FORMAT}")
    if engine is not None:
        with engine.connect() as conn:
            identity = _identity(conn)
        if any(meta.get(k) != v for k, v in identity.items()):
            raise GenerationUnusable("built from another database")
    try:
        fd = os.open(path / "in-use", os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise GenerationUnusable(str(exc)) from None
    fcntl.flock(fd, fcntl.LOCK_SH)
    held = Attached(path, meta, fd)
    try:
        n = int(meta["rows"])
        arrays = {}
        for name in meta["arrays"]:
            arr = np.load(path / f"{name}.npy", mmap_mode="r", allow_pickle=False)
            if name in ("id", "packed", "lon", "lat", "status", "text_end", "key_order", "key_sorted") and len(arr) != n:
                raise GenerationUnusable(f"{name}.npy has {len(arr)} rows, expected {n}")
            # a plain ndarray over the same mapping (it keeps the memmap alive as its base): np.memmap's
            # Python-level __array_finalize__ / __getitem__ ran on every index and slice, ~10 % of a search
            arrays[name] = arr.view(np.ndarray)
        with open(path / "text.bin", "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size != int(meta["text_bytes"]):
                raise GenerationUnusable(f"text.bin has {size} bytes, expected {meta['text_bytes']}")
            text_buf = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) if size else b""
        if n and int(arrays["text_end"][-1]) != size - 1:
            raise GenerationUnusable("text.bin and text_end.npy disagree")
        if objects is None:
            objects = _unpickle(path / "objects.pickle")
    except GenerationUnusable:
        held.release()
        raise
    except (OSError, ValueError, KeyError, TypeError, EOFError, pickle.UnpicklingError, AttributeError) as exc:
        held.release()
        raise GenerationUnusable(f"{type(exc).__name__}: {exc}") from None
    held._text = text_buf if isinstance(text_buf, mmap.mmap) else None
    objects = dict(objects)
    store = AddressStore.attached(arrays, text_buf, objects.pop("codes"))
    gaz = Gazetteer(objects["divisions"], objects["places"], objects["facilities"], objects["heritage"],
                    objects["names"], store, objects["successors"])
    gaz.by_code = objects["by_code"]
    gaz.snapshot, gaz.snapshot_time = meta["snapshot"], float(meta["snapshot_time"])
    gaz.load_seconds = float(meta.get("load_seconds", 0.0))
    gaz.generation = held
    return gaz


def _unpickle(path: Path) -> dict:
    import gc

    enabled = gc.isenabled()
    gc.disable()  # a million objects: the cyclic collector would walk them while they arrive
    try:
        with open(path, "rb") as f:
            return pickle.load(f)
    finally:
        if enabled:
            gc.enable()


def release(gaz: Gazetteer) -> None:
    held = gaz.generation
    if isinstance(held, Attached):
        held.release()


# -- catching up ---------------------------------------------------------------------------------
# A row changed after the snapshot has an xmin the snapshot does not see. xmin is a 32-bit xid:
# widened to xid8 with the epoch of the current transaction counter (every xmin is older).
_WIDE_XMIN = """(CASE WHEN ((r.cur >> 32) << 32) + t.xmin::text::int8 > r.cur
                   THEN ((r.cur >> 32) << 32) + t.xmin::text::int8 - 4294967296
                   ELSE ((r.cur >> 32) << 32) + t.xmin::text::int8 END)::text::xid8"""
_SINCE = """
    SELECT DISTINCT {column} AS id FROM {table} t,
           (SELECT pg_snapshot_xmax(pg_current_snapshot())::text::int8 AS cur) r
    WHERE NOT pg_visible_in_snapshot({wide}, CAST(:snap AS pg_snapshot))
    LIMIT :limit
"""
# table the triggers name -> (table read, id column): alias rows announce their place (migration 0003)
_FOLLOWED = {"addresses": [("addresses", "t.id")], "place_names": [("place_names", "t.id"),
                                                                    ("place_name_aliases", "t.place_name_id")],
             "facilities": [("facilities", "t.id")], "heritage_items": [("heritage_items", "t.id")]}


def changes_since(conn: Connection, snapshot: str) -> tuple[dict[str, set[int]], bool]:
    """({table: ids} changed after `snapshot`, whether a rebuild is needed instead: a division
    changed, or more than CATCH_UP_MAX_ROWS rows). A row deleted since is not seen (the registry
    retires rows rather than deleting them; aliases are deleted: registry.search.freshness.catch_up
    reads every place with an alias again)."""
    params = {"snap": snapshot, "limit": CATCH_UP_MAX_ROWS + 1}
    divisions = conn.execute(text(_SINCE.format(column="1", table="divisions", wide=_WIDE_XMIN)), params).first()
    if divisions is not None:
        return {}, True
    out: dict[str, set[int]] = {}
    total = 0
    for name, sources in _FOLLOWED.items():
        for table, column in sources:
            ids = conn.execute(text(_SINCE.format(column=column, table=table, wide=_WIDE_XMIN)), params).scalars().all()
            total += len(ids)
            if total > CATCH_UP_MAX_ROWS:
                return {}, True
            if ids:
                out.setdefault(name, set()).update(int(i) for i in ids if i is not None)
    return out, False
