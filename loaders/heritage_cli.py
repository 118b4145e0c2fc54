"""`registry heritage …`: the place-name cultural heritage catalogue (地名文化遗产保护名录).

Mounted on the `registry` command by loaders/cli.py.
`load` seeds the catalogue with the real facts of data/reference/heritage_huzhou.csv (or loads a
FILE of items): through the common loader (validation, rejects with reasons, one change set,
idempotent). `list`, `show ID`, `atlas -o atlas.pdf|atlas.html`.
"""
from __future__ import annotations

import csv
import json
import re
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from data import REFERENCE_DIR
from loaders.cli_support import engine
from loaders.plates_cli import _fail
from registry.errors import RegistryError

if TYPE_CHECKING:
    from sqlalchemy import Connection

heritage_app = typer.Typer(help="The heritage catalogue (地名文化遗产): load, list, show, atlas.", no_args_is_help=True)

HERITAGE_CSV = REFERENCE_DIR / "heritage_huzhou.csv"
PROVINCIAL_CATALOGUE = "浙江省千年古镇（古村落）地名文化遗产"
_HEADER = ["name", "level", "category", "division_code", "wkt", "catalogue", "batch", "listed_year", "origin",
           "description", "source_url", "certainty", "synthetic"]


def _division(conn: Connection, name: str, parent_id: int | None, level: str) -> int | None:
    from sqlalchemy import text

    return conn.execute(text("""SELECT id FROM divisions WHERE level = :lv AND status = 'active'
                                AND (name = :n OR full_name = :n) AND (CAST(:p AS bigint) IS NULL OR parent_id = :p)
                                ORDER BY id LIMIT 1"""), {"lv": level, "n": name, "p": parent_id}).scalar()


def reference_rows(conn: Connection, path: Path = HERITAGE_CSV) -> tuple[list[dict], list[str]]:
    """The reference facts as loader rows (division code, a point inside the finest division that has
    a polygon) and the rows that could not be placed (with the reason)."""
    from sqlalchemy import text

    rows, problems = [], []
    with path.open(encoding="utf-8", newline="") as f:
        for n, r in enumerate(csv.DictReader(f), start=2):
            county = _division(conn, r["county"], None, "county")
            if county is None:
                problems.append(f"第 {n} 行 / row {n}: 未知的县区 / unknown county {r['county']}")
                continue
            chain = [county]
            township = _division(conn, r["township"], county, "township") if r["township"] else None
            if township:
                chain.append(township)
                village = _division(conn, r["name"], township, "village") if r["name"].endswith("村") else None
                if village:
                    chain.append(village)
            code, wkt = conn.execute(text("""
                SELECT d.nbs_code, (SELECT ST_AsText(ST_PointOnSurface(g.geom)) FROM divisions g
                                    WHERE g.id = ANY(:chain) AND g.geom IS NOT NULL
                                    ORDER BY array_position(:chain, g.id) DESC LIMIT 1)
                FROM divisions d WHERE d.id = :last"""), {"chain": chain, "last": chain[-1]}).one()
            if wkt is None:
                problems.append(f"第 {n} 行 / row {n}: {r['name']} 所在区划没有边界 / its division has no polygon")
                continue
            listed = r["listed"] or ""
            year = re.search(r"(19|20)\d\d", listed)
            provincial = r["catalogue"] == "provincial"
            rows.append({
                "name": r["name"], "level": "province" if provincial else "candidate", "category": r["category"],
                "division_code": code, "wkt": wkt, "catalogue": PROVINCIAL_CATALOGUE if provincial else None,
                "batch": listed or None, "listed_year": year.group(0) if year else None,
                "origin": r["origin_note"] or None,
                "description": None if provincial or r["catalogue"] == "candidate" else r["catalogue"],
                "source_url": r["source"], "certainty": r["confidence"] or None, "synthetic": "false",
                # the point is the division's, not the item's own: said with the fact
            })
    return rows, problems


