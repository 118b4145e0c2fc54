"""The managed PostgreSQL + PostGIS cluster: the embedded default when no URL is configured.

The registry owns a data folder, initialises it with initdb (UTF-8, C.UTF-8 character type, so
that pg_trgm sees Chinese characters), starts and stops it with pg_ctl, listening on 127.0.0.1
only. PostgreSQL refuses to run as root, so under root the cluster runs as `pg_os_user`.
"""
from __future__ import annotations

import hashlib
import logging
import os
import pwd
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from registry.errors import SetupError
from registry.settings import Settings

log = logging.getLogger(__name__)

SUPERUSER = "registry"

# Tuned for one 2-core, 24 GB machine that also runs the API; bulk loads matter most.
SERVER_CONF = {
    "listen_addresses": "'127.0.0.1'",
    "unix_socket_directories": "''",
    "max_connections": "200",
    "shared_buffers": "1GB",
    "work_mem": "32MB",
    "maintenance_work_mem": "1GB",
    "max_wal_size": "8GB",
    "checkpoint_timeout": "15min",
    "effective_cache_size": "8GB",
    "random_page_cost": "1.1",
    "max_parallel_maintenance_workers": "2",
    "logging_collector": "on",
    "log_directory": "'log'",
    "lc_messages": "'C.UTF-8'",
    "timezone": "'Asia/Shanghai'",
}


@dataclass(frozen=True)
class ClusterStatus:
    initialised: bool
    running: bool
    data_dir: Path
    port: int
    url: str


def find_bin_dir(settings: Settings) -> Path:
    """The folder holding initdb/pg_ctl: configured, else the newest /usr/lib/postgresql/N/bin."""
    if settings.pg_bin_dir:
        if not (settings.pg_bin_dir / "pg_ctl").exists():
            raise SetupError(f"REGISTRY_PG_BIN_DIR={settings.pg_bin_dir} has no pg_ctl")
        return settings.pg_bin_dir
    candidates = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    if candidates:
        return candidates[-1].parent
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).parent
    raise SetupError(
        "未找到 PostgreSQL 服务器程序 / PostgreSQL server binaries not found. "
        "Install them: apt-get install -y postgresql"
    )


def server_major_version(bin_dir: Path) -> int:
    out = subprocess.run([str(bin_dir / "postgres"), "--version"], capture_output=True, text=True, check=True)
    return int(out.stdout.split()[-1].split(".")[0])


def ensure_postgis(bin_dir: Path) -> None:
    """Install Debian's postgresql-N-postgis-3 when PostGIS is missing (as root), else say how."""
    major = server_major_version(bin_dir)
    share = Path(f"/usr/share/postgresql/{major}/extension")
    if (share / "postgis.control").exists():
        return
    package = f"postgresql-{major}-postgis-3"
    command = f"apt-get update && apt-get install -y {package}"
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise SetupError(
            f"缺少 PostGIS / PostGIS is missing for PostgreSQL {major}. Run as root: {command}"
        )
    log.info("installing %s", package)
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "update", "-q"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-q", package], check=True, env=env)
    if not (share / "postgis.control").exists():
        raise SetupError(f"{package} installed but {share}/postgis.control is still missing")


def _reachable_by_others(path: Path) -> bool:
    """Whether a non-root user can enter every folder above `path`."""
    for parent in path.parents:
        if parent.exists() and (parent.stat().st_mode & 0o001) == 0:
            return False
    return True


def choose_data_dir(settings: Settings) -> Path:
    """The configured folder; under root, when the cluster's user cannot reach the default one
    (a clone in /root, say), a folder of the same name under /var/tmp keyed by the project path."""
    wanted = settings.data_dir.resolve()
    explicit = "data_dir" in settings.model_fields_set
    if os.geteuid() != 0 or explicit or _reachable_by_others(wanted) or (wanted / "PG_VERSION").exists():
        return wanted
    digest = hashlib.sha1(str(wanted).encode()).hexdigest()[:10]
    fallback = Path("/var/tmp/huzhou-registry") / digest / "pgdata"
    log.info("%s is not reachable by %s; using %s", wanted, settings.pg_os_user, fallback)
    return fallback


