"""`registry adjust …`: Division adjustments (区划调整): merge, split, rename, recode, transfer.

Mounted on the `registry` command by loaders/cli.py. Each adjustment is one change set of kind
`adjustment` in one transaction (registry/adjustments.py): with its approval document
(`--approval-ref 批复文号`) and `--effective DATE`, or, where the document is unknown,
`--known-in-force-by DATE` (recorded as an upper bound, with no document number). Also
`list`, and `division` / `address` with `--as-of DATE` (what the registry said on that day).
"""
from __future__ import annotations

import json
from datetime import date
from typing import Annotated, Optional

import typer

from loaders.cli_support import engine
from loaders.plates_cli import Authority, _fail
from registry.errors import RegistryError
from registry.faults import checkpoint

adjust_app = typer.Typer(help="Division adjustments (区划调整): merge, split, rename, recode, transfer.", no_args_is_help=True)

Actor = Annotated[str, typer.Option(help="who does it (recorded in the change set and the audit log)")]
ApprovalRef = Annotated[Optional[str], typer.Option("--approval-ref", help="the approval document (批复文号), e.g. "
                                                    "浙政函〔2026〕12号")]
Effective = Annotated[Optional[str], typer.Option("--effective", metavar="YYYY-MM-DD",
                                                  help="the date the adjustment took effect")]
KnownBy = Annotated[Optional[str], typer.Option("--known-in-force-by", metavar="YYYY-MM-DD",
                                                help="the document is unknown: the date it is known to be in force "
                                                     "by (recorded as an upper bound)")]
Note = Annotated[Optional[str], typer.Option(help="a note kept with the adjustment")]
AsOf = Annotated[Optional[str], typer.Option("--as-of", metavar="YYYY-MM-DD",
                                             help="what the registry said on that day")]


def _date(value: Optional[str], option: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"{option} 应为日期 YYYY-MM-DD / {option} must be a date YYYY-MM-DD, not {value!r}")


def _dating(approval_ref, effective, known_by, note):
    from registry.adjustments import Dating

    return Dating(approval_ref=approval_ref, effective=_date(effective, "--effective"),
                  known_in_force_by=_date(known_by, "--known-in-force-by"), note=note)


def _run(fn) -> None:
    try:
        with engine().begin() as conn:
            result = fn(conn)
            checkpoint("adjustment.commit")
        checkpoint("adjustment.committed")
    except RegistryError as exc:
        _fail(exc)
    d = result.dating
    when = f"生效 / effective {d.effective}" if d.effective else f"不晚于 / in force by {d.known_in_force_by}（上限 / upper bound）"
    typer.echo(f"区划调整 / adjustment #{result.id} {result.kind}: 变更集 / change set {result.change_set_id}, "
               f"批复文号 / approval {d.approval_ref or '无 / none'}, {when}")
    for key, value in result.counts.items():
        typer.echo(f"  {key}: {value}")


def _codes(pairs: list[str] | None, option: str) -> dict[str, str]:
    out = {}
    for p in pairs or ():
        old, sep, new = p.partition("=")
        if not sep or not old.strip() or not new.strip():
            raise typer.BadParameter(f"{option} 应为 旧代码=新代码 / {option} must be OLD=NEW, not {p!r}")
        out[old.strip()] = new.strip()
    return out


@adjust_app.command("merge")
def merge_cmd(
    townships: Annotated[list[str], typer.Argument(help="the township codes merged (the --into one among them or not)")],
    into: Annotated[str, typer.Option(help="the township that stays (keeps its id)")],
    name: Annotated[Optional[str], typer.Option(help="a new name for the merged township")] = None,
    new_code: Annotated[Optional[str], typer.Option("--code", help="a new code for the merged township")] = None,
    approval_ref: ApprovalRef = None, effective: Effective = None, known_in_force_by: KnownBy = None,
    note: Note = None, actor: Actor = "registry", authority: Authority = None,
) -> None:
    """Merge townships: the others are abolished, their villages and everything under them move."""
    from registry.adjustments import merge

    dating = _dating(approval_ref, effective, known_in_force_by, note)
    _run(lambda conn: merge(conn, [*townships, into], into=into, name=name, new_code=new_code, dating=dating,
                            actor=actor, authority=authority))


@adjust_app.command("split")
def split_cmd(
    township: Annotated[str, typer.Argument(help="the township split")],
    part: Annotated[list[str], typer.Option(help="NAME:CODE[:MCA_CODE]=VILLAGE,VILLAGE,… one per new township "
                                                 "(repeat); a part with the township's own code keeps it")],
    approval_ref: ApprovalRef = None, effective: Effective = None, known_in_force_by: KnownBy = None,
    note: Note = None, actor: Actor = "registry", authority: Authority = None,
) -> None:
    """Split a township by villages: every village goes to exactly one part."""
    from registry.adjustments import Part, split

    parts = []
    for p in part:
        head, sep, villages = p.partition("=")
        bits = head.split(":")
        if not sep or len(bits) not in (2, 3) or not villages.strip():
            raise typer.BadParameter(f"--part 应为 名称:代码=村代码,村代码 / --part must be NAME:CODE=VILLAGE,…, not {p!r}")
        parts.append(Part(bits[0].strip(), bits[1].strip(), tuple(v.strip() for v in villages.split(",") if v.strip()),
                          mca_code=bits[2].strip() if len(bits) == 3 else None))
    dating = _dating(approval_ref, effective, known_in_force_by, note)
    _run(lambda conn: split(conn, township, parts, dating=dating, actor=actor, authority=authority))


