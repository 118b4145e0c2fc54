"""Signed QR tokens: `{public_base_url}/p/{token}`.

A token is base64url (no padding) of

    varint(key_id) ‖ varint(plate_id) ‖ HMAC-SHA256(secret[key_id], "hzdp1" ‖ key_id ‖ plate_id)[:8]

It carries the plate's stable identifier — never the address text — so a printed plate keeps
resolving to the current address through renumbering and division adjustments. With a key id
below 128 and plate ids below 2^28 a token is at most 18 characters: with the default base URL the
whole URL is 42 bytes, the capacity of a version-3 QR code at error-correction level M.

Signing keys live in the `doorplate_keys` table (id, secret, retired_at). `rotate_key` adds a new
one that signs from then on; tokens signed with older keys keep verifying until the key is retired
(`retire_key`), after which they are answered as forged. Secrets are never returned by the API.
"""
from __future__ import annotations

import base64
import binascii
import hmac
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

from sqlalchemy import Connection, func, insert, select, text, update

from registry.changes import audit
from registry.db.tables import doorplate_keys
from registry.errors import Conflict, InvalidQuery, NotFound

MAC_BYTES = 8  # 64 bits: online forgery needs ~2^63 tries per plate
_DOMAIN = b"hzdp1"
MAX_KEY_ID = 32767  # smallint; ids below 128 keep tokens one byte shorter
MAX_TOKEN_CHARS = 40
LIVE_KEYS_SQL = "SELECT id, secret FROM doorplate_keys WHERE retired_at IS NULL"


class InvalidToken(InvalidQuery):
    """The token is not one the registry could have printed (garbled, truncated, wrong shape)."""

    code = "invalid-token"


class InvalidSignature(InvalidQuery):
    """The token is well-formed but its signature does not verify: a forged or altered plate,
    or one signed with a key that has been retired."""

    code = "invalid-signature"


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _garbled() -> InvalidToken:
    return InvalidToken("门牌二维码内容无法识别 / the token is garbled", parameter="token")


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    for i in range(pos, min(len(data), pos + 9)):
        b = data[i]
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            if i > pos and b == 0:  # non-minimal encoding: refuse, so each plate has one token
                break
            return value, i + 1
        shift += 7
    raise _garbled()


@lru_cache(maxsize=64)
def _keyed(secret: bytes) -> "hmac.HMAC":
    # OpenSSL 3 sets an HMAC key up slowly (~13 µs, more than the rest of a token's check): each
    # key's state after the domain is made once and copied per token (~8 µs, the same MAC)
    return hmac.new(secret, _DOMAIN, "sha256")


def _mac(secret: bytes, payload: bytes) -> bytes:
    mac = _keyed(secret).copy()
    mac.update(payload)
    return mac.digest()[:MAC_BYTES]


def sign(plate_id: int, key_id: int, secret: bytes) -> str:
    if plate_id < 1 or not 1 <= key_id <= MAX_KEY_ID:
        raise ValueError("plate_id and key_id must be positive")
    payload = _varint(key_id) + _varint(plate_id)
    return base64.urlsafe_b64encode(payload + _mac(secret, payload)).rstrip(b"=").decode("ascii")


@dataclass(frozen=True)
class ParsedToken:
    key_id: int
    plate_id: int
    payload: bytes
    mac: bytes


def parse(token: str) -> ParsedToken:
    """Split a token into its parts without checking the signature (InvalidToken when garbled)."""
    if not token or len(token) > MAX_TOKEN_CHARS or not token.isascii():
        raise _garbled()
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError):
        raise _garbled() from None
    if base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii") != token:
        raise _garbled()  # non-canonical spelling (e.g. stray bits in the last character)
    key_id, pos = _read_varint(raw, 0)
    plate_id, pos = _read_varint(raw, pos)
    if len(raw) - pos != MAC_BYTES or key_id < 1 or plate_id < 1:
        raise _garbled()
    return ParsedToken(key_id, plate_id, raw[:pos], raw[pos:])


# --- the key ring ----------------------------------------------------------------------------
@dataclass(frozen=True)
class SigningKey:
    id: int
    created_at: datetime | None
    retired_at: datetime | None
    note: str | None = None

    def as_dict(self) -> dict:
        return {
            "id": self.id,
            "created_at": self.created_at.isoformat() if self.created_at else None,
            "retired_at": self.retired_at.isoformat() if self.retired_at else None,
            "note": self.note,
        }


