"""Settings from the environment (prefix REGISTRY_), validated at start-up so that a bad
value fails fast with the variable's name rather than deep inside a request.

Entry points call `load_settings()` (or the cached `get_settings()`): every bad variable becomes
one line of a `SettingsError`, named as the user typed it (`REGISTRY_PG_PORT: 应为整数 / input
should be a valid integer, got 'abc'`), which the CLI and api/main.py print before exiting 2.
`Settings()` itself still raises pydantic's ValidationError (field names) for code that wants it.
"""
from __future__ import annotations

import ipaddress
import re
from functools import lru_cache
from typing import Annotated
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from registry.errors import SettingsError

PROJECT_ROOT = Path(__file__).resolve().parent.parent
ENV_PREFIX = "REGISTRY_"
DATABASE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")

# Host names that never resolve from a citizen's phone (RFC 6761 localhost, mDNS .local, RFC 8375).
_LOCAL_SUFFIXES = (".localhost", ".local", ".internal", ".home.arpa", ".lan")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, env_file=None, extra="ignore")

    # With no URL, the registry runs its own PostgreSQL cluster in `data_dir` (see registry.db.cluster).
    database_url: str | None = Field(
        default=None, description="postgresql+psycopg://user@host:port/db of an existing server"
    )
    data_dir: Path = Field(default=PROJECT_ROOT / "var" / "pgdata", description="managed cluster folder")
    export_dir: Path = Field(default=PROJECT_ROOT / "var" / "exports",
                             description="files of export jobs, shared by the API's workers")
    pg_port: int = Field(default=55432, ge=1024, le=65535, description="managed cluster TCP port")
    pg_bin_dir: Path | None = Field(default=None, description="folder with initdb/pg_ctl (auto-detected)")
    pg_os_user: str = Field(default="postgres", description="OS user that runs the cluster when we are root")
    database_name: str = Field(default="registry", description="database name in the managed cluster")

    pool_size: int = Field(default=10, ge=1, le=200)
    # Read replicas (registry/db/routing.py): comma-separated URLs; reads go to the healthy ones.
    replica_urls: Annotated[tuple[str, ...], NoDecode] = Field(
        default=(), description="postgresql://… of read replicas, comma-separated (registry db replica start)")
    # LISTEN needs a session of its own on the primary: the URL of the primary itself when
    # REGISTRY_DATABASE_URL goes through a pooler in transaction mode (registry/db/listen.py).
    listen_url: str | None = Field(default=None, description="postgresql://… of the primary itself for the LISTEN "
                                   "connection (unset: REGISTRY_DATABASE_URL), e.g. behind pgbouncer")
    replica_check_seconds: float = Field(default=1.0, gt=0, le=60, description="how often replicas' health is checked")
    replica_max_lag_bytes: int = Field(default=256 * 2**20, ge=0,
                                       description="a replica further behind the primary than this gets no reads")
    db_connect_timeout_seconds: int = Field(default=3, ge=1, le=300, description="libpq connect_timeout")
    db_pool_timeout_seconds: float = Field(default=5.0, gt=0, le=300,
                                           description="longest wait for a pooled connection (then 503)")
    read_statement_timeout_ms: int = Field(default=30_000, ge=0,
                                           description="statement_timeout of the replicas' connections (0 = none)")
    db_prepared_statements: bool = Field(default=True, description="false behind pgbouncer < 1.21 in transaction "
                                         "mode: psycopg then never prepares a statement on the server")
    search_follow: str = Field(default="auto", pattern="^(auto|poll)$",
                               description="poll: the search follows the change log, not NOTIFY (behind pgbouncer); "
                                           "auto: poll only when reading from replicas")
    public_base_url: str = Field(default="http://127.0.0.1:8000",
                                 description="scheme://host[:port][/path] printed in doorplate QR codes")
    log_level: str = Field(default="INFO")
    log_hold_seconds: float = Field(
        default=0.5, ge=0, le=10, description="the API writes its INFO lines (the request log) in batches, each "
        "line at most this long after it happened (0 = each line at once); warnings and errors are never held")
    opentelemetry: bool = Field(
        default=False, description="FastAPI's own OpenTelemetry request spans, metrics and logs (needs a configured "
        "OpenTelemetry SDK; off: no per-request check of the global providers)")
    key_cache_seconds: float = Field(default=30.0, ge=0, le=3600, description="how long an API key check is reused")
    doorplate_scan_flush_seconds: float = Field(
        default=2.0, ge=0, le=3600, description="doorplate scan counts are buffered this long (0 = written per scan)"
    )
    scan_cache_entries: int = Field(
        default=50_000, ge=0, description="public plate pages kept rendered per process (0 = no render cache)"
    )
    inspection_marker_tolerance_m: float = Field(
        default=50.0, gt=0, le=1000, description="a field package's marker may lie this far from its line"
    )
    inspection_node_tolerance_m: float = Field(
        default=0.5, gt=0, le=100, description="a re-surveyed line's ends must stay this close to where its neighbours meet"
    )
    body_limit_bytes: int = Field(default=1_000_000, ge=1024, description="largest request body (413 above)")
    match_body_limit_bytes: int = Field(default=32_000_000, ge=1024, description="largest POST /v1/match body")
    package_body_limit_bytes: int = Field(default=200_000_000, ge=1024, description="largest field-package upload")
    header_limit_bytes: int = Field(default=16_384, ge=1024, description="largest request head, all headers (431 above)")
    json_max_depth: int = Field(default=32, ge=2, le=1000, description="deepest nesting of a JSON body (400 above)")
    rate_limit_public_per_minute: int = Field(default=300, ge=0, description="anonymous requests a minute per client address (0 = off)")
    rate_limit_report_per_minute: int = Field(default=10, ge=0, description="anonymous POST /p/{token}/report a minute per client address")
    rate_limit_backend: str = Field(default="postgres", pattern="^(postgres|memory)$",
                                    description="where buckets are counted: postgres (all processes) or memory")
    rate_limit_sync_seconds: float = Field(default=0.1, gt=0, le=10,
                                           description="how often a worker settles its buckets with the shared store")
    rate_limit_lease_share: float = Field(default=0.1, gt=0, le=1,
                                          description="share of a bucket a worker may lease or use on credit")
    search_dialect_pinyin: bool = Field(
        default=True, description="search forgives z/zh, c/ch, s/sh, an/ang, en/eng, in/ing and n/l (Zhejiang pinyin)"
    )
    scan_store_dir: Path | None = Field(
        default=None,
        description="where `registry plates scan-store build` keeps every live plate's public answer built ahead "
                    "(memory-mapped by every API worker; unset: every scan the render cache misses is composed)",
    )
    gazetteer_dir: Path = Field(
        default=PROJECT_ROOT / "var" / "gazetteer",
        description="where the search gazetteer's shared generations live (memory-mapped by every API worker)",
    )

    @field_validator("database_url")
    @classmethod
    def _check_url(cls, v: str | None) -> str | None:
        if v in (None, ""):
            return None
        if not v.startswith(("postgresql://", "postgresql+psycopg://", "postgres://")):
            raise ValueError("应为 postgresql:// 开头的网址 / must be a postgresql:// URL")
        # SQLAlchemy needs the driver named; accept the libpq forms people paste.
        if v.startswith("postgres://"):
            v = "postgresql://" + v[len("postgres://"):]
        if v.startswith("postgresql://"):
            v = "postgresql+psycopg://" + v[len("postgresql://"):]
        return v

    @field_validator("replica_urls", mode="before")
    @classmethod
    def _check_replica_urls(cls, v) -> tuple[str, ...]:
        parts = [p.strip() for p in v.split(",")] if isinstance(v, str) else list(v or ())
        return tuple(cls._server_url(part) for part in filter(None, parts))

    @field_validator("listen_url")
    @classmethod
    def _check_listen_url(cls, v: str | None) -> str | None:
        return cls._server_url(v.strip()) if v and v.strip() else None

    @classmethod
    def _server_url(cls, part: str) -> str:
        """One server's URL (a replica, the LISTEN connection's): postgresql://, a host, a database."""
        from sqlalchemy.engine import make_url

        url = cls._check_url(part)
        try:
            parsed = make_url(url)
            parsed.port  # noqa: B018 - parses it
        except Exception:
            raise ValueError(f"不是有效的数据库网址 / not a valid database URL: {part!r}") from None
        if parsed.port is not None and not 0 < parsed.port < 65536:
            raise ValueError(f"端口无效 / invalid port in {part!r}")
        if not parsed.host or not parsed.database:
            raise ValueError(f"网址应含主机和数据库名 / the URL needs a host and a database: {part!r}")
        return url

    @field_validator("database_name")
    @classmethod
    def _check_database_name(cls, v: str) -> str:
        if not DATABASE_NAME.match(v):
            raise ValueError("应由小写字母、数字和下划线组成，以字母或下划线开头，至多 63 个字符 / "
                             "must be lower-case letters, digits and _, not starting with a digit, at most 63")
        return v

    @field_validator("public_base_url")
    @classmethod
    def _check_public_base_url(cls, v: str) -> str:
        return normalise_base_url(v)

    @field_validator("log_level")
    @classmethod
    def _check_level(cls, v: str) -> str:
        v = v.upper()
        if v not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
            raise ValueError("应为 DEBUG、INFO、WARNING 或 ERROR / must be DEBUG, INFO, WARNING or ERROR")
        return v

    @property
    def managed(self) -> bool:
        return self.database_url is None


