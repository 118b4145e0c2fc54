"""`registry db replica start|stop|promote|status`: read replicas of the managed cluster
(registry/db/replica.py). Point the API at them with REGISTRY_REPLICA_URLS."""
from __future__ import annotations

from typing import Annotated, Optional

import typer

from registry.errors import RegistryError

replica_app = typer.Typer(
    help="Read replicas of the managed cluster (streaming replication from pg_basebackup -R), "
         "each in var/replicas/NAME with its own port. Give the API their URLs in REGISTRY_REPLICA_URLS.",
    no_args_is_help=True)

NameOption = Annotated[str, typer.Option("--name", "-n", help="the replica's name (its folder under var/replicas)")]


def _replica(name: str):
    from registry.db.replica import ReplicaCluster
    from registry.settings import get_settings

    settings = get_settings()
    if not settings.managed:
        _fail("REGISTRY_DATABASE_URL is set: replicas are made of the managed cluster only "
              "(for another server, use its own replication)")
    return ReplicaCluster(settings, name)


def _fail(message) -> None:
    typer.secho(f"错误 / error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code=1)


@replica_app.command("start")
def replica_start(
    name: NameOption = "r1",
    port: Annotated[Optional[int], typer.Option(help="its TCP port (default: the first free one above the primary's)",
                                                min=1024, max=65535)] = None,
) -> None:
    """Create the replica (first time: pg_basebackup -R of the running primary) and start it."""
    try:
        rep = _replica(name)
        port = rep.start(port)
    except RegistryError as exc:
        _fail(exc)
    typer.echo(f"replica {name} running: {rep.url()}")
    typer.echo(f"  serve reads from it: REGISTRY_REPLICA_URLS={rep.url()}")


@replica_app.command("stop")
def replica_stop(name: NameOption = "r1",
                 remove: Annotated[bool, typer.Option("--remove", help="also delete its data folder and its replication slot on the primary (a stopped replica's slot keeps the WAL it will need)")] = False) -> None:
    """Stop the replica (fast shutdown); --remove deletes it too."""
    try:
        rep = _replica(name)
        if not rep.initialised:
            _fail(f"没有名为 {name} 的副本 / no replica named {name!r} ({rep.data_dir})")
        if remove:
            rep.remove()
            typer.echo(f"replica {name} removed")
            return
        typer.echo(f"replica {name} stopped" if rep.stop() else f"replica {name} was not running")
    except RegistryError as exc:
        _fail(exc)


@replica_app.command("promote")
def replica_promote(name: NameOption = "r1") -> None:
    """End the replica's recovery: it becomes a writable primary of its own (the old primary is not
    touched; point REGISTRY_DATABASE_URL at the promoted one)."""
    try:
        rep = _replica(name)
        rep.promote()
    except RegistryError as exc:
        _fail(exc)
    typer.echo(f"replica {name} promoted: {rep.url()} now takes writes")


@replica_app.command("status")
def replica_status(name: Annotated[Optional[str], typer.Option("--name", "-n", help="one replica (default: all)")] = None
                   ) -> None:
    """Each replica: running, recovering or promoted, replayed WAL position, lag in bytes behind the
    primary and replay delay (now − the last replayed commit; grows while the primary is idle).
    Exit 3 when a named replica is not running."""
    from registry.db.replica import all_replicas
    from registry.settings import get_settings

    try:
        reps = [_replica(name)] if name else all_replicas(get_settings())
    except RegistryError as exc:
        _fail(exc)
    if name and not reps[0].initialised:
        _fail(f"没有名为 {name} 的副本 / no replica named {name!r} ({reps[0].data_dir})")
    if not reps:
        typer.echo("no replicas (create one: registry db replica start)")
        return
    down = False
    for rep in reps:
        st = rep.status()
        typer.echo(f"{st.name}: port {st.port}, {st.data_dir}")
        if not st.running:
            down = True
            typer.echo("  running: False")
            continue
        if st.error:
            typer.echo(f"  running: True, not answering: {st.error}")
            continue
        role = "replica (streaming)" if st.in_recovery else "promoted (a primary of its own)"
        typer.echo(f"  running: True, {role}")
        if st.in_recovery:
            delay = "n/a" if st.replay_delay_s is None else f"{st.replay_delay_s:.1f} s"
            lag = "primary not reachable" if st.lag_bytes is None else f"{st.lag_bytes} bytes"
            typer.echo(f"  received: {st.receive_lsn}  replayed: {st.replay_lsn}  primary: {st.primary_lsn}")
            typer.echo(f"  lag: {lag}  replay delay: {delay}")
        typer.echo(f"  url: {rep.url()}")
    if name and down:
        raise typer.Exit(code=3)
