"""Alembic, driven from code: `upgrade(url)` brings any database to the current schema."""
from __future__ import annotations

import logging
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from alembic.util import CommandError

from registry.errors import InvalidQuery

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    # ConfigParser interpolation would choke on % in passwords.
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    cfg.attributes["configure_logger"] = False
    return cfg


def _unknown(revision: str) -> InvalidQuery:
    known = ", ".join(s.revision for s in reversed(list(ScriptDirectory(str(MIGRATIONS)).walk_revisions())))
    return InvalidQuery(f"未知的迁移版本 {revision!r} / unknown revision {revision!r} "
                        f"(known: head, base, {known})", parameter="revision")


def _refused(revision: str, exc: Exception) -> InvalidQuery:
    return InvalidQuery(f"无法迁移到版本 {revision!r} / cannot migrate to revision {revision!r}: {exc}",
                        parameter="revision")


def check_revision(revision: str) -> None:
    """Raise InvalidQuery naming `revision` when no migration has that id (before touching any
    database). Relative targets (+1, -1) need the database and are checked by the migration."""
    if revision in ("head", "heads", "base") or any(c in revision for c in "+-"):
        return
    try:
        ScriptDirectory(str(MIGRATIONS)).get_revisions(revision)
    except CommandError:
        raise _unknown(revision) from None


def upgrade(url: str, revision: str = "head") -> None:
    check_revision(revision)
    log.info("migrating database to %s", revision)
    try:
        command.upgrade(alembic_config(url), revision)
    except CommandError as exc:
        raise _refused(revision, exc) from None


def downgrade(url: str, revision: str) -> None:
    check_revision(revision)
    try:
        command.downgrade(alembic_config(url), revision)
    except CommandError as exc:
        raise _refused(revision, exc) from None


def current_revision(url: str) -> str | None:
    from sqlalchemy import create_engine
    from alembic.runtime.migration import MigrationContext

    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()
