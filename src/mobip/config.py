"""Settings: one class, read from the environment (prefix ``MOBIP_``)."""

from __future__ import annotations

import secrets
from enum import StrEnum
from functools import cached_property
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Environment(StrEnum):
    DEVELOPMENT = "development"
    PRODUCTION = "production"


class ConfigurationError(Exception):
    """The settings cannot run a server (raised at start-up, before anything listens)."""


class Settings(BaseSettings):
    """Every setting of MOBIP server; each is documented in README.md."""

    model_config = SettingsConfigDict(env_prefix="MOBIP_", extra="ignore")

    env: Environment = Environment.DEVELOPMENT
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    data_dir: Path = Path("./var")
    database_url: str | None = None
    base_url: str | None = None
    secret_key: str | None = None

    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    max_field_chars: int = Field(default=65536, ge=16)

    token_inactivity_seconds: int = Field(default=3600, ge=60)
    token_touch_interval_seconds: int = Field(default=60, ge=1)

    login_window_seconds: int = Field(default=900, ge=1)
    login_max_failures_per_account: int = Field(default=10, ge=1)
    login_max_failures_per_client: int = Field(default=50, ge=1)

    max_total_amount: int = Field(default=100_000_000, ge=1)
    max_manual_resends: int = Field(default=5, ge=0)

    worker_enabled: bool = True
    worker_poll_seconds: float = Field(default=0.5, gt=0)
    worker_batch_size: int = Field(default=50, ge=1)
    worker_lease_seconds: int = Field(default=60, ge=1)

    log_level: str = "INFO"

    @property
    def is_production(self) -> bool:
        return self.env is Environment.PRODUCTION

    @cached_property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'mobip.sqlite3').resolve()}"

    @cached_property
    def resolved_base_url(self) -> str:
        if self.base_url:
            return self.base_url.rstrip("/")
        return f"http://{self.host}:{self.port}"

    @cached_property
    def resolved_secret_key(self) -> str:
        """The key for encryption and signing; in development generated once into the data dir."""
        if self.secret_key:
            return self.secret_key
        if self.is_production:
            raise ConfigurationError("MOBIP_SECRET_KEY is required in production")
        path = self.data_dir / "secret_key"
        if path.exists():
            return path.read_text().strip()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        key = secrets.token_urlsafe(48)
        path.touch(mode=0o600)
        path.write_text(key + "\n")
        return key

    def check(self) -> None:
        """Refuse settings a production server must not run with."""
        if not self.is_production:
            return
        if not self.secret_key:
            raise ConfigurationError(
                "MOBIP_SECRET_KEY is required in production (a long random string)"
            )
        if not self.resolved_base_url.startswith("https://"):
            raise ConfigurationError(
                "MOBIP_BASE_URL must be an https:// URL in production "
                f"(got {self.resolved_base_url!r})"
            )
