"""Validation and redemption (SPEC 6): exact limits under any concurrency.

redeem() runs in one transaction: reserve the Idempotency-Key, check the coupon (pure rules),
claim a use (and credit) with one conditional UPDATE, claim the user's use with one conditional
upsert, record the redemption, store the outcome under the key. A refusal after a claim undoes
the claim inside the same transaction, so a refused request changes nothing but its key.

What comes back is a domain `Outcome`; the web layer decides its status and body, and renders
a replayed outcome exactly as it rendered the first.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager, nullcontext
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection

from couponry.domain.cart import Cart, parse_cart
from couponry.domain.codes import TypedCode
from couponry.domain.coupons import Coupon, CouponFields, normalise_code
from couponry.domain.discounts import Quote, check_usable, quote
from couponry.domain.fields import Problems, check_text
from couponry.domain.groups import Member, descendants
from couponry.domain.money import from_units, minor_unit, to_units
from couponry.domain.paging import Page, new_id
from couponry.domain.redemptions import (
    APPLIED,
    CHECKED_OUT,
    HELD,
    IN_PROGRESS,
    PENDING,
    REDEEMED,
    REFUSED,
    Redemption,
    StoredOutcome,
    Transition,
    plan,
    redemption_view,
    request_hash,
)
from couponry.domain.tenants import Tenant, split_key
from couponry.errors import (
    REFUSALS,
    ApproverNotAllowed,
    BudgetExhausted,
    CodeUsedUp,
    CouponChanged,
    CouponInactive,
    CouponNotFound,
    CouponryError,
    CreditExhausted,
    IdempotencyKeyInUse,
    IdempotencyKeyReused,
    InvalidCredentials,
    InvalidRedemptionState,
    RedemptionNotFound,
    UsageLimitReached,
    UserLimitReached,
    VersionConflict,
    error_document,
)
from couponry.jsontext import dumps
from couponry.services.tenants import Principal, principal_of
from couponry.store.async_db import AsyncDatabase
from couponry.store.code_repo import CodeRepository
from couponry.store.coupon_repo import CouponRepository, could_be_code
from couponry.store.db import Database
from couponry.store.group_repo import GroupRepository
from couponry.store.hot_redemptions import RedemptionWrites, key_with_coupon_by_code
from couponry.store.redemption_repo import KeyRecord, RedemptionRepository, expired_holds

if TYPE_CHECKING:
    from couponry.services.checkouts import Checkout

log = logging.getLogger("couponry.redemptions")
KEY_LIFETIME = timedelta(hours=48)  # SPEC asks for at least 24 hours
REFUSAL_TYPES = tuple(REFUSALS.values())
_NOTHING = CouponFields()  # covers nothing: every line quoted at zero, for refusals


@dataclass(frozen=True)
class Outcome:
    """What a redemption request came to; exactly one field is set.

    `redemption`: made now (`checkout`: several, for a cart of several codes). `refusal`:
    refused now, under an Idempotency-Key (without a key a refusal rises as the error it is,
    and nothing is kept). `replayed`: a repeated key, and what its first request came to.
    """

    redemption: Redemption | None = None
    refusal: CouponryError | None = None
    replayed: StoredOutcome | None = None
    checkout: Checkout | None = None  # several codes (SPEC 11.2)

    def stored(self, currency: str) -> StoredOutcome:
        """This outcome as it is kept under its Idempotency-Key."""
        if self.checkout is not None:
            from couponry.services.checkouts import checkout_view

            return StoredOutcome(
                CHECKED_OUT, dumps(checkout_view(self.checkout, currency)).decode()
            )
        if self.redemption is not None:
            view = redemption_view(self.redemption, currency)
            return StoredOutcome(REDEEMED, dumps(view).decode())
        assert self.refusal is not None
        error = self.refusal
        return StoredOutcome(
            REFUSED, dumps(error_document(error.code, error.message, error.details)).decode()
        )


@dataclass(frozen=True)
class Validation:
    valid: bool
    coupon: Coupon | None
    quote: Quote
    errors: list[CouponryError]
    code: str | None = None  # the code the cart named, as the tenant's codes spell it


# --- validate ------------------------------------------------------------------------------


def validate_cart(db: Database, *, tenant: Tenant, doc: Any, now: datetime) -> Validation:
    """What redeem would do now, changing nothing; refusals come back as errors."""
    cart = parse_cart(doc)
    zero = quote_nothing(cart, tenant.currency)
    with db.reader() as conn:
        found = CouponRepository(conn, tenant.id).get_by_any_code(cart.code)
        if found is None:
            return Validation(False, None, zero, [CouponNotFound("No coupon has this code.")])
        coupon, code = found
        try:
            q = checked_quote(conn, tenant, coupon, code, cart, now)
            check_counters(conn, tenant, coupon, code, cart.user_id)
            if draws(coupon):
                q = _credit_quote(conn, tenant, coupon, cart, left_to_draw(coupon))
        except REFUSAL_TYPES as refusal:
            return Validation(False, coupon, zero, [refusal], code.code)
    return Validation(True, coupon, q, [], code.code)


def quote_nothing(cart: Cart, currency: str) -> Quote:
    return quote(_NOTHING, cart, currency=currency)


def check_counters(
    conn: Connection,
    tenant: Tenant,
    coupon: Coupon,
    code: TypedCode | None,
    user_id: str,
) -> None:
    """The 409 refusals in SPEC order, read without claiming (`code`: a campaign code whose
    use is not claimed yet, else None). A credit or budget with less than one minor unit of
    the tenant's currency left has nothing left: a redeem could draw nothing from it."""
    tenant_id = tenant.id
    d = coupon.data
    if d.usage_limit is not None and coupon.times_used >= d.usage_limit:
        raise UsageLimitReached()
    if code is not None and not code.own and code.used_up:
        raise CodeUsedUp()
    uses = RedemptionRepository(conn, tenant_id).user_uses(coupon.id, user_id)
    if d.max_uses_per_user is not None and uses >= d.max_uses_per_user:
        raise UserLimitReached()
    least = Decimal(1).scaleb(-minor_unit(tenant.currency))
    if d.coupon_type == "TOTAL_AMOUNT" and (coupon.remaining_amount or 0) < least:
        raise CreditExhausted()
    if coupon.budget_remaining is not None and coupon.budget_remaining < least:
        raise BudgetExhausted()