def env_name(field: str) -> str:
    """The environment variable that sets a field: pg_port → REGISTRY_PG_PORT."""
    return ENV_PREFIX + field.upper()


# --- the public base URL ------------------------------------------------------------------------
def normalise_base_url(value: str) -> str:
    """`scheme://host[:port][/path]` with no trailing slash; http or https, a host, no query,
    fragment or user name. Raises ValueError (bilingual) otherwise."""
    v = value.strip()
    try:
        parts = urlsplit(v)
        port = parts.port  # parses it: a bad port raises here
    except ValueError:
        raise ValueError("不是有效的网址 / not a valid URL") from None
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        raise ValueError("应为 http:// 或 https:// 开头的完整网址，如 https://dz.huzhou.gov.cn / "
                         "must be an absolute http:// or https:// URL, e.g. https://dz.huzhou.gov.cn")
    if not parts.hostname:
        raise ValueError("网址缺少主机名 / the URL has no host")
    if parts.username is not None or parts.password is not None:
        raise ValueError("网址不能含用户名或密码 / the URL must not carry a user name or password")
    if parts.query or parts.fragment or v.endswith(("?", "#")):
        raise ValueError("网址不能含查询串或片段（? 或 #） / the URL must not have a query or fragment (? or #)")
    host = parts.hostname.lower()
    netloc = f"[{host}]" if ":" in host else host
    if port is not None:
        netloc += f":{port}"
    return f"{parts.scheme.lower()}://{netloc}{parts.path.rstrip('/')}"


