"""Several codes in one cart (SPEC 11.2): `stack` and the `remaining` of `quote`, pure.

Examples for each rule first, then properties over arbitrary carts, coupons and currencies.
"""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from couponry.domain.cart import MAX_QUANTITY, MAX_TOTAL, Cart, parse_cart
from couponry.domain.coupons import CouponFields, parse_coupon_input
from couponry.domain.discounts import LineDiscount, Refusal, quote
from couponry.domain.money import MAX_AMOUNT, minor_unit
from couponry.domain.stacking import (
    NOT_COMBINABLE,
    CodeResult,
    StackEntry,
    StackResult,
    application_order,
    stack,
)

D = Decimal
EXPIRED = Refusal("coupon_expired", "This coupon has expired.")
UNKNOWN = Refusal("coupon_not_found", "No coupon has this code.")


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


def entry(
    code: str,
    fields: CouponFields | None,
    *,
    coupon_id: str | None = None,
    budget: Any = None,
    refusal: Refusal | None = None,
) -> StackEntry:
    """A code of the cart; its coupon id is the code's unless given."""
    if coupon_id is None and fields is not None:
        coupon_id = f"id-{code}"
    return StackEntry(
        code=code,
        coupon_id=coupon_id,
        fields=fields,
        budget=None if budget is None else D(budget),
        refusal=refusal,
    )


def stacked(k: Cart, *entries: StackEntry, currency: str = "USD") -> StackResult:
    return stack(entries, k, currency=currency)


def by_code(result: StackResult) -> dict[str, CodeResult]:
    return {r.code: r for r in result.codes}


def taken(result: StackResult) -> dict[str, dict[str, str]]:
    """Per code, its line discounts as text (so the minor unit's places are checked too)."""
    return {r.code: {x.line_id: str(x.discount) for x in r.quote.lines} for r in result.codes}


def errors(result: StackResult, code: str) -> list[str]:
    return [e.code for e in by_code(result)[code].errors]


# --- quote on what is left of each line -------------------------------------------------------


def test_quote_on_whole_totals_left_is_the_plain_quote() -> None:
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


# --- priority and order -----------------------------------------------------------------------


def test_codes_apply_in_descending_priority() -> None:
    k = cart(line("1", "20.00"))
    first_percent = stacked(
        k,
        entry("TEN", percent(10, stacking="combinable", priority=5)),
        entry("FIVE", amount(5, stacking="combinable")),
    )
    assert taken(first_percent) == {"TEN": {"1": "2.00"}, "FIVE": {"1": "5.00"}}
    first_amount = stacked(
        k,
        entry("TEN", percent(10, stacking="combinable")),
        entry("FIVE", amount(5, stacking="combinable", priority=5)),
    )
    assert taken(first_amount) == {"TEN": {"1": "1.50"}, "FIVE": {"1": "5.00"}}
    assert [r.code for r in first_amount.codes] == ["TEN", "FIVE"]  # results in cart order
    assert str(first_amount.total) == "6.50" and first_amount.all_applied


def test_negative_priority_applies_after_the_default() -> None:
    k = cart(line("1", "20.00"))
    result = stacked(
        k,
        entry("LAST", amount(5, stacking="combinable", priority=-1)),
        entry("FIRST", percent(50, stacking="combinable")),
    )
    assert taken(result) == {"LAST": {"1": "5.00"}, "FIRST": {"1": "10.00"}}


def test_ties_apply_in_cart_order() -> None:
    k = cart(line("1", "20.00"))
    ten, five = percent(10, stacking="combinable"), amount(5, stacking="combinable")
    ten_first = stacked(k, entry("TEN", ten), entry("FIVE", five))
    assert taken(ten_first) == {"TEN": {"1": "2.00"}, "FIVE": {"1": "5.00"}}
    five_first = stacked(k, entry("FIVE", five), entry("TEN", ten))
    assert taken(five_first) == {"FIVE": {"1": "5.00"}, "TEN": {"1": "1.50"}}


def test_application_order() -> None:
    fields = [percent(1, priority=p, stacking="combinable") for p in (0, 3, 0, -2, 3)]
    entries = [entry(f"C{i}", f) for i, f in enumerate(fields)]
    assert application_order(entries) == [1, 4, 0, 2, 3]


# --- each takes from what the earlier ones left -----------------------------------------------


