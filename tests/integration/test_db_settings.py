"""The connection settings the storage layer relies on are in force on every connection."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from couponry.store.db import Database


def test_connection_settings(backend: str, db: Database) -> None:
    with db.reader() as conn:
        if backend == "sqlite":
            assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
            assert conn.execute(text("PRAGMA synchronous")).scalar() == 1  # NORMAL
            assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
            assert conn.execute(text("PRAGMA busy_timeout")).scalar() >= 1000
        else:
            # a generic plan for `tenant_id = $1 AND seq > $2` walks every tenant's rows
            assert conn.execute(text("SHOW plan_cache_mode")).scalar() == "force_custom_plan"


def test_sqlite_write_transactions_take_the_lock_at_begin(backend: str, db: Database) -> None:
    if backend != "sqlite":
        pytest.skip("BEGIN IMMEDIATE is SQLite's")
    with db.transaction() as conn:
        # BEGIN IMMEDIATE: this connection already holds the write lock, so another
        # connection's write waits instead of failing later with "database is locked"
        assert conn.execute(text("SELECT 1")).scalar() == 1
        raw = conn.connection.dbapi_connection
        assert raw is not None and raw.in_transaction
