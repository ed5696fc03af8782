"""The migrations build the schema that tables.py describes, and survive a crowd at start-up."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect, text

from couponry.domain.redemptions import REDEEMED, REFUSED, StoredOutcome
from couponry.store.db import Database
from couponry.store.migrate import (
    alembic_config,
    current_revision,
    head_revision,
    is_migrated,
    upgrade,
)
from couponry.store.redemption_repo import RedemptionRepository
from couponry.store.tables import metadata
from tests.e2e.server import COUPONRY, cli_env


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


# --- 0004: idempotency keys keep an outcome instead of an HTTP reply -------------------------

VIEW = '{"id":"abcd-efgh-ijkl-mnop","status":"applied","discount_total":"5.00"}'
REFUSALS = {  # a document, and the status the web layer gives it
    "coupon_not_found": (
        '{"code":"coupon_not_found","message":"No coupon has this code.","details":[]}',
        404,
    ),
    "user_limit_reached": (
        '{"code":"user_limit_reached","message":"Not again.","details":[]}',
        409,
    ),
    "coupon_expired": (
        '{"code":"coupon_expired","message":"Too late — «é».",'
        '"details":[{"field":"code","message":"expired"}]}',
        422,
    ),
}
_INSERT_0003 = text(
    "INSERT INTO idempotency_keys "
    "(tenant_id, key, request_hash, status_code, response_body, created_at) "
    "VALUES ('t', :key, 'h', :status, :body, '2030-01-01 00:00:00')"
)
_READ_0003 = text("SELECT key, status_code, response_body FROM idempotency_keys ORDER BY key")


def downgrade(engine: Engine, revision: str) -> None:
    config = alembic_config()
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, revision)


def read_outcomes(db: Database) -> dict[str, StoredOutcome]:
    keys = ["ok", *REFUSALS]
    with db.reader() as conn:
        records = {key: RedemptionRepository(conn, "t").key_record(key) for key in keys}
    found = {key: record.stored for key, record in records.items() if record is not None}
    assert len(found) == len(keys)
    return found


EXPECTED = {"ok": StoredOutcome(REDEEMED, VIEW)} | {
    code: StoredOutcome(REFUSED, document) for code, (document, _) in REFUSALS.items()
}
OLD_REPLIES = sorted(  # by key, as _READ_0003 reads them
    [("ok", 201, VIEW)]
    + [(code, status, '{"error":' + doc + "}") for code, (doc, status) in REFUSALS.items()]
)


def test_replies_stored_before_0004_read_as_their_outcome(empty_url: str) -> None:
    db = Database.from_urls(empty_url)
    try:
        upgrade(db.primary, "0003")
        with db.primary.begin() as conn:
            for key, status, body in OLD_REPLIES:
                conn.execute(_INSERT_0003, {"key": key, "status": status, "body": body})
        upgrade(db.primary)
        assert read_outcomes(db) == EXPECTED
    finally:
        db.dispose()


def test_downgrade_from_0004_gives_back_the_replies_the_old_code_stored(empty_url: str) -> None:
    db = Database.from_urls(empty_url)
    try:
        upgrade(db.primary)
        with db.transaction() as conn:
            repo = RedemptionRepository(conn, "t")
            for key, stored in EXPECTED.items():
                assert repo.reserve_key(key, "h", datetime(2030, 1, 1, tzinfo=UTC))
                repo.store_outcome(key, stored)
        downgrade(db.primary, "0003")
        with db.primary.connect() as conn:
            assert [tuple(row) for row in conn.execute(_READ_0003)] == OLD_REPLIES
        upgrade(db.primary)
        assert read_outcomes(db) == EXPECTED
    finally:
        db.dispose()


def test_campaign_codes_leave_room_for_an_update_in_place(empty_url: str) -> None:
    """PostgreSQL: pages of coupon_codes keep 15% free, so a redemption's update of a code
    stays on its page (0011); SQLite has no such setting and the migration leaves it be."""
    db = Database.from_urls(empty_url)
    try:
        upgrade(db.primary)
        if db.primary.dialect.name != "postgresql":
            assert current_revision(db.primary) == head_revision()
            return
        with db.primary.connect() as conn:
            options = conn.execute(
                text("SELECT reloptions FROM pg_class WHERE relname = 'coupon_codes'")
            ).scalar()
        assert options == ["fillfactor=85"]
        downgrade(db.primary, "0010")
        with db.primary.connect() as conn:
            options = conn.execute(
                text("SELECT reloptions FROM pg_class WHERE relname = 'coupon_codes'")
            ).scalar()
        assert options is None
    finally:
        db.dispose()
