"""A redemption as clients see it (SPEC 6.4, 11.1, 11.2): its view, its amounts in the
currency's minor unit, the refusals of a move its state does not allow, and how an
Idempotency-Key's stored first reply is read back, old rows included."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from couponry.domain.discounts import LineDiscount
from couponry.domain.redemptions import (
    APPLIED,
    CHECKED_OUT,
    HELD,
    HOLDING,
    IN_PROGRESS,
    PENDING,
    REDEEMED,
    REFUSED,
    REJECTED,
    RELEASED,
    ROLLED_BACK,
    STATUSES,
    Redemption,
    StoredOutcome,
    discount_line_view,
    lines_view,
    money_text,
    plan,
    redemption_view,
    request_hash,
)
from couponry.errors import HoldExpired, InvalidRedemptionState
from couponry.store.redemption_repo import stored_outcome

D = Decimal
NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def made(**changes: object) -> Redemption:
    base = Redemption(
        id="r-1",
        tenant_id="t",
        coupon_id="c-1",
        code="SPRING",
        user_id="u-1",
        status=APPLIED,
        access="full",
        membership_status="new",
        discount_total=D("12.5"),
        credit=D(0),
        lines=(LineDiscount("1", D("10")), LineDiscount("2", D("2.5"))),
        discount_line={"product_id": "p-9", "amount": D("12.5")},
        idempotency_key="k-1",
        approved_by=None,
        approved_at=None,
        created_at=NOW,
        updated_at=NOW + timedelta(seconds=3),
    )
    fields = {**vars(base), **changes}
    return Redemption(**fields)  # type: ignore[arg-type]


def test_the_view_of_a_redemption() -> None:
    view = redemption_view(made(), "USD")
    assert view == {
        "id": "r-1",
        "coupon_id": "c-1",
        "code": "SPRING",
        "user_id": "u-1",
        "status": "applied",
        "access": "full",
        "membership_status": "new",
        "discount_total": "12.50",
        "lines": [{"line_id": "1", "discount": "10.00"}, {"line_id": "2", "discount": "2.50"}],
        "discount_line": {"product_id": "p-9", "amount": "12.50"},
        "idempotency_key": "k-1",
        "approved_by": None,
        "approved_at": None,
        "created_at": "2026-05-01T12:00:00Z",
        "updated_at": "2026-05-01T12:00:03Z",
    }


def test_a_hold_and_a_checkout_show_only_when_set() -> None:
    ends = NOW + timedelta(minutes=10)
    view = redemption_view(made(status=HELD, hold_expires_at=ends, checkout_id="ch-1"), "USD")
    assert view["hold_expires_at"] == "2026-05-01T12:10:00Z"
    assert view["checkout_id"] == "ch-1"
    plain = redemption_view(made(discount_line=None), "USD")
    assert "hold_expires_at" not in plain and "checkout_id" not in plain
    assert plain["discount_line"] is None
    approved = redemption_view(made(approved_by="admin", approved_at=NOW), "USD")
    assert approved["approved_by"] == "admin" and approved["approved_at"] == "2026-05-01T12:00:00Z"


@pytest.mark.parametrize(
    ("currency", "text"), [("USD", "12.50"), ("JPY", "12"), ("KWD", "12.500"), ("usd", "12.50")]
)
def test_amounts_have_the_minor_units_places(currency: str, text: str) -> None:
    assert money_text(D("12.5"), currency) == text
    assert lines_view((LineDiscount("a", D("12.5")),), currency) == [
        {"line_id": "a", "discount": text}
    ]
    line = discount_line_view({"product_id": "p", "amount": D("12.5")}, currency)
    assert line == {"product_id": "p", "amount": text}
    assert discount_line_view(None, currency) is None


def test_statuses_and_which_hold_a_use() -> None:
    assert set(STATUSES) == {APPLIED, PENDING, REJECTED, ROLLED_BACK, HELD, RELEASED}
    assert set(HOLDING) == {APPLIED, PENDING, HELD}


def test_a_refused_move_says_what_to_do_instead() -> None:
    with pytest.raises(InvalidRedemptionState) as pending:
        plan("rollback", made(status=PENDING), now=NOW)
    assert str(pending.value.message) == (
        "Cannot rollback a redemption that is pending_approval"
        " (reject a pending redemption, release a held one)."
    )
    with pytest.raises(InvalidRedemptionState) as applied:
        plan("release", made(status=APPLIED), now=NOW)
    assert applied.value.message == (
        "Cannot release a redemption that is applied (only a held redemption can be released)."
    )
    with pytest.raises(InvalidRedemptionState) as rejected:
        plan("approve", made(status=REJECTED), now=NOW)
    assert rejected.value.message == "Cannot approve a redemption that is rejected."
    with pytest.raises(InvalidRedemptionState) as never:
        plan("confirm", made(status=APPLIED), now=NOW)
    assert never.value.message == "Cannot confirm a redemption that is applied."


def test_a_hold_released_at_its_end_expired_and_one_released_before_did_not() -> None:
    ends = NOW
    at_end = made(status=RELEASED, hold_expires_at=ends, updated_at=ends)
    with pytest.raises(HoldExpired):
        plan("confirm", at_end, now=NOW + timedelta(seconds=1))
    before = made(status=RELEASED, hold_expires_at=ends, updated_at=ends - timedelta(seconds=1))
    with pytest.raises(InvalidRedemptionState):
        plan("confirm", before, now=NOW + timedelta(seconds=1))
    with pytest.raises(InvalidRedemptionState):
        plan("confirm", made(status=RELEASED), now=NOW)  # never a hold


def test_a_confirmed_hold_that_moved_on_repeats_but_an_unconfirmed_one_does_not() -> None:
    ends = NOW + timedelta(minutes=1)
    for status in (APPLIED, PENDING, REJECTED, ROLLED_BACK):
        assert plan("confirm", made(status=status, hold_expires_at=ends), now=NOW) is None
    with pytest.raises(InvalidRedemptionState):
        plan("confirm", made(status=RELEASED, hold_expires_at=ends), now=NOW)


def test_the_hash_is_sha256_of_the_canonical_json() -> None:
    """Stored keys outlive a release: the hash of a body must not change between versions."""
    body = {"user_id": "Zoë", "code": "C", "n": [1, D("2.50"), True, None]}
    canonical = '{"code":"C","n":[{"$n":"1"},{"$n":"2.5"},true,null],"user_id":"Zoë"}'
    assert request_hash(body) == hashlib.sha256(canonical.encode()).hexdigest()


# --- an Idempotency-Key's stored first reply ---------------------------------------------------


def test_stored_outcomes_read_back_as_written() -> None:
    assert stored_outcome(REDEEMED, '{"id":"r"}') == StoredOutcome(REDEEMED, '{"id":"r"}')
    assert stored_outcome(REFUSED, '{"code":"x"}') == StoredOutcome(REFUSED, '{"code":"x"}')
    assert stored_outcome(0, "") == StoredOutcome(0, "")


def test_rows_written_before_outcomes_read_as_the_reply_they_held() -> None:
    assert stored_outcome(201, '{"id":"r"}') == StoredOutcome(REDEEMED, '{"id":"r"}')
    document = {"code": "usage_limit_reached", "message": "m", "details": []}
    body = json.dumps({"error": document}, separators=(",", ":"))
    old = stored_outcome(409, body)
    assert old.outcome == REFUSED and json.loads(old.document) == document
    assert stored_outcome(100, '{"error":{}}') == StoredOutcome(REFUSED, "{}")
    assert stored_outcome(99, "raw") == StoredOutcome(99, "raw")
    for strange in ('{"fault":{}}', '{"error":{}]'):
        with pytest.raises(ValueError):
            stored_outcome(409, strange)


def test_stored_outcomes_keep_their_numbers() -> None:
    """idempotency_keys.outcome holds these numbers, and rows outlive a release (48 hours);
    the reservation writes 0 itself (store/redemption_repo.py, store/hot_redemptions.py)."""
    assert (IN_PROGRESS, REDEEMED, REFUSED, CHECKED_OUT) == (0, 1, 2, 3)


def test_a_confirm_applies_unless_told_the_coupon_needs_approval() -> None:
    live = made(status=HELD, hold_expires_at=NOW + timedelta(minutes=1))
    step = plan("confirm", live, now=NOW)
    assert step is not None and step.target == APPLIED and step.applies_effects
