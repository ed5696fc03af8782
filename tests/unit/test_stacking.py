"""Several codes in one cart (SPEC 11.2): the `remaining` of `quote`, pure."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from couponry.domain.cart import Cart, parse_cart
from couponry.domain.coupons import CouponFields, parse_coupon_input
from couponry.domain.discounts import quote

D = Decimal


# --- helpers ----------------------------------------------------------------------------------


def line(line_id: str, price: str = "20.00", qty: int = 1, **extra: Any) -> dict[str, Any]:
    body = {"line_id": line_id, "kind": "other", "id": "x", "unit_price": price, "quantity": qty}
    return body | extra


def cart(*lines: dict[str, Any]) -> Cart:
    return parse_cart({"code": "CODE", "user_id": "u-1", "lines": list(lines)})


def coupon(**doc: Any) -> CouponFields:
    """A coupon as a client would write it, checked by the real rules."""
    return parse_coupon_input(doc, creating=True)


def percent(value: Any, **more: Any) -> CouponFields:
    return coupon(coupon_type="PERCENT", value_percent=value, **more)


def amount(value: Any, **more: Any) -> CouponFields:
    return coupon(coupon_type="AMOUNT", value_amount=value, **more)


def usage(**more: Any) -> CouponFields:
    return coupon(coupon_type="USAGE", **more)


# --- quote on what is left of each line -------------------------------------------------------


def test_quote_without_remaining_is_unchanged_by_a_remaining_of_whole_totals() -> None:
    k = cart(line("1", "20.00"), line("2", "7.35", 3))
    c = percent("12.5", maximum_discount="4.00")
    whole = {x.line_id: x.total for x in k.lines}
    assert quote(c, k, currency="USD", remaining=whole) == quote(c, k, currency="USD")


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        (percent(10), "1.50"),  # 10% of the 15.00 left, not of 20.00
        (amount(5), "5.00"),
        (amount(18), "15.00"),  # an amount is capped at what is left
        (usage(), "15.00"),  # free: all that is left
        (
            coupon(
                apply_to_add_on_products=True,
                add_on_products_discount_info={"method": "percentage", "amount": 20},
            ),
            "3.00",
        ),
        (
            coupon(
                apply_to_add_on_products=True,
                add_on_products_discount_info={"method": "amount", "amount": 16},
            ),
            "15.00",
        ),
    ],
)
def test_quote_discounts_what_is_left(fields: CouponFields, expected: str) -> None:
    k = cart(line("1", "20.00", kind="add_on_product"))
    found = quote(fields, k, currency="USD", remaining={"1": D("15.00")})
    assert str(found.line_map()["1"]) == expected
    assert str(found.total) == expected


def test_quote_counts_a_line_it_is_not_told_about_at_its_total() -> None:
    k = cart(line("1", "20.00"), line("2", "10.00"))
    found = quote(percent(50), k, currency="USD", remaining={"1": D(4)})
    assert found.line_map() == {"1": D("2.00"), "2": D("5.00")}


def test_quote_on_nothing_left_is_still_eligible_and_gives_zero() -> None:
    k = cart(line("1", "20.00"))
    found = quote(percent(10), k, currency="USD", remaining={"1": D(0)})
    assert found.eligible and found.total == 0 and str(found.total) == "0.00"


def test_quote_never_rounds_past_a_sub_cent_remainder() -> None:
    k = cart(line("1", "0.015"))
    found = quote(usage(), k, currency="USD", remaining={"1": D("0.005")})
    assert str(found.total) == "0.00"  # 0.005 rounds half-up to 0.01, more than is left
