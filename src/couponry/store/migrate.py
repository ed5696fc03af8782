"""Schema migrations (Alembic), safe when several processes start at once.

Each process takes a lock before reading the schema version: PostgreSQL's transaction-level
advisory lock, or on SQLite the writers' lock file and then its write lock (BEGIN IMMEDIATE).
The first migrates; the others then find the schema at head and do nothing.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, text

from couponry.store.db import sqlite_writer_turn

_MIGRATIONS = Path(__file__).parent / "migrations"
_LOCK_ID = 7_340_112_001  # any constant shared by every couponry process


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    return config


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to `revision` under the migration lock."""
    config = alembic_config()
    with sqlite_writer_turn(engine), engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _LOCK_ID})
        config.attributes["connection"] = conn
        command.upgrade(config, revision)


def is_migrated(engine: Engine) -> bool:
    return current_revision(engine) == head_revision()