def draws(coupon: Coupon) -> bool:
    """Does a redemption draw on something the coupon has left (a credit, a budget)? Then
    what it gives is only known once the claim has drawn it."""
    return coupon.data.coupon_type == "TOTAL_AMOUNT" or coupon.data.budget_amount is not None


def left_to_draw(coupon: Coupon) -> Decimal:
    """What a redemption could draw now: the least of the credit and the budget left."""
    left = [x for x in (coupon.remaining_amount, coupon.budget_remaining) if x is not None]
    return min(left, default=Decimal(0))


def _spent(coupon: Coupon) -> CouponryError:
    """A draw that gave nothing: say which of the credit and the budget ran out."""
    budget, credit = coupon.budget_remaining, coupon.remaining_amount
    if budget is not None and (credit is None or budget <= credit):
        return BudgetExhausted()
    return CreditExhausted()


# --- redeem --------------------------------------------------------------------------------


def redeem(
    db: Database,
    *,
    tenant: Tenant,
    doc: Any,
    idempotency_key: str | None,
    now: datetime,
) -> Outcome:
    """Redeem exactly once; a repeated Idempotency-Key gets the first request's outcome."""
    cart = parse_cart(doc)  # a malformed cart is refused before the key is remembered
    key = _check_key(idempotency_key)
    digest = request_hash(doc) if key else ""
    for _ in range(_ATTEMPTS):
        try:
            return _redeem_once(db, tenant, cart, key, digest, now)
        except CouponChanged:
            continue  # everything rolled back, the key's reservation too: read again
    raise VersionConflict("The coupon kept changing during the redemption; try again.")


_ATTEMPTS = 5


