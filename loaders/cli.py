"""The `registry` command line: database, reference data, generation, loading, keys, serving.

Run `registry --help` or `registry COMMAND --help`. With no REGISTRY_DATABASE_URL the commands
use (and start on demand) the managed PostgreSQL cluster under var/pgdata.
"""
from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from typer.core import TyperGroup

from registry.errors import RegistryError, SettingsError
from registry.settings import get_settings


class _RegistryGroup(TyperGroup):
    """The root command: bad settings end in one line per variable and exit 2; any other
    RegistryError that a command did not catch (a missing database, say) in one line, exit 1."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except SettingsError as exc:
            for line in exc.lines:
                typer.secho(line, fg=typer.colors.RED, err=True)
            raise typer.Exit(code=2) from None
        except RegistryError as exc:
            typer.secho(f"错误 / error: {exc}", fg=typer.colors.RED, err=True)
            raise typer.Exit(code=1) from None


app = typer.Typer(help="湖州市地名地址库 — the Huzhou place-name and address registry.", no_args_is_help=True,
                  pretty_exceptions_enable=False, cls=_RegistryGroup)
db_app = typer.Typer(help="The database: the managed cluster and migrations.", no_args_is_help=True)
keys_app = typer.Typer(help="API keys for agencies.", no_args_is_help=True)
load_app = typer.Typer(help="Load data into the registry (each load is one change set).", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(keys_app, name="keys")
app.add_typer(load_app, name="load")
from loaders.plates_cli import authority_option, plates_app  # noqa: E402  (registry plates …, see that module)

app.add_typer(plates_app, name="plates")
from loaders.inspection_cli import inspection_app  # noqa: E402
from loaders.changes_cli import changes_app  # noqa: E402
from loaders.adjust_cli import adjust_app  # noqa: E402

app.add_typer(inspection_app, name="inspection")
app.add_typer(changes_app, name="changes")
app.add_typer(adjust_app, name="adjust")
from loaders.placenames_cli import placenames_app  # noqa: E402  (registry placenames …)

app.add_typer(placenames_app, name="placenames")
from loaders.heritage_cli import heritage_app  # noqa: E402  (registry heritage …)

app.add_typer(heritage_app, name="heritage")
from loaders.export_cli import export as export_command  # noqa: E402  (registry export …)

app.command("export")(export_command)
from loaders.feed_cli import feed as feed_command  # noqa: E402  (registry changes feed …)

changes_app.command("feed")(feed_command)
from loaders.backup_cli import backup_command, restore_command  # noqa: E402  (registry backup / restore)

app.command("backup")(backup_command), app.command("restore")(restore_command)
from loaders.demo_cli import demo_app  # noqa: E402  (registry demo urls: where to look after make demo)

app.add_typer(demo_app, name="demo")
from loaders.replica_cli import replica_app  # noqa: E402  (registry db replica …: read replicas)

db_app.add_typer(replica_app, name="replica")


def _setup_logging(verbose: bool = False) -> None:
    level = logging.DEBUG if verbose else getattr(logging, get_settings().log_level)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)


def _fail(exc: Exception) -> None:
    typer.secho(f"错误 / error: {exc}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code=1)


@app.callback()
def main(verbose: Annotated[bool, typer.Option("--verbose", "-v", help="debug logging")] = False) -> None:
    _setup_logging(verbose)


def engine():
    from registry.db.engine import make_engine

    return make_engine(get_settings(), pool_size=2)


# --- db -------------------------------------------------------------------------------------
@db_app.command("start")
def db_start() -> None:
    """Initialise (first time) and start the managed PostgreSQL + PostGIS cluster."""
    from registry.db.cluster import ManagedCluster

    settings = get_settings()
    if not settings.managed:
        typer.echo("REGISTRY_DATABASE_URL is set: the managed cluster is not used.")
        return
    try:
        cluster = ManagedCluster(settings)
        cluster.start()
        if cluster.ensure_database(settings.database_name):  # with `db migrate`, the only commands that create it
            typer.echo(f"created database {settings.database_name}")
    except RegistryError as exc:
        _fail(exc)
    typer.echo(f"running: {cluster.url()}")


@db_app.command("stop")
def db_stop() -> None:
    """Stop the managed cluster (fast shutdown)."""
    from registry.db.cluster import ManagedCluster

    ManagedCluster(get_settings()).stop()
    typer.echo("stopped")


@db_app.command("status")
def db_status() -> None:
    """Say whether the managed cluster is initialised and running; exit 3 when it is not running."""
    from registry.db.cluster import ManagedCluster

    settings = get_settings()
    if not settings.managed:
        typer.echo(f"external database: {settings.database_url}")
        return
    st = ManagedCluster(settings).status()
    typer.echo(f"data folder: {st.data_dir}\ninitialised: {st.initialised}\nrunning: {st.running}\nurl: {st.url}")
    if not st.running:
        raise typer.Exit(code=3)


@db_app.command("url")
def db_url() -> None:
    """Print the SQLAlchemy URL of the database in use."""
    from registry.db.engine import resolve_database_url

    typer.echo(resolve_database_url(get_settings(), start=False))


@db_app.command("migrate")
def db_migrate(revision: Annotated[str, typer.Argument(help="target revision")] = "head") -> None:
    """Bring the database to the current schema (Alembic), starting the managed cluster and creating
    its database if needed. An unknown revision: one line, exit 2."""
    from registry.db.engine import create_database
    from registry.db.migrate import check_revision, upgrade
    from registry.errors import InvalidQuery

    try:
        check_revision(revision)  # before anything is started or created
        upgrade(create_database(get_settings()), revision)
    except InvalidQuery as exc:
        typer.secho(f"错误 / error: {exc}", fg=typer.colors.RED, err=True)
        raise typer.Exit(code=2) from None
    except RegistryError as exc:
        _fail(exc)
    typer.echo(f"database at revision {revision}")


# --- load -----------------------------------------------------------------------------------
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
        _fail(exc)
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
        _fail(exc)
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
                typer.echo(_lines_summary(level, result.derived[level]))
            typer.echo(_markers_summary(result.derived["markers"]))
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
        _fail(exc)


# --- derive ---------------------------------------------------------------------------------
derive_app = typer.Typer(help="Derive data from what the registry holds.", no_args_is_help=True)
app.add_typer(derive_app, name="derive")


@derive_app.command("boundaries")
def derive_boundaries_cmd(
    level: Annotated[str, typer.Option(help="county or township: the divisions the lines separate")] = "county",
    actor: Annotated[str, typer.Option(help="who does it (recorded in the change set)")] = "registry",
) -> None:
    """Derive boundary lines (界线) between neighbouring divisions and along the city's edge (idempotent)."""
    from registry.boundaries import derive_boundary_lines

    try:
        with engine().begin() as conn:
            counts = derive_boundary_lines(conn, level=level, actor=actor)
    except RegistryError as exc:
        _fail(exc)
    typer.echo(_lines_summary(level, counts))


