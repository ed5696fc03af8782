"""A redemption: one use of a coupon by a user for a cart, and its lifecycle (SPEC 6.4)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from couponry.domain.discounts import LineDiscount
from couponry.domain.fields import format_instant
from couponry.domain.money import minor_unit
from couponry.errors import HoldExpired, InvalidRedemptionState

APPLIED = "applied"
PENDING = "pending_approval"
REJECTED = "rejected"
ROLLED_BACK = "rolled_back"
HELD = "held"  # claimed while the customer pays (SPEC 11.1)
RELEASED = "released"
STATUSES = (APPLIED, PENDING, REJECTED, ROLLED_BACK, HELD, RELEASED)
HOLDING = (APPLIED, PENDING, HELD)  # these hold a use, their credit and what they gave


@dataclass(frozen=True)
class Redemption:
    id: str
    tenant_id: str
    coupon_id: str
    code: str
    user_id: str
    status: str
    access: str
    membership_status: str | None
    discount_total: Decimal
    credit: Decimal  # drawn from the coupon's credit (TOTAL_AMOUNT), else 0
    lines: tuple[LineDiscount, ...]
    discount_line: dict[str, Any] | None
    idempotency_key: str | None
    approved_by: str | None
    approved_at: datetime | None
    created_at: datetime
    updated_at: datetime
    hold_expires_at: datetime | None = None  # set on a redemption made as a hold
    checkout_id: str | None = None  # shared by the redemptions of one multi-code request


def money_text(amount: Decimal, currency: str) -> str:
    """Computed amounts are decimal strings with exactly the minor unit's places."""
    return f"{amount:.{minor_unit(currency)}f}"


def lines_view(lines: tuple[LineDiscount, ...], currency: str) -> list[dict[str, str]]:
    return [{"line_id": x.line_id, "discount": money_text(x.discount, currency)} for x in lines]


def discount_line_view(line: dict[str, Any] | None, currency: str) -> dict[str, Any] | None:
    if line is None:
        return None
    return {"product_id": line["product_id"], "amount": money_text(line["amount"], currency)}


def redemption_view(r: Redemption, currency: str) -> dict[str, Any]:
    """The view; `hold_expires_at` and `checkout_id` only when set, so the reply for one
    code without a hold stays exactly what SPEC 6 gives (integrations parse it)."""
    view = {
        "id": r.id,
        "coupon_id": r.coupon_id,
        "code": r.code,
        "user_id": r.user_id,
        "status": r.status,
        "access": r.access,
        "membership_status": r.membership_status,
        "discount_total": money_text(r.discount_total, currency),
        "lines": lines_view(r.lines, currency),
        "discount_line": discount_line_view(r.discount_line, currency),
        "idempotency_key": r.idempotency_key,
        "approved_by": r.approved_by,
        "approved_at": format_instant(r.approved_at),
        "created_at": format_instant(r.created_at),
        "updated_at": format_instant(r.updated_at),
    }
    if r.hold_expires_at is not None:
        view["hold_expires_at"] = format_instant(r.hold_expires_at)
    if r.checkout_id is not None:
        view["checkout_id"] = r.checkout_id
    return view


@dataclass(frozen=True)
class Transition:
    """What an action does to a redemption in a given state."""

    source: str
    target: str
    releases: bool  # gives the use and the credit back
    applies_effects: bool  # group effects happen now


def plan(
    action: str, r: Redemption, *, now: datetime, needs_approval: bool = False
) -> Transition | None:
    """The transition, None when it already happened (a repeat), or InvalidRedemptionState
    (HoldExpired for a confirm after the hold's end). `needs_approval`: a confirmed hold
    becomes pending_approval rather than applied."""
    if action == "approve":
        if r.status == PENDING:
            return Transition(PENDING, APPLIED, releases=False, applies_effects=True)
        if r.status == APPLIED and r.approved_at is not None:
            return None
    elif action == "reject":
        if r.status == PENDING:
            return Transition(PENDING, REJECTED, releases=True, applies_effects=False)
        if r.status == REJECTED:
            return None
    elif action == "rollback":
        if r.status == APPLIED:
            return Transition(APPLIED, ROLLED_BACK, releases=True, applies_effects=False)
        if r.status == ROLLED_BACK:
            return None
    elif action == "confirm":
        return _plan_confirm(r, now=now, needs_approval=needs_approval)
    elif action == "release":
        if r.status == HELD:
            return Transition(HELD, RELEASED, releases=True, applies_effects=False)
        if r.status == RELEASED:
            return None
    hints = {
        "rollback": " (reject a pending redemption, release a held one)",
        "release": " (only a held redemption can be released)",
    }
    hint = hints.get(action, "")
    raise InvalidRedemptionState(f"Cannot {action} a redemption that is {r.status}{hint}.")


def _plan_confirm(r: Redemption, *, now: datetime, needs_approval: bool) -> Transition | None:
    expires = r.hold_expires_at
    if r.status == HELD:
        assert expires is not None
        if now >= expires:  # whether or not it has been released yet
            raise HoldExpired()
        target = PENDING if needs_approval else APPLIED
        return Transition(HELD, target, releases=False, applies_effects=target == APPLIED)
    if expires is not None and r.status in (APPLIED, PENDING, REJECTED, ROLLED_BACK):
        return None  # confirmed already (and perhaps moved on since): unchanged
    if r.status == RELEASED and expires is not None and r.updated_at >= expires:
        raise HoldExpired()  # released because it expired, not by a release
    raise InvalidRedemptionState(f"Cannot confirm a redemption that is {r.status}.")


# What an Idempotency-Key's row says of its first request (idempotency_keys.outcome).
IN_PROGRESS, REDEEMED, REFUSED, CHECKED_OUT = 0, 1, 2, 3


@dataclass(frozen=True)
class StoredOutcome:
    """The first request's outcome under an Idempotency-Key, kept to answer its repeats.

    REDEEMED with the JSON of the redemption's view (`redemption_view`), CHECKED_OUT with the
    JSON of a multi-code reply (`services.checkouts.checkout_view`), or REFUSED with the JSON
    of the refusal (`errors.error_document`): what the first caller was told, in domain
    terms; the web layer renders it (status, envelope) exactly as it rendered the first reply.
    """

    outcome: int
    document: str


def request_hash(body: Any) -> str:
    """The same JSON value, whatever its spacing, key order or number spelling, hashes alike."""

    def canonical(value: Any) -> Any:
        if isinstance(value, Decimal):
            return {"$n": str(value.normalize())}
        if isinstance(value, int) and not isinstance(value, bool):
            return {"$n": str(Decimal(value).normalize())}
        if isinstance(value, dict):
            return {k: canonical(v) for k, v in value.items()}
        if isinstance(value, list):
            return [canonical(v) for v in value]
        return value

    text = json.dumps(canonical(body), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
