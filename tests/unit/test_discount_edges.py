"""Edges of what a coupon takes off a cart (SPEC 6.2) that the broader tests leave open:
a category whose flag is off, a discount that follows other codes, sub-cent lines, caps."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from couponry.domain.cart import Cart, parse_cart
from couponry.domain.coupons import CouponFields, parse_coupon_input
from couponry.domain.discounts import quote

D = Decimal


def line(
    line_id: str, kind: str = "event", item_id: str = "e-1", price: str = "10.00", qty: int = 1
) -> dict[str, Any]:
    return {"line_id": line_id, "kind": kind, "id": item_id, "unit_price": price, "quantity": qty}


def cart(*lines: dict[str, Any]) -> Cart:
    return parse_cart({"code": "C", "user_id": "u-1", "lines": list(lines)})


def coupon(**doc: Any) -> CouponFields:
    return parse_coupon_input(doc, creating=True)


def test_a_category_whose_flag_is_off_gives_nothing_even_with_its_info() -> None:
    dues = {"method": "percentage", "amount": 50}
    k = cart(line("dues", "chapter_dues", "ch-1"), line("ev", "event", "e-1"))
    off = coupon(
        coupon_type="PERCENT",
        value_percent=10,
        entity_type="EVENT",
        entity_id="e-1",
        apply_to_chapter_dues=False,
        chapter_dues_discount_info=dues,
    )
    assert quote(off, k, currency="USD").line_map() == {"dues": D("0.00"), "ev": D("1.00")}
    on = coupon(
        coupon_type="PERCENT",
        value_percent=10,
        entity_type="EVENT",
        entity_id="e-1",
        apply_to_chapter_dues=True,
        chapter_dues_discount_info=dues,
    )
    assert quote(on, k, currency="USD").line_map() == {"dues": D("5.00"), "ev": D("1.00")}
