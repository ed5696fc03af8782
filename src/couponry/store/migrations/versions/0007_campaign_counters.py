"""Campaign counters: budgets, redemptions by status and day, campaign codes' counts (SPEC 10)

The coupon keeps what stats and budgets need as counters, updated by the same statements that
claim and release (docs/campaigns.md); this migration fills them from the rows already there.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_COUNTS = (
    "pending_count",
    "held_count",
    "rolled_back_count",
    "rejected_count",
    "released_count",
    "codes_total",
    "codes_active",
    "codes_used",
)


def upgrade() -> None:
    with op.batch_alter_table("coupons", schema=None) as batch_op:
        batch_op.add_column(sa.Column("budget_units", sa.BigInteger(), nullable=True))
        batch_op.add_column(
            sa.Column("given_units", sa.BigInteger(), nullable=False, server_default=sa.text("0"))
        )
        for name in _COUNTS:
            batch_op.add_column(
                sa.Column(name, sa.Integer(), nullable=False, server_default=sa.text("0"))
            )
    with op.batch_alter_table("redemptions", schema=None) as batch_op:
        batch_op.create_index(
            "ix_redemptions_tenant_code_seq", ["tenant_id", "code", "seq"], unique=False
        )
    op.create_table(
        "coupon_days",
        sa.Column("coupon_id", sa.String(length=19), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("tenant_id", sa.String(length=63), nullable=False),
        sa.Column("redemptions", sa.Integer(), nullable=False),
        sa.Column("discount_units", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("coupon_id", "day", name=op.f("pk_coupon_days")),
    )
    # What the rows already there say.
    op.execute(
        "UPDATE coupons SET "
        "given_units = (SELECT coalesce(sum(r.discount_units), 0) FROM redemptions r "
        " WHERE r.coupon_id = coupons.id AND r.status IN ('applied', 'pending_approval')), "
        "pending_count = (SELECT count(*) FROM redemptions r "
        " WHERE r.coupon_id = coupons.id AND r.status = 'pending_approval'), "
        "rolled_back_count = (SELECT count(*) FROM redemptions r "
        " WHERE r.coupon_id = coupons.id AND r.status = 'rolled_back'), "
        "rejected_count = (SELECT count(*) FROM redemptions r "
        " WHERE r.coupon_id = coupons.id AND r.status = 'rejected'), "
        "codes_total = (SELECT count(*) FROM coupon_codes k "
        " WHERE k.coupon_id = coupons.id AND NOT k.own), "
        "codes_active = (SELECT count(*) FROM coupon_codes k "
        " WHERE k.coupon_id = coupons.id AND NOT k.own AND k.is_active), "
        "codes_used = (SELECT count(*) FROM coupon_codes k "
        " WHERE k.coupon_id = coupons.id AND NOT k.own AND k.times_used > 0)"
    )
    op.execute(
        "INSERT INTO coupon_days (coupon_id, day, tenant_id, redemptions, discount_units) "
        "SELECT coupon_id, date(created_at), min(tenant_id), count(*), sum(discount_units) "
        "FROM redemptions GROUP BY coupon_id, date(created_at)"
    )


def downgrade() -> None:
    op.drop_table("coupon_days")
    with op.batch_alter_table("redemptions", schema=None) as batch_op:
        batch_op.drop_index("ix_redemptions_tenant_code_seq")
    with op.batch_alter_table("coupons", schema=None) as batch_op:
        for name in reversed(_COUNTS):
            batch_op.drop_column(name)
        batch_op.drop_column("given_units")
        batch_op.drop_column("budget_units")
