"""`registry demo urls`: where to look once `make demo` has loaded and issued the demo city — the
landing page, the map, one real doorplate scan URL, one search, the OGC landing page, the API docs.
Mounted on the `registry` command by loaders/cli.py; `make demo` runs it just before serving."""
from __future__ import annotations

from typing import Annotated, Optional
from urllib.parse import quote

import typer

from registry.errors import RegistryError

demo_app = typer.Typer(help="The demo city: where to look.", no_args_is_help=True)

_PREFIX = "浙江省湖州市"  # dropped from the sample search: people type from the county down

_SAMPLE = """
    SELECT p.id AS plate_id, a.id AS address_id, a.full_text
    FROM doorplates p JOIN addresses a ON a.id = p.address_id
    WHERE p.status IN ('issued', 'active') AND a.status = 'active' AND a.number <> ''
    ORDER BY p.id LIMIT 1"""


def demo_links(conn, base_url: str, public_base_url: str) -> list[tuple[str, str]]:
    """(label, URL) pairs; the scan URL is the one the plate's QR code carries (public base URL)."""
    from registry.doorplates import KeyRing, plate_url

    base = base_url.rstrip("/")
    links = [("首页 / landing page", f"{base}/"), ("地图 / map", f"{base}/map")]
    from sqlalchemy import text

    row = conn.execute(text(_SAMPLE)).mappings().first()
    if row is not None:
        links.append(("门牌扫码页 / a doorplate's scan page",
                      plate_url(conn, row["plate_id"], ring=KeyRing(ttl=0), base_url=public_base_url)))
        query = row["full_text"].removeprefix(_PREFIX)
        links.append((f"搜索 / a search ({query})", f"{base}/v1/search?q={quote(query)}"))
        links.append(("该地址 / that address (GeoJSON)", f"{base}/v1/addresses/{row['address_id']}"))
    links += [("OGC API – Features", f"{base}/ogc"), ("矢量瓦片 / vector tiles", f"{base}/tiles"),
              ("API 文档 / API docs", f"{base}/docs")]
    return links


@demo_app.command("urls")
def urls(
    base_url: Annotated[Optional[str], typer.Option(
        help="where the API is served (default: REGISTRY_PUBLIC_BASE_URL)")] = None,
) -> None:
    """Print the pages to open (a scan URL needs issued plates: `registry plates issue --division 330500`)."""
    from registry.db.engine import make_engine
    from registry.settings import get_settings

    settings = get_settings()
    engine = make_engine(settings, pool_size=1)
    try:
        with engine.connect() as conn:
            links = demo_links(conn, base_url or settings.public_base_url, settings.public_base_url)
    except RegistryError as exc:
        typer.secho(f"错误 / error: {exc}", fg=typer.colors.RED, err=True)
        raise typer.Exit(code=1)
    finally:
        engine.dispose()
    width = max(len(label) for label, _ in links)
    typer.echo("看这里 / where to look:")
    for label, url in links:
        typer.echo(f"  {label.ljust(width)}  {url}")
    if not any("scan" in label for label, _ in links):
        typer.echo("  （尚无门牌 / no plates yet: registry plates issue --division 330500）")
