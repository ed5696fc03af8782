"""Importing codes (SPEC 10): an import's file in parts, and its checked lines staged

job_payloads holds the file as received, so any server process can run the job; import_lines
holds the lines that passed the line checks while the job checks them whole. Both are emptied
of a job's rows when it ends.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "job_payloads",
        sa.Column("job_id", sa.String(length=19), nullable=False),
        sa.Column("part", sa.Integer(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("job_id", "part", name=op.f("pk_job_payloads")),
    )
    op.create_table(
        "import_lines",
        sa.Column("job_id", sa.String(length=19), nullable=False),
        sa.Column("line", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("code_normalized", sa.String(length=64), nullable=False),
        sa.Column("max_uses", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("job_id", "line", name=op.f("pk_import_lines")),
    )


def downgrade() -> None:
    op.drop_table("import_lines")
    op.drop_table("job_payloads")