def seed_reference(conn: Connection, *, actor: str = "registry", path: Path = HERITAGE_CSV, reject_file=None):
    """Load the real heritage facts through the common loader; returns (report, problems)."""
    from loaders.run import FileOptions, load_entities_file
    from registry.loading.entities import EntityOptions

    rows, problems = reference_rows(conn, path)
    with tempfile.TemporaryDirectory() as tmp:
        file = Path(tmp) / "heritage_huzhou_rows.csv"
        with file.open("w", encoding="utf-8", newline="") as f:
            w = csv.DictWriter(f, fieldnames=_HEADER)
            w.writeheader()
            for r in rows:
                w.writerow({k: ("" if v is None else v) for k, v in r.items()})
        report = load_entities_file(conn, file, "heritage", FileOptions(crs="EPSG:4490", reject_file=reject_file),
                                    EntityOptions(source=f"data/reference/{path.name}", actor=actor,
                                                  reason="地名文化遗产真实条目（含来源与可信度）/ the real heritage facts",
                                                  code_authority="nbs2023"))
    return report, problems


@heritage_app.command("load")
def load_cmd(
    file: Annotated[Optional[Path], typer.Argument(help="a file of items (CSV/XLSX/GeoPackage …); "
                                                       "default: the real facts of data/reference/heritage_huzhou.csv")]
    = None,
    actor: Annotated[str, typer.Option(help="who loads (recorded in the change set)")] = "registry",
) -> None:
    """Seed the catalogue with the real, sourced facts (or load FILE through `registry load heritage`)."""
    from loaders.run import FileOptions, load_entities_file
    from registry.loading.entities import EntityOptions

    try:
        with engine().begin() as conn:
            if file is None:
                report, problems = seed_reference(conn, actor=actor)
            else:
                report, problems = load_entities_file(conn, file, "heritage", FileOptions(),
                                                      EntityOptions(source=str(file), actor=actor)), []
    except RegistryError as exc:
        _fail(exc)
    typer.echo(f"变更集 / change set {report.change_set_id}: read {report.read}, inserted {report.inserted}, "
               f"updated {report.updated}, unchanged {report.unchanged}, rejected {report.rejected}")
    for p in problems:
        typer.echo(f"  {p}", err=True)


@heritage_app.command("list")
def list_cmd(
    level: Annotated[Optional[str], typer.Option(help="province, city, county, national or candidate")] = None,
    category: Annotated[Optional[str], typer.Option(help="千年古镇, 千年古村落, 古街巷 …")] = None,
    division: Annotated[Optional[str], typer.Option(help="a division code: items within it")] = None,
    real_only: Annotated[bool, typer.Option("--real-only", help="leave out synthetic items")] = False,
) -> None:
    """List the catalogue (synthetic items are marked)."""
    from registry.heritage import list_items

    try:
        with engine().connect() as conn:
            items = list_items(conn, level=level, category=category, division=division,
                               include_synthetic=not real_only)
    except RegistryError as exc:
        _fail(exc)
    for i in items:
        mark = "  [合成 / synthetic]" if i["synthetic"] else ""
        typer.echo(f"{i['id']}\t{i['name']}\t{i['romanized']}\t{i['level_name']}\t{i['category']}\t"
                   f"{i['county']['name'] or ''}{mark}")


@heritage_app.command("show")
def show_cmd(item_id: Annotated[int, typer.Argument(help="the item's id")]) -> None:
    """One item with its listing, source, certainty and history (JSON)."""
    from registry.heritage import get_item

    try:
        with engine().connect() as conn:
            body = get_item(conn, item_id)
    except RegistryError as exc:
        _fail(exc)
    typer.echo(json.dumps(body, ensure_ascii=False, indent=2, default=str))


@heritage_app.command("atlas")
def atlas_cmd(
    output: Annotated[Path, typer.Option("-o", "--output", help="atlas.pdf or atlas.html")],
    division: Annotated[Optional[str], typer.Option(help="a division code: only the items within it")] = None,
    real_only: Annotated[bool, typer.Option("--real-only", help="leave out synthetic items")] = False,
) -> None:
    """The atlas (名录图集): a cover, contents, one entry per item with its map, an index by county."""
    from registry.heritage_atlas import atlas_html, atlas_pdf, build_atlas

    try:
        with engine().connect() as conn:
            atlas = build_atlas(conn, division=division, include_synthetic=not real_only)
    except RegistryError as exc:
        _fail(exc)
    if output.suffix.lower() == ".html":
        output.write_text(atlas_html(atlas), encoding="utf-8")
    elif output.suffix.lower() == ".pdf":
        output.write_bytes(atlas_pdf(atlas))
    else:
        raise typer.BadParameter("输出文件应为 .pdf 或 .html / the output must be .pdf or .html", param_hint="-o")
    typer.echo(f"{output}: {len(atlas['items'])} 条 / entries")