class ManagedCluster:
    def __init__(self, settings: Settings, *, conf: dict[str, str] | None = None, sync: bool = True) -> None:
        """`conf` overrides SERVER_CONF and `sync=False` skips initdb's fsync (throwaway clusters of tests)."""
        self.settings = settings
        self.conf = dict(SERVER_CONF, **(conf or {}))
        self.sync = sync
        self.data_dir = choose_data_dir(settings)
        self.port = settings.pg_port
        self._bin_dir: Path | None = None

    # --- helpers ---------------------------------------------------------------------------
    @property
    def bin_dir(self) -> Path:
        if self._bin_dir is None:
            self._bin_dir = find_bin_dir(self.settings)
        return self._bin_dir

    def _as_owner(self) -> list[str]:
        """Prefix that runs a command as the cluster's OS user (needed only under root)."""
        if os.geteuid() != 0:
            return []
        return ["runuser", "-u", self.settings.pg_os_user, "--"]

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        cmd = self._as_owner() + list(args)
        return subprocess.run(cmd, capture_output=True, text=True, check=check)

    def url(self, database: str | None = None) -> str:
        db = database or self.settings.database_name
        return f"postgresql+psycopg://{SUPERUSER}@127.0.0.1:{self.port}/{db}"

    @property
    def initialised(self) -> bool:
        return (self.data_dir / "PG_VERSION").exists()

    def running(self) -> bool:
        if not self.initialised:
            return False
        res = self._run(str(self.bin_dir / "pg_ctl"), "status", "-D", str(self.data_dir), check=False)
        return res.returncode == 0

    def status(self) -> ClusterStatus:
        return ClusterStatus(self.initialised, self.running(), self.data_dir, self.port, self.url())

    # --- lifecycle -------------------------------------------------------------------------
    def init(self) -> None:
        ensure_postgis(self.bin_dir)
        if self.initialised:
            return
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            try:
                owner = pwd.getpwnam(self.settings.pg_os_user)
            except KeyError:
                raise SetupError(
                    f"PostgreSQL cannot run as root and the OS user {self.settings.pg_os_user!r} does not exist; "
                    "create it (adduser --system postgres) or set REGISTRY_PG_OS_USER"
                ) from None
            if not _reachable_by_others(self.data_dir):
                raise SetupError(
                    f"{self.settings.pg_os_user} cannot reach {self.data_dir}; "
                    "set REGISTRY_DATA_DIR to a folder it can enter"
                )
            os.chown(self.data_dir, owner.pw_uid, owner.pw_gid)
        os.chmod(self.data_dir, 0o700)
        log.info("initialising PostgreSQL cluster in %s", self.data_dir)
        res = self._run(
            str(self.bin_dir / "initdb"),
            "-D", str(self.data_dir),
            "-U", SUPERUSER,
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C.UTF-8",
            *(() if self.sync else ("--no-sync",)),
            check=False,
        )
        if res.returncode != 0:
            raise SetupError(f"initdb failed: {res.stderr.strip() or res.stdout.strip()}")
        with open(self.data_dir / "postgresql.auto.conf", "a", encoding="utf-8") as conf:
            conf.write("# written by the registry (registry.db.cluster)\n")
            for key, value in self.conf.items():
                conf.write(f"{key} = {value}\n")
            conf.write(f"port = {self.port}\n")

    def start(self, timeout: float = 60.0) -> None:
        """Start the cluster. Creates no database: only `registry db start|migrate` do (through
        `ensure_database`), so that a mistyped REGISTRY_DATABASE_NAME is reported, not created."""
        self.init()
        if self.running():
            return
        log.info("starting PostgreSQL on 127.0.0.1:%s", self.port)
        res = self._run(
            str(self.bin_dir / "pg_ctl"), "start", "-w", "-t", str(int(timeout)),
            "-D", str(self.data_dir), "-o", f"-p {self.port}",
            "-l", str(self.data_dir / "server.log"),
            check=False,
        )
        if res.returncode != 0:
            tail = ""
            logfile = self.data_dir / "server.log"
            if logfile.exists():
                tail = "\n".join(logfile.read_text(errors="replace").splitlines()[-10:])
            raise SetupError(f"PostgreSQL did not start: {res.stderr.strip()}\n{tail}")
        self._wait_ready(timeout)

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            res = subprocess.run(
                [str(self.bin_dir / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port)],
                capture_output=True,
            )
            if res.returncode == 0:
                return
            time.sleep(0.2)
        raise SetupError(f"PostgreSQL on port {self.port} not ready after {timeout:.0f} s")

    def stop(self) -> None:
        if not self.running():
            return
        self._run(str(self.bin_dir / "pg_ctl"), "stop", "-m", "fast", "-w", "-D", str(self.data_dir))

    def database_exists(self, name: str) -> bool:
        import psycopg

        with psycopg.connect(self._libpq("postgres"), autocommit=True) as conn:
            return conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is not None

    def ensure_database(self, name: str) -> bool:
        """Create database `name` (UTF-8, C.UTF-8) if missing; True when it was created."""
        import psycopg

        with psycopg.connect(self._libpq("postgres"), autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
            if not exists:
                log.info("creating database %s", name)
                conn.execute(f'CREATE DATABASE "{name}" TEMPLATE template0 ENCODING \'UTF8\' LOCALE \'C.UTF-8\'')
            return not exists

    def drop_database(self, name: str) -> None:
        import psycopg

        with psycopg.connect(self._libpq("postgres"), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def _libpq(self, database: str) -> str:
        return f"host=127.0.0.1 port={self.port} user={SUPERUSER} dbname={database}"