def test_a_percent_after_an_amount_takes_its_percent_of_what_is_left() -> None:
    k = cart(line("1", "20.00"), line("2", "8.00"))
    result = stacked(
        k,
        entry("FIVE", amount(5, stacking="combinable", priority=1)),
        entry("TEN", percent(10, stacking="combinable")),
    )
    assert taken(result) == {
        "FIVE": {"1": "5.00", "2": "5.00"},
        "TEN": {"1": "1.50", "2": "0.30"},
    }
    assert result.line_map() == {"1": D("6.50"), "2": D("5.30")}
    assert str(result.total) == "11.80"


def test_a_line_taken_whole_gives_later_codes_zero_yet_they_apply() -> None:
    k = cart(line("1", "5.00"), line("2", "10.00", kind="event", id="ev"))
    result = stacked(
        k,
        entry("FREE", usage(stacking="combinable", priority=1)),
        entry("HALF", percent(50, stacking="combinable")),
    )
    assert taken(result) == {
        "FREE": {"1": "5.00", "2": "10.00"},
        "HALF": {"1": "0.00", "2": "0.00"},
    }
    assert by_code(result)["HALF"].applied and by_code(result)["HALF"].quote.eligible
    assert result.line_map() == {"1": D("5.00"), "2": D("10.00")}  # exactly zero left


def test_an_amount_and_a_percent_take_a_line_to_exactly_zero() -> None:
    k = cart(line("1", "10.00", qty=2))
    result = stacked(
        k,
        entry("HALF", percent(50, stacking="combinable", priority=1)),
        entry("FIVE", amount(5, stacking="combinable")),  # 5 per unit: 10, all that is left
    )
    assert taken(result) == {"HALF": {"1": "10.00"}, "FIVE": {"1": "10.00"}}
    assert result.total == k.lines[0].total


def test_sub_cent_remainders_never_round_past_what_is_left() -> None:
    k = cart(line("1", "0.015"))
    result = stacked(
        k,
        entry("HALF", percent(50, stacking="combinable", priority=1)),
        entry("FREE", usage(stacking="combinable")),
    )
    # 0.0075 rounds half-up to 0.01; 0.005 is left, and 0.01 would be more than that.
    assert taken(result) == {"HALF": {"1": "0.01"}, "FREE": {"1": "0.00"}}


def test_rounding_per_code_in_a_currency_without_minor_units() -> None:
    k = cart(line("1", "3"))
    half = percent(50, stacking="combinable")
    result = stacked(k, entry("A", half), entry("B", half, coupon_id="other"), currency="JPY")
    # 1.5 -> 2 (half-up), then 50% of the 1 left is 0.5 -> 1: the line goes to exactly zero.
    assert taken(result) == {"A": {"1": "2"}, "B": {"1": "1"}}


def test_rounding_in_a_three_place_currency() -> None:
    k = cart(line("1", "1.0005"))
    result = stacked(
        k,
        entry("HALF", percent(50, stacking="combinable", priority=1)),
        entry("FREE", usage(stacking="combinable")),
        currency="KWD",
    )
    # 0.50025 -> 0.500; the 0.5005 left rounds half-up to 0.501, more than is left: 0.500.
    assert taken(result) == {"HALF": {"1": "0.500"}, "FREE": {"1": "0.500"}}


# --- caps -------------------------------------------------------------------------------------


def test_each_code_keeps_its_own_maximum_discount_on_what_is_left() -> None:
    k = cart(line("1", "20.00"), line("2", "20.00"))
    result = stacked(
        k,
        entry("CAPPED", percent(50, stacking="combinable", priority=1, maximum_discount=12)),
        entry("TEN", percent(10, stacking="combinable")),
    )
    # CAPPED: 10 + 10 capped at 12, the last line gives up first; TEN takes 10% of the rest.
    assert taken(result) == {
        "CAPPED": {"1": "10.00", "2": "2.00"},
        "TEN": {"1": "1.00", "2": "1.80"},
    }


def test_each_code_keeps_its_own_budget() -> None:
    k = cart(line("1", "20.00"), line("2", "20.00"))
    credit = coupon(coupon_type="TOTAL_AMOUNT", value_amount=100, stacking="combinable")
    result = stacked(
        k,
        entry("FIVE", amount(5, stacking="combinable", priority=1)),
        entry("CREDIT", credit, budget="25.00"),
    )
    assert taken(result) == {
        "FIVE": {"1": "5.00", "2": "5.00"},
        "CREDIT": {"1": "15.00", "2": "10.00"},  # from lines in cart order until spent
    }