def _redeem_once(
    db: Database, tenant: Tenant, cart: Cart, key: str | None, digest: str, now: datetime
) -> Outcome:
    with db.transaction() as conn:
        repo = RedemptionRepository(conn, tenant.id)
        if key is not None:
            replay = _reserve(repo, key, digest, now)
            if replay is not None:
                return replay
        try:
            # A refusal undoes every claim made before it: the transaction rolls back, or
            # (under a key, whose reply is kept) the savepoint does.
            with conn.begin_nested() if key is not None else nullcontext():
                if cart.several:
                    from couponry.services.checkouts import claim_checkout

                    outcome = Outcome(checkout=claim_checkout(conn, tenant, cart, now, key))
                else:
                    outcome = Outcome(redemption=_claim_and_record(conn, tenant, cart, now, key))
        except REFUSAL_TYPES as error:
            if key is None:
                raise
            outcome = Outcome(refusal=error)
        if key is not None:
            repo.store_outcome(key, outcome.stored(tenant.currency))
    return outcome


# --- redeem, the hot path (PostgreSQL, asyncpg) -------------------------------------------


async def read_for_redeem(
    adb: AsyncDatabase, *, key: str, tenant_id: str, code: str
) -> tuple[Principal, Coupon | None, TypedCode | None]:
    """Who is calling, the live coupon with this code (its own or a campaign code) and the
    code's state, in one round trip."""
    parts = split_key(key)
    if parts is None:
        raise InvalidCredentials("The API key is malformed.")
    lookup = normalise_code(code) if could_be_code(code) else ""
    found = await key_with_coupon_by_code(adb, key_id=parts[0], tenant_id=tenant_id, code=lookup)
    if found is None:
        raise InvalidCredentials("Unknown API key.")
    record, tenant, coupon, typed = found
    return principal_of(record, tenant, secret=parts[1]), coupon, typed


def takes_hot_path(coupon: Coupon | None) -> bool:
    """Coupons whose redemption needs no credit, budget, group or approval: the common case,
    redeemed by `redeem_hot`. Everything else (and an unknown code) goes through `redeem`."""
    if coupon is None:
        return False
    d = coupon.data
    return not draws(coupon) and d.authorized_group_id is None and (d.entity_type != "GROUP")


async def redeem_hot(
    adb: AsyncDatabase,
    *,
    tenant: Tenant,
    coupon: Coupon,
    code: TypedCode,
    cart: Cart,
    doc: Any,
    idempotency_key: str | None,
    now: datetime,
) -> Outcome:
    """`redeem` for a coupon that `takes_hot_path`, on the async database: the same steps,
    claims and refusals. The claims and the record are one statement (`claim_and_record`);
    when nothing in it can be refused after its first claim (no per-user limit; for a
    campaign code, no usage limit either) and there is no Idempotency-Key, it runs on its
    own; otherwise it runs in a transaction, with the key's reservation and reply."""
    assert takes_hot_path(coupon)
    key = _check_key(idempotency_key)
    # Could a step be refused after an earlier one claimed something?
    later_refusal = coupon.data.max_uses_per_user is not None or (
        not code.own and coupon.data.usage_limit is not None
    )
    if key is None and not later_refusal and not adb.sqlite:
        writes = RedemptionWrites(adb, tenant.id, autocommit=True)
        return Outcome(redemption=await _claim_hot(writes, tenant, coupon, code, cart, now, key))
    digest = request_hash(doc) if key else ""
    async with adb.transaction() as tx:
        writes = RedemptionWrites(tx, tenant.id, sqlite=adb.sqlite)
        if key is not None:
            replay = await _reserve_hot(writes, key, digest, now)
            if replay is not None:
                return replay
        try:
            # A refusal after the coupon's claim is undone to here; the key and its reply stay.
            async with tx.savepoint() if key is not None and later_refusal else _nothing():
                redemption = await _claim_hot(writes, tenant, coupon, code, cart, now, key)
            outcome = Outcome(redemption=redemption)
        except REFUSAL_TYPES as error:
            if key is None:
                raise  # nothing is kept: the transaction rolls back
            outcome = Outcome(refusal=error)
        if key is not None:
            await writes.store_outcome(key, outcome.stored(tenant.currency))
    return outcome


