"""A redemption's statements on the async database (PostgreSQL), each built once.

The same claims as `redemption_repo` (one conditional statement each, so limits hold under any
concurrency), as constant SQL run by asyncpg inside one transaction. Used by the redeem hot
path for coupons without a credit or groups; everything else goes through the repository.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Protocol

from couponry.domain.codes import TypedCode
from couponry.domain.paging import looks_like_id
from couponry.domain.redemptions import HELD, Redemption, StoredOutcome
from couponry.domain.tenants import ApiKeyRecord, Tenant
from couponry.store.async_db import AsyncDatabase, Query
from couponry.store.coupon_repo import typed_code
from couponry.store.hot_reads import Columns, key_and_coupon_by_code, key_tenant_coupon
from couponry.store.redemption_repo import KeyRecord, redemption_row, stored_outcome

KEY_AND_COUPON_BY_CODE = key_and_coupon_by_code()
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
_RECORD = (
    "id, tenant_id, coupon_id, code, user_id, status, access, membership_status, "
    "discount_units, credit_units, lines, discount_line, idempotency_key, approved_by, "
    "approved_at, created_at, updated_at, hold_expires_at, checkout_id"
)
# The claims and the record in one statement: a campaign code's use (when the cart named
# one), the coupon's use, then (only if it was claimed) the user's use, then (only if that was
# claimed) the redemption and its day's count. Each step is conditional, so a refused step
# leaves the later ones undone; a refusal of a later step after an earlier claim is undone by
# the caller's transaction (or savepoint). When nothing after the first claim can be refused
# (no per-user limit; for a campaign code, no usage limit either), the statement alone is the
# whole redemption (autocommit: two round trips for a redeem, read and write).
_CODE_USE = (
    "code_use AS ("
    " UPDATE coupon_codes SET times_used = times_used + 1, last_used_at = :created_at"
    " WHERE tenant_id = :tenant_id AND code_normalized = :code_normalized"
    " AND coupon_id = :coupon_id AND NOT own AND is_active"
    " AND (max_uses IS NULL OR times_used < max_uses) RETURNING times_used"
    "), "
)


def _claim_and_record(by_campaign_code: bool) -> Query:
    code_step, after_code, first_use = "", "", "0"
    if by_campaign_code:
        code_step, after_code = _CODE_USE, " FROM code_use"
        first_use = "CASE WHEN code_use.times_used = 1 THEN 1 ELSE 0 END"
    return Query(
        "WITH " + code_step + "use AS ("
        " UPDATE coupons SET times_used = coupons.times_used + 1, redeemed = true,"
        " given_units = coupons.given_units + :discount_units,"
        " held_count = coupons.held_count + :held,"
        f" codes_used = coupons.codes_used + {first_use}"
        + after_code
        + " WHERE coupons.tenant_id = :tenant_id AND coupons.id = :coupon_id"
        " AND coupons.deleted_at IS NULL"
        " AND coupons.sys_version = :sys_version"
        " AND (coupons.usage_limit IS NULL OR coupons.times_used < coupons.usage_limit)"
        " RETURNING coupons.id"
        "), user_use AS ("
        " INSERT INTO coupon_user_uses (coupon_id, user_id, tenant_id, uses)"
        " SELECT id, :user_id, :tenant_id, 1 FROM use"
        " ON CONFLICT (coupon_id, user_id) DO UPDATE SET uses = coupon_user_uses.uses + 1"
        " WHERE CAST(:user_limit AS integer) IS NULL OR coupon_user_uses.uses < :user_limit"
        " RETURNING coupon_id"
        "), recorded AS ("
        f" INSERT INTO redemptions ({_RECORD}) SELECT "
        + ", ".join(f":{name}" for name in _RECORD.split(", "))
        + " FROM user_use"
        "), day AS ("
        " INSERT INTO coupon_days (coupon_id, day, tenant_id, redemptions, discount_units)"
        " SELECT coupon_id, :day, :tenant_id, 1, :discount_units FROM user_use"
        " ON CONFLICT (coupon_id, day) DO UPDATE SET"
        " redemptions = coupon_days.redemptions + 1,"
        " discount_units = coupon_days.discount_units + excluded.discount_units"
        ") SELECT "
        + ("(SELECT count(*) FROM code_use)" if by_campaign_code else "1")
        + " AS code_claimed, (SELECT count(*) FROM use) AS claimed,"
        " (SELECT count(*) FROM user_use) AS user_claimed"
    )


CLAIM_AND_RECORD = _claim_and_record(by_campaign_code=False)
CLAIM_CODE_AND_RECORD = _claim_and_record(by_campaign_code=True)
# SQLite has no statements inside WITH: the same three steps, one statement each, in the
# same order, inside the caller's transaction (SQLite's write transactions are serial).
SQLITE_CLAIM_CODE = Query(
    "UPDATE coupon_codes SET times_used = times_used + 1, last_used_at = :created_at"
    " WHERE tenant_id = :tenant_id AND code_normalized = :code_normalized"
    " AND coupon_id = :coupon_id AND NOT own AND is_active"
    " AND (max_uses IS NULL OR times_used < max_uses) RETURNING times_used"
)
SQLITE_CLAIM_USE = Query(
    "UPDATE coupons SET times_used = times_used + 1, redeemed = 1,"
    " given_units = given_units + :discount_units, codes_used = codes_used + :first_code_use,"
    " held_count = held_count + :held"
    " WHERE tenant_id = :tenant_id AND id = :coupon_id AND deleted_at IS NULL"
    " AND sys_version = :sys_version"
    " AND (usage_limit IS NULL OR times_used < usage_limit) RETURNING id"
)
SQLITE_CLAIM_USER_USE = Query(
    "INSERT INTO coupon_user_uses (coupon_id, user_id, tenant_id, uses)"
    " VALUES (:coupon_id, :user_id, :tenant_id, 1)"
    " ON CONFLICT (coupon_id, user_id) DO UPDATE SET uses = coupon_user_uses.uses + 1"
    " WHERE :user_limit IS NULL OR coupon_user_uses.uses < :user_limit"
    " RETURNING coupon_id"
)
SQLITE_RECORD = Query(
    f"INSERT INTO redemptions ({_RECORD}) VALUES ("
    + ", ".join(f":{name}" for name in _RECORD.split(", "))
    + ")"
)
SQLITE_COUNT_DAY = Query(
    "INSERT INTO coupon_days (coupon_id, day, tenant_id, redemptions, discount_units)"
    " VALUES (:coupon_id, :day, :tenant_id, 1, :discount_units)"
    " ON CONFLICT (coupon_id, day) DO UPDATE SET redemptions = coupon_days.redemptions + 1,"
    " discount_units = coupon_days.discount_units + excluded.discount_units"
)
# Gives a campaign code's use back, when a claim after it was refused outside a transaction.
RELEASE_CODE = Query(
    "UPDATE coupon_codes SET times_used = times_used - 1"
    " WHERE tenant_id = :tenant_id AND code_normalized = :code_normalized"
    " AND coupon_id = :coupon_id AND NOT own AND times_used > 0"
)
COUNTERS = Query(
    "SELECT c.times_used, c.usage_limit, c.max_uses_per_user, c.deleted_at, c.sys_version, "
    "u.uses, "
    "k.coupon_id AS code_coupon, k.is_active AS code_active, k.max_uses AS code_max_uses, "
    "k.times_used AS code_uses "
    "FROM coupons c LEFT JOIN coupon_user_uses u "
    "ON u.coupon_id = c.id AND u.user_id = :user_id "
    "LEFT JOIN coupon_codes k ON k.tenant_id = c.tenant_id AND k.code_normalized = :code "
    "AND k.coupon_id = c.id "
    "WHERE c.tenant_id = :tenant_id AND c.id = :coupon_id"
)


def _naive(value: datetime | None) -> datetime | None:
    """Instants are stored as naive UTC (as the tables' type does)."""
    return None if value is None else value.astimezone(UTC).replace(tzinfo=None)


async def key_with_coupon_by_code(
    adb: AsyncDatabase, *, key_id: str, tenant_id: str, code: str
) -> tuple[ApiKeyRecord, Tenant, Any, TypedCode | None] | None:
    """The key, its tenant, the live coupon with this (normalised) code, its own or a
    campaign code, and that code's state, in one read."""
    row = await adb.fetchrow(
        KEY_AND_COUPON_BY_CODE, {"key_id": key_id, "tenant_id": tenant_id, "code": code}
    )
    if row is None:
        return None
    key, tenant, coupon = key_tenant_coupon(key_id, row)
    return key, tenant, coupon, None if coupon is None else typed_code(row)


class Statements(Protocol):
    """Where statements run: a transaction, or the database itself (each one autocommitted)."""

    async def fetchrow(self, query: Query, params: Mapping[str, Any]) -> Any: ...

    async def execute(self, query: Query, params: Mapping[str, Any]) -> None: ...


class RedemptionWrites:
    """The statements of one redemption, scoped to one tenant: inside one transaction, or
    (`claim_and_record` with no per-user limit and no Idempotency-Key) on their own."""

    def __init__(
        self, tx: Statements, tenant_id: str, *, sqlite: bool = False, autocommit: bool = False
    ) -> None:
        self.tx = tx
        self.sqlite = sqlite
        self.tenant_id = tenant_id
        self.autocommit = autocommit  # each statement commits on its own

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

    async def claim_and_record(
        self, r: Redemption, code: TypedCode, *, version: int, user_limit: int | None
    ) -> tuple[bool, bool, bool]:
        """(the code's use claimed, the coupon's use claimed, the user's use claimed): all
        three, and `r` is recorded and counted. The coupon's own code has no use to claim."""
        params: dict[str, Any] = redemption_row(r, self.tenant_id)
        for instant in ("approved_at", "created_at", "updated_at", "hold_expires_at"):
            params[instant] = _naive(params[instant])
        params["user_limit"] = user_limit
        params["sys_version"] = version
        params["held"] = int(r.status == HELD)
        params["day"] = r.created_at.astimezone(UTC).date()
        by_code = not code.own
        if by_code:
            params["code_normalized"] = code.normalized
        if not self.sqlite:
            statement = CLAIM_CODE_AND_RECORD if by_code else CLAIM_AND_RECORD
            row = await self.tx.fetchrow(statement, params)
            return bool(row["code_claimed"]), bool(row["claimed"]), bool(row["user_claimed"])
        params["first_code_use"] = 0
        if by_code:
            used = await self.tx.fetchrow(SQLITE_CLAIM_CODE, params)
            if used is None:
                return False, False, False
            params["first_code_use"] = int(used["times_used"] == 1)
        if await self.tx.fetchrow(SQLITE_CLAIM_USE, params) is None:
            return True, False, False
        if await self.tx.fetchrow(SQLITE_CLAIM_USER_USE, params) is None:
            return True, True, False
        await self.tx.execute(SQLITE_RECORD, params)
        await self.tx.execute(SQLITE_COUNT_DAY, params)
        return True, True, True

    async def release_code(self, coupon_id: str, code: TypedCode) -> None:
        params = {
            "tenant_id": self.tenant_id,
            "coupon_id": coupon_id,
            "code_normalized": code.normalized,
        }
        await self.tx.execute(RELEASE_CODE, params)

    async def counters(self, coupon_id: str, user_id: str, code: TypedCode) -> Any:
        """times_used, usage_limit, max_uses_per_user, deleted_at, this user's uses, and the
        code's state (code_coupon, code_active, code_max_uses, code_uses)."""
        if not looks_like_id(coupon_id):
            return None
        params = {
            "tenant_id": self.tenant_id,
            "coupon_id": coupon_id,
            "user_id": user_id,
            "code": code.normalized,
        }
        row = await self.tx.fetchrow(COUNTERS, params)
        return None if row is None else Columns(row)
