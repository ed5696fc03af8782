"""Several codes in one cart (SPEC 11.2): validate them together, redeem them in one
transaction, and move a checkout's redemptions together.

Each code is first checked on its own, as one code would be (found, its 422 refusals, its
counters); `domain.stacking` then decides which apply and what each takes from what the others
left; the claims follow, all in the caller's transaction. With the policy `all` a refusal of any
code refuses the request and every claim rolls back; with `partial` each code's claims run in
a savepoint, and a refused code is skipped and reported.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection

from couponry.domain.cart import Cart
from couponry.domain.codes import TypedCode
from couponry.domain.coupons import Coupon
from couponry.domain.discounts import LineDiscount, Quote, Refusal
from couponry.domain.money import minor_unit, round_money
from couponry.domain.paging import new_id
from couponry.domain.redemptions import Redemption, lines_view, money_text, plan, redemption_view
from couponry.domain.stacking import CodeResult, StackEntry, StackResult, stack
from couponry.domain.tenants import Tenant
from couponry.errors import REFUSALS, CheckoutNotFound, CouponNotFound, CouponryError
from couponry.services import redemptions as single
from couponry.store.coupon_repo import CouponRepository
from couponry.store.db import Database
from couponry.store.group_repo import GroupRepository
from couponry.store.redemption_repo import RedemptionRepository

REFUSAL_TYPES = tuple(REFUSALS.values())


@dataclass(frozen=True)
class Found:
    """A code of the cart and what it names (None: no coupon has it)."""

    code: str
    coupon: Coupon | None
    typed: TypedCode | None


@dataclass(frozen=True)
class Skipped:
    code: str
    errors: tuple[CouponryError, ...]


@dataclass(frozen=True)
class Checkout:
    """What a multi-code redemption came to: one redemption per applied code."""

    checkout_id: str
    redemptions: tuple[Redemption, ...]
    skipped: tuple[Skipped, ...]
    lines: tuple[LineDiscount, ...]
    total: Decimal


def _error(refusal: Refusal) -> CouponryError:
    return REFUSALS[refusal.code](refusal.message)


def _refusal(error: CouponryError) -> Refusal:
    return Refusal(error.code, error.message)


def _named(code: str, error: CouponryError) -> CouponryError:
    """The same refusal, its message naming the code it is about."""
    return type(error)(f"{code}: {error.message}", error.details)


# --- validate ------------------------------------------------------------------------------


def quote_checkout(
    conn: Connection,
    tenant: Tenant,
    cart: Cart,
    now: datetime,
    refused: Mapping[int, CouponryError] | None = None,
) -> tuple[list[Found], StackResult]:
    """Each code checked on its own, then stacked; changes nothing. `refused`: codes (by
    place in the cart) a claim refused already, so stacking knows they take nothing."""
    found = [_find(conn, tenant, code) for code in cart.codes]
    entries = [_entry(conn, tenant, cart, item, now) for item in found]
    for index, error in (refused or {}).items():
        entries[index] = replace(entries[index], refusal=_refusal(error))
    return found, stack(entries, cart, currency=tenant.currency)


def validate_checkout(
    db: Database, *, tenant: Tenant, cart: Cart, now: datetime
) -> tuple[list[Found], StackResult]:
    with db.reader() as conn:
        return quote_checkout(conn, tenant, cart, now)


def validation_view(found: list[Found], result: StackResult, currency: str) -> dict[str, Any]:
    return {
        "valid": result.all_applied,
        "discount_total": money_text(result.total, currency),
        "lines": lines_view(result.lines, currency),
        "results": [
            _result_view(item, code, currency)
            for item, code in zip(found, result.codes, strict=True)
        ],
    }


def _result_view(item: Found, result: CodeResult, currency: str) -> dict[str, Any]:
    return {
        "code": item.typed.code if item.typed is not None else item.code,
        "coupon_id": result.coupon_id,
        "applied": result.applied,
        "discount_total": money_text(result.quote.total, currency),
        "lines": lines_view(result.quote.lines, currency),
        "errors": [{"code": e.code, "message": e.message} for e in result.errors],
    }


def _find(conn: Connection, tenant: Tenant, code: str) -> Found:
    got = CouponRepository(conn, tenant.id).get_by_any_code(code)
    return Found(code, None, None) if got is None else Found(code, got[0], got[1])


def _entry(conn: Connection, tenant: Tenant, cart: Cart, item: Found, now: datetime) -> StackEntry:
    """The code as stacking sees it: refused for its own reasons, or its coupon and what it
    may draw. Its counters are read here (a validate); a redeem's claims decide for real."""
    if item.coupon is None or item.typed is None:
        refused = _refusal(CouponNotFound("No coupon has this code."))
        return StackEntry(item.code, None, None, refusal=refused)
    coupon, typed = item.coupon, item.typed
    alone = cart.with_code(item.code)
    refusal = None
    try:
        single.checked_quote(conn, tenant, coupon, typed, alone, now)
        single.check_counters(conn, tenant, coupon, typed, cart.user_id)
    except REFUSAL_TYPES as error:
        refusal = _refusal(error)
    scope = single.group_scope(GroupRepository(conn, tenant.id), coupon)
    budget = single.left_to_draw(coupon) if single.draws(coupon) else None
    return StackEntry(typed.code, coupon.id, coupon.data, scope, budget, refusal)