@asynccontextmanager
async def _nothing() -> AsyncIterator[None]:
    yield


async def _reserve_hot(
    writes: RedemptionWrites, key: str, digest: str, now: datetime
) -> Outcome | None:
    if secrets.randbelow(50) == 0:
        await writes.purge_keys(before=now - KEY_LIFETIME)
    if await writes.reserve_key(key, digest, now):
        return None
    return _replay(await writes.key_record(key), digest)


async def _claim_hot(
    writes: RedemptionWrites,
    tenant: Tenant,
    coupon: Coupon,
    code: TypedCode,
    cart: Cart,
    now: datetime,
    key: str | None,
) -> Redemption:
    d = coupon.data
    if d.is_active and not code.is_active:
        raise CouponInactive("This code has been deactivated.")
    q = quote(d, cart, currency=tenant.currency, group_scope=frozenset())
    refusal = check_usable(d, cart, now=now, is_current_member=False, quote_eligible=q.eligible)
    if refusal is not None:
        raise REFUSALS[refusal.code](refusal.message)
    redemption = _record(coupon, code, cart, q, tenant, now, key, Decimal(0))
    limit = d.max_uses_per_user
    if limit is not None and limit < 1:
        raise await _why_not_claimed_hot(writes, coupon, code, cart.user_id)
    code_claimed, coupon_claimed, user_claimed = await writes.claim_and_record(
        redemption, code, version=coupon.sys_version, user_limit=limit
    )
    if not code_claimed:  # nothing was written: the counters say why
        raise await _why_not_claimed_hot(writes, coupon, code, cart.user_id)
    if not coupon_claimed:
        if writes.autocommit and not code.own:
            # Only a coupon deleted meanwhile gets here without a transaction to undo the
            # code's claim (the delete frees its codes; this keeps the counters true anyway).
            await writes.release_code(coupon.id, code)
        raise await _why_not_claimed_hot(writes, coupon, None, cart.user_id)
    if not user_claimed:  # the earlier claims are undone by the caller's transaction
        raise UserLimitReached()
    return redemption


async def _why_not_claimed_hot(
    writes: RedemptionWrites, coupon: Coupon, code: TypedCode | None, user_id: str
) -> CouponryError:
    """A claim changed no row: say why, in SPEC order (as `_why_not_claimed`). `code`: a
    campaign code whose claim was refused (None once it was claimed, or the own code)."""
    now = await writes.counters(coupon.id, user_id, code or _NO_CODE)
    if now is None or now.deleted_at is not None:
        return CouponNotFound("No coupon has this code.")
    if now.sys_version != coupon.sys_version:
        raise CouponChanged()
    if now.usage_limit is not None and now.times_used >= now.usage_limit:
        return UsageLimitReached()
    if code is not None and not code.own:
        if now.code_coupon is None:  # the code was freed meanwhile
            return CouponNotFound("No coupon has this code.")
        if not now.code_active:
            return CouponInactive("This code has been deactivated.")
        if now.code_max_uses is not None and now.code_uses >= now.code_max_uses:
            return CodeUsedUp()
    if now.max_uses_per_user is not None and (now.uses or 0) >= now.max_uses_per_user:
        return UserLimitReached()
    return UsageLimitReached()


_NO_CODE = TypedCode(code="", own=True, is_active=True, max_uses=None, times_used=0)


def _check_key(key: str | None) -> str | None:
    if key is None:
        return None
    problems = Problems()
    clean = check_text(key, "Idempotency-Key", problems, max_len=255, min_len=1)
    problems.raise_if_any()
    return clean


def _reserve(repo: RedemptionRepository, key: str, digest: str, now: datetime) -> Outcome | None:
    if secrets.randbelow(50) == 0:
        repo.purge_keys(before=now - KEY_LIFETIME)
    if repo.reserve_key(key, digest, now):
        return None
    return _replay(repo.key_record(key), digest)