def test_a_budget_of_zero_applies_and_gives_nothing() -> None:
    k = cart(line("1", "20.00"))
    result = stacked(k, entry("SPENT", percent(10), budget="0"))
    assert by_code(result)["SPENT"].applied and result.total == 0


# --- combining --------------------------------------------------------------------------------


def test_coupons_are_exclusive_by_default() -> None:
    k = cart(line("1", "20.00"))
    result = stacked(k, entry("A", percent(10)), entry("B", percent(20)))
    assert by_code(result)["A"].applied and not by_code(result)["B"].applied
    assert errors(result, "B") == [NOT_COMBINABLE]
    assert taken(result)["B"] == {"1": "0.00"} and str(by_code(result)["B"].quote.total) == "0.00"
    assert not result.all_applied and str(result.total) == "2.00"


def test_an_exclusive_code_first_in_order_wins_over_every_code_after_it() -> None:
    k = cart(line("1", "20.00"))
    result = stacked(
        k,
        entry("COMBO1", percent(10, stacking="combinable", priority=9)),
        entry("SOLO", percent(25, priority=10)),
        entry("COMBO2", amount(1, stacking="combinable")),
    )
    assert [r.applied for r in result.codes] == [False, True, False]
    for code in ("COMBO1", "COMBO2"):
        (error,) = by_code(result)[code].errors
        assert error.code == NOT_COMBINABLE
        assert (
            error.message
            == f"{code} cannot be combined with SOLO: SOLO combines with no other code."
        )
    assert result.line_map() == {"1": D("5.00")}


def test_an_exclusive_code_after_a_combinable_one_is_refused_naming_it() -> None:
    k = cart(line("1", "20.00"))
    result = stacked(
        k,
        entry("COMBO1", percent(10, stacking="combinable", priority=1)),
        entry("SOLO", percent(25, priority=1)),
        entry("COMBO2", amount(1, stacking="combinable")),
    )
    assert [r.applied for r in result.codes] == [True, False, True]
    (error,) = by_code(result)["SOLO"].errors
    assert error.code == NOT_COMBINABLE
    assert error.message == "SOLO cannot be combined with COMBO1: SOLO combines with no other code."
    assert taken(result) == {
        "COMBO1": {"1": "2.00"},
        "SOLO": {"1": "0.00"},
        "COMBO2": {"1": "1.00"},  # the refused exclusive code blocks nothing
    }


def test_two_codes_of_the_same_coupon_never_combine() -> None:
    k = cart(line("1", "20.00"))
    shared = percent(10, stacking="combinable")
    result = stacked(
        k,
        entry("SPRING-A", shared, coupon_id="c-1"),
        entry("SPRING-B", shared, coupon_id="c-1"),
        entry("OTHER", amount(2, stacking="combinable"), coupon_id="c-2"),
    )
    assert [r.applied for r in result.codes] == [True, False, True]
    (error,) = by_code(result)["SPRING-B"].errors
    assert error == Refusal(
        NOT_COMBINABLE,
        "SPRING-B cannot be combined with SPRING-A: both are codes of the same coupon.",
    )


def test_codes_refused_by_the_caller_are_not_applied_and_block_nothing() -> None:
    k = cart(line("1", "20.00"))
    result = stacked(
        k,
        entry("OLD", percent(50, priority=10), refusal=EXPIRED),  # exclusive, first in order
        entry("NOPE", None, refusal=UNKNOWN),
        entry("A", percent(10, stacking="combinable")),
        entry("B", amount(1, stacking="combinable")),
    )
    assert [r.applied for r in result.codes] == [False, False, True, True]
    assert by_code(result)["OLD"].errors == (EXPIRED,)
    assert (
        by_code(result)["NOPE"].errors == (UNKNOWN,) and by_code(result)["NOPE"].coupon_id is None
    )
    assert taken(result)["OLD"] == {"1": "0.00"}
    assert str(result.total) == "3.00"


def test_a_code_that_covers_nothing_is_not_applicable_and_blocks_nothing() -> None:
    k = cart(line("1", "20.00"))
    elsewhere = coupon(coupon_type="PERCENT", value_percent=50, entity_type="EVENT", entity_id="e")
    result = stacked(
        k,
        entry("EVENT", elsewhere),  # exclusive, first in order
        entry("A", percent(10, stacking="combinable")),
    )
    assert errors(result, "EVENT") == ["coupon_not_applicable"]
    assert by_code(result)["A"].applied and str(result.total) == "2.00"


