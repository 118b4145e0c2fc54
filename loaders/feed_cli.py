"""`registry changes feed --since X -o DIR`: the change feed (registry/feed.py) as JSON lines files.

Writes `DIR/change_sets.jsonl` (one line per applied change set: id, kind, applied_at, author,
reason, 批复文号, counts), `DIR/entities.jsonl` (one line per entity a change set touched:
change_set_id, type, id, version, action, status, successors) and `DIR/next_since` (the value to
pass as --since next time). Registered on the `registry changes` group from loaders/cli.py.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from registry.errors import InvalidQuery, NotFound
from registry.feed import MAX_LIMIT, changes


def feed(
    output: Annotated[Path, typer.Option("--output", "-o", help="the folder to write the .jsonl files into")],
    since: Annotated[Optional[str], typer.Option(help="a change set id or an ISO time (default: from the start)")] = None,
    page_size: Annotated[int, typer.Option(help=f"entities read per page, 1–{MAX_LIMIT}")] = 5000,
) -> None:
    """Write the change feed since a change set or a time as JSON lines files."""
    from loaders.cli_support import engine

    output.mkdir(parents=True, exist_ok=True)
    eng = engine()
    n_sets = n_entities = 0
    last = since
    try:
        with eng.connect() as conn, open(output / "change_sets.jsonl", "w", encoding="utf-8") as sets, \
                open(output / "entities.jsonl", "w", encoding="utf-8") as ents:
            kwargs: dict = {"since": since}
            while True:
                page = changes(conn, limit=page_size, **kwargs)
                for cs in page["change_sets"]:
                    entities = cs.pop("entities")
                    if not kwargs.get("cursor") or str(cs["id"]) != kwargs["cursor"].split(":")[0]:
                        cs.pop("complete")
                        sets.write(json.dumps(cs, ensure_ascii=False) + "\n")
                        n_sets += 1
                    for e in entities:
                        ents.write(json.dumps({"change_set_id": cs["id"], **e}, ensure_ascii=False) + "\n")
                    n_entities += len(entities)
                    last = str(cs["id"])
                if page["next"] is None:
                    break
                kwargs = page["next"]
    except (InvalidQuery, NotFound) as exc:
        typer.secho(f"错误 / error: {exc}", fg=typer.colors.RED, err=True)
        raise typer.Exit(code=2) from None
    finally:
        eng.dispose()
    (output / "next_since").write_text((last or "") + "\n", encoding="utf-8")
    typer.echo(f"{n_sets} 个变更集、{n_entities} 个实体 / change sets, entities → {output} (next --since {last})")
