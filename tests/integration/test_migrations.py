"""The migrations build the schema that tables.py describes, and survive a crowd at start-up."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from couponry.store.db import Database
from couponry.store.migrate import current_revision, head_revision, is_migrated, upgrade
from couponry.store.tables import metadata
from tests.conftest import POSTGRES_URL, _create_pg_database, _drop_pg_database
from tests.e2e.server import COUPONRY, cli_env


@pytest.fixture
def empty_url(backend: str, tmp_path: Path):  # type: ignore[no-untyped-def]
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    assert POSTGRES_URL
    url = _create_pg_database(POSTGRES_URL)
    yield url
    _drop_pg_database(POSTGRES_URL, url)


def test_upgrade_from_empty_has_no_drift(empty_url: str) -> None:
    db = Database.from_urls(empty_url)
    try:
        assert current_revision(db.primary) is None
        upgrade(db.primary)
        assert is_migrated(db.primary) and current_revision(db.primary) == head_revision()
        with db.primary.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), metadata)
        assert diff == []
        names = set(inspect(db.primary).get_table_names())
        assert {"tenants", "api_keys", "groups", "group_members", "coupons"} <= names
        upgrade(db.primary)  # a second run is a no-op
    finally:
        db.dispose()


def test_processes_starting_together_migrate_once(empty_url: str) -> None:
    env = cli_env(empty_url)
    procs = [
        subprocess.Popen([COUPONRY, "db", "upgrade"], env=env, stderr=subprocess.PIPE, text=True)
        for _ in range(4)
    ]
    outcomes = [(p.wait(120), p.stderr.read() if p.stderr else "") for p in procs]
    assert [code for code, _ in outcomes] == [0, 0, 0, 0], outcomes
    db = Database.from_urls(empty_url)
    try:
        assert is_migrated(db.primary)
    finally:
        db.dispose()
