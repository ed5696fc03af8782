"""What a coupon takes off a cart (SPEC 6.2), who may use it (6.3), the cart (6.1), and the
redemption lifecycle and idempotency hash (6.4): pure domain code, no database."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from couponry.domain.cart import LINE_KINDS, MAX_LINES, Cart, parse_cart
from couponry.domain.coupons import CouponFields, parse_coupon_input
from couponry.domain.discounts import Quote, check_usable, quote
from couponry.domain.money import minor_unit
from couponry.domain.redemptions import (
    APPLIED,
    HELD,
    PENDING,
    REJECTED,
    RELEASED,
    ROLLED_BACK,
    Redemption,
    money_text,
    plan,
    request_hash,
)
from couponry.errors import HoldExpired, InvalidInput, InvalidRedemptionState, UnknownField
from couponry.web.jsonio import parse_json

D = Decimal
NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


# --- helpers ----------------------------------------------------------------------------------


def line(
    line_id: str,
    kind: str = "other",
    item_id: str = "x",
    price: str = "10.00",
    qty: int = 1,
    **extra: Any,
) -> dict[str, Any]:
    return {
        "line_id": line_id,
        "kind": kind,
        "id": item_id,
        "unit_price": price,
        "quantity": qty,
        **extra,
    }


def cart(*lines: dict[str, Any], status: str | None = None) -> Cart:
    doc: dict[str, Any] = {"code": "CODE", "user_id": "u-1", "lines": list(lines)}
    if status is not None:
        doc["membership_status"] = status
    return parse_cart(doc)


def coupon(**doc: Any) -> CouponFields:
    """A coupon as a client would write it, checked by the real rules."""
    return parse_coupon_input(doc, creating=True)


def discounts(q: Quote) -> dict[str, Decimal]:
    return q.line_map()


def quoted(c: CouponFields, k: Cart, currency: str = "USD", **kw: Any) -> Quote:
    return quote(c, k, currency=currency, **kw)


def info(method: str, amount: Any, **filters: Any) -> dict[str, Any]:
    return {"method": method, "amount": amount, **filters}


# --- scopes (SPEC 6.2) ------------------------------------------------------------------------


def every_kind_cart() -> Cart:
    return cart(*(line(str(i), kind, f"id-{i}", "10.00") for i, kind in enumerate(LINE_KINDS)))


def test_site_covers_every_line_of_every_kind() -> None:
    q = quoted(coupon(coupon_type="USAGE"), every_kind_cart())
    assert q.eligible
    assert set(discounts(q).values()) == {D("10.00")}
    assert q.total == D("10.00") * len(LINE_KINDS)


def test_course_session_scope_covers_only_that_course_session() -> None:
    c = coupon(coupon_type="USAGE", entity_type="COURSE_SESSION", entity_id="cs-1")
    k = cart(
        line("a", "course_session", "cs-1"),
        line("b", "course_session", "cs-2"),
        line("c", "program_session", "cs-1"),
        line("d", "event", "cs-1"),
        line("e", "other", "cs-1"),
    )
    assert discounts(quoted(c, k)) == {
        "a": D("10.00"),
        "b": D("0.00"),
        "c": D("0.00"),
        "d": D("0.00"),
        "e": D("0.00"),
    }


def test_program_session_scope_covers_it_and_its_course_sessions() -> None:
    c = coupon(coupon_type="USAGE", entity_type="PROGRAM_SESSION", entity_id="ps-1")
    k = cart(
        line("a", "program_session", "ps-1"),
        line("b", "course_session", "cs-1", program_session_id="ps-1"),
        line("c", "course_session", "cs-2", program_session_id="ps-2"),
        line("d", "course_session", "ps-1"),
        line("e", "program_session", "ps-2"),
        line("f", "event", "ev-1", program_session_id="ps-1"),
    )
    assert discounts(quoted(c, k)) == {
        "a": D("10.00"),
        "b": D("10.00"),
        "c": D("0.00"),
        "d": D("0.00"),
        "e": D("0.00"),
        "f": D("0.00"),
    }


def test_event_scope_covers_only_that_event() -> None:
    c = coupon(coupon_type="USAGE", entity_type="EVENT", entity_id="ev-1")
    k = cart(
        line("a", "event", "ev-1"),
        line("b", "event", "ev-2"),
        line("c", "course_session", "ev-1"),
    )
    assert discounts(quoted(c, k)) == {"a": D("10.00"), "b": D("0.00"), "c": D("0.00")}


def test_group_scope_covers_lines_in_the_group_or_below() -> None:
    c = coupon(coupon_type="USAGE", entity_type="GROUP", entity_id="g-root")
    scope = frozenset({"g-root", "g-child", "g-grandchild"})
    k = cart(
        line("a", "course_session", "cs-1", group_ids=["g-root"]),
        line("b", "event", "ev-1", group_ids=["g-other", "g-grandchild"]),
        line("c", "other", "o-1", group_ids=["g-other"]),
        line("d", "other", "o-2"),
        line("e", "other", "o-3", group_ids=[]),
    )
    assert discounts(quoted(c, k, group_scope=scope)) == {
        "a": D("10.00"),
        "b": D("10.00"),
        "c": D("0.00"),
        "d": D("0.00"),
        "e": D("0.00"),
    }
    # Without its scope the group coupon covers nothing.
    assert not quoted(c, k).eligible


# --- coupon types -----------------------------------------------------------------------------


def test_usage_takes_the_whole_line() -> None:
    q = quoted(coupon(coupon_type="USAGE"), cart(line("a", price="19.99", qty=3)))
    assert discounts(q) == {"a": D("59.97")}
    assert q.total == D("59.97")


@pytest.mark.parametrize(
    ("percent", "price", "qty", "expected"),
    [
        ("25", "2.97", 1, "0.74"),  # 0.7425
        ("12.5", "0.20", 1, "0.03"),  # 0.025, half-up
        ("10", "0.05", 1, "0.01"),  # 0.005, half-up
        ("10", "0.04", 1, "0.00"),  # 0.004
        ("33.3333", "10.00", 3, "10.00"),  # 9.99999
        ("100", "7.77", 2, "15.54"),
        ("15", "19.99", 1, "3.00"),  # 2.9985
    ],
)
def test_percent_rounds_half_up_per_line(percent: str, price: str, qty: int, expected: str) -> None:
    q = quoted(
        coupon(coupon_type="PERCENT", value_percent=percent), cart(line("a", price=price, qty=qty))
    )
    assert discounts(q) == {"a": D(expected)}
    assert q.total == D(expected)


def test_percent_rounds_each_line_not_the_total() -> None:
    c = coupon(coupon_type="PERCENT", value_percent="12.5")
    q = quoted(c, cart(line("a", price="0.20"), line("b", price="0.20")))
    # 0.025 per line rounds to 0.03 each: 0.06, not round(0.05) of the sum.
    assert discounts(q) == {"a": D("0.03"), "b": D("0.03")}
    assert q.total == D("0.06")


def test_amount_is_per_unit_and_at_most_the_line() -> None:
    c = coupon(coupon_type="AMOUNT", value_amount="5")
    q = quoted(
        c,
        cart(
            line("a", price="10.00", qty=3),  # 3 x 5 = 15
            line("b", price="4.00", qty=2),  # 2 x 5 = 10, capped at 8
            line("c", price="0", qty=4),
        ),
    )
    assert discounts(q) == {"a": D("15.00"), "b": D("8.00"), "c": D("0.00")}
    assert q.total == D("23.00")
    assert q.eligible  # a free line is still covered


def test_total_amount_spends_the_budget_in_cart_order() -> None:
    c = coupon(coupon_type="TOTAL_AMOUNT", value_amount="100")
    k = cart(
        line("a", price="30.00"),
        line("b", price="50.00"),
        line("c", price="40.00"),
    )
    q = quoted(c, k, budget=D("70"))
    assert discounts(q) == {"a": D("30.00"), "b": D("40.00"), "c": D("0.00")}
    assert q.total == D("70.00")
    assert q.eligible
    whole = quoted(c, k, budget=D("500"))
    assert discounts(whole) == {"a": D("30.00"), "b": D("50.00"), "c": D("40.00")}
    spent = quoted(c, k, budget=D("0"))
    assert spent.total == D("0.00") and spent.eligible


def test_total_amount_budget_skips_uncovered_lines() -> None:
    c = coupon(coupon_type="TOTAL_AMOUNT", value_amount="100", entity_type="EVENT", entity_id="e")
    k = cart(
        line("a", "other", price="30.00"),
        line("b", "event", "e", price="25.00"),
        line("c", "event", "e", price="25.00"),
    )
    q = quoted(c, k, budget=D("40"))
    assert discounts(q) == {"a": D("0.00"), "b": D("25.00"), "c": D("15.00")}


# --- Rhythm categories ------------------------------------------------------------------------

CATEGORY_CASES = [
    # (flag, info field, line kind, ids key, type ids key)
    (
        "apply_to_membership_packages",
        "membership_package_discount_info",
        "membership_package",
        "package_ids",
        "type_ids",
    ),
    (
        "apply_to_chapter_dues",
        "chapter_dues_discount_info",
        "chapter_dues",
        "chapter_ids",
        "chapter_type_ids",
    ),
    (
        "apply_to_section_dues",
        "section_dues_discount_info",
        "section_dues",
        "section_ids",
        "section_type_ids",
    ),
    (
        "apply_to_add_on_products",
        "add_on_products_discount_info",
        "add_on_product",
        "add_on_ids",
        "add_on_type_ids",
    ),
]


def filter_cart(kind: str) -> Cart:
    other = "event" if kind != "event" else "other"
    return cart(
        line("1", kind, "p1", type_id="t1"),
        line("2", kind, "p1", type_id="t2"),
        line("3", kind, "p2", type_id="t1"),
        line("4", kind, "p2"),
        line("5", other, "p1", type_id="t1"),  # another kind never passes
    )


@pytest.mark.parametrize(("flag", "field", "kind", "ids", "type_ids"), CATEGORY_CASES)
@pytest.mark.parametrize(
    ("id_filter", "type_filter", "covered"),
    [
        ([], [], {"1", "2", "3", "4"}),
        (["p1"], [], {"1", "2"}),
        ([], ["t1"], {"1", "3"}),
        (["p1"], ["t1"], {"1"}),
        (["p2", "p1"], ["t2", "t9"], {"2"}),
        (["nope"], [], set()),
    ],
)
def test_category_id_and_type_filters(
    flag: str,
    field: str,
    kind: str,
    ids: str,
    type_ids: str,
    id_filter: list[str],
    type_filter: list[str],
    covered: set[str],
) -> None:
    c = coupon(**{flag: True, field: info("amount", 2, **{ids: id_filter, type_ids: type_filter})})
    q = quoted(c, filter_cart(kind))
    assert {k for k, v in discounts(q).items() if v} == covered
    assert all(v == D("2.00") for k, v in discounts(q).items() if k in covered)
    assert q.eligible == bool(covered)


@pytest.mark.parametrize(("flag", "field", "kind", "ids", "type_ids"), CATEGORY_CASES)
def test_category_amount_and_percentage_methods(
    flag: str, field: str, kind: str, ids: str, type_ids: str
) -> None:
    k = cart(
        line("1", kind, "a", price="10.00", qty=3),
        line("2", kind, "b", price="3.00", qty=2),
        line("3", kind, "c", price="2.97"),
    )
    by_amount = quoted(coupon(**{flag: True, field: info("amount", "4")}), k)
    # per unit, at most the line: 3 x 4 = 12; 2 x 4 = 8 capped at 6; 4 capped at 2.97
    assert discounts(by_amount) == {"1": D("12.00"), "2": D("6.00"), "3": D("2.97")}
    by_percent = quoted(coupon(**{flag: True, field: info("percentage", "25")}), k)
    assert discounts(by_percent) == {"1": D("7.50"), "2": D("1.50"), "3": D("0.74")}


@pytest.mark.parametrize(
    ("flag", "field", "kind", "limit_key", "ids"),
    [
        (
            "apply_to_chapter_dues",
            "chapter_dues_discount_info",
            "chapter_dues",
            "maximum_number_of_chapters",
            "chapter_ids",
        ),
        (
            "apply_to_section_dues",
            "section_dues_discount_info",
            "section_dues",
            "maximum_number_of_sections",
            "section_ids",
        ),
    ],
)
def test_dues_cover_at_most_n_lines_in_cart_order(
    flag: str, field: str, kind: str, limit_key: str, ids: str
) -> None:
    k = cart(
        line("1", kind, "d1"),
        line("2", "event", "e1"),
        line("3", kind, "skip"),  # filtered out: does not use up the limit
        line("4", kind, "d2"),
        line("5", kind, "d3"),
    )
    c = coupon(**{flag: True, field: info("amount", 1, **{limit_key: 2, ids: ["d1", "d2", "d3"]})})
    assert discounts(quoted(c, k)) == {
        "1": D("1.00"),
        "2": D("0.00"),
        "3": D("0.00"),
        "4": D("1.00"),
        "5": D("0.00"),
    }
    unlimited = coupon(**{flag: True, field: info("amount", 1)})
    assert sum(1 for v in discounts(quoted(unlimited, k)).values() if v) == 4


def test_line_covered_by_scope_and_category_gets_the_larger() -> None:
    k = cart(
        line("cheap", "membership_package", "m1", price="100.00"),
        line("dear", "membership_package", "m2", price="10.00"),
        line("x", "event", "e1", price="100.00"),
    )
    c = coupon(
        coupon_type="PERCENT",
        value_percent=10,
        apply_to_membership_packages=True,
        membership_package_discount_info=info("amount", "5"),
    )
    # m1: 10% of 100 = 10 beats 5; m2: 10% of 10 = 1 loses to 5; the event only has the scope.
    assert discounts(quoted(c, k)) == {"cheap": D("10.00"), "dear": D("5.00"), "x": D("10.00")}
    narrow = coupon(
        coupon_type="AMOUNT",
        value_amount=1,
        entity_type="EVENT",
        entity_id="e1",
        apply_to_membership_packages=True,
        membership_package_discount_info=info("percentage", "50"),
    )
    assert discounts(quoted(narrow, k)) == {"cheap": D("50.00"), "dear": D("5.00"), "x": D("1.00")}


def test_categories_only_coupon_ignores_other_kinds() -> None:
    c = coupon(apply_to_add_on_products=True, add_on_products_discount_info=info("amount", 1))
    q = quoted(c, cart(line("a", "course_session"), line("b", "other")))
    assert not q.eligible
    assert q.total == D("0.00")


# --- caps -------------------------------------------------------------------------------------


def test_maximum_discount_is_taken_from_the_last_lines_first() -> None:
    c = coupon(coupon_type="USAGE", maximum_discount="35")
    k = cart(line("a", price="10.00"), line("b", price="20.00"), line("c", price="30.00"))
    q = quoted(c, k)
    assert discounts(q) == {"a": D("10.00"), "b": D("20.00"), "c": D("5.00")}
    assert q.total == D("35.00")


def test_maximum_discount_and_budget_the_smaller_wins() -> None:
    c = coupon(coupon_type="TOTAL_AMOUNT", value_amount=100, maximum_discount=25)
    k = cart(line("a", price="20.00"), line("b", price="20.00"))
    assert quoted(c, k, budget=D("30")).total == D("25.00")
    tight = quoted(c, k, budget=D("12.5"))
    assert discounts(tight) == {"a": D("12.50"), "b": D("0.00")}


def test_maximum_discount_above_the_sum_changes_nothing() -> None:
    c = coupon(coupon_type="PERCENT", value_percent=50, maximum_discount=1000)
    q = quoted(c, cart(line("a", price="10.00"), line("b", price="3.33")))
    assert discounts(q) == {"a": D("5.00"), "b": D("1.67")}  # 1.665 half-up


# --- currency minor units ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("currency", "price", "expected", "zero"),
    [
        ("JPY", "155", "16", "0"),  # 15.5 half-up, 0 places
        ("JPY", "154", "15", "0"),  # 15.4
        ("KWD", "1.2345", "0.123", "0.000"),  # 0.12345, 3 places
        ("KWD", "0.0155", "0.002", "0.000"),  # 0.00155
        ("USD", "1.005", "0.10", "0.00"),  # 0.1005
    ],
)
def test_rounding_follows_the_currency_minor_unit(
    currency: str, price: str, expected: str, zero: str
) -> None:
    c = coupon(coupon_type="PERCENT", value_percent=10, entity_type="EVENT", entity_id="e")
    q = quoted(c, cart(line("a", "event", "e", price=price), line("b", price=price)), currency)
    assert [str(x.discount) for x in q.lines] == [expected, zero]
    assert str(q.total) == expected
    assert money_text(q.total, currency) == expected
    assert money_text(q.lines[1].discount, currency) == zero


def test_money_text_has_exactly_the_minor_unit_places() -> None:
    assert money_text(D("35"), "USD") == "35.00"
    assert money_text(D("0.7"), "USD") == "0.70"
    assert money_text(D("16"), "JPY") == "16"
    assert money_text(D("0.1"), "KWD") == "0.100"


def test_lines_not_covered_are_quoted_zero_and_order_is_kept() -> None:
    c = coupon(coupon_type="USAGE", entity_type="EVENT", entity_id="e")
    k = cart(line("z"), line("y", "event", "e"), line("x"))
    q = quoted(c, k)
    assert [x.line_id for x in q.lines] == ["z", "y", "x"]
    assert [str(x.discount) for x in q.lines] == ["0.00", "10.00", "0.00"]


def test_not_eligible_when_no_line_is_covered() -> None:
    c = coupon(coupon_type="PERCENT", value_percent=10, entity_type="EVENT", entity_id="e")
    q = quoted(c, cart(line("a", "event", "other"), line("b", "course_session", "e")))
    assert not q.eligible
    assert q.total == D("0.00")
    assert all(x.discount == 0 for x in q.lines)


# --- the property: line discounts always add up -----------------------------------------------

IDS = ["a", "b", "c"]


@st.composite
def money(draw: st.DrawFn, high: int = 50_000) -> str:
    units = draw(st.integers(min_value=0, max_value=high))
    places = draw(st.integers(min_value=0, max_value=4))
    return str(D(units).scaleb(-places))


@st.composite
def random_cart(draw: st.DrawFn) -> Cart:
    count = draw(st.integers(min_value=1, max_value=8))
    lines = []
    for i in range(count):
        entry = line(
            str(i),
            draw(st.sampled_from(LINE_KINDS)),
            draw(st.sampled_from(IDS)),
            draw(money()),
            draw(st.integers(min_value=1, max_value=5)),
        )
        if draw(st.booleans()):
            entry["type_id"] = draw(st.sampled_from(IDS))
        entry["group_ids"] = draw(st.lists(st.sampled_from(["g1", "g2", "g3"]), max_size=2))
        if draw(st.booleans()):
            entry["program_session_id"] = draw(st.sampled_from(IDS))
        lines.append(entry)
    return cart(*lines)


@st.composite
def category_info(draw: st.DrawFn, ids_key: str, type_ids_key: str, max_key: str | None) -> Any:
    method = draw(st.sampled_from(["amount", "percentage"]))
    if method == "amount":
        amount = str(D(draw(st.integers(min_value=1, max_value=5000))).scaleb(-2))
    else:
        amount = str(D(draw(st.integers(min_value=1, max_value=10000))).scaleb(-2))
    result: dict[str, Any] = {
        "method": method,
        "amount": amount,
        ids_key: draw(st.lists(st.sampled_from(IDS), max_size=2, unique=True)),
        type_ids_key: draw(st.lists(st.sampled_from(IDS), max_size=2, unique=True)),
    }
    if max_key and draw(st.booleans()):
        result[max_key] = draw(st.integers(min_value=1, max_value=3))
    return result


@st.composite
def random_coupon(draw: st.DrawFn) -> dict[str, Any]:
    doc: dict[str, Any] = {}
    coupon_type = draw(st.sampled_from([None, "USAGE", "AMOUNT", "PERCENT", "TOTAL_AMOUNT"]))
    if coupon_type is not None:
        doc["coupon_type"] = coupon_type
        entity = draw(st.sampled_from(["SITE", "PROGRAM_SESSION", "COURSE_SESSION", "EVENT"]))
        entity = draw(st.sampled_from([entity, "GROUP"]))
        doc["entity_type"] = entity
        if entity != "SITE":
            doc["entity_id"] = "g1" if entity == "GROUP" else draw(st.sampled_from(IDS))
        if coupon_type in ("AMOUNT", "TOTAL_AMOUNT"):
            doc["value_amount"] = str(D(draw(st.integers(1, 10_000))).scaleb(-2))
        if coupon_type == "PERCENT":
            doc["value_percent"] = str(D(draw(st.integers(1, 1_000_000))).scaleb(-4))
    keys = [
        ("apply_to_membership_packages", "membership_package_discount_info", "package_ids"),
        ("apply_to_chapter_dues", "chapter_dues_discount_info", "chapter_ids"),
        ("apply_to_section_dues", "section_dues_discount_info", "section_ids"),
        ("apply_to_add_on_products", "add_on_products_discount_info", "add_on_ids"),
    ]
    type_keys = {
        "package_ids": ("type_ids", None),
        "chapter_ids": ("chapter_type_ids", "maximum_number_of_chapters"),
        "section_ids": ("section_type_ids", "maximum_number_of_sections"),
        "add_on_ids": ("add_on_type_ids", None),
    }
    for flag, field, ids_key in keys:
        if draw(st.booleans()) or (coupon_type is None and field.startswith("add_on")):
            doc[flag] = True
            type_ids_key, max_key = type_keys[ids_key]
            doc[field] = draw(category_info(ids_key, type_ids_key, max_key))
    if draw(st.booleans()):
        doc["maximum_discount"] = draw(money(high=20_000).filter(lambda m: D(m) > 0))
    return doc


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    k=random_cart(),
    doc=random_coupon(),
    currency=st.sampled_from(["USD", "JPY", "KWD"]),
    budget=st.one_of(st.none(), money(high=30_000)),
)
def test_line_discounts_always_add_up(
    k: Cart, doc: dict[str, Any], currency: str, budget: str | None
) -> None:
    c = coupon(**doc)
    limit = None if budget is None else D(budget)
    q = quote(c, k, currency=currency, group_scope=frozenset({"g1", "g2"}), budget=limit)
    assert [x.line_id for x in q.lines] == [x.line_id for x in k.lines]
    assert sum((x.discount for x in q.lines), D(0)) == q.total
    places = minor_unit(currency)
    for cart_line, found in zip(k.lines, q.lines, strict=True):
        assert D(0) <= found.discount <= cart_line.total
        assert found.discount.as_tuple().exponent == -places  # exactly the minor unit
    assert q.total.as_tuple().exponent == -places
    if c.maximum_discount is not None:
        assert q.total <= c.maximum_discount
    if limit is not None:
        assert q.total <= limit
    if not q.eligible:
        assert q.total == 0
    # Without caps a line never gets less than with them (caps only take away).
    if limit is None and c.maximum_discount is None:
        return
    free = quote(
        replace(c, maximum_discount=None),
        k,
        currency=currency,
        group_scope=frozenset({"g1", "g2"}),
    )
    for capped, uncapped in zip(q.lines, free.lines, strict=True):
        assert capped.discount <= uncapped.discount


# --- who may use it: refusals in order (SPEC 6.3) ---------------------------------------------


def usable(c: CouponFields, k: Cart, *, now: datetime = NOW, member: bool = False) -> str | None:
    eligible = quote(c, k, currency="USD").eligible
    refusal = check_usable(c, k, now=now, is_current_member=member, quote_eligible=eligible)
    return None if refusal is None else refusal.code


def test_refusals_come_in_spec_order() -> None:
    # Every check fails at once; peel them off one by one and the next in SPEC order shows.
    base = dict(
        coupon_type="USAGE",
        entity_type="EVENT",
        entity_id="not-in-cart",
        is_active=False,
        authorized_group_id="g-1",
        applies_to="new members",
    )
    k = cart(line("a", "event", "e"), status="renewal")
    future = NOW + timedelta(days=1)
    past = NOW - timedelta(days=1)
    # Not started and expired cannot both hold for a valid coupon; the raw fields can.
    both = replace(coupon(**base), starts_at=future, expires_at=past)
    assert usable(both, k) == "coupon_inactive"
    active = replace(both, is_active=True)
    assert usable(active, k) == "coupon_not_started"
    started = replace(active, starts_at=None)
    assert usable(started, k) == "coupon_expired"
    current = replace(started, expires_at=None)
    assert usable(current, k) == "not_in_authorized_group"
    assert usable(current, k, member=True) == "membership_status_mismatch"
    assert usable(current, cart(line("a", "event", "e"), status="new"), member=True) == (
        "coupon_not_applicable"
    )
    fits = replace(current, entity_id="e")
    assert usable(fits, cart(line("a", "event", "e"), status="new"), member=True) is None


def test_inactive_wins_over_everything() -> None:
    c = coupon(
        coupon_type="USAGE",
        is_active=False,
        starts_at="2030-01-01T00:00:00Z",
        authorized_group_id="g",
        applies_to="renewing members",
        entity_type="EVENT",
        entity_id="nothing",
    )
    assert usable(c, cart(line("a"))) == "coupon_inactive"


def test_expired_wins_over_group_status_and_applicability() -> None:
    c = coupon(
        coupon_type="USAGE",
        expires_at="2020-01-01T00:00:00Z",
        authorized_group_id="g",
        applies_to="renewing members",
        entity_type="EVENT",
        entity_id="nothing",
    )
    assert usable(c, cart(line("a"))) == "coupon_expired"


def test_starts_at_is_inclusive_and_expires_at_exclusive() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    end = datetime(2026, 2, 1, tzinfo=UTC)
    c = coupon(
        coupon_type="USAGE", starts_at="2026-01-01T00:00:00Z", expires_at="2026-02-01T00:00:00Z"
    )
    k = cart(line("a"))
    tick = timedelta(microseconds=1)
    assert usable(c, k, now=start - tick) == "coupon_not_started"
    assert usable(c, k, now=start) is None
    assert usable(c, k, now=end - tick) is None
    assert usable(c, k, now=end) == "coupon_expired"
    assert usable(c, k, now=end + tick) == "coupon_expired"


@pytest.mark.parametrize(
    ("applies_to", "status", "expected"),
    [
        ("new members", None, "membership_status_mismatch"),
        ("new members", "renewal", "membership_status_mismatch"),
        ("new members", "new", None),
        ("renewing members", None, "membership_status_mismatch"),
        ("renewing members", "new", "membership_status_mismatch"),
        ("renewing members", "renewal", None),
        ("all members", None, None),
        ("all members", "new", None),
        ("all members", "renewal", None),
    ],
)
def test_applies_to_and_membership_status(
    applies_to: str, status: str | None, expected: str | None
) -> None:
    c = coupon(coupon_type="USAGE", applies_to=applies_to)
    assert usable(c, cart(line("a"), status=status)) == expected


def test_authorized_group_needs_a_current_member_unless_the_coupon_adds_them() -> None:
    gated = coupon(coupon_type="USAGE", authorized_group_id="g-1")
    k = cart(line("a"))
    assert usable(gated, k) == "not_in_authorized_group"
    assert usable(gated, k, member=True) is None
    joining = coupon(coupon_type="USAGE", authorized_group_id="g-1", add_user_to_coupons_group=True)
    assert usable(joining, k) is None
    open_coupon = coupon(coupon_type="USAGE")
    assert usable(open_coupon, k) is None


def test_not_applicable_only_when_nothing_is_covered() -> None:
    c = coupon(coupon_type="USAGE", entity_type="EVENT", entity_id="e")
    assert usable(c, cart(line("a", "event", "f"))) == "coupon_not_applicable"
    assert usable(c, cart(line("a", "event", "f"), line("b", "event", "e"))) is None


# --- the cart (SPEC 6.1) ----------------------------------------------------------------------


def good_cart(**changes: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "code": "SPRING-25",
        "user_id": "u-42",
        "membership_status": "new",
        "lines": [
            {
                "line_id": "1",
                "kind": "course_session",
                "id": "cs-9",
                "type_id": None,
                "group_ids": ["g-1"],
                "program_session_id": None,
                "unit_price": "120.00",
                "quantity": 1,
            }
        ],
    }
    doc.update(changes)
    return doc


def refused_fields(doc: Any, error: type[Exception] = InvalidInput) -> set[str]:
    with pytest.raises(error) as caught:
        parse_cart(doc)
    return {d.field for d in caught.value.details}  # type: ignore[attr-defined]


def test_the_spec_example_parses() -> None:
    parsed = parse_cart(good_cart())
    assert parsed.code == "SPRING-25" and parsed.user_id == "u-42"
    assert parsed.membership_status == "new"
    (only,) = parsed.lines
    assert only.kind == "course_session" and only.group_ids == ("g-1",)
    assert only.unit_price == D("120.00") and only.quantity == 1 and only.total == D("120.00")


def test_numbers_parsed_as_decimals_are_accepted() -> None:
    doc = parse_json(
        b'{"code":"C1","user_id":"u","lines":[{"line_id":"1","kind":"other","id":"x",'
        b'"unit_price":19.99,"quantity":2}]}'
    )
    assert parse_cart(doc).lines[0].total == D("39.98")


def test_required_fields_are_named_at_once() -> None:
    assert refused_fields({}) >= {"code", "user_id", "lines"}
    assert refused_fields({"code": "C", "user_id": "u", "lines": [{}]}) >= {
        "lines[0].line_id",
        "lines[0].kind",
        "lines[0].id",
        "lines[0].unit_price",
        "lines[0].quantity",
    }


def test_at_least_one_and_at_most_500_lines() -> None:
    assert "lines" in refused_fields(good_cart(lines=[]))
    many = [line(str(i)) for i in range(MAX_LINES)]
    assert MAX_LINES == 500
    assert len(parse_cart(good_cart(lines=many)).lines) == 500
    assert "lines" in refused_fields(good_cart(lines=[*many, line("500")]))


def test_line_ids_are_unique() -> None:
    assert refused_fields(good_cart(lines=[line("1"), line("2"), line("1")])) == {
        "lines[2].line_id"
    }


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"kind": "course"}, "lines[0].kind"),
        ({"kind": None}, "lines[0].kind"),
        ({"unit_price": "-0.01"}, "lines[0].unit_price"),
        ({"unit_price": -1}, "lines[0].unit_price"),
        ({"unit_price": "1.00001"}, "lines[0].unit_price"),
        ({"unit_price": "abc"}, "lines[0].unit_price"),
        ({"quantity": 0}, "lines[0].quantity"),
        ({"quantity": -1}, "lines[0].quantity"),
        ({"quantity": "1"}, "lines[0].quantity"),
        ({"quantity": True}, "lines[0].quantity"),
        ({"quantity": D("1.5")}, "lines[0].quantity"),
        ({"line_id": ""}, "lines[0].line_id"),
        ({"id": 7}, "lines[0].id"),
        ({"group_ids": "g-1"}, "lines[0].group_ids"),
    ],
)
def test_bad_line_values_are_refused(changes: dict[str, Any], field: str) -> None:
    bad = {**line("1"), **changes}
    assert field in refused_fields(good_cart(lines=[bad]))


def test_free_line_is_fine_and_membership_status_is_an_enum() -> None:
    assert parse_cart(good_cart(lines=[line("1", price="0")])).lines[0].unit_price == 0
    assert parse_cart(good_cart(membership_status=None)).membership_status is None
    assert refused_fields(good_cart(membership_status="renewing")) == {"membership_status"}


def test_unknown_fields_are_refused() -> None:
    assert "coupon" in refused_fields(good_cart(coupon="x"), UnknownField)
    with_extra = {**line("1"), "discount": "5"}
    assert "lines[0].discount" in refused_fields(good_cart(lines=[with_extra]), UnknownField)


def test_a_cart_must_be_an_object() -> None:
    for doc in ([], "cart", None, 3):
        with pytest.raises(InvalidInput):
            parse_cart(doc)


# --- the lifecycle (SPEC 6.4) -----------------------------------------------------------------


def redemption(status: str, *, approved: bool = False) -> Redemption:
    return Redemption(
        id="aaaa-bbbb-cccc-dddd",
        tenant_id="t",
        coupon_id="1111-2222-3333-4444",
        code="CODE",
        user_id="u",
        status=status,
        access="full",
        membership_status=None,
        discount_total=D("1"),
        credit=D(0),
        lines=(),
        discount_line=None,
        idempotency_key=None,
        approved_by="admin" if approved else None,
        approved_at=NOW if approved else None,
        created_at=NOW,
        updated_at=NOW,
    )


@pytest.mark.parametrize(
    ("action", "status", "approved", "expected"),
    [
        # approve: only pending moves; an approved one repeats; anything else is refused
        ("approve", PENDING, False, (PENDING, APPLIED, False, True)),
        ("approve", APPLIED, True, None),
        ("approve", APPLIED, False, "409"),  # never needed approval
        ("approve", REJECTED, False, "409"),
        ("approve", ROLLED_BACK, False, "409"),
        ("approve", ROLLED_BACK, True, "409"),
        # reject: only pending moves, releasing the use; a rejected one repeats
        ("reject", PENDING, False, (PENDING, REJECTED, True, False)),
        ("reject", REJECTED, False, None),
        ("reject", APPLIED, False, "409"),
        ("reject", APPLIED, True, "409"),
        ("reject", ROLLED_BACK, False, "409"),
        # rollback: only applied moves, releasing the use; a rolled-back one repeats
        ("rollback", APPLIED, False, (APPLIED, ROLLED_BACK, True, False)),
        ("rollback", APPLIED, True, (APPLIED, ROLLED_BACK, True, False)),
        ("rollback", ROLLED_BACK, False, None),
        ("rollback", PENDING, False, "409"),  # reject it instead
        ("rollback", REJECTED, False, "409"),
    ],
)
def test_plan_every_action_and_state(
    action: str, status: str, approved: bool, expected: Any
) -> None:
    r = redemption(status, approved=approved)
    if expected == "409":
        with pytest.raises(InvalidRedemptionState) as caught:
            plan(action, r, now=NOW)
        assert caught.value.code == "invalid_redemption_state"
        return
    step = plan(action, r, now=NOW)
    if expected is None:
        assert step is None
        return
    assert step is not None
    assert (step.source, step.target, step.releases, step.applies_effects) == expected


def hold(status: str, *, ends: datetime, updated: datetime = NOW) -> Redemption:
    return replace(redemption(status), hold_expires_at=ends, updated_at=updated)


@pytest.mark.parametrize("needs_approval", [False, True])
def test_confirm_moves_a_hold_before_its_end_only(needs_approval: bool) -> None:
    target = PENDING if needs_approval else APPLIED
    live = hold(HELD, ends=NOW + timedelta(seconds=1))
    step = plan("confirm", live, now=NOW, needs_approval=needs_approval)
    assert step is not None
    assert (step.source, step.target, step.releases) == (HELD, target, False)
    assert step.applies_effects is (not needs_approval)
    ended = hold(HELD, ends=NOW)  # the instant itself is too late
    with pytest.raises(HoldExpired):
        plan("confirm", ended, now=NOW, needs_approval=needs_approval)


def test_confirm_repeats_and_refusals() -> None:
    ends = NOW + timedelta(seconds=30)
    for status in (APPLIED, PENDING, ROLLED_BACK, REJECTED):  # confirmed once, maybe moved on
        assert plan("confirm", hold(status, ends=ends), now=NOW) is None
    expired = hold(RELEASED, ends=NOW - timedelta(seconds=5), updated=NOW - timedelta(seconds=4))
    with pytest.raises(HoldExpired):
        plan("confirm", expired, now=NOW)
    let_go = hold(RELEASED, ends=NOW + timedelta(seconds=50), updated=NOW)  # a release
    with pytest.raises(InvalidRedemptionState) as caught:
        plan("confirm", let_go, now=NOW)
    assert caught.value.code == "invalid_redemption_state"
    with pytest.raises(InvalidRedemptionState):
        plan("confirm", redemption(APPLIED), now=NOW)  # never a hold


def test_release_moves_only_a_hold() -> None:
    step = plan("release", hold(HELD, ends=NOW + timedelta(seconds=9)), now=NOW)
    assert step is not None
    assert (step.source, step.target, step.releases, step.applies_effects) == (
        HELD,
        RELEASED,
        True,
        False,
    )
    assert plan("release", hold(RELEASED, ends=NOW), now=NOW) is None
    for status in (APPLIED, PENDING, REJECTED, ROLLED_BACK):
        with pytest.raises(InvalidRedemptionState):
            plan("release", redemption(status), now=NOW)
    with pytest.raises(InvalidRedemptionState):
        plan("rollback", hold(HELD, ends=NOW + timedelta(seconds=9)), now=NOW)


def test_plan_refuses_unknown_actions() -> None:
    with pytest.raises(InvalidRedemptionState):
        plan("delete", redemption(APPLIED), now=NOW)


# --- idempotency: the request hash ------------------------------------------------------------


def test_request_hash_ignores_key_order_spacing_and_number_spelling() -> None:
    spellings = [
        b'{"code":"C","user_id":"u","lines":[{"line_id":"1","unit_price":1,"quantity":2}]}',
        b'{ "lines" : [ { "quantity" : 2 , "unit_price" : 1.0 , "line_id" : "1" } ] ,\n'
        b'  "user_id" : "u" , "code" : "C" }',
        b'{"user_id":"u","code":"C","lines":[{"unit_price":1.00,"line_id":"1","quantity":2}]}',
        b'{"user_id":"u","code":"C","lines":[{"unit_price":1.000e0,"line_id":"1","quantity":2}]}',
    ]
    hashes = {request_hash(parse_json(raw)) for raw in spellings}
    assert len(hashes) == 1
    # And the same for Python values built by hand.
    assert request_hash({"a": 1, "b": [D("2.50")]}) == request_hash(
        {"b": [D("2.5")], "a": D("1.0")}
    )


def test_request_hash_differs_for_different_values() -> None:
    base = {"code": "C", "user_id": "u", "lines": [{"line_id": "1", "quantity": 1}]}
    variants = [
        {**base, "code": "D"},
        {**base, "code": "c"},
        {**base, "user_id": "u2"},
        {**base, "membership_status": "new"},
        {**base, "lines": [{"line_id": "1", "quantity": 2}]},
        {**base, "lines": [{"line_id": "1", "quantity": "1"}]},  # a string is not a number
        {**base, "lines": [{"line_id": "1", "quantity": True}]},
        {**base, "lines": [{"line_id": "1", "quantity": None}]},
        {**base, "lines": [{"line_id": "1"}]},
        {**base, "lines": [{"line_id": "1", "quantity": 1}, {"line_id": "2", "quantity": 1}]},
    ]
    hashes = [request_hash(v) for v in [base, *variants]]
    assert len(set(hashes)) == len(hashes)
    reordered = {**base, "lines": [{"line_id": "2"}, {"line_id": "1"}]}
    in_order = {**base, "lines": [{"line_id": "1"}, {"line_id": "2"}]}
    assert request_hash(reordered) != request_hash(in_order)  # array order is meaningful
    assert request_hash(json.loads(json.dumps(base))) == request_hash(base)