@derive_app.command("markers")
def derive_markers_cmd(
    seed: Annotated[int, typer.Option(help="random seed (the generated city's): the same seed gives the same markers")] = 1,
    actor: Annotated[str, typer.Option(help="who does it (recorded in the change set)")] = "registry",
) -> None:
    """Place synthetic boundary markers (界桩) on every line that has none yet (data.generate.markers)."""
    from data.generate.markers import derive_markers

    try:
        with engine().begin() as conn:
            counts = derive_markers(conn, seed=seed, actor=actor)
    except RegistryError as exc:
        _fail(exc)
    typer.echo(_markers_summary(counts))


def _lines_summary(level: str, c: dict) -> str:
    if not c["changed"]:
        return f"{level} 级界线未变 / {level} boundary lines unchanged ({c['unchanged']} lines)"
    return (f"{level} boundary lines: {c['added']} added, {c['updated']} updated, {c['retired']} retired, "
            f"{c['unchanged']} unchanged (change set #{c['change_set_id']})")


def _markers_summary(c: dict) -> str:
    if not c["markers"]:
        return f"界桩未变 / markers unchanged ({c['unchanged_lines']} lines already have theirs)"
    return (f"markers written: {c['markers']} on {c['lines']} lines, {c['reference_objects']} reference objects "
            f"(change set #{c['change_set_id']})")


# --- generate ---------------------------------------------------------------------------------
@app.command("generate")
def generate(
    out: Annotated[Path, typer.Option("--out", "-o", help="output folder")],
    addresses: Annotated[int, typer.Option(help="number of addresses (1,600,000 = the whole city)", min=300,
                                           max=5_000_000)] = 50_000,
    seed: Annotated[int, typer.Option(help="random seed: the same seed gives the same files")] = 1,
) -> None:
    """Generate the synthetic city (townships, villages, streets, addresses, facilities, heritage)."""
    from data.generate import generate_city
    from loaders.progress import stage_progress

    with stage_progress() as progress:
        result = generate_city(out, addresses=addresses, seed=seed, progress=progress)
    typer.echo(f"written to {out}: {result.counts}")