# --- redeem --------------------------------------------------------------------------------


def claim_checkout(
    conn: Connection, tenant: Tenant, cart: Cart, now: datetime, key: str | None
) -> Checkout:
    """Every claim of a multi-code redemption in the caller's transaction.

    `all`: the first refusal (in cart order, then any a claim meets) rises, naming its code,
    and the caller rolls everything back. `partial`: refused codes are skipped; when a claim
    is refused, that attempt's claims roll back to a savepoint and the codes are stacked again
    without it (it may have blocked another code, or taken from what another discounts).
    """
    refused: dict[int, CouponryError] = {}
    checkout_id = new_id()
    while True:
        found, stacked = quote_checkout(conn, tenant, cart, now, refused)
        if cart.policy == "all":
            _refuse_unless_all_apply(found, stacked)
            made = _claim_applied(conn, tenant, cart, found, stacked, now, key, checkout_id)
            break
        try:
            with conn.begin_nested():
                made = _claim_applied(conn, tenant, cart, found, stacked, now, key, checkout_id)
            break
        except _ClaimRefused as refusal:
            refused[refusal.index] = refusal.error
    skipped = tuple(
        Skipped(item.code, tuple(_error(e) for e in result.errors))
        for item, result in zip(found, stacked.codes, strict=True)
        if not result.applied
    )
    if not made:  # every code was refused: nothing to redeem
        raise _named(skipped[0].code, skipped[0].errors[0])
    redemptions = tuple(made[i] for i in sorted(made))
    lines, total = _sum_lines(cart, redemptions, tenant.currency)
    return Checkout(checkout_id, redemptions, skipped, lines, total)


class _ClaimRefused(Exception):
    def __init__(self, index: int, error: CouponryError) -> None:
        super().__init__(error.code)
        self.index = index
        self.error = error


def _refuse_unless_all_apply(found: list[Found], stacked: StackResult) -> None:
    for item, result in zip(found, stacked.codes, strict=True):
        if not result.applied:
            raise _named(item.code, _error(result.errors[0]))


def _claim_applied(
    conn: Connection,
    tenant: Tenant,
    cart: Cart,
    found: list[Found],
    stacked: StackResult,
    now: datetime,
    key: str | None,
    checkout_id: str,
) -> dict[int, Redemption]:
    """Claim every applied code, in the order of their coupons' ids: two checkouts that share
    coupons take their rows in one order, so they wait for each other instead of deadlocking.
    A refusal rises named (policy `all`) or as _ClaimRefused (policy `partial`)."""
    made: dict[int, Redemption] = {}
    order = sorted(
        (i for i, result in enumerate(stacked.codes) if result.applied),
        key=lambda i: (stacked.codes[i].coupon_id or "", i),
    )
    for index in order:
        item = found[index]
        try:
            made[index] = _claim_one(
                conn, tenant, cart, item, stacked.codes[index].quote, now, key, checkout_id
            )
        except REFUSAL_TYPES as error:
            if cart.policy == "all":
                raise _named(item.code, error) from None
            raise _ClaimRefused(index, error) from None
    return made