def local_url_reason(url: str) -> str | None:
    """Why a citizen's phone could not open `url` (a loopback, link-local or private address,
    localhost, a name without a domain), or None when it looks public. No DNS look-up: what
    matters is the name printed on the plate, and it must be a public one."""
    host = (urlsplit(url).hostname or "").lower().rstrip(".")
    if not host:
        return "没有主机名 / no host"
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        ip = None
    if ip is not None:
        if ip.is_loopback:
            return "回环地址 / a loopback address"
        if ip.is_link_local:
            return "链路本地地址 / a link-local address"
        if ip.is_unspecified:
            return "未指定地址 / an unspecified address"
        if ip.is_private or not ip.is_global:
            return "内网地址 / a private address"
        return None
    if host == "localhost" or host.endswith(_LOCAL_SUFFIXES):
        return "本机或局域网主机名 / a local host name"
    if "." not in host:
        return "不含域名的主机名 / a host name without a domain"
    return None


# --- loading, with the errors named by their variables --------------------------------------------
_MESSAGES = {
    "int_parsing": ("应为整数", "input should be a valid integer"),
    "int_from_float": ("应为整数", "input should be a valid integer"),
    "int_type": ("应为整数", "input should be a valid integer"),
    "float_parsing": ("应为数字", "input should be a valid number"),
    "float_type": ("应为数字", "input should be a valid number"),
    "bool_parsing": ("应为 true 或 false", "input should be true or false"),
    "greater_than_equal": ("应不小于 {ge}", "input should be at least {ge}"),
    "greater_than": ("应大于 {gt}", "input should be greater than {gt}"),
    "less_than_equal": ("应不大于 {le}", "input should be at most {le}"),
    "less_than": ("应小于 {lt}", "input should be less than {lt}"),
    "string_pattern_mismatch": ("格式不符 {pattern}", "input should match {pattern}"),
    "finite_number": ("应为有限数", "input should be a finite number"),
}


def _line(err: dict) -> str:
    field = str(err["loc"][0]) if err.get("loc") else "?"
    ctx = err.get("ctx") or {}
    if err["type"] == "value_error" and "error" in ctx:
        message = str(ctx["error"])
    elif err["type"] in _MESSAGES:
        zh, en = _MESSAGES[err["type"]]
        message = f"{zh.format(**ctx)} / {en.format(**ctx)}"
    else:
        message = f"无效 / {err.get('msg', 'invalid value')}"
    given = err.get("input")
    got = f", got {given!r}" if isinstance(given, (str, int, float)) else ""
    return f"{env_name(field)}: {message}{got}"


def load_settings(**overrides) -> Settings:
    """The settings from the environment; a SettingsError with one line per bad variable."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        lines = list(dict.fromkeys(_line(err) for err in exc.errors()))
        raise SettingsError(lines) from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()
