"""What a coupon takes off a cart (SPEC 6.2), and whether it may be used at all (SPEC 6.3).

Pure arithmetic on decimals: eligibility per line, the larger of two coverages, rounding half-up
to the currency's minor unit per line, then caps (maximum_discount, credit) taken from the last
eligible lines first, so line discounts always add up to the total.

A code that follows others in one cart (SPEC 11.2) discounts what they left of each line: the
`remaining` of `quote` then stands for each line's total wherever the total bases or bounds a
discount. Coverage (`Quote.eligible`) never depends on it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_DOWN, Decimal

from couponry.domain.cart import Cart, CartLine
from couponry.domain.coupons import CATEGORIES, Category, CouponFields
from couponry.domain.money import minor_unit, round_money

ZERO = Decimal(0)
HUNDRED = Decimal(100)


@dataclass(frozen=True)
class LineDiscount:
    line_id: str
    discount: Decimal


@dataclass(frozen=True)
class Quote:
    """The discount a coupon gives a cart, line by line."""

    lines: tuple[LineDiscount, ...]
    total: Decimal
    eligible: bool  # at least one line is covered

    def line_map(self) -> dict[str, Decimal]:
        return {line.line_id: line.discount for line in self.lines}


def _scope_covers(c: CouponFields, line: CartLine, group_scope: frozenset[str]) -> bool:
    if c.coupon_type is None:
        return False
    entity = c.entity_type or "SITE"
    if entity == "SITE":
        return True
    if entity == "COURSE_SESSION":
        return line.kind == "course_session" and line.id == c.entity_id
    if entity == "PROGRAM_SESSION":
        return (line.kind == "program_session" and line.id == c.entity_id) or (
            line.kind == "course_session" and line.program_session_id == c.entity_id
        )
    if entity == "EVENT":
        return line.kind == "event" and line.id == c.entity_id
    if entity == "GROUP":
        return any(g in group_scope for g in line.group_ids)
    return False


def _scope_discount(c: CouponFields, line: CartLine, total: Decimal) -> Decimal:
    """What the scope takes of `total` (what is left of the line)."""
    if c.coupon_type in ("USAGE", "TOTAL_AMOUNT"):
        return total  # the credit caps TOTAL_AMOUNT later
    if c.coupon_type == "PERCENT" and c.value_percent is not None:
        return total * c.value_percent / HUNDRED
    if c.coupon_type == "AMOUNT" and c.value_amount is not None:
        return min(c.value_amount * line.quantity, total)
    return ZERO


def _passes_filters(cat: Category, info: dict[str, object], line: CartLine) -> bool:
    ids = info.get(cat.ids_key) or []
    type_ids = info.get(cat.type_ids_key) or []
    assert isinstance(ids, list) and isinstance(type_ids, list)
    if ids and line.id not in ids:
        return False
    return not (type_ids and line.type_id not in type_ids)


def _category_discounts(
    c: CouponFields, lines: Iterable[CartLine], remaining: Mapping[str, Decimal] | None
) -> dict[str, Decimal]:
    """Per line id, what the Rhythm categories take (dues limited to N lines in cart order,
    counted on coverage: a line with nothing left still takes one of the N)."""
    found: dict[str, Decimal] = {}
    for cat in CATEGORIES:
        info = getattr(c, cat.info)
        if not getattr(c, cat.flag) or info is None:
            continue
        limit = info.get(cat.max_key) if cat.max_key else None
        taken = 0
        for line in lines:
            if line.kind != cat.line_kind or not _passes_filters(cat, info, line):
                continue
            if limit is not None and taken >= limit:
                break
            taken += 1
            amount: Decimal = info["amount"]
            total = _left_of(line, remaining)
            if info["method"] == "percentage":
                value = total * amount / HUNDRED
            else:
                value = min(amount * line.quantity, total)
            found[line.line_id] = max(found.get(line.line_id, ZERO), value)
    return found


def _round_line(value: Decimal, line_left: Decimal, currency: str) -> Decimal:
    rounded = round_money(value, currency)
    if rounded > line_left:  # a sub-cent line (or remainder) never gives more than it has
        places = Decimal(1).scaleb(-minor_unit(currency))
        rounded = line_left.quantize(places, rounding=ROUND_DOWN)
    return rounded


def _left_of(line: CartLine, remaining: Mapping[str, Decimal] | None) -> Decimal:
    """What is left to discount of the line: its total, unless earlier codes took some."""
    if remaining is None:
        return line.total
    return remaining.get(line.line_id, line.total)


def quote(
    coupon: CouponFields,
    cart: Cart,
    *,
    currency: str,
    group_scope: frozenset[str] = frozenset(),
    budget: Decimal | None = None,
    remaining: Mapping[str, Decimal] | None = None,
) -> Quote:
    """Line discounts for this cart; `budget` is what a credit has left (None: no credit).

    `remaining` is what is left of each line by line id, when earlier codes of the same cart
    took some (SPEC 11.2); a line it does not name, or None, counts at its whole total. Each
    line's discount is then at most what is left of it; eligibility is still coverage.
    """
    categories = _category_discounts(coupon, cart.lines, remaining)
    raw: list[tuple[CartLine, Decimal | None]] = []
    for line in cart.lines:
        covered = _scope_covers(coupon, line, group_scope)
        scope = _scope_discount(coupon, line, _left_of(line, remaining)) if covered else None
        category = categories.get(line.line_id)
        if scope is None and category is None:
            raw.append((line, None))
        else:
            raw.append((line, max(v for v in (scope, category) if v is not None)))
    cap = _cap(coupon, budget, currency)
    zero = round_money(ZERO, currency)
    lines: list[LineDiscount] = []
    left = cap
    for line, value in raw:
        if value is None:
            lines.append(LineDiscount(line.line_id, zero))
            continue
        give = _round_line(value, _left_of(line, remaining), currency)
        if left is not None:
            give = min(give, left)
            left -= give
        lines.append(LineDiscount(line.line_id, give))
    total = sum((line.discount for line in lines), zero)
    return Quote(tuple(lines), total, any(v is not None for _, v in raw))


def _cap(coupon: CouponFields, budget: Decimal | None, currency: str) -> Decimal | None:
    caps = []
    places = Decimal(1).scaleb(-minor_unit(currency))
    if coupon.maximum_discount is not None:
        caps.append(coupon.maximum_discount.quantize(places, rounding=ROUND_DOWN))
    if budget is not None:
        caps.append(budget.quantize(places, rounding=ROUND_DOWN))
    return min(caps) if caps else None


# --- who may use it (SPEC 6.3, checked in this order) -------------------------------------


@dataclass(frozen=True)
class Refusal:
    code: str
    message: str


NOT_APPLICABLE = Refusal(
    "coupon_not_applicable", "This coupon does not apply to anything in the cart."
)


def check_usable(
    coupon: CouponFields,
    cart: Cart,
    *,
    now: datetime,
    is_current_member: bool,
    quote_eligible: bool,
) -> Refusal | None:
    """The first 422 refusal that applies, or None."""
    if not coupon.is_active:
        return Refusal("coupon_inactive", "This coupon is not active.")
    if coupon.starts_at is not None and now < coupon.starts_at:
        return Refusal("coupon_not_started", "This coupon cannot be used yet.")
    if coupon.expires_at is not None and now >= coupon.expires_at:
        return Refusal("coupon_expired", "This coupon has expired.")
    if (
        coupon.authorized_group_id is not None
        and not is_current_member
        and not coupon.add_user_to_coupons_group
    ):
        return Refusal("not_in_authorized_group", "This coupon is only for members of a group.")
    wanted = {"new members": "new", "renewing members": "renewal"}.get(coupon.applies_to)
    if wanted is not None and cart.membership_status != wanted:
        return Refusal(
            "membership_status_mismatch", f"This coupon is only for {coupon.applies_to}."
        )
    if not quote_eligible:
        return NOT_APPLICABLE
    return None