def test_own_reasons_come_before_a_conflict() -> None:
    k = cart(line("1", "20.00"))
    elsewhere = coupon(coupon_type="USAGE", entity_type="EVENT", entity_id="e")
    result = stacked(k, entry("A", percent(10)), entry("B", elsewhere))
    assert errors(result, "B") == ["coupon_not_applicable"]


def test_dues_limits_count_covered_lines_even_with_nothing_left() -> None:
    dues = {"method": "percentage", "amount": 50, "maximum_number_of_chapters": 1}
    k = cart(
        line("1", "10.00", kind="chapter_dues", id="ch-1"),
        line("2", "10.00", kind="chapter_dues", id="ch-2"),
    )
    first_free = coupon(
        coupon_type="USAGE",
        entity_type="EVENT",
        entity_id="none",
        apply_to_chapter_dues=True,
        chapter_dues_discount_info={"method": "percentage", "amount": 100},
        stacking="combinable",
        priority=1,
    )
    one_chapter = coupon(
        apply_to_chapter_dues=True, chapter_dues_discount_info=dues, stacking="combinable"
    )
    result = stacked(k, entry("ALL", first_free), entry("ONE", one_chapter))
    # ONE covers the first chapter line (coverage, not what is left), which has nothing left.
    assert taken(result)["ONE"] == {"1": "0.00", "2": "0.00"}
    assert by_code(result)["ONE"].applied


def test_an_entry_without_a_refusal_needs_its_coupon() -> None:
    with pytest.raises(ValueError, match="LOST"):
        StackEntry(code="LOST", coupon_id=None, fields=None)
    with pytest.raises(ValueError, match="LOST"):
        StackEntry(code="LOST", coupon_id="c-1", fields=None)


def test_no_codes_take_nothing() -> None:
    result = stacked(cart(line("1")))
    assert result.codes == () and str(result.total) == "0.00" and result.all_applied


# --- properties -------------------------------------------------------------------------------
# Strategies are built once, here: building them inside each draw cost more than the code under
# test (measured: generation was 99% of the run). Hypothesis favours the first of a choice, so
# each list starts with what makes codes apply and combine.

IDS = ["a", "b", "c"]
KINDS = [  # what the coupons below cover, more often than not
    "other",
    "add_on_product",
    "chapter_dues",
    "course_session",
    "event",
    "membership_package",
    "section_dues",
]
CURRENCIES = st.sampled_from(["JPY", "USD", "KWD"])  # 0, 2 and 3 minor-unit places
MAX_CART_LINES = 20
# Each line stays under its share of the cart's limit, so every generated cart is a valid one.
LINE_LIMIT_UNITS = int(MAX_TOTAL / MAX_CART_LINES * 10_000) - 1  # in 1/10,000
MAX_AMOUNT_UNITS = int(MAX_AMOUNT * 10_000) - 1
# 0, sub-cent amounts and half-way cases (0.005, 2.675), as units of 1/10,000
SPECIAL_PRICE_UNITS = [0, 1, 49, 50, 150, 5_000, 10_000, 26_750, 999_950]
PRICE_UNITS = st.one_of(
    st.sampled_from(SPECIAL_PRICE_UNITS),
    st.integers(min_value=0, max_value=200),
    st.integers(min_value=0, max_value=10**7),
    st.integers(min_value=0, max_value=LINE_LIMIT_UNITS),  # up to the cart's limit
)
QUANTITIES = st.one_of(st.integers(1, 5), st.integers(min_value=1, max_value=MAX_QUANTITY))
LINES = st.tuples(
    st.sampled_from(KINDS),
    st.sampled_from(IDS),
    st.sampled_from([None, *IDS]),
    st.lists(st.sampled_from(["g1", "g2"]), max_size=2),
    QUANTITIES,
    PRICE_UNITS,
)


def as_cart(drawn: list[tuple[str, str, str | None, list[str], int, int]]) -> Cart:
    lines = []
    for i, (kind, item_id, type_id, groups, quantity, units) in enumerate(drawn):
        units %= LINE_LIMIT_UNITS // quantity + 1  # keeps unit_price x quantity in the limit
        body = line(str(i), str(D(units).scaleb(-4)), quantity, kind=kind, id=item_id)
        lines.append(body | {"type_id": type_id, "group_ids": groups})
    return cart(*lines)