def _replay(record: KeyRecord | None, digest: str) -> Outcome:
    """The key is taken: its first request's outcome, if that request is done and was this one."""
    if record is None or record.stored.outcome == IN_PROGRESS:
        raise IdempotencyKeyInUse()
    if record.request_hash != digest:
        raise IdempotencyKeyReused()
    return Outcome(replayed=record.stored)


def _claim_and_record(
    conn: Connection, tenant: Tenant, cart: Cart, now: datetime, key: str | None
) -> Redemption:
    """Every claim of one redemption, then its record. A refusal raised after a claim leaves
    that claim to the caller's rollback (transaction or savepoint): nothing is undone here."""
    found = CouponRepository(conn, tenant.id).get_by_any_code(cart.code)
    if found is None:
        raise CouponNotFound("No coupon has this code.")
    coupon, code = found
    q = checked_quote(conn, tenant, coupon, code, cart, now)

    def capped(drawn: Decimal) -> Quote:
        return _credit_quote(conn, tenant, coupon, cart, drawn)

    return claim_quoted(conn, tenant, coupon, code, cart, q, capped, now, key)


def claim_quoted(
    conn: Connection,
    tenant: Tenant,
    coupon: Coupon,
    code: TypedCode,
    cart: Cart,
    q: Quote,
    capped: Callable[[Decimal], Quote],
    now: datetime,
    key: str | None,
    checkout_id: str | None = None,
) -> Redemption:
    """Claim and record one redemption of `coupon` by `code` giving `q` (checked already).
    A coupon that draws on a credit or a budget may get less than `q`: `capped(drawn)` is
    then what the cart gets from what was drawn."""
    repo = RedemptionRepository(conn, tenant.id)
    claim = _Claim(coupon, code, cart.user_id)
    if not code.own:  # every claim takes its rows in one order: code, then coupon and user
        uses = repo.claim_code_use(coupon.id, code.normalized, now=now)
        if uses is None:
            raise _why_not_claimed(conn, tenant, claim)
        claim = _Claim(coupon, None, cart.user_id, first_code_use=uses == 1)
    if not draws(coupon):
        return _claim_use_last(conn, repo, tenant, claim, cart, q, now, key, code, checkout_id)
    want = to_units(q.total)
    status = _status(coupon, cart)
    drawn = repo.claim_use(
        coupon.id,
        version=coupon.sys_version,
        want_units=want,
        pending=status == PENDING,
        held=status == HELD,
        first_code_use=claim.first_code_use,
    )
    if drawn is None:
        raise _why_not_claimed(conn, tenant, claim)
    if drawn < want:
        q = capped(from_units(drawn))
    used = to_units(q.total)
    if used == 0 and want > 0:  # what was left rounds to nothing (a free cart wants nothing)
        raise _spent(coupon)
    if used < drawn:
        repo.give_back_credit(coupon.id, drawn - used)
    if not repo.claim_user_use(coupon.id, cart.user_id, limit=coupon.data.max_uses_per_user):
        raise UserLimitReached()
    credit = from_units(used) if coupon.data.coupon_type == "TOTAL_AMOUNT" else Decimal(0)
    redemption = _record(coupon, code, cart, q, tenant, now, key, credit, checkout_id)
    repo.insert(redemption)
    repo.count_day(redemption)
    if redemption.status == APPLIED:
        _apply_group_effects(conn, tenant.id, coupon, cart.user_id, now)
    return redemption


@dataclass(frozen=True)
class _Claim:
    """What a redemption is claiming: `code` is a campaign code whose use is still to claim
    (None once claimed, or for the coupon's own code); `first_code_use` when this claim was
    that code's first use."""

    coupon: Coupon
    code: TypedCode | None
    user_id: str
    first_code_use: bool = False


