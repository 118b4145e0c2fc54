"""The Huzhou place-name and address registry: the domain library.

Usable without HTTP: `api/` and `loaders/` import from here, never the other way round.
`Settings` and `get_settings` are loaded on first use (pydantic costs ~0.5 s to import, and
`registry.errors`, imported by every command line module, should not pay for it).
"""
from registry.errors import (
    Conflict,
    Forbidden,
    InvalidGeometry,
    InvalidQuery,
    NotFound,
    RegistryError,
    Unauthorized,
)

__all__ = [
    "Conflict",
    "Forbidden",
    "InvalidGeometry",
    "InvalidQuery",
    "NotFound",
    "RegistryError",
    "Settings",
    "Unauthorized",
    "get_settings",
]


def __getattr__(name: str):
    if name in ("Settings", "get_settings", "settings"):
        import importlib

        settings = importlib.import_module("registry.settings")
        return settings if name == "settings" else getattr(settings, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
