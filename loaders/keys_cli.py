"""`registry keys …`: the API keys of agencies (a secret is printed once; only its hash is stored)."""
from __future__ import annotations

from typing import Annotated, Optional

import typer

from loaders.cli_support import engine, fail
from registry.errors import RegistryError

keys_app = typer.Typer(help="API keys for agencies.", no_args_is_help=True)


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
        fail(exc)
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
        fail(exc)
    typer.echo(f"revoked {prefix}")