class KeyRing:
    """Signing keys read from the database and kept `ttl` seconds in memory.

    A retired key stops verifying within `ttl` seconds on every process (0 = read every time).
    """

    def __init__(self, ttl: float = 30.0) -> None:
        self.ttl = ttl
        self._lock = threading.Lock()
        self._loaded_at = float("-inf")
        self._secrets: dict[int, bytes] = {}  # live (not retired) keys only
        self._current: int | None = None

    def _fresh(self) -> bool:
        return self.ttl > 0 and time.monotonic() - self._loaded_at < self.ttl

    def _load(self, conn: Connection) -> None:
        self.store(conn.exec_driver_sql(LIVE_KEYS_SQL).all())

    def store(self, rows) -> None:
        """Take the (id, secret) rows of LIVE_KEYS_SQL, read by the caller (the async scan path)."""
        secrets_ = {r[0]: bytes(r[1]) for r in rows}
        with self._lock:
            self._secrets = secrets_
            self._current = max(secrets_) if secrets_ else None
            self._loaded_at = time.monotonic()

    def invalidate(self) -> None:
        with self._lock:
            self._loaded_at = float("-inf")

    def needs_load(self, key_id: int | None) -> bool:
        """Whether the keys must be read (again) before `key_id` can be looked up."""
        if not self._fresh():
            return True
        if key_id is None:
            return self._current is None
        # a key rotated in by another process; at most one look a second for misses
        return key_id not in self._secrets and time.monotonic() - self._loaded_at > 1.0

    def secret(self, conn: Connection, key_id: int) -> bytes | None:
        if self.needs_load(key_id):
            self._load(conn)
        return self._secrets.get(key_id)

    def loaded_secret(self, key_id: int) -> bytes | None:
        """The secret as last loaded (the caller checked `needs_load` and stored fresh rows)."""
        return self._secrets.get(key_id)

    def current_key_id(self, conn: Connection) -> int:
        if not self._fresh() or self._current is None:
            self._load(conn)
        if self._current is None:
            raise NotFound("尚无门牌签名密钥，请先运行 registry plates keys rotate / no signing key yet: "
                           "run `registry plates keys rotate`", parameter="key")
        return self._current

    def token_for(self, conn: Connection, plate_id: int, key_id: int | None) -> str:
        """The token of a plate, signed with the key recorded on it (else the current key)."""
        key_id = key_id or self.current_key_id(conn)
        return self._token(plate_id, key_id, self.secret(conn, key_id))

    def loaded_token_for(self, plate_id: int, key_id: int | None) -> str:
        """`token_for` with the keys as last loaded."""
        key_id = key_id or self._current
        if key_id is None:
            raise NotFound("尚无门牌签名密钥 / no signing key yet", parameter="key")
        return self._token(plate_id, key_id, self.loaded_secret(key_id))

    def _token(self, plate_id: int, key_id: int, secret: bytes | None) -> str:
        if secret is None:
            raise Conflict(f"门牌 {plate_id} 的签名密钥 {key_id} 已停用，需要重新制牌 / plate {plate_id} was "
                           f"signed with retired key {key_id}: replace the plate", parameter="key")
        return sign(plate_id, key_id, secret)

    def verify(self, conn: Connection, token: str) -> ParsedToken:
        """The parsed token when its signature verifies; InvalidToken / InvalidSignature otherwise."""
        parsed = parse(token)
        return self.check(parsed, self.secret(conn, parsed.key_id))

    def check(self, parsed: ParsedToken, secret: bytes | None) -> ParsedToken:
        """The parsed token when `secret` (its key's, None when unknown or retired) signed it."""
        if secret is None or not hmac.compare_digest(_mac(secret, parsed.payload), parsed.mac):
            raise InvalidSignature(
                "门牌签名无效：此二维码不是本系统签发的，或已停用 / the plate's signature does not verify: "
                "this code was not issued by the registry, or its key was retired",
                parameter="token",
            )
        return parsed


# --- key management (CLI) ----------------------------------------------------------------------
def rotate_key(conn: Connection, *, actor: str, note: str | None = None) -> SigningKey:
    """Add a new signing key; it signs every plate issued from now on. Older keys keep verifying."""
    conn.execute(text("LOCK TABLE doorplate_keys IN SHARE ROW EXCLUSIVE MODE"))
    next_id = conn.execute(select(func.coalesce(func.max(doorplate_keys.c.id), 0) + 1)).scalar_one()
    if next_id > MAX_KEY_ID:
        raise Conflict("签名密钥编号已用尽 / no key ids left", parameter="key")
    row = conn.execute(
        insert(doorplate_keys)
        .values(id=next_id, secret=secrets.token_bytes(32), note=note)
        .returning(doorplate_keys.c.id, doorplate_keys.c.created_at)
    ).one()
    audit(conn, actor=actor, action="doorplate_key.rotate", entity_kind="doorplate_key", entity_id=row.id)
    return SigningKey(row.id, row.created_at, None, note)


def ensure_signing_key(conn: Connection, *, actor: str) -> int:
    """The current key id, creating the first key when there is none."""
    current = conn.execute(
        select(func.max(doorplate_keys.c.id)).where(doorplate_keys.c.retired_at.is_(None))
    ).scalar_one()
    return current if current is not None else rotate_key(conn, actor=actor, note="first key").id


def retire_key(conn: Connection, key_id: int, *, actor: str) -> None:
    """Stop a key verifying (e.g. after a leak). Plates signed with it must be replaced."""
    res = conn.execute(
        update(doorplate_keys)
        .where(doorplate_keys.c.id == key_id, doorplate_keys.c.retired_at.is_(None))
        .values(retired_at=func.now())
    )
    if res.rowcount == 0:
        raise NotFound(f"没有有效的签名密钥 {key_id} / no live signing key {key_id}", parameter="key")
    audit(conn, actor=actor, action="doorplate_key.retire", entity_kind="doorplate_key", entity_id=key_id)


def list_keys(conn: Connection) -> list[SigningKey]:
    rows = conn.execute(
        select(doorplate_keys.c.id, doorplate_keys.c.created_at, doorplate_keys.c.retired_at,
               doorplate_keys.c.note).order_by(doorplate_keys.c.id)
    ).all()
    return [SigningKey(r.id, r.created_at, r.retired_at, r.note) for r in rows]


def scan_url(base_url: str, token: str) -> str:
    return f"{base_url.rstrip('/')}/p/{token}"
