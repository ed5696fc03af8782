"""One namespace of codes per tenant: coupon_codes (SPEC 10, docs/campaigns.md)

Every live coupon gets a row for its own code; campaign codes will join them. The unique index
on (tenant_id, code_normalized) then refuses any code that another coupon or code of the
tenant already has.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "coupon_codes",
        sa.Column("seq", _SEQ, autoincrement=True, nullable=False),
        sa.Column("tenant_id", sa.String(length=63), nullable=False),
        sa.Column("coupon_id", sa.String(length=19), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("code_normalized", sa.String(length=64), nullable=False),
        sa.Column("own", sa.Boolean(), nullable=False),
        sa.Column("max_uses", sa.Integer(), nullable=True),
        sa.Column("times_used", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("is_active", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("last_used_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_coupon_codes_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_coupon_codes")),
        sa.UniqueConstraint(
            "tenant_id", "code_normalized", name=op.f("uq_coupon_codes_tenant_id_code_normalized")
        ),
    )
    with op.batch_alter_table("coupon_codes", schema=None) as batch_op:
        batch_op.create_index("ix_coupon_codes_coupon_seq", ["coupon_id", "seq"], unique=False)
    op.execute(
        "INSERT INTO coupon_codes (tenant_id, coupon_id, code, code_normalized, own, created_at) "
        "SELECT tenant_id, id, code, code_normalized, true, sys_created_at FROM coupons "
        "WHERE deleted_at IS NULL ORDER BY seq"
    )


def downgrade() -> None:
    with op.batch_alter_table("coupon_codes", schema=None) as batch_op:
        batch_op.drop_index("ix_coupon_codes_coupon_seq")
    op.drop_table("coupon_codes")
