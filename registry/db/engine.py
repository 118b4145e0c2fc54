"""Engines and connections. One place decides which database a process talks to."""
from __future__ import annotations

import logging

from sqlalchemy import Engine, create_engine, event

from registry.db.cluster import ManagedCluster
from registry.settings import Settings

log = logging.getLogger(__name__)


def resolve_database_url(settings: Settings, *, start: bool = True) -> str:
    """The configured URL, else the managed cluster's (started on demand)."""
    if settings.database_url:
        return settings.database_url
    cluster = ManagedCluster(settings)
    if start:
        cluster.start()
    return cluster.url()


def make_engine(settings: Settings, *, url: str | None = None, pool_size: int | None = None) -> Engine:
    engine = create_engine(
        url or resolve_database_url(settings),
        pool_size=pool_size or settings.pool_size,
        max_overflow=settings.pool_size,
        pool_pre_ping=True,
        future=True,
    )

    @event.listens_for(engine, "connect")
    def _session_defaults(dbapi_conn, _record):  # pragma: no cover - trivial
        with dbapi_conn.cursor() as cur:
            cur.execute("SET TIME ZONE 'Asia/Shanghai'")
        dbapi_conn.commit()

    return engine
