"""initial schema

Revision ID: 0001
Revises: (none)
Create Date: 2026-11-22 00:45:25.306341
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "tenants",
        sa.Column("id", sa.String(length=63), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("site_urls", sa.Text(), nullable=False),
        sa.Column("admins", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tenants")),
    )
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("tenant_id", sa.String(length=63), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("secret_hash", sa.String(length=128), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("revoked_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_api_keys_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
    )
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_api_keys_tenant_id"), ["tenant_id"], unique=False)

    op.create_table(
        "coupons",
        sa.Column(
            "seq",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("id", sa.String(length=19), nullable=False),
        sa.Column("tenant_id", sa.String(length=63), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("code_normalized", sa.String(length=64), nullable=False),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("coupon_type", sa.String(length=16), nullable=True),
        sa.Column("entity_type", sa.String(length=16), nullable=True),
        sa.Column("entity_id", sa.String(length=200), nullable=True),
        sa.Column("authorized_group_id", sa.String(length=19), nullable=True),
        sa.Column("starts_at", sa.DateTime(), nullable=True),
        sa.Column("expires_at", sa.DateTime(), nullable=True),
        sa.Column("usage_limit", sa.Integer(), nullable=True),
        sa.Column("max_uses_per_user", sa.Integer(), nullable=True),
        sa.Column("times_used", sa.Integer(), nullable=False),
        sa.Column("value_units", sa.BigInteger(), nullable=True),
        sa.Column("remaining_units", sa.BigInteger(), nullable=True),
        sa.Column("redeemed", sa.Boolean(), nullable=False),
        sa.Column("sys_locked", sa.Boolean(), nullable=False),
        sa.Column("sys_version", sa.Integer(), nullable=False),
        sa.Column("sys_created_at", sa.DateTime(), nullable=False),
        sa.Column("sys_last_modified_at", sa.DateTime(), nullable=False),
        sa.Column("sys_created_by_id", sa.String(length=200), nullable=True),
        sa.Column("sys_last_modified_by_id", sa.String(length=200), nullable=True),
        sa.Column("sys_deleted_by_id", sa.String(length=200), nullable=True),
        sa.Column("deleted_at", sa.DateTime(), nullable=True),
        sa.Column("body", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_coupons_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_coupons")),
        sa.UniqueConstraint("id", name=op.f("uq_coupons_id")),
    )
    with op.batch_alter_table("coupons", schema=None) as batch_op:
        batch_op.create_index(
            "ix_coupons_tenant_auth_group", ["tenant_id", "authorized_group_id"], unique=False
        )
        batch_op.create_index("ix_coupons_tenant_entity", ["tenant_id", "entity_id"], unique=False)
        batch_op.create_index("ix_coupons_tenant_seq", ["tenant_id", "seq"], unique=False)
        batch_op.create_index(
            "uq_coupons_live_code",
            ["tenant_id", "code_normalized"],
            unique=True,
            sqlite_where=sa.text("deleted_at IS NULL"),
            postgresql_where=sa.text("deleted_at IS NULL"),
        )

    op.create_table(
        "groups",
        sa.Column(
            "seq",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("id", sa.String(length=19), nullable=False),
        sa.Column("tenant_id", sa.String(length=63), nullable=False),
        sa.Column("parent_id", sa.String(length=19), nullable=True),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=True),
        sa.Column("code_normalized", sa.String(length=64), nullable=True),
        sa.Column("sys_version", sa.Integer(), nullable=False),
        sa.Column("sys_created_at", sa.DateTime(), nullable=False),
        sa.Column("sys_last_modified_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_groups_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_groups")),
        sa.UniqueConstraint("id", name=op.f("uq_groups_id")),
        sa.UniqueConstraint(
            "tenant_id", "code_normalized", name=op.f("uq_groups_tenant_id_code_normalized")
        ),
    )
    with op.batch_alter_table("groups", schema=None) as batch_op:
        batch_op.create_index(
            "ix_groups_tenant_parent_seq", ["tenant_id", "parent_id", "seq"], unique=False
        )
        batch_op.create_index("ix_groups_tenant_seq", ["tenant_id", "seq"], unique=False)

    op.create_table(
        "group_members",
        sa.Column("tenant_id", sa.String(length=63), nullable=False),
        sa.Column("group_id", sa.String(length=19), nullable=False),
        sa.Column("user_id", sa.String(length=200), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["group_id"], ["groups.id"], name=op.f("fk_group_members_group_id_groups")
        ),
        sa.PrimaryKeyConstraint("group_id", "user_id", name=op.f("pk_group_members")),
    )


def downgrade() -> None:

    op.drop_table("group_members")
    with op.batch_alter_table("groups", schema=None) as batch_op:
        batch_op.drop_index("ix_groups_tenant_seq")
        batch_op.drop_index("ix_groups_tenant_parent_seq")

    op.drop_table("groups")
    with op.batch_alter_table("coupons", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_coupons_live_code",
            sqlite_where=sa.text("deleted_at IS NULL"),
            postgresql_where=sa.text("deleted_at IS NULL"),
        )
        batch_op.drop_index("ix_coupons_tenant_seq")
        batch_op.drop_index("ix_coupons_tenant_entity")
        batch_op.drop_index("ix_coupons_tenant_auth_group")

    op.drop_table("coupons")
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_api_keys_tenant_id"))

    op.drop_table("api_keys")
    op.drop_table("tenants")
