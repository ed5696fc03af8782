"""Holds and checkouts (SPEC 11): a redemption's hold_expires_at and checkout_id

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("redemptions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("hold_expires_at", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("checkout_id", sa.String(length=19), nullable=True))
        batch_op.create_index(
            "ix_redemptions_status_hold_expires_at", ["status", "hold_expires_at"], unique=False
        )
        batch_op.create_index(
            "ix_redemptions_tenant_checkout_id", ["tenant_id", "checkout_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("redemptions", schema=None) as batch_op:
        batch_op.drop_index("ix_redemptions_tenant_checkout_id")
        batch_op.drop_index("ix_redemptions_status_hold_expires_at")
        batch_op.drop_column("checkout_id")
        batch_op.drop_column("hold_expires_at")
