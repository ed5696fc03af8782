"""Settings, read from the environment (COUPONRY_*) and overridable by CLI flags.

No instance is built at import time: callers build `Settings()` when they need one.
"""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATABASE_URL = "sqlite:///./var/couponry.db"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="COUPONRY_", extra="ignore")

    database_url: str = DEFAULT_DATABASE_URL
    replica_url: str | None = None
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    workers: int = Field(default=1, ge=1, le=64)
    log_level: str = "info"
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None
    # Connections per process; a hot row gets slower with more clients, so keep it small.
    pool_size: int = Field(default=8, ge=1, le=100)
    # SQLite waits this long for the write lock before giving up.
    sqlite_busy_timeout_ms: int = Field(default=15000, ge=0)
    # A job's lease: how long a job whose process died waits before another process takes it
    # up. Each batch renews it, so it must outlast one batch (10,000 codes: about a second).
    job_lease_seconds: int = Field(default=30, ge=2, le=3600)
    # The largest CSV file `POST .../codes/import` and `couponry codes import` take (SPEC 10:
    # 100 MiB, the one exception to the 1 MiB limit of every other body).
    import_max_bytes: int = Field(default=100 * 1024 * 1024, ge=1)
