"""`registry load city DIR`: a generated city (data/generate) through the ordinary loaders.

Order: township and village polygons → place names (former names as aliases, pinyin) →
facilities → heritage → addresses → boundary lines (county, township) and the synthetic
markers (data.generate.markers, from the manifest's seed). Each step is its own transaction and change set, so a crash
loses at most the step in progress and a re-run picks up from there.

The generator writes NBS 2023 township codes (the prefixes of its 12-digit village codes), so
the city is loaded with `code_authority="nbs2023"`.

On a registry that holds the state before the real township adjustments (`registry load reference
--before-adjustments`) the city lives through them: the steps first load what exists in that state
(today's codes of 旧馆镇 and of the villages moved to 东迁街道/康乾街道 resolve to their code-less
before-state rows: `loaders.reference.before_state_codes`), then the three adjustments are carried
through (`carry_through_observed_adjustments`: ids kept, addresses re-coded and re-texted, old codes
resolving), then the steps run again on today's state for the rest (the townships and communities
the adjustments set up, and what hangs on them), and the boundary lines are derived. The first
pass's change sets say `before_adjustments` in their details, so a crash anywhere is picked up by
a re-run. `carry_through=False` stops after the first pass.

Idempotent, and cheap to repeat (`make demo` runs it on every start): a step whose file
(and layer) has already been applied — an applied change set of that kind with the same SHA-256
— is skipped without reading the file. `recheck=True` compares every row instead (a second load
of unchanged data then changes nothing and records no change set).
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from sqlalchemy import Engine, text

from loaders.errors import FileError
from loaders.readers import sha256_of
from loaders.run import FileOptions, load_addresses_file, load_entities_file
from registry.loading.addresses import AddressOptions
from registry.loading.base import LoadReport
from registry.loading.entities import EntityOptions

log = logging.getLogger(__name__)


@dataclass
class Step:
    name: str
    kind: str  # cli kind: divisions, place-names, facilities, heritage, addresses
    change_kind: str
    file: str
    layer: str | None


STEPS = (
    Step("township polygons", "divisions", "load_divisions", "city.gpkg", "townships"),
    Step("village polygons", "divisions", "load_divisions", "city.gpkg", "villages"),
    Step("place names", "place-names", "load_place_names", "city.gpkg", "place_names"),
    Step("facilities", "facilities", "load_facilities", "city.gpkg", "facilities"),
    Step("heritage", "heritage", "load_heritage", "city.gpkg", "heritage"),
    Step("addresses", "addresses", "load_addresses", "addresses.csv", None),
)


@dataclass
class StepResult:
    step: Step
    report: LoadReport | None
    skipped_change_set: int | None = None
    reject_file: Path | None = None
    derived: dict | None = None  # the derive step: boundary lines per level and markers
    adjusted: list[int] | None = None  # the adjustments step: the change sets of the real adjustments


def _already_applied(engine: Engine, step: Step, checksum: str, *, before: bool = False) -> int | None:
    with engine.connect() as conn:
        return conn.execute(text("""
            SELECT id FROM change_sets
            WHERE kind = :kind AND checksum = :sum AND status = 'applied'
              AND coalesce(details->>'layer', '') = :layer
              AND coalesce(details->>'before_adjustments', 'false') = :before
            ORDER BY id DESC LIMIT 1"""), {"kind": step.change_kind, "sum": checksum, "layer": step.layer or "",
                                           "before": "true" if before else "false"}
        ).scalar_one_or_none()


def load_city(engine: Engine, directory: Path, *, actor: str = "registry", recheck: bool = False,
              dry_run: bool = False, progress: Callable | None = None, on_step: Callable | None = None,
              before_commit: Callable | None = None, carry_through: bool = True) -> list[StepResult]:
    from loaders.reference import before_state_codes, carry_through_observed_adjustments

    with engine.connect() as conn:
        pending = before_state_codes(conn)
    if not pending:
        return _load_steps(engine, directory, actor=actor, recheck=recheck, dry_run=dry_run, progress=progress,
                           on_step=on_step, before_commit=before_commit)
    results = _load_steps(engine, directory, actor=actor, recheck=recheck, dry_run=dry_run, progress=progress,
                          on_step=on_step, before_commit=before_commit, pending=pending)
    if dry_run or not carry_through:
        return results
    with engine.begin() as conn:
        done = carry_through_observed_adjustments(conn, actor=actor)
    result = StepResult(ADJUST_STEP, None, adjusted=done)
    results.append(result)
    if on_step:
        on_step(result)
    return results + _load_steps(engine, directory, actor=actor, recheck=recheck, progress=progress,
                                 on_step=on_step, before_commit=before_commit)


def _load_steps(engine: Engine, directory: Path, *, actor: str, recheck: bool = False, dry_run: bool = False,
                progress: Callable | None = None, on_step: Callable | None = None,
                before_commit: Callable | None = None, pending: tuple = ()) -> list[StepResult]:
    """The steps once; `pending` (the before-state): today's codes resolving there, no derive step."""
    directory = Path(directory)
    if not directory.is_dir():
        raise FileError("file_not_found", f"目录不存在：{directory}", f"no such folder: {directory}")
    for name in ("city.gpkg", "addresses.csv"):
        if not (directory / name).exists():
            raise FileError("file_not_found", f"{directory} 中没有 {name}（是 registry generate 生成的目录吗？）",
                            f"{directory} has no {name} (is it a folder written by `registry generate`?)")
    crs = "EPSG:4490"
    manifest = directory / "manifest.json"
    if manifest.exists():
        crs = json.loads(manifest.read_text(encoding="utf-8")).get("crs") or crs
    checksums = {name: sha256_of([directory / name]) for name in ("city.gpkg", "addresses.csv")}
    results: list[StepResult] = []
    for step in STEPS:
        path = directory / step.file
        checksum = checksums[step.file]
        if not recheck and not dry_run:
            done = _already_applied(engine, step, checksum, before=bool(pending))
            if done is not None:
                result = StepResult(step, None, skipped_change_set=done)
                results.append(result)
                if on_step:
                    on_step(result)
                continue
        reject = directory / "rejects" / f"{step.layer or Path(step.file).stem}.rejects.csv"
        reject.unlink(missing_ok=True)
        fo = FileOptions(layer=step.layer, crs=crs, reject_file=reject)
        # the first pass's rejects are what the before-state lacks; the second pass loads them
        extra = {"pending_codes": pending, "details": {"before_adjustments": True}} if pending else {}
        source = f"{directory.name}/{step.file}" + (f":{step.layer}" if step.layer else "")
        with engine.begin() as conn:
            if step.kind == "addresses":
                report = load_addresses_file(conn, path, fo, AddressOptions(
                    source=source, actor=actor, checksum=checksum, dry_run=dry_run, code_authority="nbs2023",
                    reason="生成的城市数据 / generated city", **extra), progress)
            else:
                report = load_entities_file(conn, path, step.kind, fo, EntityOptions(
                    source=source, actor=actor, checksum=checksum, dry_run=dry_run, code_authority="nbs2023",
                    reason="生成的城市数据 / generated city", **extra), progress)
            if before_commit:
                before_commit()
        result = StepResult(step, report, reject_file=reject if reject.exists() and report.issues else None)
        results.append(result)
        if on_step:
            on_step(result)
    if not dry_run and not pending:  # boundary lines need every township's code: after the adjustments
        seed = json.loads(manifest.read_text(encoding="utf-8")).get("seed", 1) if manifest.exists() else 1
        result = StepResult(DERIVE_STEP, None, derived=derive_boundaries(engine, seed=seed, actor=actor))
        results.append(result)
        if on_step:
            on_step(result)
    return results


ADJUST_STEP = Step("real township adjustments", "adjust", "adjustment", "data/reference", None)
DERIVE_STEP = Step("boundary lines and markers", "derive", "load_divisions", "city.gpkg", None)


def derive_boundaries(engine: Engine, *, seed: int = 1, actor: str = "registry") -> dict:
    """County and township boundary lines from the polygons, then the synthetic markers (from the
    city's seed), in one transaction; each part writes nothing when nothing changed."""
    from data.generate.markers import derive_markers
    from registry.boundaries import derive_boundary_lines

    with engine.begin() as conn:
        out = {level: derive_boundary_lines(conn, level=level, actor=actor) for level in ("county", "township")}
        out["markers"] = derive_markers(conn, seed=seed, actor=actor)
    return out
