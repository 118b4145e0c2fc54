"""Database access: the managed cluster, engines, the schema (tables) and migrations.

The submodules are imported where they are used (`registry.db.engine`, `registry.db.migrate` …):
importing this package costs nothing (migrations bring Alembic in, ~0.6 s, needed only by
`registry db migrate` and the tests). `make_engine`, `resolve_database_url` and `upgrade` stay
importable from here, loaded on first use.
"""
from __future__ import annotations

import importlib

_LAZY = {"make_engine": "registry.db.engine", "resolve_database_url": "registry.db.engine",
         "upgrade": "registry.db.migrate"}

__all__ = ["make_engine", "resolve_database_url", "upgrade"]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
