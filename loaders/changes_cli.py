"""`registry changes …`: Change sets: list, show (with the diff), approve, reject, apply.

Mounted on the `registry` command by loaders/cli.py. Approve, reject and apply each run in one
transaction; a stale change set (its base changed since the diff) exits 1 with the entity named.
"""
from __future__ import annotations

import getpass
import json
from typing import Annotated, Optional

import typer

from loaders.cli_support import engine
from registry.errors import Conflict, RegistryError
from registry.faults import checkpoint

changes_app = typer.Typer(help="Change sets: list, show (with the diff), approve, reject, apply.", no_args_is_help=True)

Actor = Annotated[str, typer.Option(help="who does it (recorded in the change set and the audit log)")]


def _fail(exc: Exception) -> None:
    typer.secho(f"错误 / error: {exc}", fg=typer.colors.RED, err=True)
    entity = getattr(exc, "details", {}).get("entity")
    if entity:
        typer.echo(f"  冲突对象 / conflicting entity: {entity}", err=True)
    raise typer.Exit(code=4 if isinstance(exc, Conflict) else 1)


@changes_app.command("list")
def list_cmd(
    kind: Annotated[Optional[str], typer.Option(help="inspection, adjustment, load_addresses …")] = None,
    status: Annotated[Optional[str], typer.Option(help="proposed, approved, applied, rejected")] = None,
    limit: int = 50,
) -> None:
    """The newest change sets first."""
    from registry.changes import list_change_sets

    with engine().connect() as conn:
        for cs in list_change_sets(conn, kind=kind, status=status, limit=limit):
            typer.echo(f"{cs.id:>6}  {cs.kind:<15} {cs.status:<9} {cs.author:<12} {cs.created_at:%Y-%m-%d %H:%M}  "
                       f"{cs.source or ''}")


@changes_app.command("show")
def show(change_set_id: int, as_json: Annotated[bool, typer.Option("--json", help="the whole record as JSON")] = False) -> None:
    """A change set, with its diff when it has one."""
    from registry.changes import get_change_set
    from registry.inspection.show import diff_lines

    try:
        with engine().connect() as conn:
            cs = get_change_set(conn, change_set_id)
    except RegistryError as exc:
        _fail(exc)
    if as_json:
        typer.echo(json.dumps({**cs.summary(), "details": cs.details}, ensure_ascii=False, indent=1, default=str))
        return
    s = cs.summary()
    typer.echo(f"变更集 / change set {cs.id}: {cs.kind}, {cs.status}")
    for k in ("author", "created_at", "approved_by", "approved_at", "applied_by", "applied_at", "rejected_by",
              "rejected_at", "source", "reason", "approval_ref"):
        if s.get(k):
            typer.echo(f"  {k}: {s[k]}")
    typer.echo(f"  counts: {json.dumps(cs.counts, ensure_ascii=False)}")
    for line in diff_lines(cs):
        typer.echo(line)


def _act(action: str, change_set_id: int, actor: str, reason: str | None = None) -> None:
    from registry.changes import apply_reviewed, approve, reject

    try:
        with engine().begin() as conn:
            if action == "approve":
                cs = approve(conn, change_set_id, actor=actor)
                done = True
            elif action == "reject":
                cs = reject(conn, change_set_id, actor=actor, reason=reason)
                done = True
            else:
                cs, done = apply_reviewed(conn, change_set_id, actor=actor)
            checkpoint("changes.commit")
        checkpoint("changes.committed")
    except RegistryError as exc:
        _fail(exc)
    if not done:
        typer.echo(f"变更集 {cs.id} 已应用，未做任何改动 / change set {cs.id} was already applied: nothing done")
        return
    typer.echo(f"变更集 {cs.id}: {cs.status}（{actor}） / change set {cs.id} {cs.status} by {actor}")
    if action == "apply":
        typer.echo(json.dumps(cs.counts, ensure_ascii=False))


@changes_app.command("approve")
def approve_cmd(change_set_id: int, actor: Actor = getpass.getuser()) -> None:
    """Approve a proposed change set (it still changes nothing until applied)."""
    _act("approve", change_set_id, actor)


@changes_app.command("reject")
def reject_cmd(change_set_id: int, reason: Annotated[Optional[str], typer.Option(help="why (kept in the change set)")] = None,
               actor: Actor = getpass.getuser()) -> None:
    """Reject a proposed or approved change set."""
    _act("reject", change_set_id, actor, reason)


@changes_app.command("apply")
def apply_cmd(change_set_id: int, actor: Actor = getpass.getuser()) -> None:
    """Apply an approved change set in one transaction (idempotent; refuses a stale one, exit 4)."""
    _act("apply", change_set_id, actor)