def _claim_use_last(
    conn: Connection,
    repo: RedemptionRepository,
    tenant: Tenant,
    claim: _Claim,
    cart: Cart,
    q: Quote,
    now: datetime,
    key: str | None,
    code: TypedCode,
    checkout_id: str | None,
) -> Redemption:
    """Without a draw the discount is known up front, so the contended coupon row is
    claimed last: its row lock is then held only until the commit."""
    coupon = claim.coupon
    if not repo.claim_user_use(coupon.id, cart.user_id, limit=coupon.data.max_uses_per_user):
        raise _why_not_claimed(conn, tenant, claim)
    redemption = _record(coupon, code, cart, q, tenant, now, key, Decimal(0), checkout_id)
    repo.insert(redemption)
    claimed = repo.claim_use(
        coupon.id,
        version=coupon.sys_version,
        want_units=None,
        given_units=to_units(q.total),
        pending=redemption.status == PENDING,
        held=redemption.status == HELD,
        first_code_use=claim.first_code_use,
    )
    if claimed is None:
        raise _why_not_claimed(conn, tenant, claim)
    repo.count_day(redemption)
    if redemption.status == APPLIED:
        _apply_group_effects(conn, tenant.id, coupon, cart.user_id, now)
    return redemption


def checked_quote(
    conn: Connection,
    tenant: Tenant,
    coupon: Coupon,
    code: TypedCode,
    cart: Cart,
    now: datetime,
) -> Quote:
    """The 422 refusals in SPEC order, then what the cart earns (before any draw)."""
    d = coupon.data
    if d.is_active and not code.is_active:
        raise CouponInactive("This code has been deactivated.")
    groups = GroupRepository(conn, tenant.id)
    member = False
    if d.authorized_group_id is not None:
        found = groups.get_member(d.authorized_group_id, cart.user_id)
        member = found is not None and found.is_current(now)
    q = quote(d, cart, currency=tenant.currency, group_scope=group_scope(groups, coupon))
    refusal = check_usable(d, cart, now=now, is_current_member=member, quote_eligible=q.eligible)
    if refusal is not None:
        raise REFUSALS[refusal.code](refusal.message)
    return q


def _credit_quote(
    conn: Connection, tenant: Tenant, coupon: Coupon, cart: Cart, budget: Decimal | None
) -> Quote:
    scope = group_scope(GroupRepository(conn, tenant.id), coupon)
    return quote(
        coupon.data, cart, currency=tenant.currency, group_scope=scope, budget=budget or Decimal(0)
    )


def group_scope(groups: GroupRepository, coupon: Coupon) -> frozenset[str]:
    """A GROUP coupon covers its group and every group below it (read only when needed)."""
    d = coupon.data
    if d.entity_type != "GROUP" or d.entity_id is None:
        return frozenset()
    return frozenset(descendants([d.entity_id], groups.nodes()))


def _why_not_claimed(conn: Connection, tenant: Tenant, claim: _Claim) -> CouponryError:
    """A claim changed no row: say why, in SPEC order, from the counters as they are now.
    Raises CouponChanged when the coupon is no longer as the redemption read it."""
    current = CouponRepository(conn, tenant.id).get(claim.coupon.id)
    if current is None:
        return CouponNotFound("No coupon has this code.")
    if current.sys_version != claim.coupon.sys_version:
        raise CouponChanged()
    code = None
    if claim.code is not None:
        now_found = CouponRepository(conn, tenant.id).get_by_any_code(claim.code.code)
        if now_found is None or now_found[0].id != current.id:
            return CouponNotFound("No coupon has this code.")
        code = now_found[1]
        if not code.is_active:
            return CouponInactive("This code has been deactivated.")
    try:
        check_counters(conn, tenant, current, code, claim.user_id)
    except REFUSAL_TYPES as refusal:
        return refusal
    return UsageLimitReached()


def _record(
    coupon: Coupon,
    code: TypedCode,
    cart: Cart,
    q: Quote,
    tenant: Tenant,
    now: datetime,
    key: str | None,
    credit: Decimal,
    checkout_id: str | None = None,
) -> Redemption:
    d = coupon.data
    line = None
    if d.discount_method == "discount line item" and d.discount_product_id:
        line = {"product_id": d.discount_product_id, "amount": q.total}
    hold = cart.hold_seconds
    return Redemption(
        id=new_id(),
        tenant_id=tenant.id,
        coupon_id=coupon.id,
        code=code.code,
        user_id=cart.user_id,
        status=_status(coupon, cart),
        access="preview" if d.preview_access_only else "full",
        membership_status=cart.membership_status,
        discount_total=q.total,
        credit=credit,
        lines=q.lines,
        discount_line=line,
        idempotency_key=key,
        approved_by=None,
        approved_at=None,
        created_at=now,
        updated_at=now,
        hold_expires_at=None if hold is None else now + timedelta(seconds=hold),
        checkout_id=checkout_id,
    )


