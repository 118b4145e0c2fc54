"""`registry derive …`: data derived from what the registry holds (boundary lines, markers)."""
from __future__ import annotations

from typing import Annotated

import typer

from loaders.cli_support import engine, fail
from registry.errors import RegistryError

derive_app = typer.Typer(help="Derive data from what the registry holds.", no_args_is_help=True)


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
        fail(exc)
    typer.echo(lines_summary(level, counts))


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
        fail(exc)
    typer.echo(markers_summary(counts))


def lines_summary(level: str, c: dict) -> str:
    if not c["changed"]:
        return f"{level} 级界线未变 / {level} boundary lines unchanged ({c['unchanged']} lines)"
    return (f"{level} boundary lines: {c['added']} added, {c['updated']} updated, {c['retired']} retired, "
            f"{c['unchanged']} unchanged (change set #{c['change_set_id']})")


def markers_summary(c: dict) -> str:
    if not c["markers"]:
        return f"界桩未变 / markers unchanged ({c['unchanged_lines']} lines already have theirs)"
    return (f"markers written: {c['markers']} on {c['lines']} lines, {c['reference_objects']} reference objects "
            f"(change set #{c['change_set_id']})")
