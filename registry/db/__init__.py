"""Database access: the managed cluster, engines, the schema (tables) and migrations."""
from registry.db.engine import make_engine, resolve_database_url
from registry.db.migrate import upgrade

__all__ = ["make_engine", "resolve_database_url", "upgrade"]
