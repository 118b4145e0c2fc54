"""`registry load …`: files into the registry, each load one change set (reference divisions,
addresses, place names, facilities, heritage, division polygons, a generated city)."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated, Optional

import typer

from loaders.cli_support import engine, fail
from loaders.derive_cli import lines_summary, markers_summary
from loaders.plates_cli import authority_option
from registry.errors import RegistryError

load_app = typer.Typer(help="Load data into the registry (each load is one change set).", no_args_is_help=True)


@load_app.command("reference")
def load_reference_cmd(
    actor: Annotated[str, typer.Option(help="who is loading (recorded in the change set)")] = "registry",
    skip_if_loaded: Annotated[bool, typer.Option("--skip-if-loaded", help="exit quietly when already loaded")] = False,
    before_adjustments: Annotated[bool, typer.Option("--before-adjustments", help="stop at the state before the real "
                                                     "township adjustments (then `registry adjust observed`)")] = False,
) -> None:
    """Load the real divisions (NBS 2023 + MCA 2025 codes) and county polygons from data/reference."""
    from loaders.reference import load_reference, reference_loaded

    try:
        if skip_if_loaded:
            with engine().connect() as conn:
                if reference_loaded(conn):
                    typer.echo("reference divisions already loaded")
                    return
        with engine().begin() as conn:
            counts = load_reference(conn, actor=actor, adjust=not before_adjustments)
    except RegistryError as exc:
        fail(exc)
    typer.echo("loaded: " + ", ".join(f"{k} {v}" for k, v in counts.items()))


# File options shared by the file loaders.
FormatOpt = Annotated[Optional[str], typer.Option("--format", help="csv, gpkg, shp, geojson or fgb (default: from the extension)")]
LayerOpt = Annotated[Optional[str], typer.Option("--layer", help="layer of a GeoPackage (or other multi-layer file)")]
CrsOpt = Annotated[Optional[str], typer.Option("--crs", help="coordinates of the file: EPSG:4490, EPSG:4326, EPSG:45xx, gcj02 or bd09; "
                                                             "required for a file without a CRS (CSV)")]
MappingOpt = Annotated[Optional[Path], typer.Option("--mapping", help="TOML file mapping the file's columns onto the registry's fields")]
EncodingOpt = Annotated[Optional[str], typer.Option("--encoding", help="text encoding (default: UTF-8, else GB18030/GBK, detected)")]
DryRunOpt = Annotated[bool, typer.Option("--dry-run", help="validate and count, write nothing")]
SourceOpt = Annotated[Optional[str], typer.Option("--source", help="name of the source recorded in the change set (default: the file name)")]
RetireOpt = Annotated[bool, typer.Option("--retire-missing", help="a full re-survey: retire what the file no longer lists, in the divisions it covers")]
RejectOpt = Annotated[Optional[Path], typer.Option("--reject-file", help="where to write refused rows (default: FILE.rejects.csv beside the file)")]
ActorOpt = Annotated[str, typer.Option("--actor", help="who is loading (recorded in the change set)")]
ReasonOpt = Annotated[Optional[str], typer.Option("--reason", help="why (recorded in the change set)")]
ApprovalOpt = Annotated[Optional[str], typer.Option("--approval-ref", help="批复文号 / approval document number")]
# Checked while the command line is parsed (exit 2 naming the option): `nbs` or `MCA` are refused,
# not guessed, like every other division-code authority in the registry.
AuthorityOpt = Annotated[Optional[str], typer.Option("--code-authority", metavar="nbs2023|mca2025", callback=authority_option, help="nbs2023 or mca2025: which authority the file's 9-digit township codes follow (the two reuse each other's codes; by default a code that is ambiguous is settled by the row's village or county, else refused)")]
_authority = authority_option


def _default_reject_file(file: Path, given: Optional[Path]) -> Path:
    if given is not None:
        return given
    import os

    beside = file.with_name(file.name + ".rejects.csv")
    return beside if os.access(file.parent, os.W_OK) else Path.cwd() / beside.name


def _print_report(report, reject_file: Optional[Path] = None, title: str | None = None) -> None:
    if title:
        typer.echo(title)
    typer.echo("  " + report.summary())
    reasons = ", ".join(f"{code} {n:,}" for code, n in report.reasons.most_common())
    if reasons:
        typer.echo(f"  原因 / reasons: {reasons}")
    for issue in report.issues[:5]:
        typer.echo(f"    第 {issue.row} 行 / row {issue.row}: [{issue.code}] {issue.message_zh} / {issue.message_en}")
    if len(report.issues) > 5 or (report.issues and reject_file):
        typer.echo(f"  明细见 / all refused rows in: {reject_file}" if reject_file and reject_file.exists()
                   else f"  … {report.rejected + report.warnings - 5:,} more")
    for note in report.notes:
        typer.echo(f"  注 / note: {note}")
    if report.dry_run:
        typer.echo("  试运行，未写入 / dry run: nothing written")
    elif report.change_set_id is None:
        typer.echo("  无变化，未记录变更集 / nothing changed: no change set recorded")
    else:
        typer.echo(f"  变更集 / change set #{report.change_set_id} applied")
    if report.timings:
        logging.getLogger("registry.loading").info(
            "timings: %s", ", ".join(f"{k} {v:.2f}s" for k, v in report.timings.items()))


def _file_load(kind: str, file: Path, *, fmt, layer, crs, mapping, encoding, dry_run, source, retire_missing,
               reject_file, actor, reason, approval_ref, code_authority=None, create_places: bool = False,
               tolerance: float | None = None) -> None:
    from loaders.hooks import maybe_pause
    from loaders.progress import stage_progress
    from loaders.run import FileOptions, load_addresses_file, load_entities_file
    from registry.faults import checkpoint
    from registry.loading.addresses import AddressOptions
    from registry.loading.entities import DEFAULT_TOLERANCE_M, EntityOptions

    reject = _default_reject_file(file, reject_file)
    reject.unlink(missing_ok=True)  # a reject file from an earlier run would mislead
    fo = FileOptions(format=fmt, layer=layer, crs=crs, mapping=mapping, encoding=encoding, reject_file=reject)
    common = dict(source=source or file.name, actor=actor, reason=reason, approval_ref=approval_ref,
                  retire_missing=retire_missing, dry_run=dry_run, code_authority=_authority(code_authority),
                  tolerance_m=DEFAULT_TOLERANCE_M if tolerance is None else tolerance)
    try:
        with stage_progress() as progress, engine().begin() as conn:
            if kind == "addresses":
                report = load_addresses_file(conn, file, fo, AddressOptions(create_places=create_places, **common),
                                             progress)
            else:
                report = load_entities_file(conn, file, kind, fo, EntityOptions(**common), progress)
            maybe_pause("before_commit")
            checkpoint("load.commit")
        checkpoint("load.committed")
    except RegistryError as exc:
        fail(exc)
    _print_report(report, reject if reject.exists() else None, title=f"{file.name}:")


@load_app.command("addresses")
def load_addresses_cmd(
    file: Annotated[Path, typer.Argument(help="CSV, GeoPackage, Shapefile, GeoJSON or FlatGeobuf")],
    fmt: FormatOpt = None, layer: LayerOpt = None, crs: CrsOpt = None, mapping: MappingOpt = None,
    encoding: EncodingOpt = None, dry_run: DryRunOpt = False, source: SourceOpt = None,
    retire_missing: RetireOpt = False, reject_file: RejectOpt = None,
    create_places: Annotated[bool, typer.Option("--create-places", help="register streets/compounds/natural villages the registry does not know yet (in the same change set) instead of refusing their rows")] = False,
    tolerance: Annotated[Optional[float], typer.Option("--tolerance", help="metres a point may lie outside its village polygon (a warning); beyond, the row is refused", min=0)] = None,
    actor: ActorOpt = "registry", reason: ReasonOpt = None, approval_ref: ApprovalOpt = None,
    code_authority: AuthorityOpt = None,
) -> None:
    """Load addresses: validated row by row, matched by id or natural key, versioned, one change set."""
    _file_load("addresses", file, fmt=fmt, layer=layer, crs=crs, mapping=mapping, encoding=encoding, dry_run=dry_run,
               source=source, retire_missing=retire_missing, reject_file=reject_file, actor=actor, reason=reason,
               approval_ref=approval_ref, code_authority=code_authority, create_places=create_places,
               tolerance=tolerance)


def _entity_command(kind: str, doc: str, with_retire: bool = True):
    def command(
        file: Annotated[Path, typer.Argument(help="GeoPackage, Shapefile, GeoJSON, FlatGeobuf or CSV (WKT or lon/lat)")],
        fmt: FormatOpt = None, layer: LayerOpt = None, crs: CrsOpt = None, mapping: MappingOpt = None,
        encoding: EncodingOpt = None, dry_run: DryRunOpt = False, source: SourceOpt = None,
        retire_missing: RetireOpt = False, reject_file: RejectOpt = None,
        actor: ActorOpt = "registry", reason: ReasonOpt = None, approval_ref: ApprovalOpt = None,
        code_authority: AuthorityOpt = None,
    ) -> None:
        _file_load(kind, file, fmt=fmt, layer=layer, crs=crs, mapping=mapping, encoding=encoding, dry_run=dry_run,
                   source=source, retire_missing=retire_missing and with_retire, reject_file=reject_file, actor=actor,
                   reason=reason, approval_ref=approval_ref, code_authority=code_authority)

    command.__doc__ = doc
    load_app.command(kind)(command)


_entity_command("divisions", "Load township/village (or county) polygons by code: updates divisions.geom, versioned.",
                with_retire=False)
_entity_command("place-names", "Load place names (roads, compounds, natural villages, bridges …) with former names and pinyin.")
_entity_command("facilities", "Load civil-affairs service facilities (points).")
_entity_command("heritage", "Load place-name cultural heritage items (地名文化遗产).")


@load_app.command("city")
def load_city_cmd(
    directory: Annotated[Path, typer.Argument(help="a folder written by `registry generate`")],
    recheck: Annotated[bool, typer.Option("--recheck", help="compare every row even for files already applied")] = False,
    dry_run: DryRunOpt = False,
    actor: ActorOpt = "registry",
) -> None:
    """Load a generated city: polygons, place names, facilities, heritage, addresses (one change set each; idempotent).

    On the state before the real adjustments (`load reference --before-adjustments`) the city is
    loaded there, carried through the three adjustments, and the rest loaded on today's state."""
    from loaders.city import load_city
    from loaders.hooks import maybe_pause
    from loaders.progress import stage_progress

    def on_step(result) -> None:
        label = f"{result.step.name} ({result.step.file}{':' + result.step.layer if result.step.layer else ''})"
        if result.derived is not None:
            for level in ("county", "township"):
                typer.echo(lines_summary(level, result.derived[level]))
            typer.echo(markers_summary(result.derived["markers"]))
        elif result.adjusted is not None:
            typer.echo(f"真实区划调整已沿用至城市数据 / the real township adjustments carried the city through: "
                       f"change sets {', '.join(f'#{i}' for i in result.adjusted)}; 其余部分在调整后载入 / "
                       f"the rest loads on today's state")
        elif result.report is None:
            typer.echo(f"{label}: 已载入，跳过 / already applied in change set #{result.skipped_change_set}, skipped")
        else:
            _print_report(result.report, result.reject_file, title=f"{label}:")

    try:
        with stage_progress() as progress:
            load_city(engine(), directory, actor=actor, recheck=recheck, dry_run=dry_run, progress=progress,
                      on_step=on_step, before_commit=lambda: maybe_pause("before_commit"))
    except RegistryError as exc:
        fail(exc)
