"""`registry inspection …`: Boundary joint inspections (界线联合检查): rounds, field packages out and back, reports.

Mounted on the `registry` command by loaders/cli.py. The workflow (README "Boundary joint
inspections"): `round create` → `export` → the teams edit the package in QGIS/ArcGIS → `load`
(validation report, or a proposed change set with its diff) → `registry changes show|approve|apply`.
"""
from __future__ import annotations

import getpass
import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from loaders.cli_support import engine
from registry.errors import RegistryError

inspection_app = typer.Typer(help="Boundary joint inspections (界线联合检查): rounds, field packages out and back, reports.", no_args_is_help=True)
round_app = typer.Typer(help="Inspection rounds (联检轮次).", no_args_is_help=True)
inspection_app.add_typer(round_app, name="round")

Actor = Annotated[str, typer.Option(help="who does it (recorded in the change set and the audit log)")]
RoundOpt = Annotated[int, typer.Option("--round", help="the round's number, e.g. 4 for 第四轮")]


def _fail(exc: Exception, code: int = 1) -> None:
    typer.secho(f"错误 / error: {exc}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code=code)


def tolerances():
    from registry.inspection import Tolerances
    from registry.settings import get_settings

    s = get_settings()
    return Tolerances(marker_m=s.inspection_marker_tolerance_m, node_m=s.inspection_node_tolerance_m)


@round_app.command("create")
def round_create(
    number: Annotated[int, typer.Option(help="the round's number (4 = 第四轮)")],
    year: Annotated[int, typer.Option(help="the year it starts")],
    year_to: Annotated[Optional[int], typer.Option(help="the year it ends")] = None,
    scope: Annotated[Optional[str], typer.Option(help="what it covers, e.g. 湖州市全域")] = None,
    actor: Actor = getpass.getuser(),
) -> None:
    """Open an inspection round."""
    from registry.inspection import create_round

    try:
        with engine().begin() as conn:
            rnd = create_round(conn, number, year=year, year_to=year_to, scope=scope, actor=actor)
    except RegistryError as exc:
        _fail(exc)
    typer.echo(f"{rnd['name']}（第 {rnd['number']} 轮，{rnd['year']}–{rnd['year_to'] or ''}）/ round {rnd['number']} created")


@round_app.command("list")
def round_list() -> None:
    """The rounds."""
    from registry.inspection import list_rounds

    with engine().connect() as conn:
        for r in list_rounds(conn):
            typer.echo(f"{r['number']:>3}  {r['name']}  {r['year']}–{r['year_to'] or ''}  {r['status']}  {r['scope'] or ''}")


@inspection_app.command("export")
def export(
    round_number: RoundOpt,
    output: Annotated[Path, typer.Option("-o", "--output", help="field.gpkg, field.shp (a folder) or field.geojson")],
    line: Annotated[Optional[str], typer.Option(help="one boundary line, by its code")] = None,
    division: Annotated[Optional[str], typer.Option(help="every line of this division and below (code)")] = None,
) -> None:
    """Write the field package (外业数据包) of a line or a division for the teams."""
    from loaders.field_package import write_package
    from registry.inspection import export_package

    try:
        with engine().connect() as conn:
            pkg = export_package(conn, round_number, line_code=line, division_code=division)
        files = write_package(pkg, output)
    except RegistryError as exc:
        _fail(exc)
    typer.echo(f"界线 {pkg.info['lines']} 条，界桩 {pkg.info['markers']} 个，方位物 {pkg.info['reference_objects']} 个 / "
               f"{pkg.info['lines']} lines, {pkg.info['markers']} markers, {pkg.info['reference_objects']} reference objects")
    for f in files:
        typer.echo(f"  {f}")


@inspection_app.command("load")
def load(
    file: Annotated[Path, typer.Argument(help="the edited package: .gpkg, .shp (file or folder), .geojson")],
    round_number: RoundOpt,
    report: Annotated[Optional[Path], typer.Option(help="the problem report CSV (default: FILE.problems.csv)")] = None,
    actor: Actor = getpass.getuser(),
) -> None:
    """Validate an edited package and store its diff as a proposed change set (nothing else changes).

    Every problem is reported (layer, feature, rule, message), printed and as CSV beside the file;
    then the exit code is 1 and the registry is unchanged."""
    from loaders.field_package import read_package, write_problems_csv
    from registry.inspection import propose_package

    pkg = read_package(file)
    try:
        with engine().begin() as conn:
            result = propose_package(conn, pkg, round_number, actor=actor, tolerances=tolerances())
            if not result.ok:
                conn.rollback()
    except RegistryError as exc:
        _fail(exc)
    if not result.ok:
        out = report or file.with_name(file.name + ".problems.csv")
        write_problems_csv(result.problems, out)
        typer.secho(f"数据包有 {len(result.problems)} 个问题，登记库未改变 / the package has {len(result.problems)} "
                    "problems; the registry is unchanged", fg=typer.colors.RED, err=True)
        for p in result.problems:
            typer.echo(f"  [{p.rule}] {p.layer or '-'} {p.feature or ''}: {p.message}", err=True)
        typer.echo(f"报告 / report: {out}", err=True)
        raise typer.Exit(code=1)
    if result.existing:
        typer.echo(f"同一数据包已提交为变更集 {result.change_set_id} / this package is already change set "
                   f"{result.change_set_id}")
    else:
        typer.echo(f"变更集 {result.change_set_id}（待审批） / change set {result.change_set_id} proposed")
    typer.echo(json.dumps(result.counts, ensure_ascii=False))
    typer.echo(f"下一步 / next: registry changes show {result.change_set_id}")


@inspection_app.command("records")
def records(round_number: RoundOpt, line: Annotated[Optional[str], typer.Option(help="a line code")] = None) -> None:
    """The round's records (one per line and marker of each applied package)."""
    from registry.inspection import list_records

    try:
        with engine().connect() as conn:
            rows = list_records(conn, round_number, line_code=line)
    except RegistryError as exc:
        _fail(exc)
    for r in rows:
        typer.echo(f"{r['recorded_on']}  {r['marker_number'] or r['line_code']}  {r['finding']}  "
                   f"{r['left_team'] or ''} / {r['right_team'] or ''}  {r['sheet_ref'] or ''}  {r['notes'] or ''}")


@inspection_app.command("report")
def report_cmd(
    round_number: RoundOpt,
    output: Annotated[Path, typer.Option("-o", "--output", help="report.html, report.pdf or report.csv")],
) -> None:
    """The round's report: markers by condition per line, displaced markers, area changes, open findings."""
    from loaders.inspection_report import write_report

    try:
        with engine().connect() as conn:
            path = write_report(conn, round_number, output)
    except RegistryError as exc:
        _fail(exc)
    typer.echo(str(path))
