"""Read replicas of the managed cluster: PostgreSQL's own streaming replication, on this machine.

A replica is a second cluster in `var/replicas/<name>` (next to the primary's data folder),
made by `pg_basebackup -R` from the running primary (which writes `standby.signal` and the
`primary_conninfo` to reach it), with its own port and a smaller memory budget, started and
stopped with pg_ctl like the primary. `promote` turns it into a primary of its own (the old
primary is not touched: pointing writers at the promoted one is the operator's step).

Nothing of the primary is restarted: the registry's own clusters already stream (wal_level
`replica` and 10 WAL senders are PostgreSQL's defaults, initdb's pg_hba.conf trusts replication
from 127.0.0.1); a primary whose pg_hba.conf lacks that line gets it appended, then reloaded.
"""
from __future__ import annotations

import logging
import os
import pwd
import re
import shutil
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

from registry.db.cluster import SUPERUSER, ManagedCluster
from registry.errors import SetupError
from registry.settings import Settings

log = logging.getLogger(__name__)

NAME = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
DEFAULT_NAME = "r1"
# The replica serves reads next to the primary on the same machine: a quarter of its memory.
REPLICA_CONF = {
    "shared_buffers": "256MB",
    "effective_cache_size": "4GB",
    "hot_standby": "on",
    # queries on the replica hold back the primary's vacuum rather than being cancelled by it
    "hot_standby_feedback": "on",
}
REPLICATION_HBA = "host    replication     {user}        127.0.0.1/32            trust\n"


class ReplicaError(SetupError):
    """A replica command that cannot be done as asked (primary down, name taken, port busy …)."""


@dataclass(frozen=True)
class ReplicaStatus:
    name: str
    data_dir: Path
    port: int | None
    running: bool
    in_recovery: bool | None = None  # False: promoted
    receive_lsn: str | None = None
    replay_lsn: str | None = None
    primary_lsn: str | None = None
    lag_bytes: int | None = None
    replay_delay_s: float | None = None  # now() − the last replayed transaction's commit time
    error: str | None = None

    @property
    def url(self) -> str | None:
        return None if self.port is None else f"postgresql+psycopg://{SUPERUSER}@127.0.0.1:{self.port}"


def port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def replicas_root(primary: ManagedCluster) -> Path:
    """var/replicas beside the primary's data folder (var/pgdata)."""
    return primary.data_dir.parent / "replicas"


