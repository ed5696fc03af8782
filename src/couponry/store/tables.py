"""SQLAlchemy Core tables: portable types only, so SQLite and PostgreSQL run the same schema.

Money is stored as integers of 1/10,000 (`*_units`), exact on both databases. Instants are
stored as naive UTC and returned as aware UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
    true,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


class UTCDateTime(TypeDecorator[datetime]):
    """Naive UTC in the database, aware UTC in Python."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):  # SQLite may hand back text
            value = datetime.fromisoformat(value)
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC)


# Auto-incrementing 64-bit keys that SQLite also treats as its rowid.
SeqType = BigInteger().with_variant(Integer(), "sqlite")


def byte_ordered(length: int) -> String:
    """Text compared by code point on both databases (SQLite's BINARY; "C" on PostgreSQL), so
    a prefix is one index range `>= p AND < p'` whatever the database's own collation."""
    return String(length).with_variant(String(length, collation="C"), "postgresql")


tenants = Table(
    "tenants",
    metadata,
    Column("id", String(63), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("site_urls", Text, nullable=False),  # JSON array
    Column("admins", Text, nullable=False),  # JSON array of usernames
    Column("created_at", UTCDateTime, nullable=False),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("tenant_id", String(63), ForeignKey("tenants.id"), nullable=False, index=True),
    Column("role", String(16), nullable=False),
    Column("secret_hash", String(128), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("revoked_at", UTCDateTime, nullable=True),
)

groups = Table(
    "groups",
    metadata,
    Column("seq", SeqType, primary_key=True, autoincrement=True),
    Column("id", String(19), nullable=False, unique=True),
    Column("tenant_id", String(63), ForeignKey("tenants.id"), nullable=False),
    Column("parent_id", String(19), nullable=True),
    Column("name", String(200), nullable=False),
    Column("code", String(64), nullable=True),
    Column("code_normalized", String(64), nullable=True),
    Column("sys_version", Integer, nullable=False),
    Column("sys_created_at", UTCDateTime, nullable=False),
    Column("sys_last_modified_at", UTCDateTime, nullable=False),
    # NULL codes are distinct in both databases, so groups without a code never collide.
    UniqueConstraint("tenant_id", "code_normalized"),
    Index("ix_groups_tenant_seq", "tenant_id", "seq"),
    Index("ix_groups_tenant_parent_seq", "tenant_id", "parent_id", "seq"),
)

group_members = Table(
    "group_members",
    metadata,
    Column("tenant_id", String(63), nullable=False),
    Column("group_id", String(19), ForeignKey("groups.id"), primary_key=True),
    Column("user_id", String(200), primary_key=True),
    Column("role", String(16), nullable=False),
    Column("expires_at", UTCDateTime, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
)

coupons = Table(
    "coupons",
    metadata,
    Column("seq", SeqType, primary_key=True, autoincrement=True),
    Column("id", String(19), nullable=False, unique=True),
    Column("tenant_id", String(63), ForeignKey("tenants.id"), nullable=False),
    Column("code", String(64), nullable=False),
    Column("code_normalized", byte_ordered(64), nullable=False),
    # The name in lower case, for the console's prefix search (SPEC 12); the name itself is in
    # the body. NULL when the name is the code (domain.coupons.name_key).
    Column("name_lower", byte_ordered(400), nullable=True),
    Column("is_active", Boolean, nullable=False),
    Column("coupon_type", String(16), nullable=True),
    Column("entity_type", String(16), nullable=True),
    Column("entity_id", String(200), nullable=True),
    Column("authorized_group_id", String(19), nullable=True),
    Column("starts_at", UTCDateTime, nullable=True),
    Column("expires_at", UTCDateTime, nullable=True),
    Column("usage_limit", Integer, nullable=True),
    Column("max_uses_per_user", Integer, nullable=True),
    Column("times_used", Integer, nullable=False),
    Column("value_units", BigInteger, nullable=True),
    Column("remaining_units", BigInteger, nullable=True),
    # Credit drawn by applied and pending redemptions; remaining = max(0, value - drawn).
    Column("credit_drawn_units", BigInteger, nullable=False, server_default=text("0")),
    # What the last claim drew: set in the same UPDATE so RETURNING can report it.
    Column("last_draw_units", BigInteger, nullable=True),
    # SPEC 10's budget: what the coupon may give in all, and what its applied, pending and
    # held redemptions were given (kept by the claims, so a claim can cap a discount to the
    # budget in one statement, and stats need not sum the redemptions).
    Column("budget_units", BigInteger, nullable=True),
    Column("given_units", BigInteger, nullable=False, server_default=text("0")),
    # Redemptions by status, kept by the claims and transitions for stats (the applied ones
    # are times_used less the pending and held, as those three hold a use).
    Column("pending_count", Integer, nullable=False, server_default=text("0")),
    Column("held_count", Integer, nullable=False, server_default=text("0")),
    Column("rolled_back_count", Integer, nullable=False, server_default=text("0")),
    Column("rejected_count", Integer, nullable=False, server_default=text("0")),
    Column("released_count", Integer, nullable=False, server_default=text("0")),
    # The coupon's campaign codes: how many, how many active, how many used at least once.
    Column("codes_total", Integer, nullable=False, server_default=text("0")),
    Column("codes_active", Integer, nullable=False, server_default=text("0")),
    Column("codes_used", Integer, nullable=False, server_default=text("0")),
    Column("redeemed", Boolean, nullable=False),
    Column("sys_locked", Boolean, nullable=False),
    Column("sys_version", Integer, nullable=False),
    Column("sys_created_at", UTCDateTime, nullable=False),
    Column("sys_last_modified_at", UTCDateTime, nullable=False),
    Column("sys_created_by_id", String(200), nullable=True),
    Column("sys_last_modified_by_id", String(200), nullable=True),
    Column("sys_deleted_by_id", String(200), nullable=True),
    Column("deleted_at", UTCDateTime, nullable=True),
    # The rest of the canonical record, as JSON text with decimals as strings.
    Column("body", Text, nullable=False),
    Index("ix_coupons_tenant_seq", "tenant_id", "seq"),
    Index("ix_coupons_tenant_entity", "tenant_id", "entity_id"),
    Index("ix_coupons_tenant_auth_group", "tenant_id", "authorized_group_id"),
    # A code is unique among a tenant's live coupons; a deleted coupon frees its code.
    Index(
        "uq_coupons_live_code",
        "tenant_id",
        "code_normalized",
        unique=True,
        sqlite_where=text("deleted_at IS NULL"),
        postgresql_where=text("deleted_at IS NULL"),
    ),
    # The console's search by name prefix, in name order (seq breaks ties for keyset pages).
    Index(
        "ix_coupons_live_name",
        "tenant_id",
        "name_lower",
        "seq",
        sqlite_where=text("deleted_at IS NULL"),
        postgresql_where=text("deleted_at IS NULL"),
    ),
)

# Every live code of a tenant: each coupon's own (`own`) and its campaign codes. One unique
# index arbitrates them all, whatever the concurrency (docs/campaigns.md); a coupon's delete
# removes its rows, which frees its codes.
coupon_codes = Table(
    "coupon_codes",
    metadata,
    Column("seq", SeqType, primary_key=True, autoincrement=True),
    Column("tenant_id", String(63), ForeignKey("tenants.id"), nullable=False),
    Column("coupon_id", String(19), nullable=False),
    Column("code", String(64), nullable=False),
    Column("code_normalized", String(64), nullable=False),
    Column("own", Boolean, nullable=False),
    Column("max_uses", Integer, nullable=True),
    Column("times_used", Integer, nullable=False, server_default=text("0")),
    Column("is_active", Boolean, nullable=False, server_default=true()),
    Column("created_at", UTCDateTime, nullable=False),
    Column("last_used_at", UTCDateTime, nullable=True),
    UniqueConstraint("tenant_id", "code_normalized"),
    Index("ix_coupon_codes_coupon_seq", "coupon_id", "seq"),
)

# Background work (ARCHITECTURE "Background work"): a job is taken by one server process at a
# time under a lease that each batch renews; a process that dies loses its lease and another
# takes the job up where the last committed batch left it.
jobs = Table(
    "jobs",
    metadata,
    Column("seq", SeqType, primary_key=True, autoincrement=True),
    Column("id", String(19), nullable=False, unique=True),
    Column("tenant_id", String(63), ForeignKey("tenants.id"), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("coupon_id", String(19), nullable=False),
    Column("status", String(16), nullable=False),
    Column("total", Integer, nullable=False),
    Column("done", Integer, nullable=False),
    Column("params", Text, nullable=False),  # JSON
    Column("error", Text, nullable=True),  # JSON
    Column("lease_owner", String(64), nullable=True),
    Column("lease_until", UTCDateTime, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("started_at", UTCDateTime, nullable=True),
    Column("finished_at", UTCDateTime, nullable=True),
    Index("ix_jobs_tenant_seq", "tenant_id", "seq"),
    Index("ix_jobs_status_seq", "status", "seq"),
)

# An import's file as it was received (SPEC 10), in parts of about 1 MiB, so any server process
# can run the job and none holds the file in memory. Written before the job row exists (an
# upload cut short leaves parts without a job: the runners sweep them); deleted when the job
# ends.
job_payloads = Table(
    "job_payloads",
    metadata,
    Column("job_id", String(19), primary_key=True),
    Column("part", Integer, primary_key=True),
    Column("data", LargeBinary, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)

# The lines of an import that passed the line checks, staged while the job runs: checked whole
# for repeats and taken codes, then copied to coupon_codes in one transaction; deleted when
# the job ends (and when a job is taken up again, which starts its check afresh).
import_lines = Table(
    "import_lines",
    metadata,
    Column("job_id", String(19), primary_key=True),
    Column("line", Integer, primary_key=True),
    Column("code", String(64), nullable=False),
    Column("code_normalized", String(64), nullable=False),
    Column("max_uses", Integer, nullable=True),
)

# EduBrite sessions: only hashes of the two cookie values are kept.
sessions = Table(
    "sessions",
    metadata,
    Column("seq", SeqType, primary_key=True, autoincrement=True),
    Column("id_hash", String(64), nullable=False, unique=True),
    Column("info_hash", String(64), nullable=False),
    Column("tenant_id", String(63), ForeignKey("tenants.id"), nullable=False),
    Column("key_id", String(32), ForeignKey("api_keys.id"), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("last_seen_at", UTCDateTime, nullable=False),
    Index("ix_sessions_tenant_seq", "tenant_id", "seq"),
)

# Console sessions (SPEC 12): only a hash of the cookie's token is kept; the key is read with
# each request, so revoking it ends its sessions at once.
console_sessions = Table(
    "console_sessions",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("tenant_id", String(63), ForeignKey("tenants.id"), nullable=False),
    Column("key_id", String(32), ForeignKey("api_keys.id"), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("last_seen_at", UTCDateTime, nullable=False),
    Index("ix_console_sessions_last_seen_at", "last_seen_at"),
)

redemptions = Table(
    "redemptions",
    metadata,
    Column("seq", SeqType, primary_key=True, autoincrement=True),
    Column("id", String(19), nullable=False, unique=True),
    Column("tenant_id", String(63), ForeignKey("tenants.id"), nullable=False),
    Column("coupon_id", String(19), nullable=False),
    Column("code", String(64), nullable=False),
    Column("user_id", String(200), nullable=False),
    Column("status", String(20), nullable=False),
    Column("access", String(10), nullable=False),
    Column("membership_status", String(10), nullable=True),
    Column("discount_units", BigInteger, nullable=False),
    Column("credit_units", BigInteger, nullable=False),
    Column("lines", Text, nullable=False),  # JSON [{line_id, discount}]
    Column("discount_line", Text, nullable=True),  # JSON {product_id, amount}
    Column("idempotency_key", String(255), nullable=True),
    Column("approved_by", String(200), nullable=True),
    Column("approved_at", UTCDateTime, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    # SPEC 11: when a hold ends unless confirmed; the request that made several redemptions.
    Column("hold_expires_at", UTCDateTime, nullable=True),
    Column("checkout_id", String(19), nullable=True),
    Index("ix_redemptions_tenant_seq", "tenant_id", "seq"),
    # The sweep of expired holds reads (status, hold_expires_at) in every server process.
    Index("ix_redemptions_status_hold_expires_at", "status", "hold_expires_at"),
    Index("ix_redemptions_tenant_checkout_id", "tenant_id", "checkout_id"),
    Index("ix_redemptions_coupon_status", "coupon_id", "status"),
    Index("ix_redemptions_tenant_user_seq", "tenant_id", "user_id", "seq"),
    Index("ix_redemptions_tenant_code_seq", "tenant_id", "code", "seq"),
    # The console's redemptions filtered by status, newest first.
    Index("ix_redemptions_tenant_status_seq", "tenant_id", "status", "seq"),
)

# Redemptions made per coupon and UTC day, whatever their status now (SPEC 10's stats): kept
# by the claims, so stats read at most 90 rows instead of the coupon's redemptions.
coupon_days = Table(
    "coupon_days",
    metadata,
    Column("coupon_id", String(19), primary_key=True),
    Column("day", Date, primary_key=True),
    Column("tenant_id", String(63), nullable=False),
    Column("redemptions", Integer, nullable=False),
    Column("discount_units", BigInteger, nullable=False),
)

# Uses per (coupon, user) that hold a use (applied or pending): the per-user limit is claimed
# here with one conditional upsert.
coupon_user_uses = Table(
    "coupon_user_uses",
    metadata,
    Column("coupon_id", String(19), primary_key=True),
    Column("user_id", String(200), primary_key=True),
    Column("tenant_id", String(63), nullable=False),
    Column("uses", Integer, nullable=False),
)

# The first request's outcome under each Idempotency-Key, replayed for later requests with the
# same key: `outcome` 0 while it runs, 1 redeemed, 2 refused (domain.redemptions), and
# `response_body` the outcome's JSON document. Rows from before migration 0004 hold an HTTP
# status and reply instead (redemption_repo.stored_outcome reads both).
idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("tenant_id", String(63), primary_key=True),
    Column("key", String(255), primary_key=True),
    Column("request_hash", String(64), nullable=False),
    Column("outcome", Integer, nullable=False),
    Column("response_body", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Index("ix_idempotency_keys_created_at", "created_at"),
)
