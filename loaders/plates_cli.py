"""`registry plates …`: issue, activate, replace, revoke, show and print doorplates; signing keys.

Mounted on the `registry` command by loaders/cli.py. Every write is one change set (kind
"doorplates"), in one transaction.
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from loaders.cli_support import engine
from loaders.scan_store_cli import scan_store_app
from registry.authorities import AUTHORITIES, AUTHORITY_HELP
from registry.errors import AmbiguousCode, RegistryError

if TYPE_CHECKING:
    from registry.divisions import CodeMatch

plates_app = typer.Typer(help="Digital doorplates (数字门牌): issue, lifecycle, printing, signing keys.",
                         no_args_is_help=True)
keys_app = typer.Typer(help="The HMAC keys that sign the QR codes (secrets are never printed).",
                       no_args_is_help=True)
plates_app.add_typer(keys_app, name="keys")
plates_app.add_typer(scan_store_app, name="scan-store")

Actor = Annotated[str, typer.Option(help="who does it (recorded in the change set)")]


def authority_option(value: Optional[str]) -> Optional[str]:
    """Typer callback of --authority / --code-authority: nbs2023 or mca2025 (any case), else exit 2:
    `nbs` or `mca` are refused, not guessed (the API's `authority` follows the same rule)."""
    if value is None:
        return None
    if value.strip().lower() not in AUTHORITIES:
        raise typer.BadParameter(f"应为 nbs2023 或 mca2025 / must be nbs2023 or mca2025, not {value!r}")
    return value.strip().lower()


Authority = Annotated[Optional[str], typer.Option("--authority", metavar="nbs2023|mca2025",
                                                  help=f"with --division: {AUTHORITY_HELP}",
                                                  callback=authority_option)]


def _fail(exc: Exception) -> None:
    typer.secho(f"错误 / error: {exc}", fg=typer.colors.RED, err=True)
    if isinstance(exc, AmbiguousCode):  # a usage error: the code needs --authority
        for c in exc.details["candidates"]:
            typer.echo(f"  --authority {c['authority']}: {c['name']}（{c['code']}）", err=True)
        raise typer.Exit(code=2)
    raise typer.Exit(code=1)


def _division(conn, division: str | None, authority: str | None, *, err: bool = False) -> CodeMatch | None:
    """Resolve --division by the registry's one rule and say, by name, what the command acts on."""
    if division is None:
        return None
    from registry.divisions import match_code

    resolved = match_code(conn, division, authority=authority, parameter="division")
    typer.echo(f"区划 / division: {resolved.name}（{resolved.authority} {resolved.code}）", err=err)
    return resolved


def _plate_id(plate: str) -> int:
    from registry.doorplates import parse_plate_code

    # all digits: the id; anything else: the short code printed on the plate (e.g. 000C1SR, plate 12345)
    return int(plate) if plate.isdigit() else parse_plate_code(plate)


@plates_app.command("issue")
def issue(
    division: Annotated[Optional[str], typer.Option(help="every address in this division and below (code)")] = None,
    street: Annotated[Optional[int], typer.Option(help="every address on this street (place name id)")] = None,
    address: Annotated[Optional[int], typer.Option(help="one address (id)")] = None,
    kind: Annotated[Optional[str], typer.Option(help="door, building, unit or flat (default: each address's own)")] = None,
    actor: Actor = "registry",
    authority: Authority = None,
) -> None:
    """Issue plates, idempotently: addresses that already have a live plate keep it (retired addresses
    get none); when nothing is left to issue it says so and records no change set."""
    from registry.doorplates import issue_plates

    started = time.perf_counter()
    try:
        with engine().begin() as conn:
            _division(conn, division, authority)
            result = issue_plates(conn, actor=actor, address_id=address, street_id=street, division=division,
                                  kind=kind, source="cli", authority=authority)
    except RegistryError as exc:
        _fail(exc)
    if result.change_set_id is None:
        typer.echo(f"无需签发 / nothing to issue: already issued {result.already}, no change set recorded "
                   f"({time.perf_counter() - started:.1f} s)")
        return
    typer.echo(f"issued {result.issued}, already issued {result.already} "
               f"(change set {result.change_set_id}, key {result.key_id}) in {time.perf_counter() - started:.1f} s")


@plates_app.command("activate")
def activate(
    plate: Annotated[Optional[str], typer.Argument(help="plate id or code")] = None,
    division: Annotated[Optional[str], typer.Option(help="every issued plate in this division")] = None,
    actor: Actor = "registry",
    authority: Authority = None,
) -> None:
    """Mark plates installed (issued → active)."""
    from registry.doorplates import activate_division, activate_plate

    if (plate is None) == (division is None):
        _fail(ValueError("give a plate or --division"))
    try:
        with engine().begin() as conn:
            if plate is not None:
                activate_plate(conn, _plate_id(plate), actor=actor)
                n = 1
            else:
                _division(conn, division, authority)
                n = activate_division(conn, division, actor=actor, authority=authority)
    except RegistryError as exc:
        _fail(exc)
    typer.echo(f"activated {n}")


@plates_app.command("replace")
def replace(
    plate: Annotated[str, typer.Argument(help="plate id or code")],
    reason: Annotated[str, typer.Option(help="why (damaged, renumbered …)")],
    actor: Actor = "registry",
) -> None:
    """Replace a plate: a new plate for the same address; the old QR code then names the new one."""
    from registry.doorplates import replace_plate

    try:
        with engine().begin() as conn:
            new = replace_plate(conn, _plate_id(plate), reason=reason, actor=actor)
    except RegistryError as exc:
        _fail(exc)
    typer.echo(f"replaced by plate {new['id']} ({new['code']})")


@plates_app.command("revoke")
def revoke(
    plate: Annotated[str, typer.Argument(help="plate id or code")],
    reason: Annotated[str, typer.Option(help="why")],
    actor: Actor = "registry",
) -> None:
    """Revoke a plate for good."""
    from registry.doorplates import revoke_plate

    try:
        with engine().begin() as conn:
            revoke_plate(conn, _plate_id(plate), reason=reason, actor=actor)
    except RegistryError as exc:
        _fail(exc)
    typer.echo("revoked")


@plates_app.command("show")
def show(plate: Annotated[str, typer.Argument(help="plate id or code")]) -> None:
    """A plate, its history and its scan URL, as JSON."""
    from registry.doorplates import KeyRing, get_plate, plate_url
    from registry.settings import get_settings

    try:
        with engine().connect() as conn:
            pid = _plate_id(plate)
            out = get_plate(conn, pid)
            out["url"] = plate_url(conn, pid, ring=KeyRing(ttl=0), base_url=get_settings().public_base_url)
    except RegistryError as exc:
        _fail(exc)
    typer.echo(json.dumps(out, ensure_ascii=False, indent=2))


@plates_app.command("print")
def print_sheet(
    division: Annotated[str, typer.Option(help="division code: its live plates are printed")],
    out: Annotated[Path, typer.Option("--out", "-o", help="PDF file to write")] = Path("plates.pdf"),
    kind: Annotated[Optional[str], typer.Option(help="only this kind")] = None,
    limit: Annotated[Optional[int], typer.Option(help="at most this many plates", min=1)] = None,
    authority: Authority = None,
    force_local_url: Annotated[bool, typer.Option(
        "--force-local-url", help="print even though REGISTRY_PUBLIC_BASE_URL is a loopback, private or local "
        "address (QR codes that only work on this network: for tests, never for plates on walls)")] = False,
) -> None:
    """Write a PDF print sheet (GB 17733 style, white on blue, QR on the right), four plates per A4 page,
    each page headed by the division, batch, page N of M and the base URL. Refused (exit 2) while
    REGISTRY_PUBLIC_BASE_URL is not a public address, unless --force-local-url."""
    from registry.doorplates import KeyRing, check_printable_base_url, print_division
    from registry.settings import get_settings

    base_url = get_settings().public_base_url
    try:
        warning = check_printable_base_url(base_url, force=force_local_url)
    except RegistryError as exc:
        typer.secho(f"错误 / error: {exc}", fg=typer.colors.RED, err=True)
        raise typer.Exit(code=2) from None
    if warning:
        typer.secho(f"警告 / warning: {warning}", fg=typer.colors.YELLOW, err=True)
    started = time.perf_counter()
    try:
        with engine().connect() as conn:
            _division(conn, division, authority)
            pdf, n = print_division(conn, division, ring=KeyRing(ttl=0), base_url=base_url,
                                    kind=kind, limit=limit, authority=authority, force_local_url=force_local_url)
    except RegistryError as exc:
        _fail(exc)
    out.write_bytes(pdf)
    typer.echo(f"{n} plates → {out} ({len(pdf) // 1024} KiB) in {time.perf_counter() - started:.1f} s")


@plates_app.command("reports")
def reports(
    division: Annotated[str, typer.Option(help="division code")],
    status: Annotated[str, typer.Option(help="open, closed or all")] = "open",
    limit: Annotated[int, typer.Option(help="at most this many", min=1, max=1000)] = 100,
    authority: Authority = None,
) -> None:
    """Problem reports from the scan page on plates in a division, newest first."""
    from registry.addresses import Page
    from registry.doorplates import list_reports

    try:
        with engine().connect() as conn:
            _division(conn, division, authority, err=True)  # stdout stays the tab-separated list
            records, total = list_reports(conn, division, Page.of(limit, 0), status=None if status == "all" else status,
                                          authority=authority)
    except RegistryError as exc:
        _fail(exc)
    from registry.doorplates import STATUS_NAMES

    for r in records:
        plate_status = r["plate"]["status"]
        # a plate that is not live says so (e.g. 暂停（地址已注销）: its address was retired)
        flag = "" if plate_status in ("issued", "active") else f" [{STATUS_NAMES.get(plate_status, plate_status)}]"
        typer.echo(f"{r['created_at'][:16]}\t{r['plate']['code']}{flag}\t{r['kind_name']}\t{r['status']}\t"
                   f"{r['address']['text']}\t{r['text'] or ''}")
    typer.echo(f"{total} report(s)", err=True)


@keys_app.command("rotate")
def keys_rotate(note: Annotated[Optional[str], typer.Option(help="free note")] = None, actor: Actor = "registry") -> None:
    """Add a signing key: plates issued from now on are signed with it; older keys keep verifying."""
    from registry.doorplates import rotate_key

    with engine().begin() as conn:
        key = rotate_key(conn, actor=actor, note=note)
    typer.echo(f"signing key {key.id} created (the secret stays in the database)")


@keys_app.command("retire")
def keys_retire(key_id: Annotated[int, typer.Argument(help="key id (see `plates keys list`)")],
                actor: Actor = "registry") -> None:
    """Retire a key: codes signed with it stop verifying (their plates must be replaced)."""
    from registry.doorplates import retire_key

    try:
        with engine().begin() as conn:
            retire_key(conn, key_id, actor=actor)
    except RegistryError as exc:
        _fail(exc)
    typer.echo(f"retired key {key_id}")


@keys_app.command("list")
def keys_list() -> None:
    """Signing keys: id, created, retired — never the secrets."""
    from registry.doorplates import list_keys

    with engine().connect() as conn:
        for k in list_keys(conn):
            state = f"retired {k.retired_at:%Y-%m-%d}" if k.retired_at else "live"
            typer.echo(f"{k.id}\t{k.created_at:%Y-%m-%d}\t{state}\t{k.note or ''}")
