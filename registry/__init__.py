"""The Huzhou place-name and address registry: the domain library.

Usable without HTTP: `api/` and `loaders/` import from here, never the other way round.
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
from registry.settings import Settings, get_settings

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
