"""Engines and connections. One place decides which database a process talks to.

Only `registry db start` and `registry db migrate` create the configured database
(`create_database`); every other entry point checks that it exists (`require_database`) and
says so in one line, naming the variable and the command that creates it.
"""
from __future__ import annotations

import logging

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url

from registry.db.cluster import ManagedCluster
from registry.errors import DatabaseMissing, DatabaseUnavailable
from registry.settings import Settings

log = logging.getLogger(__name__)

CREATE_HINT = "registry db migrate"


def libpq_url(url) -> str:
    """A SQLAlchemy URL (`postgresql+psycopg://…`, str or URL) as libpq's `postgresql://…`, password
    kept: what psycopg, asyncpg, pg_dump and pg_restore take."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def resolve_database_url(settings: Settings, *, start: bool = True) -> str:
    """The configured URL, else the managed cluster's (started on demand; no database created)."""
    if settings.database_url:
        return settings.database_url
    cluster = ManagedCluster(settings)
    if start:
        cluster.start()
    return cluster.url()


def create_database(settings: Settings) -> str:
    """`registry db start|migrate` only: the managed cluster's configured database, created if
    missing. On a server of REGISTRY_DATABASE_URL the registry creates nothing; it must exist."""
    if settings.database_url:
        require_database(settings, settings.database_url)
        return settings.database_url
    cluster = ManagedCluster(settings)
    cluster.start()
    cluster.ensure_database(settings.database_name)
    return cluster.url()


def require_database(settings: Settings, url: str) -> None:
    """Raise DatabaseMissing (one line: the database, the variable, the command that creates it)
    when the configured database does not exist; DatabaseUnavailable when the server refuses."""
    name = make_url(url).database
    if settings.database_url is None:
        if not ManagedCluster(settings).database_exists(name):
            raise DatabaseMissing(
                f"数据库 {name} 不存在（REGISTRY_DATABASE_NAME={settings.database_name}），"
                f"请先运行 `{CREATE_HINT}` 创建 / database {name!r} does not exist "
                f"(REGISTRY_DATABASE_NAME={settings.database_name}): create it with `{CREATE_HINT}`",
                parameter="REGISTRY_DATABASE_NAME")
        return
    import psycopg

    probe = make_url(url).set(drivername="postgresql")
    try:
        psycopg.connect(probe.render_as_string(hide_password=False), connect_timeout=10).close()
    except psycopg.OperationalError as exc:
        last = (str(exc).strip().splitlines() or ["?"])[-1].strip()
        if f'"{name}"' in last and "does not exist" in last:
            raise DatabaseMissing(
                f"数据库 {name} 不存在（REGISTRY_DATABASE_URL），请在该服务器上创建后运行 `{CREATE_HINT}` / "
                f"database {name!r} does not exist (REGISTRY_DATABASE_URL): create it on that server, "
                f"then run `{CREATE_HINT}`", parameter="REGISTRY_DATABASE_URL") from None
        raise DatabaseUnavailable(f"无法连接数据库（REGISTRY_DATABASE_URL） / cannot connect to the database "
                                  f"(REGISTRY_DATABASE_URL): {last}", parameter="REGISTRY_DATABASE_URL") from None


def connect_args(settings: Settings, *, statement_timeout_ms: int = 0) -> dict:
    """libpq parameters that make a dead or unreachable server fail fast: connect_timeout, TCP
    keepalives (a half-open connection is dropped after ~20 s), a statement_timeout if given."""
    args = {"connect_timeout": settings.db_connect_timeout_seconds,
            "keepalives": 1, "keepalives_idle": 10, "keepalives_interval": 5, "keepalives_count": 2}
    if statement_timeout_ms:
        args["options"] = f"-c statement_timeout={int(statement_timeout_ms)}"
    if not settings.db_prepared_statements:  # behind pgbouncer in transaction mode (README: replicas)
        args["prepare_threshold"] = None
    return args


def make_engine(settings: Settings, *, url: str | None = None, pool_size: int | None = None,
                statement_timeout_ms: int = 0) -> Engine:
    """An engine on `url`, else on the configured database, which must exist (see module doc).
    Waiting for a pooled connection longer than REGISTRY_DB_POOL_TIMEOUT_SECONDS raises."""
    if url is None:
        url = resolve_database_url(settings)
        require_database(settings, url)
    engine = create_engine(
        url,
        pool_size=pool_size or settings.pool_size,
        max_overflow=settings.pool_size,
        pool_pre_ping=True,
        pool_timeout=settings.db_pool_timeout_seconds,
        connect_args=connect_args(settings, statement_timeout_ms=statement_timeout_ms),
        future=True,
    )

    @event.listens_for(engine, "connect")
    def _session_defaults(dbapi_conn, _record):  # pragma: no cover - trivial
        with dbapi_conn.cursor() as cur:
            cur.execute("SET TIME ZONE 'Asia/Shanghai'")
        dbapi_conn.commit()

    return engine