class ReplicaCluster:
    """One named replica of the managed primary."""

    def __init__(self, settings: Settings, name: str = DEFAULT_NAME, *, primary: ManagedCluster | None = None,
                 root: Path | None = None, conf: dict[str, str] | None = None) -> None:
        if not NAME.match(name):
            raise ReplicaError(f"副本名称无效 / invalid replica name {name!r}: lower-case letters, digits, - and _, "
                               "starting with a letter, at most 32", parameter="--name")
        self.settings = settings
        self.name = name
        self.primary = primary or ManagedCluster(settings)
        self.data_dir = (root or replicas_root(self.primary)) / name
        self.conf = dict(REPLICA_CONF, **(conf or {}))

    # --- facts -----------------------------------------------------------------------------
    @property
    def initialised(self) -> bool:
        return (self.data_dir / "PG_VERSION").exists()

    @property
    def port(self) -> int | None:
        """The port written in its configuration (the last `port =` line wins, as in PostgreSQL)."""
        conf = self.data_dir / "postgresql.auto.conf"
        if not conf.exists():
            return None
        found = None
        for line in conf.read_text(encoding="utf-8").splitlines():
            m = re.match(r"\s*port\s*=\s*'?(\d+)'?", line)
            if m:
                found = int(m.group(1))
        return found

    def url(self, database: str | None = None) -> str:
        return f"postgresql+psycopg://{SUPERUSER}@127.0.0.1:{self.port}/{database or self.settings.database_name}"

    def running(self) -> bool:
        if not self.initialised:
            return False
        res = self.primary._run(str(self.primary.bin_dir / "pg_ctl"), "status", "-D", str(self.data_dir), check=False)
        return res.returncode == 0

    def _libpq(self, port: int, database: str = "postgres") -> str:
        return f"host=127.0.0.1 port={port} user={SUPERUSER} dbname={database} connect_timeout=3"

    # --- lifecycle -------------------------------------------------------------------------
    def create(self, port: int) -> None:
        """pg_basebackup -R of the running primary into the data folder, then its own settings."""
        if not self.primary.running():
            raise ReplicaError(
                f"主库未运行 / the primary is not running (127.0.0.1:{self.primary.port}, {self.primary.data_dir}): "
                "start it with `registry db start`")
        self._check_port(port)
        self._allow_replication()
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            owner = pwd.getpwnam(self.settings.pg_os_user)
            os.chown(self.data_dir.parent, owner.pw_uid, owner.pw_gid)
        log.info("pg_basebackup of 127.0.0.1:%s into %s (slot %s)", self.primary.port, self.data_dir, self.slot)
        self._drop_slot()  # a slot left by a replica of this name that was removed by hand
        # -C -S: a physical replication slot, so that the primary keeps the WAL this standby has not
        # received yet (checkpoints forced by other work would otherwise recycle it: a standby that
        # asks for removed WAL never catches up); -R writes primary_slot_name with the conninfo.
        res = self.primary._run(
            str(self.primary.bin_dir / "pg_basebackup"),
            "-h", "127.0.0.1", "-p", str(self.primary.port), "-U", SUPERUSER,
            "-D", str(self.data_dir), "-R", "-X", "stream", "-c", "fast", "-C", "-S", self.slot,
            "--no-password", *(() if getattr(self.primary, "sync", True) else ("--no-sync",)), check=False)
        if res.returncode != 0:
            shutil.rmtree(self.data_dir, ignore_errors=True)
            self._drop_slot()
            raise ReplicaError(f"pg_basebackup failed: {res.stderr.strip() or res.stdout.strip()}")
        for leftover in ("postmaster.pid", "server.log"):
            (self.data_dir / leftover).unlink(missing_ok=True)
        with open(self.data_dir / "postgresql.auto.conf", "a", encoding="utf-8") as conf:
            conf.write(f"# replica {self.name} of 127.0.0.1:{self.primary.port} (registry.db.replica)\n")
            for key, value in self.conf.items():
                conf.write(f"{key} = {value}\n")
            conf.write(f"port = {port}\n")
            conf.write(f"cluster_name = 'registry-replica-{self.name}'\n")

    def start(self, port: int | None = None, timeout: float = 60.0) -> int:
        """Create (first time) and start; returns the port. An existing replica keeps its port."""
        if self.initialised:
            if port is not None and port != self.port:
                raise ReplicaError(
                    f"副本名称已被占用 / the name {self.name!r} is taken: that replica listens on port {self.port} "
                    f"({self.data_dir}); choose another --name or drop --port", parameter="--name")
            port = self.port
            if self.running():
                return port
            self._check_port(port)
        else:
            port = port or self._free_port()
            self.create(port)
        log.info("starting replica %s on 127.0.0.1:%s", self.name, port)
        res = self.primary._run(
            str(self.primary.bin_dir / "pg_ctl"), "start", "-w", "-t", str(int(timeout)),
            "-D", str(self.data_dir), "-l", str(self.data_dir / "server.log"), check=False)
        if res.returncode != 0:
            tail = ""
            logfile = self.data_dir / "server.log"
            if logfile.exists():
                tail = "\n".join(logfile.read_text(errors="replace").splitlines()[-10:])
            raise ReplicaError(f"副本未能启动 / replica {self.name} did not start: {res.stderr.strip()}\n{tail}")
        return port

    def stop(self, mode: str = "fast") -> bool:
        """Stop it; False when it was not running."""
        if not self.running():
            return False
        self.primary._run(str(self.primary.bin_dir / "pg_ctl"), "stop", "-m", mode, "-w", "-D", str(self.data_dir))
        return True

    def promote(self, timeout: float = 60.0) -> None:
        """End recovery: the replica becomes a primary of its own (writable, no longer following)."""
        self._require_running()
        st = self.status()
        if st.in_recovery is False:
            raise ReplicaError(f"副本 {self.name} 已是主库 / replica {self.name} is already promoted")
        res = self.primary._run(str(self.primary.bin_dir / "pg_ctl"), "promote", "-w", "-t", str(int(timeout)),
                                "-D", str(self.data_dir), check=False)
        if res.returncode != 0:
            raise ReplicaError(f"promote failed: {res.stderr.strip() or res.stdout.strip()}")
        self._drop_slot()  # it follows the old primary no more: that primary must not keep WAL for it

    def remove(self) -> None:
        """Stop, delete the data folder and drop the replica's slot on the primary (which would
        otherwise keep WAL for it for ever)."""
        self.stop("immediate")
        shutil.rmtree(self.data_dir, ignore_errors=True)
        self._drop_slot()

    @property
    def slot(self) -> str:
        """The replica's physical replication slot on the primary (slot names admit no '-')."""
        return "registry_replica_" + self.name.replace("-", "_")

    def _drop_slot(self) -> None:
        import psycopg

        if not self.primary.running():
            return
        try:
            with psycopg.connect(self._libpq(self.primary.port), autocommit=True) as conn:
                conn.execute("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
                             "WHERE slot_name = %s AND NOT active", (self.slot,))
        except psycopg.Error as exc:
            log.warning("could not drop replication slot %s: %s", self.slot, exc)

    def status(self) -> ReplicaStatus:
        import psycopg

        port = self.port
        if not self.running() or port is None:
            return ReplicaStatus(self.name, self.data_dir, port, False)
        try:
            with psycopg.connect(self._libpq(port), autocommit=True) as conn:
                row = conn.execute(
                    "SELECT pg_is_in_recovery(), pg_last_wal_receive_lsn()::text, pg_last_wal_replay_lsn()::text, "
                    "extract(epoch FROM now() - pg_last_xact_replay_timestamp())::float8").fetchone()
        except psycopg.Error as exc:
            return ReplicaStatus(self.name, self.data_dir, port, True, error=str(exc).strip().splitlines()[-1])
        in_recovery, received, replayed, delay = row
        primary_lsn = lag = None
        if in_recovery and self.primary.running():
            try:
                with psycopg.connect(self._libpq(self.primary.port), autocommit=True) as conn:
                    primary_lsn, lag = conn.execute(
                        "SELECT pg_current_wal_lsn()::text, pg_wal_lsn_diff(pg_current_wal_lsn(), %s::pg_lsn)::bigint",
                        (replayed,)).fetchone()
            except psycopg.Error:
                pass
        return ReplicaStatus(self.name, self.data_dir, port, True, in_recovery, received, replayed, primary_lsn,
                             lag, delay if in_recovery else None)

    # --- helpers ---------------------------------------------------------------------------
    def _require_running(self) -> None:
        if not self.initialised:
            raise ReplicaError(f"没有名为 {self.name} 的副本 / no replica named {self.name!r} ({self.data_dir}): "
                               f"create it with `registry db replica start --name {self.name}`", parameter="--name")
        if not self.running():
            raise ReplicaError(f"副本 {self.name} 未运行 / replica {self.name} is not running: "
                               f"`registry db replica start --name {self.name}`")

    def _check_port(self, port: int) -> None:
        if port == self.primary.port:
            raise ReplicaError(f"端口 {port} 是主库的端口 / port {port} is the primary's", parameter="--port")
        if not port_free(port):
            raise ReplicaError(f"端口 {port} 已被占用 / port {port} is busy on 127.0.0.1: choose another --port",
                               parameter="--port")

    def _free_port(self) -> int:
        taken = {r.port for r in all_replicas(self.settings, primary=self.primary, root=self.data_dir.parent)}
        for port in range(self.primary.port + 1, self.primary.port + 100):
            if port not in taken and port_free(port):
                return port
        raise ReplicaError("找不到空闲端口 / no free port near the primary's: give --port")

    def _allow_replication(self) -> None:
        """Append a replication line to the primary's pg_hba.conf and reload, only if none admits us."""
        import psycopg

        with psycopg.connect(self._libpq(self.primary.port), autocommit=True) as conn:
            level = conn.execute("SHOW wal_level").fetchone()[0]
            senders = int(conn.execute("SHOW max_wal_senders").fetchone()[0])
            if level not in ("replica", "logical") or senders < 1:
                raise ReplicaError(
                    f"主库不能流复制 / the primary cannot stream (wal_level={level}, max_wal_senders={senders}): "
                    "set wal_level = replica and max_wal_senders >= 2, then restart it")
            rules = conn.execute(
                "SELECT count(*) FROM pg_hba_file_rules WHERE 'replication' = ANY(database) AND error IS NULL "
                "AND (type = 'local' OR address IN ('127.0.0.1', 'all', 'samehost'))").fetchone()[0]
            if rules:
                return
            hba = Path(conn.execute("SHOW hba_file").fetchone()[0])
            log.info("allowing replication from 127.0.0.1 in %s (reload, no restart)", hba)
            with open(hba, "a", encoding="utf-8") as f:
                f.write("# added by `registry db replica start` (registry.db.replica)\n")
                f.write(REPLICATION_HBA.format(user=SUPERUSER))
            conn.execute("SELECT pg_reload_conf()")


def all_replicas(settings: Settings, *, primary: ManagedCluster | None = None,
                 root: Path | None = None) -> list[ReplicaCluster]:
    primary = primary or ManagedCluster(settings)
    root = root or replicas_root(primary)
    if not root.exists():
        return []
    return [ReplicaCluster(settings, p.name, primary=primary, root=root)
            for p in sorted(root.iterdir()) if (p / "PG_VERSION").exists() and NAME.match(p.name)]
