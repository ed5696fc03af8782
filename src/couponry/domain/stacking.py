"""Several codes in one cart (SPEC 11.2): which of them apply, in what order, and what each
takes off what the others left.

Pure, like `discounts`. The service checks each code on its own first (found, active, dates,
authorized group, membership status, limits: whatever it decides before stacking) and passes a
refusal for the codes it refused; `stack` decides the rest:

- order: descending `priority`, ties in cart order (the order of the entries);
- combining: `exclusive` combines with nothing, `combinable` with other `combinable` coupons,
  and two codes of the same coupon never combine. A code that cannot combine with one applied
  before it is not applied (`not_combinable`, naming that code): the first in application order
  wins, so an exclusive code applied alone wins over every code after it;
- what each takes: what `quote` gives it on what earlier codes left of each line, with its own
  coverage and caps (maximum_discount, budget), so no line ever goes below zero;
- coverage: a code that covers no line is `coupon_not_applicable`, as for one code. Coverage is
  judged on the cart, not on what is left: a covered line that earlier codes took whole still
  makes the code applicable, and gives it 0.

A code that is not applied (refused by the caller, not applicable, not combinable) takes
nothing and blocks nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

from couponry.domain.cart import Cart
from couponry.domain.coupons import CouponFields
from couponry.domain.discounts import NOT_APPLICABLE, LineDiscount, Quote, Refusal, quote
from couponry.domain.money import round_money

EXCLUSIVE = "exclusive"
COMBINABLE = "combinable"
NOT_COMBINABLE = "not_combinable"


@dataclass(frozen=True)
class StackEntry:
    """One code of the cart as the service found it; entries come in cart order."""

    code: str  # as the cart carries it: other codes' `not_combinable` messages name it
    coupon_id: str | None  # None when no coupon matched (then `refusal` says why)
    fields: CouponFields | None
    group_scope: frozenset[str] = frozenset()  # as for `quote`: what a GROUP scope covers
    budget: Decimal | None = None  # what its credit / budget has left, as for `quote`
    refusal: Refusal | None = None  # the caller's own refusal: not applied, blocks nothing

    def __post_init__(self) -> None:
        if self.refusal is None and (self.coupon_id is None or self.fields is None):
            raise ValueError(f"{self.code}: an entry without a refusal needs its coupon")


@dataclass(frozen=True)
class CodeResult:
    """What one code of the cart came to."""

    code: str
    coupon_id: str | None
    applied: bool
    quote: Quote  # every line at zero when not applied
    errors: tuple[Refusal, ...]  # empty when applied


@dataclass(frozen=True)
class StackResult:
    """Every code's result in cart order, and what they take together."""

    codes: tuple[CodeResult, ...]
    lines: tuple[LineDiscount, ...]  # per cart line: the sum over the applied codes
    total: Decimal

    @property
    def all_applied(self) -> bool:
        return all(result.applied for result in self.codes)

    def line_map(self) -> dict[str, Decimal]:
        return {line.line_id: line.discount for line in self.lines}


def application_order(entries: Sequence[StackEntry]) -> list[int]:
    """Indices of `entries` in the order they apply: descending priority, ties in cart order.

    A refused entry applies nowhere; it sorts at priority 0 only to have a place.
    """
    return sorted(range(len(entries)), key=lambda i: -_priority(entries[i]))


def stack(entries: Sequence[StackEntry], cart: Cart, *, currency: str) -> StackResult:
    """Apply the cart's codes one after the other, each to what the others left (SPEC 11.2).

    A single entry without a refusal gets exactly what `quote` gives it. The codes' number and
    distinctness are the cart parser's to check.
    """
    left = {line.line_id: line.total for line in cart.lines}
    applied: list[StackEntry] = []
    results: dict[int, CodeResult] = {}
    for index in application_order(entries):
        entry = entries[index]
        outcome = _outcome(entry, cart, currency=currency, left=left, applied=applied)
        if isinstance(outcome, Refusal):
            results[index] = _not_applied(entry, outcome, cart, currency)
            continue
        applied.append(entry)
        for line in outcome.lines:
            left[line.line_id] -= line.discount
        results[index] = CodeResult(entry.code, entry.coupon_id, True, outcome, ())
    codes = tuple(results[index] for index in range(len(entries)))
    return _together(codes, cart, currency)


def _priority(entry: StackEntry) -> int:
    return 0 if entry.fields is None else entry.fields.priority


def _outcome(
    entry: StackEntry,
    cart: Cart,
    *,
    currency: str,
    left: Mapping[str, Decimal],
    applied: Sequence[StackEntry],
) -> Quote | Refusal:
    """The entry's quote on what is left, or why it is not applied.

    Its own reasons come first (the caller's, then coverage): a code that would not apply
    alone is reported as such, not as a conflict.
    """
    if entry.refusal is not None:
        return entry.refusal
    assert entry.fields is not None  # StackEntry checks it
    found = quote(
        entry.fields,
        cart,
        currency=currency,
        group_scope=entry.group_scope,
        budget=entry.budget,
        remaining=left,
    )
    if not found.eligible:
        return NOT_APPLICABLE
    conflict = next((other for other in applied if not _combine(entry, other)), None)
    if conflict is not None:
        return _not_combinable(entry, conflict)
    return found


def _combine(entry: StackEntry, other: StackEntry) -> bool:
    assert entry.fields is not None and other.fields is not None
    return (
        entry.coupon_id != other.coupon_id
        and entry.fields.stacking == COMBINABLE
        and other.fields.stacking == COMBINABLE
    )


def _not_combinable(entry: StackEntry, other: StackEntry) -> Refusal:
    assert other.fields is not None
    if entry.coupon_id == other.coupon_id:
        why = "both are codes of the same coupon"
    elif other.fields.stacking == EXCLUSIVE:
        why = f"{other.code} combines with no other code"
    else:
        why = f"{entry.code} combines with no other code"
    return Refusal(NOT_COMBINABLE, f"{entry.code} cannot be combined with {other.code}: {why}.")


def _not_applied(entry: StackEntry, why: Refusal, cart: Cart, currency: str) -> CodeResult:
    zero = round_money(Decimal(0), currency)
    nothing = Quote(tuple(LineDiscount(line.line_id, zero) for line in cart.lines), zero, False)
    return CodeResult(entry.code, entry.coupon_id, False, nothing, (why,))


def _together(codes: tuple[CodeResult, ...], cart: Cart, currency: str) -> StackResult:
    zero = round_money(Decimal(0), currency)
    per_line = {line.line_id: zero for line in cart.lines}
    for result in codes:
        for line in result.quote.lines:
            per_line[line.line_id] += line.discount
    lines = tuple(LineDiscount(line_id, discount) for line_id, discount in per_line.items())
    return StackResult(codes, lines, sum((line.discount for line in lines), zero))