# --- match (batch address matching; owned by the search engine) -------------------------------
@app.command("match")
def match_cmd(
    infile: Annotated[Path, typer.Argument(help="CSV with a header row (UTF-8, with or without BOM, or GB18030/GBK)")],
    column: Annotated[str, typer.Option("--column", "-c", help="the column holding the address")] = "地址",
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="output CSV (default: IN.matched.csv)")] = None,
    encoding: Annotated[str, typer.Option(help="input encoding: auto, utf-8, gb18030 or gbk")] = "auto",
    output_encoding: Annotated[str, typer.Option(
        help="output encoding: utf-8-sig (UTF-8 with BOM, for Excel), utf-8 or gb18030")] = "utf-8-sig",
    no_bom: Annotated[bool, typer.Option("--no-bom", help="plain UTF-8 output (same as --output-encoding utf-8)")] = False,
) -> None:
    """Match free-form addresses to standard ones: input columns + id, address, code, confidence, levels, status
    (matched, partial, ambiguous, low_confidence, unmatched), reason. Bad input: one line, exit 2."""
    from loaders.progress import stage_progress
    from registry.errors import InvalidQuery
    from registry.search.cli import match_file

    if no_bom and output_encoding == "utf-8-sig":
        output_encoding = "utf-8"
    try:
        with stage_progress() as progress:
            summary = match_file(engine, infile, column, out, progress, encoding=encoding,
                                 output_encoding=output_encoding)
    except InvalidQuery as exc:
        typer.secho(f"错误 / error: {exc}", fg=typer.colors.RED, err=True)
        raise typer.Exit(code=2)
    except RegistryError as exc:
        _fail(exc)
    typer.echo(summary)


# --- keys -----------------------------------------------------------------------------------
@keys_app.command("create")
def keys_create(
    agency: Annotated[str, typer.Option(help="agency name, e.g. 湖州市公安局")],
    scope: Annotated[list[str], typer.Option(help="public, agency, editor or admin (repeatable)")],
    rate_limit: Annotated[int, typer.Option(help="requests per minute")] = 600,
    note: Annotated[Optional[str], typer.Option(help="free note")] = None,
) -> None:
    """Create a key. The secret is printed once and only its hash is stored."""
    from registry.keys import create_key

    try:
        with engine().begin() as conn:
            new = create_key(conn, agency=agency, scopes=scope, rate_limit_per_minute=rate_limit, note=note)
    except RegistryError as exc:
        _fail(exc)
    typer.echo(f"key for {new.key.agency} (scopes: {', '.join(new.key.scopes)}; prefix {new.key.prefix}):")
    typer.echo(new.secret)
    typer.secho("store it now: it cannot be shown again.", fg=typer.colors.YELLOW, err=True)


@keys_app.command("list")
def keys_list() -> None:
    """List keys (prefix, agency, scopes, created, revoked) — never the secrets."""
    from registry.keys import list_keys

    with engine().connect() as conn:
        for k in list_keys(conn):
            state = f"revoked {k.revoked_at:%Y-%m-%d}" if k.revoked_at else "active"
            typer.echo(f"{k.prefix}\t{k.agency}\t{','.join(k.scopes)}\t{k.created_at:%Y-%m-%d}\t{state}")


@keys_app.command("revoke")
def keys_revoke(prefix: Annotated[str, typer.Argument(help="the key's prefix (see `keys list`)")]) -> None:
    """Revoke a key: requests carrying it get 401 from then on."""
    from registry.keys import revoke_key

    try:
        with engine().begin() as conn:
            revoke_key(conn, prefix)
    except RegistryError as exc:
        _fail(exc)
    typer.echo(f"revoked {prefix}")


# --- serve ----------------------------------------------------------------------------------
# uvicorn's options for the API (bench/bench_serving.py serves its trivial baseline with the same).
# loop/http "auto" pick uvloop and httptools (installed with uvicorn[standard]). uvicorn's access log
# has the client address and the query string: registry.access logs instead. A worker that does
# not answer the supervisor's ping in `timeout_worker_healthcheck` seconds is killed and replaced:
# uvicorn's 5 s killed workers in a loop while a busy machine built their state at start-up.
SERVE_OPTIONS = {"log_level": "info", "access_log": False, "timeout_worker_healthcheck": 60}


@app.command("serve")
def serve(
    host: Annotated[str, typer.Option(help="interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port")] = 8000,
    workers: Annotated[int, typer.Option(help="worker processes")] = 1,
) -> None:
    """Serve the HTTP API with uvicorn."""
    import uvicorn

    from registry.db.engine import require_database, resolve_database_url
    from registry.settings import local_url_reason

    settings = get_settings()
    require_database(settings, resolve_database_url(settings))  # start the managed cluster before the workers fork
    if reason := local_url_reason(settings.public_base_url):
        zh, _, en = reason.partition(" / ")
        typer.secho(f"警告 / warning: REGISTRY_PUBLIC_BASE_URL={settings.public_base_url} 不是公网地址（{zh}），"
                    f"二维码图片将被拒绝（409） / is not public ({en}): QR images for printing are refused (409)",
                    fg=typer.colors.YELLOW, err=True)
    uvicorn.run("api.main:app", host=host, port=port, workers=workers, **SERVE_OPTIONS)


if __name__ == "__main__":  # pragma: no cover
    app()
