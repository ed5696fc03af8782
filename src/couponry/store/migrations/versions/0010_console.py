"""The console (SPEC 12): its sessions, and the indexes its pages read through

- console_sessions: a hash of each session's token, its tenant and key.
- coupons.name_lower (backfilled from the body; NULL when the name is the code) with an index
  for the search by name prefix;
  on PostgreSQL, coupons.code_normalized and name_lower compare by code point (COLLATE "C"),
  so a prefix is one index range whatever the database's collation.
- redemptions by (tenant, status, seq): the console lists them newest first by status.

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

_BACKFILL_BATCH = 5_000
_LIVE = sa.text("deleted_at IS NULL")


def _byte_ordered(length: int) -> sa.types.TypeEngine[str]:
    return sa.String(length).with_variant(sa.String(length, collation="C"), "postgresql")


def upgrade() -> None:
    op.create_table(
        "console_sessions",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("tenant_id", sa.String(length=63), nullable=False),
        sa.Column("key_id", sa.String(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_console_sessions_tenant_id_tenants")
        ),
        sa.ForeignKeyConstraint(
            ["key_id"], ["api_keys.id"], name=op.f("fk_console_sessions_key_id_api_keys")
        ),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_console_sessions")),
    )
    op.create_index("ix_console_sessions_last_seen_at", "console_sessions", ["last_seen_at"])
    with op.batch_alter_table("coupons", schema=None) as batch_op:
        batch_op.add_column(sa.Column("name_lower", _byte_ordered(400), nullable=True))
    if op.get_bind().dialect.name == "postgresql":
        op.execute('ALTER TABLE coupons ALTER COLUMN code_normalized TYPE varchar(64) COLLATE "C"')
    _backfill_names()
    op.create_index(
        "ix_coupons_live_name",
        "coupons",
        ["tenant_id", "name_lower", "seq"],
        sqlite_where=_LIVE,
        postgresql_where=_LIVE,
    )
    op.create_index(
        "ix_redemptions_tenant_status_seq", "redemptions", ["tenant_id", "status", "seq"]
    )


def _backfill_names() -> None:
    """Lower-case in Python, as the application does (SQLite's lower() knows only ASCII)."""
    conn = op.get_bind()
    coupons = sa.table("coupons", sa.column("seq"), sa.column("body"), sa.column("name_lower"))
    after = 0
    while True:
        rows = conn.execute(
            sa.select(coupons.c.seq, coupons.c.body)
            .where(coupons.c.seq > after)
            .order_by(coupons.c.seq)
            .limit(_BACKFILL_BATCH)
        ).all()
        if not rows:
            return
        updates = []
        for seq, body in rows:
            fields = json.loads(body)
            updates.append({"s": seq, "n": _name_key(fields.get("name"), fields.get("code"))})
        conn.execute(
            sa.update(coupons)
            .where(coupons.c.seq == sa.bindparam("s"))
            .values(name_lower=sa.bindparam("n")),
            updates,
        )
        after = rows[-1][0]


def _name_key(name: object, code: object) -> str | None:
    """As domain.coupons.name_key then (a migration keeps its own copy of what it runs)."""
    if not isinstance(name, str):
        return None
    lowered = name.lower()
    return None if isinstance(code, str) and lowered == code.lower() else lowered


def downgrade() -> None:
    op.drop_index("ix_redemptions_tenant_status_seq", table_name="redemptions")
    op.drop_index("ix_coupons_live_name", table_name="coupons")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE coupons ALTER COLUMN code_normalized TYPE varchar(64)")
    with op.batch_alter_table("coupons", schema=None) as batch_op:
        batch_op.drop_column("name_lower")
    op.drop_index("ix_console_sessions_last_seen_at", table_name="console_sessions")
    op.drop_table("console_sessions")