def _claim_one(
    conn: Connection,
    tenant: Tenant,
    cart: Cart,
    item: Found,
    q: Quote,
    now: datetime,
    key: str | None,
    checkout_id: str,
) -> Redemption:
    assert item.coupon is not None and item.typed is not None
    currency = tenant.currency

    def capped(drawn: Decimal) -> Quote:
        return cap_quote(q, drawn, currency)

    alone = cart.with_code(item.code)
    return single.claim_quoted(
        conn, tenant, item.coupon, item.typed, alone, q, capped, now, key, checkout_id
    )


def cap_quote(q: Quote, cap: Decimal, currency: str) -> Quote:
    """`q` given at most `cap` (rounded down to the minor unit): lines keep their discount in
    cart order until the cap is spent, as a credit's cap does in `quote`."""
    left = cap.quantize(Decimal(1).scaleb(-minor_unit(currency)), rounding="ROUND_DOWN")
    lines = []
    for line in q.lines:
        give = min(line.discount, left)
        left -= give
        lines.append(LineDiscount(line.line_id, give))
    zero = round_money(Decimal(0), currency)
    return Quote(tuple(lines), sum((x.discount for x in lines), zero), q.eligible)


def _sum_lines(
    cart: Cart, redemptions: tuple[Redemption, ...], currency: str
) -> tuple[tuple[LineDiscount, ...], Decimal]:
    zero = round_money(Decimal(0), currency)
    per_line = {line.line_id: zero for line in cart.lines}
    for r in redemptions:
        for line in r.lines:
            per_line[line.line_id] += line.discount
    lines = tuple(LineDiscount(line_id, d) for line_id, d in per_line.items())
    return lines, sum((x.discount for x in lines), zero)


def checkout_view(c: Checkout, currency: str) -> dict[str, Any]:
    return {
        "checkout_id": c.checkout_id,
        "discount_total": money_text(c.total, currency),
        "lines": lines_view(c.lines, currency),
        "redemptions": [redemption_view(r, currency) for r in c.redemptions],
        "skipped": [
            {"code": s.code, "errors": [{"code": e.code, "message": e.message} for e in s.errors]}
            for s in c.skipped
        ],
    }


# --- a checkout's redemptions together ----------------------------------------------------


def change_checkout(
    db: Database, *, tenant: Tenant, checkout_id: str, action: str, now: datetime
) -> list[Redemption]:
    """confirm, release or rollback every redemption of a checkout at once: each that can
    make the transition makes it, one already there stays as it is; any other state refuses
    the whole call (409) and nothing changes."""
    with db.transaction() as conn:
        repo = RedemptionRepository(conn, tenant.id)
        current = repo.by_checkout(checkout_id, for_update=True)
        if not current:
            raise CheckoutNotFound()
        coupons = CouponRepository(conn, tenant.id)
        planned = []
        for r in current:
            coupon = coupons.get_including_deleted(r.coupon_id)
            needs = coupon is not None and coupon.data.require_approval
            planned.append((r, coupon, plan(action, r, now=now, needs_approval=needs)))
        return [
            r if step is None else single.apply_step(conn, tenant.id, r, step, coupon, None, now)
            for r, coupon, step in planned
        ]


def checkout_transition_view(
    checkout_id: str, redemptions: list[Redemption], currency: str
) -> dict[str, Any]:
    return {
        "checkout_id": checkout_id,
        "redemptions": [redemption_view(r, currency) for r in redemptions],
    }