def _status(coupon: Coupon, cart: Cart) -> str:
    """A hold first (approval, if the coupon needs it, comes at its confirm)."""
    if cart.hold_seconds is not None:
        return HELD
    return PENDING if coupon.data.require_approval else APPLIED


def _apply_group_effects(
    conn: Connection, tenant_id: str, coupon: Coupon, user_id: str, now: datetime
) -> None:
    """add_user_to_coupons_group: join the authorized group (expiring with the coupon when
    set_membership_expiration), unless already a current member."""
    d = coupon.data
    if not d.add_user_to_coupons_group or d.authorized_group_id is None:
        return
    groups = GroupRepository(conn, tenant_id)
    if groups.get(d.authorized_group_id) is None:
        return  # the group was deleted since
    existing = groups.get_member(d.authorized_group_id, user_id)
    if existing is not None and existing.is_current(now):
        return
    expires = d.expires_at if d.set_membership_expiration else None
    role = existing.role if existing is not None else "member"
    groups.put_member(Member(d.authorized_group_id, user_id, role, expires), now=now)


# --- lifecycle -----------------------------------------------------------------------------


def change_redemption(
    db: Database,
    *,
    tenant: Tenant,
    redemption_id: str,
    action: str,
    approver: str | None,
    now: datetime,
) -> Redemption:
    """approve / reject (by an allowed approver), rollback, confirm or release (SPEC 6.4,
    11.1); a repeat returns it unchanged."""
    with db.transaction() as conn:
        repo = RedemptionRepository(conn, tenant.id)
        current = repo.get(redemption_id, for_update=True)
        if current is None:
            raise RedemptionNotFound()
        coupon = CouponRepository(conn, tenant.id).get_including_deleted(current.coupon_id)
        if action in ("approve", "reject"):
            _check_approver(conn, tenant, coupon, approver or "", now)
        step = plan(action, current, now=now, needs_approval=_needs_approval(coupon))
        if step is None:
            return current
        return apply_step(conn, tenant.id, current, step, coupon, approver, now)


def _needs_approval(coupon: Coupon | None) -> bool:
    return coupon is not None and coupon.data.require_approval


def apply_step(
    conn: Connection,
    tenant_id: str,
    current: Redemption,
    step: Transition,
    coupon: Coupon | None,
    approver: str | None,
    now: datetime,
) -> Redemption:
    """Make a planned transition of a redemption read FOR UPDATE: its status, what it gives
    back, its counters and its group effects."""
    repo = RedemptionRepository(conn, tenant_id)
    approved_by = approver if step.target == APPLIED and step.source == PENDING else None
    if not repo.move(
        current.id, source=step.source, target=step.target, now=now, approved_by=approved_by
    ):
        raise InvalidRedemptionState("The redemption changed meanwhile; read it again.")
    if step.releases:
        _give_back(repo, current, step, coupon)
    else:
        repo.count_move(current.coupon_id, step.source, step.target)
    if step.applies_effects and coupon is not None:
        _apply_group_effects(conn, tenant_id, coupon, current.user_id, now)
    return replace(
        current,
        status=step.target,
        updated_at=now,
        approved_by=approved_by or current.approved_by,
        approved_at=now if approved_by else current.approved_at,
    )


def release_expired_holds(db: Database, *, now: datetime, limit: int = 100) -> int:
    """Release holds whose end has passed (SPEC 11.1); how many this call released.

    Every server process runs it about once a second. Each hold is released in its own
    transaction, read FOR UPDATE and moved only from `held`, so of two processes (or a
    confirm) that reach the same hold, exactly one changes it.
    """
    with db.reader() as conn:
        due = expired_holds(conn, now, limit)
    released = 0
    for tenant_id, redemption_id in due:
        try:
            released += _release_expired(db, tenant_id, redemption_id, now)
        except Exception as exc:  # a deadlock, say: the next sweep takes this hold again
            log.warning("hold %s not released: %s", redemption_id, type(exc).__name__)
    return released


