"""API keys for agencies: printed once, stored only as a SHA-256 hash, with scopes.

Scopes nest: public < agency < editor < admin. A key with `editor` may do what `agency` may.
"""
from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, func, insert, select, update

from registry.db.tables import api_keys
from registry.errors import Forbidden, InvalidQuery, NotFound, Unauthorized

SCOPES = ("public", "agency", "editor", "admin")
_RANK = {s: i for i, s in enumerate(SCOPES)}
KEY_PREFIX = "hzr_"


@dataclass(frozen=True)
class ApiKey:
    id: int
    agency: str
    prefix: str
    scopes: tuple[str, ...]
    rate_limit_per_minute: int
    created_at: datetime | None = None
    revoked_at: datetime | None = None

    def allows(self, scope: str) -> bool:
        return any(_RANK[s] >= _RANK[scope] for s in self.scopes if s in _RANK)


ANONYMOUS = ApiKey(id=0, agency="public", prefix="", scopes=("public",), rate_limit_per_minute=60)


@dataclass(frozen=True)
class NewKey:
    key: ApiKey
    secret: str  # shown once, never stored


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def validate_scopes(scopes: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    bad = [s for s in scopes if s not in _RANK]
    if bad or not scopes:
        raise InvalidQuery(
            f"未知权限范围 {bad or '(空)'}；可选 {', '.join(SCOPES)} / unknown scope(s) {bad}; choose from {', '.join(SCOPES)}",
            parameter="scope",
        )
    return tuple(dict.fromkeys(scopes))


def create_key(conn: Connection, *, agency: str, scopes: list[str], rate_limit_per_minute: int = 600,
               note: str | None = None) -> NewKey:
    agency = (agency or "").strip()
    if not agency:
        raise InvalidQuery("机构名称不能为空 / agency must not be empty", parameter="agency")
    scopes_t = validate_scopes(scopes)
    prefix = secrets.token_hex(4)
    secret = f"{KEY_PREFIX}{prefix}_{secrets.token_urlsafe(24)}"
    row = conn.execute(
        insert(api_keys)
        .values(agency=agency, prefix=prefix, key_hash=_hash(secret), scopes=list(scopes_t),
                rate_limit_per_minute=rate_limit_per_minute, note=note)
        .returning(api_keys.c.id, api_keys.c.created_at)
    ).one()
    return NewKey(ApiKey(row.id, agency, prefix, scopes_t, rate_limit_per_minute, row.created_at), secret)


def authenticate(conn: Connection, secret: str | None) -> ApiKey:
    """The key a request carries, or ANONYMOUS when it carries none. Wrong or revoked -> 401."""
    if secret is None or secret == "":
        return ANONYMOUS
    parts = secret.split("_")
    if len(parts) < 3 or not secret.startswith(KEY_PREFIX):
        raise Unauthorized("API 密钥格式错误 / malformed API key", parameter="X-API-Key")
    row = conn.execute(select(api_keys).where(api_keys.c.prefix == parts[1])).mappings().first()
    if row is None or not secrets.compare_digest(row["key_hash"], _hash(secret)):
        raise Unauthorized("API 密钥无效 / invalid API key", parameter="X-API-Key")
    if row["revoked_at"] is not None:
        raise Unauthorized("API 密钥已吊销 / this API key has been revoked", parameter="X-API-Key")
    return ApiKey(row["id"], row["agency"], row["prefix"], tuple(row["scopes"]), row["rate_limit_per_minute"],
                  row["created_at"], row["revoked_at"])


def require_scope(key: ApiKey, scope: str) -> None:
    if not key.allows(scope):
        raise Forbidden(
            f"此操作需要 {scope} 权限 / this operation needs the '{scope}' scope (key has: {', '.join(key.scopes)})",
            parameter="X-API-Key",
        )


def revoke_key(conn: Connection, prefix: str) -> None:
    res = conn.execute(
        update(api_keys).where(api_keys.c.prefix == prefix, api_keys.c.revoked_at.is_(None))
        .values(revoked_at=func.now())
    )
    if res.rowcount == 0:
        raise NotFound(f"没有有效的密钥 {prefix} / no active key with prefix {prefix}", parameter="prefix")


def list_keys(conn: Connection) -> list[ApiKey]:
    rows = conn.execute(select(api_keys).order_by(api_keys.c.id)).mappings().all()
    return [ApiKey(r["id"], r["agency"], r["prefix"], tuple(r["scopes"]), r["rate_limit_per_minute"],
                   r["created_at"], r["revoked_at"]) for r in rows]
