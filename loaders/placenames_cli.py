"""`registry placenames …`: place names by the national rules.

Mounted on the `registry` command by loaders/cli.py.
`romanize NAME…` (the 1984 rules; no database), `check NAME --category C --division CODE` (the
naming checks, findings in Chinese and English; exit 1 when a finding is an error), `show ID`
(one name with its former names and history).
"""
from __future__ import annotations

import json
from typing import Annotated, Optional

import typer

from loaders.cli_support import engine
from loaders.plates_cli import _fail
from registry.errors import RegistryError

placenames_app = typer.Typer(help="Place names (地名): romanize, naming checks, show.", no_args_is_help=True)


@placenames_app.command("romanize")
def romanize_cmd(
    names: Annotated[list[str], typer.Argument(help="the names, e.g. 衣裳街 南浔区")],
    category: Annotated[Optional[str], typer.Option(help="the category (natural_village: one word)")] = None,
    one_word: Annotated[bool, typer.Option("--one-word", help="a natural village or town: one word (王村 Wangcun)")]
    = False,
    sign: Annotated[bool, typer.Option("--sign", help="also the all-capitals sign form (GB 17733)")] = False,
) -> None:
    """Romanize names by the 1984 place-name spelling rules."""
    from registry.placename_categories import category_code
    from registry.text.romanization import romanize, sign_form

    code = category_code(category) if category else None
    if category and code is None:
        raise typer.BadParameter(f"未知的地名类别 / unknown category {category!r}")
    for name in names:
        r = romanize(name, category=code, one_word=one_word)
        typer.echo(f"{name}\t{r}" + (f"\t{sign_form(r)}" if sign else ""))


@placenames_app.command("check")
def check_cmd(
    name: Annotated[str, typer.Argument(help="the proposed name")],
    category: Annotated[str, typer.Option(help="its category: code, Chinese name or synonym (road, 桥梁 …)")],
    division: Annotated[str, typer.Option(help="the division it lies in (a code of either authority)")],
    as_json: Annotated[bool, typer.Option("--json", help="print the result as JSON")] = False,
) -> None:
    """Naming checks for a proposed name: duplicates, homophones, generic, characters, division names."""
    from registry.placename_checks import check_name

    try:
        with engine().connect() as conn:
            result = check_name(conn, name, category=category, division=division)
    except RegistryError as exc:
        _fail(exc)
    if as_json:
        typer.echo(json.dumps(result, ensure_ascii=False, indent=2))
    else:
        typer.echo(f"{result['name']}（{result['category']}，{result['county']}）{result['romanized']}")
        if not result["findings"]:
            typer.echo("  未发现问题 / no findings")
        for f in result["findings"]:
            typer.echo(f"  [{f['severity']}] {f['rule']}: {f['reason_zh']} / {f['reason_en']}")
    if not result["ok"]:
        raise typer.Exit(code=1)


@placenames_app.command("show")
def show_cmd(pid: Annotated[int, typer.Argument(help="the place name's id")]) -> None:
    """One place name with its former names, aliases and history (JSON)."""
    from registry.placenames import get_place_name

    try:
        with engine().connect() as conn:
            body = get_place_name(conn, pid, geometry=False)
    except RegistryError as exc:
        _fail(exc)
    typer.echo(json.dumps(body, ensure_ascii=False, indent=2, default=str))
