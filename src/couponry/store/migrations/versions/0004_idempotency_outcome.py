"""Idempotency keys record the first request's outcome, not its HTTP reply

`status_code` becomes `outcome`: 0 while the first request runs (as before), 1 redeemed (the
body is the redemption's view), 2 refused (the body is the refusal's document, without the
HTTP envelope). Rows already stored keep their HTTP status and reply; they are read as the
outcome they record (store/redemption_repo.py: stored_outcome) until they expire (48 hours).

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

# For the downgrade: the HTTP status the web layer gave each refusal when 0004 was written.
_NOT_FOUND = ("coupon_not_found",)
_CONFLICTS = ("usage_limit_reached", "user_limit_reached", "credit_exhausted")


def upgrade() -> None:
    with op.batch_alter_table("idempotency_keys", schema=None) as batch_op:
        batch_op.alter_column(
            "status_code",
            new_column_name="outcome",
            existing_type=sa.Integer(),
            existing_nullable=False,
        )


def downgrade() -> None:
    # Rows written since the upgrade go back to the reply the old code stores and replays.
    def refused_as(codes: tuple[str, ...]) -> str:
        return " OR ".join(f'response_body LIKE \'{{"code":"{code}",%\'' for code in codes)

    op.execute(
        "UPDATE idempotency_keys SET outcome = CASE "
        f"WHEN {refused_as(_NOT_FOUND)} THEN 404 "
        f"WHEN {refused_as(_CONFLICTS)} THEN 409 "
        "ELSE 422 END, "
        "response_body = '{\"error\":' || response_body || '}' "
        "WHERE outcome = 2"
    )
    op.execute("UPDATE idempotency_keys SET outcome = 201 WHERE outcome = 1")
    with op.batch_alter_table("idempotency_keys", schema=None) as batch_op:
        batch_op.alter_column(
            "outcome",
            new_column_name="status_code",
            existing_type=sa.Integer(),
            existing_nullable=False,
        )
