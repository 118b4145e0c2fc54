"""Typed domain errors. `api/problems.py` maps each to an RFC 9457 problem+json response.

Every error carries a human message (Chinese first, English after, since clerks and agency
developers both read them) and, where it applies, the parameter/field/row at fault.
"""
from __future__ import annotations

from typing import Any


class RegistryError(Exception):
    """Base of every error the domain raises on purpose."""

    code = "registry-error"

    def __init__(self, message: str, *, parameter: str | None = None, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.parameter = parameter
        self.details = details


class NotFound(RegistryError):
    code = "not-found"


class InvalidQuery(RegistryError):
    """A request parameter or an input value is malformed."""

    code = "invalid-query"


class FileError(InvalidQuery):
    """A file that cannot be read as a whole: unreadable, empty, malformed, no CRS, bad mapping…

    `reason` is a stable code (empty_file, malformed_csv, line_too_long, bad_encoding, no_crs,
    unknown_crs, unreadable_file, unsupported_format, missing_columns, bad_mapping, no_layer,
    file_not_found); the message is Chinese then English.
    """

    code = "invalid-file"

    def __init__(self, reason: str, zh: str, en: str, **details: Any) -> None:
        super().__init__(f"{zh} / {en}", parameter="file", reason=reason, **details)
        self.reason = reason


class InvalidGeometry(InvalidQuery):
    code = "invalid-geometry"


class Conflict(RegistryError):
    """The request is well-formed but contradicts what is stored (duplicate, stale version…)."""

    code = "conflict"


class AmbiguousCode(Conflict):
    """A division code that names different divisions under NBS 2023 and MCA 2025 (24 of Huzhou's
    72 township codes were reshuffled), given without an authority. `candidates` lists each
    reading: code, authority, id, name, level, status."""

    code = "ambiguous-code"


class Unauthorized(RegistryError):
    """No valid API key (wrong, unknown or revoked)."""

    code = "unauthorized"


class Forbidden(RegistryError):
    """A valid API key without the scope the operation needs."""

    code = "forbidden"


class RateLimited(RegistryError):
    """The key has used up its requests for the current minute."""

    code = "rate-limited"


class PayloadTooLarge(RegistryError):
    """A request body larger than its route's limit (settings: body_limit_bytes and the per-route ones)."""

    code = "payload-too-large"


class DatabaseUnavailable(RegistryError):
    """The database cannot serve the request now; `retry_after` (seconds) says when to try again."""

    code = "database-unavailable"
    retry_after = 5


class PrimaryUnavailable(DatabaseUnavailable):
    """A write while the primary is down (reads go on from the replicas): 503 with Retry-After."""

    code = "primary-unavailable"


class SetupError(RegistryError):
    """The machine lacks something the registry needs (PostgreSQL binaries, PostGIS…)."""

    code = "setup-error"


class SettingsError(SetupError):
    """REGISTRY_ environment variables with bad values: `lines` holds one line per variable, named
    as the user typed it (REGISTRY_PG_PORT, not pg_port)."""

    code = "settings-error"

    def __init__(self, lines: list[str]) -> None:
        super().__init__("\n".join(lines))
        self.lines = list(lines)


class DatabaseMissing(DatabaseUnavailable):
    """The configured database does not exist; only `registry db start` / `db migrate` create one."""

    code = "database-missing"


class LocalBaseUrl(Conflict):
    """REGISTRY_PUBLIC_BASE_URL is not reachable from the street (loopback, private, localhost…):
    QR codes printed with it would be dead, so printing is refused unless forced."""

    code = "local-public-base-url"