def _release_expired(db: Database, tenant_id: str, redemption_id: str, now: datetime) -> int:
    with db.transaction() as conn:
        repo = RedemptionRepository(conn, tenant_id)
        current = repo.get(redemption_id, for_update=True)
        if current is None or current.status != HELD:
            return 0  # confirmed, released or swept by another process meanwhile
        assert current.hold_expires_at is not None and current.hold_expires_at <= now
        step = plan("release", current, now=now)
        assert step is not None
        coupon = CouponRepository(conn, tenant_id).get_including_deleted(current.coupon_id)
        if not repo.move(current.id, source=step.source, target=step.target, now=now):
            return 0
        _give_back(repo, current, step, coupon)
        return 1


def _give_back(
    repo: RedemptionRepository, current: Redemption, step: Transition, coupon: Coupon | None
) -> None:
    """Every claim of a redemption that stops holding a use (reject, rollback, release),
    taking the rows in the order its coupon's claims take them (code first; then the user's
    row before the coupon's on the synchronous path without a draw, the coupon's first
    otherwise), so a give-back and a claim wait for each other instead of deadlocking."""
    freed = repo.release_code_use(current.coupon_id, normalise_code(current.code))
    user_first = coupon is not None and not draws(coupon) and not takes_hot_path(coupon)
    if user_first:
        repo.release_user_use(current.coupon_id, current.user_id)
    repo.release_use(
        current.coupon_id,
        credit_units=to_units(current.credit),
        given_units=to_units(current.discount_total),
        code_freed=freed,
        moved=(step.source, step.target),
    )
    if not user_first:
        repo.release_user_use(current.coupon_id, current.user_id)


def _check_approver(
    conn: Connection, tenant: Tenant, coupon: Coupon | None, approver: str, now: datetime
) -> None:
    if approver and tenant.is_admin(approver):
        return
    group_id = coupon.data.authorized_group_id if coupon else None
    if approver and group_id is not None:
        member = GroupRepository(conn, tenant.id).get_member(group_id, approver)
        if member is not None and member.role == "admin" and member.is_current(now):
            return
    raise ApproverNotAllowed()


def get_redemption(db: Database, *, tenant_id: str, redemption_id: str) -> Redemption:
    with db.reader() as conn:
        found = RedemptionRepository(conn, tenant_id).get(redemption_id)
    if found is None:
        raise RedemptionNotFound()
    return found


def list_redemptions(
    db: Database,
    *,
    tenant_id: str,
    after_seq: int,
    limit: int,
    filters: Mapping[str, str | None],
) -> Page[Redemption]:
    """Oldest first, keyset pages; filters coupon_id, user_id, status, code (any case)."""
    with db.reader() as conn:
        code = filters.get("code")
        if code is not None:
            # A redemption records its code as the tenant's codes spell it.
            code = CodeRepository(conn, tenant_id).spelling(code) or code
        rows = RedemptionRepository(conn, tenant_id).page(
            after_seq=after_seq,
            limit=limit + 1,
            coupon_id=filters.get("coupon_id"),
            user_id=filters.get("user_id"),
            status=filters.get("status"),
            code=code,
        )
    return Page.from_rows(rows, limit)


def list_newest_redemptions(
    db: Database,
    *,
    tenant_id: str,
    before_seq: int | None,
    limit: int,
    status: str | None,
    code: str | None,
) -> Page[Redemption]:
    """Newest first, keyset pages (the console); `code` in any case."""
    with db.reader() as conn:
        if code is not None:
            code = CodeRepository(conn, tenant_id).spelling(code) or code
        rows = RedemptionRepository(conn, tenant_id).newest_page(
            before_seq=before_seq, limit=limit + 1, status=status, code=code
        )
    return Page.from_rows(rows, limit)
