"""A redemption's statements on the async database (PostgreSQL), each built once.

The same claims as `redemption_repo` (one conditional statement each, so limits hold under any
concurrency), as constant SQL run by asyncpg inside one transaction. Used by the redeem hot
path for coupons without a credit or groups; everything else goes through the repository.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from couponry.domain.paging import looks_like_id
from couponry.domain.redemptions import Redemption, StoredOutcome
from couponry.domain.tenants import ApiKeyRecord, Tenant
from couponry.store.async_db import AsyncDatabase, AsyncTransaction, Query
from couponry.store.hot_reads import Columns, key_and_coupon, key_tenant_coupon
from couponry.store.redemption_repo import KeyRecord, redemption_row, stored_outcome

KEY_AND_COUPON_BY_CODE = key_and_coupon("c.code_normalized = :code")
RESERVE_KEY = Query(
    "INSERT INTO idempotency_keys "
    "(tenant_id, key, request_hash, outcome, response_body, created_at) "
    "VALUES (:tenant_id, :key, :request_hash, 0, '', :created_at) "
    "ON CONFLICT (tenant_id, key) DO NOTHING RETURNING key"
)
KEY_RECORD = Query(
    "SELECT request_hash, outcome, response_body FROM idempotency_keys "
    "WHERE tenant_id = :tenant_id AND key = :key"
)
PURGE_KEYS = Query(
    "DELETE FROM idempotency_keys WHERE tenant_id = :tenant_id AND key IN ("
    "SELECT key FROM idempotency_keys WHERE tenant_id = :tenant_id AND created_at < :before "
    "LIMIT 50)"
)
STORE_OUTCOME = Query(
    "UPDATE idempotency_keys SET outcome = :outcome, response_body = :body "
    "WHERE tenant_id = :tenant_id AND key = :key"
)
_UPSERT_USE = (
    "INSERT INTO coupon_user_uses (coupon_id, user_id, tenant_id, uses) "
    "VALUES (:coupon_id, :user_id, :tenant_id, 1) "
    "ON CONFLICT (coupon_id, user_id) DO UPDATE SET uses = coupon_user_uses.uses + 1 "
)
CLAIM_USER = Query(_UPSERT_USE + "RETURNING uses")
CLAIM_USER_LIMITED = Query(_UPSERT_USE + "WHERE coupon_user_uses.uses < :limit RETURNING uses")
RELEASE_USER = Query(
    "UPDATE coupon_user_uses SET uses = uses - 1 "
    "WHERE coupon_id = :coupon_id AND user_id = :user_id AND uses > 0"
)
CLAIM = Query(
    "UPDATE coupons SET times_used = times_used + 1, redeemed = true "
    "WHERE tenant_id = :tenant_id AND id = :coupon_id AND deleted_at IS NULL "
    "AND (usage_limit IS NULL OR times_used < usage_limit) RETURNING times_used"
)
INSERT_REDEMPTION = Query(
    "INSERT INTO redemptions (id, tenant_id, coupon_id, code, user_id, status, access, "
    "membership_status, discount_units, credit_units, lines, discount_line, idempotency_key, "
    "approved_by, approved_at, created_at, updated_at) VALUES (:id, :tenant_id, :coupon_id, "
    ":code, :user_id, :status, :access, :membership_status, :discount_units, :credit_units, "
    ":lines, :discount_line, :idempotency_key, :approved_by, :approved_at, :created_at, "
    ":updated_at)"
)
DELETE_REDEMPTION = Query("DELETE FROM redemptions WHERE tenant_id = :tenant_id AND id = :id")
COUNTERS = Query(
    "SELECT c.times_used, c.usage_limit, c.max_uses_per_user, c.deleted_at, u.uses "
    "FROM coupons c LEFT JOIN coupon_user_uses u "
    "ON u.coupon_id = c.id AND u.user_id = :user_id "
    "WHERE c.tenant_id = :tenant_id AND c.id = :coupon_id"
)


def _naive(value: datetime | None) -> datetime | None:
    """Instants are stored as naive UTC (as the tables' type does)."""
    return None if value is None else value.astimezone(UTC).replace(tzinfo=None)


async def key_with_coupon_by_code(
    adb: AsyncDatabase, *, key_id: str, tenant_id: str, code: str
) -> tuple[ApiKeyRecord, Tenant, Any] | None:
    """The key, its tenant and the live coupon with this (normalised) code, in one read."""
    row = await adb.fetchrow(
        KEY_AND_COUPON_BY_CODE, {"key_id": key_id, "tenant_id": tenant_id, "code": code}
    )
    return None if row is None else key_tenant_coupon(key_id, row)


class RedemptionWrites:
    """The statements of one redemption, inside one transaction, scoped to one tenant."""

    def __init__(self, tx: AsyncTransaction, tenant_id: str) -> None:
        self.tx = tx
        self.tenant_id = tenant_id

    async def reserve_key(self, key: str, request_hash: str, now: datetime) -> bool:
        params = {
            "tenant_id": self.tenant_id,
            "key": key,
            "request_hash": request_hash,
            "created_at": _naive(now),
        }
        return await self.tx.fetchrow(RESERVE_KEY, params) is not None

    async def key_record(self, key: str) -> KeyRecord | None:
        row = await self.tx.fetchrow(KEY_RECORD, {"tenant_id": self.tenant_id, "key": key})
        if row is None:
            return None
        return KeyRecord(row["request_hash"], stored_outcome(row["outcome"], row["response_body"]))

    async def purge_keys(self, *, before: datetime) -> None:
        await self.tx.execute(PURGE_KEYS, {"tenant_id": self.tenant_id, "before": _naive(before)})

    async def store_outcome(self, key: str, stored: StoredOutcome) -> None:
        params = {
            "tenant_id": self.tenant_id,
            "key": key,
            "outcome": stored.outcome,
            "body": stored.document,
        }
        await self.tx.execute(STORE_OUTCOME, params)

    async def claim_user_use(self, coupon_id: str, user_id: str, *, limit: int | None) -> bool:
        if limit is not None and limit < 1:
            return False
        params: dict[str, Any] = {
            "coupon_id": coupon_id,
            "user_id": user_id,
            "tenant_id": self.tenant_id,
        }
        if limit is None:
            return await self.tx.fetchrow(CLAIM_USER, params) is not None
        return await self.tx.fetchrow(CLAIM_USER_LIMITED, params | {"limit": limit}) is not None

    async def release_user_use(self, coupon_id: str, user_id: str) -> None:
        await self.tx.execute(RELEASE_USER, {"coupon_id": coupon_id, "user_id": user_id})

    async def claim_use(self, coupon_id: str) -> bool:
        params = {"tenant_id": self.tenant_id, "coupon_id": coupon_id}
        return await self.tx.fetchrow(CLAIM, params) is not None

    async def insert(self, r: Redemption) -> None:
        params = redemption_row(r, self.tenant_id)
        for instant in ("approved_at", "created_at", "updated_at"):
            params[instant] = _naive(params[instant])
        await self.tx.execute(INSERT_REDEMPTION, params)

    async def delete(self, redemption_id: str) -> None:
        """Only to undo a record inside the transaction that wrote it (a refused claim)."""
        await self.tx.execute(DELETE_REDEMPTION, {"tenant_id": self.tenant_id, "id": redemption_id})

    async def counters(self, coupon_id: str, user_id: str) -> Any:
        """times_used, usage_limit, max_uses_per_user, deleted_at and this user's uses."""
        if not looks_like_id(coupon_id):
            return None
        params = {"tenant_id": self.tenant_id, "coupon_id": coupon_id, "user_id": user_id}
        row = await self.tx.fetchrow(COUNTERS, params)
        return None if row is None else Columns(row)
