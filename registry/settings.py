"""Settings from the environment (prefix REGISTRY_), validated at start-up so that a bad
value fails fast with the variable's name rather than deep inside a request."""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="REGISTRY_", env_file=None, extra="ignore")

    # With no URL, the registry runs its own PostgreSQL cluster in `data_dir` (see registry.db.cluster).
    database_url: str | None = Field(
        default=None, description="postgresql+psycopg://user@host:port/db of an existing server"
    )
    data_dir: Path = Field(default=PROJECT_ROOT / "var" / "pgdata", description="managed cluster folder")
    pg_port: int = Field(default=55432, ge=1024, le=65535, description="managed cluster TCP port")
    pg_bin_dir: Path | None = Field(default=None, description="folder with initdb/pg_ctl (auto-detected)")
    pg_os_user: str = Field(default="postgres", description="OS user that runs the cluster when we are root")
    database_name: str = Field(default="registry", pattern=r"^[a-z_][a-z0-9_]{0,62}$")

    pool_size: int = Field(default=10, ge=1, le=200)
    public_base_url: str = Field(default="http://127.0.0.1:8000")
    log_level: str = Field(default="INFO")
    key_cache_seconds: float = Field(default=30.0, ge=0, le=3600, description="how long an API key check is reused")
    doorplate_scan_flush_seconds: float = Field(
        default=2.0, ge=0, le=3600, description="doorplate scan counts are buffered this long (0 = written per scan)"
    )

    @field_validator("database_url")
    @classmethod
    def _check_url(cls, v: str | None) -> str | None:
        if v in (None, ""):
            return None
        if not v.startswith(("postgresql://", "postgresql+psycopg://", "postgres://")):
            raise ValueError("REGISTRY_DATABASE_URL must be a postgresql:// URL")
        # SQLAlchemy needs the driver named; accept the libpq forms people paste.
        if v.startswith("postgres://"):
            v = "postgresql://" + v[len("postgres://"):]
        if v.startswith("postgresql://"):
            v = "postgresql+psycopg://" + v[len("postgresql://"):]
        return v

    @field_validator("log_level")
    @classmethod
    def _check_level(cls, v: str) -> str:
        v = v.upper()
        if v not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
            raise ValueError("REGISTRY_LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR")
        return v

    @property
    def managed(self) -> bool:
        return self.database_url is None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
