"""Load a file: open it, map its columns, convert its coordinates, stream it into the registry.

These functions run inside the caller's transaction (`conn`), so the caller decides when to
COMMIT (the CLI commits once at the end; the tests roll back).
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from sqlalchemy import Connection

from loaders.errors import FileError
from loaders.hooks import maybe_pause
from loaders.mapping import Mapping, load_mapping
from loaders.pipeline import prepare, row_batches
from loaders.readers import open_source
from loaders.rejects import RejectWriter
from registry.faults import checkpoint
from registry.loading.addresses import FIELDS as ADDRESS_FIELDS, AddressLoad, AddressOptions
from registry.loading.base import LoadReport, no_progress
from registry.loading.entities import EntityLoad, EntityOptions
from registry.loading.entity_kinds import SPECS

log = logging.getLogger(__name__)
BATCH_ROWS = 50_000


@dataclass
class FileOptions:
    format: str | None = None
    layer: str | None = None
    crs: str | None = None
    mapping: Path | None = None
    encoding: str | None = None
    reject_file: Path | None = None
    batch_rows: int = field(default_factory=lambda: int(os.environ.get("REGISTRY_LOADER_BATCH_ROWS", BATCH_ROWS)))


# kind -> (spec kind, geometry, required columns, preferred layer, geometry optional)
ENTITY_KINDS = {
    "place-names": ("load_place_names", "any", [("name",), ("category",)], "place_names", True),
    "facilities": ("load_facilities", "any", [("name",), ("category",)], "facilities", False),
    "heritage": ("load_heritage", "any", [("name",), ("level",)], "heritage", False),
    "divisions": ("load_divisions", "any",
                  [("code", "nbs_code", "mca_code", "division_code", "village_code", "township_code")],
                  "villages", False),
}


def _open(path: Path, fo: FileOptions, mapping: Mapping, prefer_layer: str | None):
    opts = mapping.file
    return open_source(Path(path), fmt=fo.format or opts.get("format"), layer=fo.layer or opts.get("layer"),
                       encoding=fo.encoding or opts.get("encoding"), prefer_layer=prefer_layer)


def _details(source, prepared, fo: FileOptions, extra: dict) -> dict:
    return {"file": source.path.name, "format": source.format, "layer": source.layer, "crs": prepared.crs.label,
            "encoding": getattr(source, "encoding", None), "mapping": str(fo.mapping) if fo.mapping else None,
            "columns": prepared.fields, **extra}


def _stream(load, prepared, fo: FileOptions, progress) -> None:
    """Read, normalise and stage the whole file, batch by batch. The cyclic garbage collector is
    paused meanwhile: the rows make millions of short-lived containers and no cycles, and its
    repeated scans cost a third of the streaming time at city scale."""
    import gc
    import time

    started = time.perf_counter()
    total = prepared.source.estimated_rows or 0
    done = 0
    progress("读取 reading", 0, total)
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        for batch in row_batches(prepared, fo.batch_rows):
            load.feed(batch)
            done += len(batch)
            progress("读取 reading", done, max(total, done))
            maybe_pause("rows", done)
            checkpoint("load.rows")
    finally:
        if was_enabled:
            gc.enable()
    load.report.timings["stream"] = time.perf_counter() - started


def _sink(fo: FileOptions, source) -> RejectWriter | None:
    return None if fo.reject_file is None else RejectWriter(fo.reject_file, source)


def load_addresses_file(conn: Connection, path: Path, fo: FileOptions, options: AddressOptions,
                        progress: Callable | None = None) -> LoadReport:
    progress = progress or no_progress
    mapping = load_mapping(fo.mapping)
    source = _open(path, fo, mapping, "addresses")
    prepared = prepare(source, ADDRESS_FIELDS, mapping, fo.crs or mapping.file.get("crs"), geometry="point",
                       required=[("division_code", "village")], what="地址文件 / address file: ")
    options.checksum = options.checksum or source.checksum
    options.details = {**_details(source, prepared, fo, {"create_places": options.create_places,
                                                         "retire_missing": options.retire_missing,
                                                         "tolerance_m": options.tolerance_m}), **options.details}
    report = _run(AddressLoad(conn, options, progress), prepared, fo, source, progress)
    if prepared.ignored_columns:
        report.notes.append(f"未使用的列 / columns not used: {', '.join(prepared.ignored_columns)}")
    return report


def load_entities_file(conn: Connection, path: Path, kind: str, fo: FileOptions, options: EntityOptions,
                       progress: Callable | None = None) -> LoadReport:
    if kind not in ENTITY_KINDS:
        raise ValueError(f"unknown kind {kind!r}")
    progress = progress or no_progress
    spec_kind, geometry, required, prefer, optional = ENTITY_KINDS[kind]
    spec = SPECS[spec_kind]
    mapping = load_mapping(fo.mapping)
    source = _open(path, fo, mapping, prefer)
    prepared = prepare(source, spec.fields, mapping, fo.crs or mapping.file.get("crs"), geometry=geometry,
                       required=required, what=f"{kind}: ", geometry_optional=optional)
    options.checksum = options.checksum or source.checksum
    options.details = {**_details(source, prepared, fo, {"retire_missing": options.retire_missing}),
                       **options.details}
    return _run(EntityLoad(conn, spec, options, progress), prepared, fo, source, progress)


def _run(load, prepared, fo: FileOptions, source, progress: Callable) -> LoadReport:
    """Stream the prepared rows into a started load and finish it (its rejects to the sink); any
    failure aborts it (nothing of the file is applied)."""
    load.start()
    try:
        _stream(load, prepared, fo, progress)
        report = load.finish(_sink(fo, source))
    except BaseException as exc:
        load.abort(exc)
        raise
    report.notes = prepared.notes + report.notes
    return report


__all__ = ["FileError", "FileOptions", "load_addresses_file", "load_entities_file", "ENTITY_KINDS"]
