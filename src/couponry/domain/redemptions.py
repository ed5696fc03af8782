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
from couponry.errors import InvalidRedemptionState

APPLIED = "applied"
PENDING = "pending_approval"
REJECTED = "rejected"
ROLLED_BACK = "rolled_back"
STATUSES = (APPLIED, PENDING, REJECTED, ROLLED_BACK)
HOLDING = (APPLIED, PENDING)  # these hold a use and their credit


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
    return {
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


@dataclass(frozen=True)
class Transition:
    """What an action does to a redemption in a given state."""

    source: str
    target: str
    releases: bool  # gives the use and the credit back
    applies_effects: bool  # group effects happen now


def plan(action: str, r: Redemption) -> Transition | None:
    """The transition, None when it already happened (a repeat), or InvalidRedemptionState."""
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
    hint = " (reject a pending redemption instead)" if action == "rollback" else ""
    raise InvalidRedemptionState(f"Cannot {action} a redemption that is {r.status}{hint}.")


# What an Idempotency-Key's row says of its first request (idempotency_keys.outcome).
IN_PROGRESS, REDEEMED, REFUSED = 0, 1, 2


@dataclass(frozen=True)
class StoredOutcome:
    """The first request's outcome under an Idempotency-Key, kept to answer its repeats.

    REDEEMED with the JSON of the redemption's view (`redemption_view`), or REFUSED with the
    JSON of the refusal (`errors.error_document`): what the first caller was told, in domain
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