CARTS = st.one_of(
    st.lists(LINES, min_size=1, max_size=4),
    st.lists(LINES, min_size=1, max_size=MAX_CART_LINES),
    st.lists(LINES, min_size=MAX_CART_LINES // 2, max_size=MAX_CART_LINES),
).map(as_cart)


def money(low: int = 1, high: int = MAX_AMOUNT_UNITS) -> st.SearchStrategy[str]:
    """Text of an amount with up to 4 places (in units of 1/10,000): mostly small, some huge."""
    units = st.one_of(
        st.integers(min_value=low, max_value=min(high, 1_000_000)),
        st.integers(min_value=low, max_value=high),
    )
    return units.map(lambda u: str(D(u).scaleb(-4)))


AMOUNTS = money()
PERCENTS = money(high=1_000_000)  # 0.0001 to 100
BUDGETS = money(low=0)
CATEGORY_INFO = st.one_of(
    st.fixed_dictionaries({"method": st.just("amount"), "amount": AMOUNTS}),
    st.fixed_dictionaries({"method": st.just("percentage"), "amount": PERCENTS}),
)


@st.composite
def random_coupon(draw: st.DrawFn) -> CouponFields:
    doc: dict[str, Any] = {
        "stacking": draw(st.sampled_from(["combinable", "combinable", "exclusive"])),
        "priority": draw(st.integers(min_value=-2, max_value=2)),  # small: ties are common
    }
    coupon_type = draw(st.sampled_from(["PERCENT", "AMOUNT", "TOTAL_AMOUNT", "USAGE", None]))
    if coupon_type is not None:
        doc["coupon_type"] = coupon_type
        entity = draw(st.sampled_from(["SITE", "SITE", "SITE", "EVENT", "COURSE_SESSION", "GROUP"]))
        doc["entity_type"] = entity
        if entity != "SITE":
            doc["entity_id"] = "g1" if entity == "GROUP" else draw(st.sampled_from(IDS))
    if coupon_type in ("AMOUNT", "TOTAL_AMOUNT"):
        doc["value_amount"] = draw(AMOUNTS)
    if coupon_type == "PERCENT":
        doc["value_percent"] = draw(PERCENTS)
    if coupon_type is None or draw(st.booleans()):
        kind = draw(st.sampled_from(["add_on_products", "chapter_dues"]))
        info = dict(draw(CATEGORY_INFO))
        if kind == "chapter_dues":
            info["maximum_number_of_chapters"] = draw(st.sampled_from([None, 1, 2]))
        doc[f"apply_to_{kind}"] = True
        doc[f"{kind}_discount_info"] = info
    if draw(st.booleans()):
        doc["maximum_discount"] = draw(AMOUNTS)
    return coupon(**doc)


COUPONS = random_coupon()


@st.composite
def random_entries(draw: st.DrawFn, counts: tuple[int, ...]) -> list[StackEntry]:
    """Codes; some share a coupon, some are refused by the caller, credits have a budget."""
    count = draw(st.sampled_from(counts))
    coupons = draw(st.lists(COUPONS, min_size=count, max_size=count))
    entries = []
    for i in range(count):
        shared = draw(st.booleans()) and draw(st.booleans())  # a quarter share a coupon
        which = draw(st.integers(min_value=0, max_value=count - 1)) if shared else i
        fields = coupons[which]
        needs_budget = fields.coupon_type == "TOTAL_AMOUNT"
        budget = draw(BUDGETS) if needs_budget or draw(st.booleans()) else None
        refusal = draw(st.sampled_from([None] * 9 + [EXPIRED]))
        entries.append(
            StackEntry(
                code=f"C{i}",
                coupon_id=f"coupon-{which}",
                fields=fields,
                group_scope=frozenset({"g1"}),
                budget=None if budget is None else D(budget),
                refusal=refusal,
            )
        )
    return entries


ENTRIES = random_entries(counts=(2, 3, 5, 4, 1))  # 1-5 codes, several more often than not
ONE_ENTRY = random_entries(counts=(1,))


def property_settings(examples: int) -> settings:
    return settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,  # the same examples on every run: CI never meets a new one
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


def check_arithmetic(result: StackResult, k: Cart, currency: str) -> None:
    places = minor_unit(currency)
    zero = D(0)
    for r in result.codes:
        assert [x.line_id for x in r.quote.lines] == [x.line_id for x in k.lines]
        assert all(x.discount >= 0 for x in r.quote.lines)
        assert all(x.discount.as_tuple().exponent == -places for x in r.quote.lines)
        assert sum((x.discount for x in r.quote.lines), zero) == r.quote.total
        if not r.applied:
            assert all(x.discount == 0 for x in r.quote.lines) and r.quote.total == 0
    for i, cart_line in enumerate(k.lines):
        together = sum((r.quote.lines[i].discount for r in result.codes), zero)
        assert result.lines[i] == LineDiscount(cart_line.line_id, together)
        assert together <= cart_line.total  # no line ever goes below zero
    assert sum((x.discount for x in result.lines), zero) == result.total
    assert result.total.as_tuple().exponent == -places


def spec_order(entries: list[StackEntry]) -> list[int]:
    """SPEC 11.2 read directly: descending priority, ties in cart order (refused ones anywhere)."""

    def key(index: int) -> tuple[int, int]:
        fields = entries[index].fields
        return (-(0 if fields is None else fields.priority), index)

    order = sorted(range(len(entries)), key=key)
    assert application_order(entries) == order
    return order


def check_rules(result: StackResult, entries: list[StackEntry]) -> None:
    order = spec_order(entries)
    position = {entries[i].code: n for n, i in enumerate(order)}
    applied = [entries[i] for i, r in enumerate(result.codes) if r.applied]
    assert len({e.coupon_id for e in applied}) == len(applied)  # never the same coupon twice
    if any(e.fields is not None and e.fields.stacking == "exclusive" for e in applied):
        assert len(applied) == 1
    for e, r in zip(entries, result.codes, strict=True):
        assert r.code == e.code and r.coupon_id == e.coupon_id
        assert len(r.errors) == (0 if r.applied else 1)
        if e.refusal is not None:
            assert r.errors == (e.refusal,)
        elif not r.applied and r.errors[0].code == NOT_COMBINABLE:
            # it names a code applied before it
            named = r.errors[0].message.split(" cannot be combined with ")[1].split(":")[0]
            assert by_code(result)[named].applied and position[named] < position[e.code]
        if r.applied:
            assert e.fields is not None
            if e.fields.maximum_discount is not None:
                assert r.quote.total <= e.fields.maximum_discount
            if e.budget is not None:
                assert r.quote.total <= e.budget


def check_sequence(result: StackResult, entries: list[StackEntry], k: Cart, currency: str) -> None:
    """Each applied code gets what `quote` gives it on what the codes before it left."""
    left = {x.line_id: x.total for x in k.lines}
    for index in spec_order(entries):
        e, r = entries[index], result.codes[index]
        if not r.applied:
            continue
        assert e.fields is not None
        alone = quote(
            e.fields,
            k,
            currency=currency,
            group_scope=e.group_scope,
            budget=e.budget,
            remaining=left,
        )
        assert r.quote == alone
        for x in alone.lines:
            left[x.line_id] -= x.discount
            assert left[x.line_id] >= 0


@property_settings(150)
@given(k=CARTS, entries=ENTRIES, currency=CURRENCIES)
def test_every_stack_adds_up_and_keeps_every_line_at_or_above_zero(
    k: Cart, entries: list[StackEntry], currency: str
) -> None:
    result = stack(entries, k, currency=currency)
    check_arithmetic(result, k, currency)
    check_rules(result, entries)
    check_sequence(result, entries, k, currency)


@property_settings(100)
@given(k=CARTS, entries=ONE_ENTRY, currency=CURRENCIES)
def test_one_code_through_stack_is_exactly_its_quote(
    k: Cart, entries: list[StackEntry], currency: str
) -> None:
    e = entries[0]
    assert e.fields is not None
    (result,) = stack([e], k, currency=currency).codes
    if e.refusal is not None:
        assert not result.applied and result.quote.total == 0
        return
    alone = quote(e.fields, k, currency=currency, group_scope=e.group_scope, budget=e.budget)
    assert result.quote == alone
    assert [str(x.discount) for x in result.quote.lines] == [str(x.discount) for x in alone.lines]
    assert str(result.quote.total) == str(alone.total)
    assert result.applied == alone.eligible


@property_settings(75)
@given(
    k=CARTS,
    entries=ENTRIES,
    currency=CURRENCIES,
    data=st.data(),
)
def test_with_distinct_priorities_the_cart_order_does_not_matter(
    k: Cart, entries: list[StackEntry], currency: str, data: st.DataObject
) -> None:
    distinct = [
        StackEntry(
            code=e.code,
            coupon_id=e.coupon_id,
            fields=None if e.fields is None else replace(e.fields, priority=10 * i),
            group_scope=e.group_scope,
            budget=e.budget,
            refusal=e.refusal,
        )
        for i, e in enumerate(entries)
    ]
    shuffled = data.draw(st.permutations(distinct))
    here = by_code(stack(distinct, k, currency=currency))
    there = by_code(stack(shuffled, k, currency=currency))
    assert here == there