@adjust_app.command("rename")
def rename_cmd(
    code: Annotated[str, typer.Argument(help="the division renamed")],
    name: Annotated[str, typer.Option(help="the new name, e.g. 旧馆街道")],
    new_code: Annotated[Optional[str], typer.Option("--code", help="a new code at the same time (镇 → 街道)")] = None,
    approval_ref: ApprovalRef = None, effective: Effective = None, known_in_force_by: KnownBy = None,
    note: Note = None, actor: Actor = "registry", authority: Authority = None,
) -> None:
    """Rename a division; addresses under it get their standard text re-derived."""
    from registry.adjustments import rename

    dating = _dating(approval_ref, effective, known_in_force_by, note)
    _run(lambda conn: rename(conn, code, name=name, new_code=new_code, dating=dating, actor=actor,
                             authority=authority))


@adjust_app.command("recode")
def recode_cmd(
    code: Annotated[str, typer.Argument(help="the township re-coded")],
    new_code: Annotated[str, typer.Option("--code", help="the new 9-digit code (both authorities unless --mca-code)")],
    mca_code: Annotated[Optional[str], typer.Option("--mca-code", help="a different new MCA code")] = None,
    village_code: Annotated[Optional[list[str]], typer.Option(help="OLD=NEW village codes the document names "
                                                                   "(default: new township code + own suffix)")] = None,
    approval_ref: ApprovalRef = None, effective: Effective = None, known_in_force_by: KnownBy = None,
    note: Note = None, actor: Actor = "registry", authority: Authority = None,
) -> None:
    """Give a township a new code; its villages' and addresses' codes are re-derived, old ones resolve."""
    from registry.adjustments import recode

    dating = _dating(approval_ref, effective, known_in_force_by, note)
    codes = _codes(village_code, "--village-code")
    _run(lambda conn: recode(conn, code, new_code=new_code, new_mca_code=mca_code, dating=dating, actor=actor,
                             village_codes=codes, authority=authority))


@adjust_app.command("transfer")
def transfer_cmd(
    villages: Annotated[list[str], typer.Argument(help="the village codes transferred")],
    to: Annotated[str, typer.Option(help="the township they go to (with --to-name: a new township's code)")],
    from_code: Annotated[Optional[str], typer.Option("--from", help="check they are all in this township")] = None,
    to_name: Annotated[Optional[str], typer.Option(help="set up a new township of this name")] = None,
    village_code: Annotated[Optional[list[str]], typer.Option(help="OLD=NEW village codes the document names")] = None,
    approval_ref: ApprovalRef = None, effective: Effective = None, known_in_force_by: KnownBy = None,
    note: Note = None, actor: Actor = "registry", authority: Authority = None,
) -> None:
    """Move villages to another township (or to a new one); polygons, codes and texts follow."""
    from registry.adjustments import transfer

    dating = _dating(approval_ref, effective, known_in_force_by, note)
    codes = _codes(village_code, "--village-code")
    _run(lambda conn: transfer(conn, villages, to=to, from_code=from_code, to_name=to_name, codes=codes,
                               dating=dating, actor=actor, authority=authority))


@adjust_app.command("list")
def list_cmd(limit: int = 50, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """The adjustments, newest first, with their approval document or upper-bound date."""
    from registry.adjustment_history import list_adjustments

    with engine().connect() as conn:
        rows = list_adjustments(conn, limit=limit)
    if as_json:
        typer.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    for a in rows:
        when = a["effective_on"] or f"≤{a['known_in_force_by']}"
        typer.echo(f"{a['id']:>5}  {a['kind']:<9} {when:<12} {a['approval_ref'] or '（无批复文号 / no document）'}  "
                   f"变更集 / change set {a['change_set_id']}")


@adjust_app.command("division")
def division_cmd(code: str, as_of: AsOf = None, authority: Authority = None) -> None:
    """A division as JSON, today or `--as-of` a date (old codes answer with successors and changes)."""
    from registry.adjustment_history import adjustment_context
    from registry.as_of import division_as_of
    from registry.divisions import get_division

    try:
        with engine().connect() as conn:
            day = _date(as_of, "--as-of")
            if day is not None:
                body = division_as_of(conn, code, day, authority=authority)
            else:
                body = get_division(conn, code, authority=authority).as_dict()
                body.update(adjustment_context(conn, code, body["id"], body["status"]))
    except RegistryError as exc:
        _fail(exc)
    typer.echo(json.dumps(body, ensure_ascii=False, indent=2))


@adjust_app.command("address")
def address_cmd(address_id: int, as_of: AsOf = None) -> None:
    """An address as GeoJSON, today or `--as-of` a date."""
    from registry.addresses import as_feature, get_address
    from registry.as_of import address_as_of

    try:
        with engine().connect() as conn:
            day = _date(as_of, "--as-of")
            body = address_as_of(conn, address_id, day) if day else as_feature(get_address(conn, address_id))
    except RegistryError as exc:
        _fail(exc)
    typer.echo(json.dumps(body, ensure_ascii=False, indent=2))


@adjust_app.command("observed")
def observed_cmd(actor: Actor = "registry") -> None:
    """Apply the three real township adjustments (data/reference/township_adjustments_observed.csv) to a
    registry loaded with `registry load reference --before-adjustments` and whatever was built on it since."""
    from loaders.reference import carry_through_observed_adjustments

    try:
        with engine().begin() as conn:
            done = carry_through_observed_adjustments(conn, actor=actor)
    except RegistryError as exc:
        _fail(exc)
    typer.echo(f"区划调整 / adjustments applied: {', '.join(f'#{i}' for i in done)} "
               "（不晚于 2023-06-30，无批复文号 / in force by 2023-06-30, no approval document）")
