"""Redemptions, per-user use counters, idempotency keys, credit drawn

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("coupons", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "credit_drawn_units", sa.BigInteger(), nullable=False, server_default=sa.text("0")
            )
        )
        batch_op.add_column(sa.Column("last_draw_units", sa.BigInteger(), nullable=True))
    # Credit already gone from coupons made before redemptions existed.
    op.execute(
        "UPDATE coupons SET credit_drawn_units = value_units - remaining_units "
        "WHERE remaining_units IS NOT NULL AND value_units IS NOT NULL "
        "AND value_units > remaining_units"
    )
    op.create_table(
        "redemptions",
        sa.Column("seq", _SEQ, autoincrement=True, nullable=False),
        sa.Column("id", sa.String(length=19), nullable=False),
        sa.Column("tenant_id", sa.String(length=63), nullable=False),
        sa.Column("coupon_id", sa.String(length=19), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("access", sa.String(length=10), nullable=False),
        sa.Column("membership_status", sa.String(length=10), nullable=True),
        sa.Column("discount_units", sa.BigInteger(), nullable=False),
        sa.Column("credit_units", sa.BigInteger(), nullable=False),
        sa.Column("lines", sa.Text(), nullable=False),
        sa.Column("discount_line", sa.Text(), nullable=True),
        sa.Column("idempotency_key", sa.String(length=255), nullable=True),
        sa.Column("approved_by", sa.String(length=200), nullable=True),
        sa.Column("approved_at", sa.DateTime(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_redemptions_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_redemptions")),
        sa.UniqueConstraint("id", name=op.f("uq_redemptions_id")),
    )
    with op.batch_alter_table("redemptions", schema=None) as batch_op:
        batch_op.create_index("ix_redemptions_tenant_seq", ["tenant_id", "seq"], unique=False)
        batch_op.create_index("ix_redemptions_coupon_status", ["coupon_id", "status"], unique=False)
        batch_op.create_index(
            "ix_redemptions_tenant_user_seq", ["tenant_id", "user_id", "seq"], unique=False
        )
    op.create_table(
        "coupon_user_uses",
        sa.Column("coupon_id", sa.String(length=19), nullable=False),
        sa.Column("user_id", sa.String(length=200), nullable=False),
        sa.Column("tenant_id", sa.String(length=63), nullable=False),
        sa.Column("uses", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("coupon_id", "user_id", name=op.f("pk_coupon_user_uses")),
    )
    op.create_table(
        "idempotency_keys",
        sa.Column("tenant_id", sa.String(length=63), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=False),
        sa.Column("response_body", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "key", name=op.f("pk_idempotency_keys")),
    )
    with op.batch_alter_table("idempotency_keys", schema=None) as batch_op:
        batch_op.create_index("ix_idempotency_keys_created_at", ["created_at"], unique=False)


def downgrade() -> None:
    op.drop_table("idempotency_keys")
    op.drop_table("coupon_user_uses")
    op.drop_table("redemptions")
    with op.batch_alter_table("coupons", schema=None) as batch_op:
        batch_op.drop_column("last_draw_units")
        batch_op.drop_column("credit_drawn_units")
