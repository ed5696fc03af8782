"""The cart's edges (SPEC 6.1, 11.1, 11.2): each limit accepted at its value and refused one
past it, each refusal naming its field, and what a good cart parses to."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from couponry.domain.cart import MAX_QUANTITY, MAX_TOTAL, Cart, parse_cart
from couponry.errors import InvalidInput, UnknownField

D = Decimal


def line(line_id: str = "1", **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "line_id": line_id,
        "kind": "event",
        "id": "e-1",
        "unit_price": "10.00",
        "quantity": 1,
    }
    body.update(changes)
    return body


def doc(*lines: dict[str, Any], **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"code": "SPRING", "user_id": "u-1", "lines": list(lines) or [line()]}
    body.update(changes)
    return body


def refused(body: Any, error: type[InvalidInput] = InvalidInput) -> dict[str, str]:
    """Each refused field with its message."""
    with pytest.raises(error) as caught:
        parse_cart(body)
    return {p.field: p.message for p in caught.value.details}


def test_a_full_line_keeps_every_value() -> None:
    full = line(
        "L7",
        kind="course_session",
        id="cs-9",
        type_id="t-2",
        program_session_id="ps-4",
        group_ids=["g-1", "g-2"],
        unit_price="12.50",
        quantity=3,
    )
    (parsed,) = parse_cart(doc(full, membership_status="renewal", hold_seconds=600)).lines
    assert parsed.line_id == "L7" and parsed.kind == "course_session" and parsed.id == "cs-9"
    assert parsed.type_id == "t-2" and parsed.program_session_id == "ps-4"
    assert parsed.group_ids == ("g-1", "g-2")
    assert parsed.unit_price == D("12.50") and parsed.quantity == 3 and parsed.total == D("37.50")


def test_a_cart_keeps_its_code_user_status_and_hold() -> None:
    cart = parse_cart(doc(membership_status="renewal", hold_seconds=600))
    assert (cart.code, cart.user_id, cart.membership_status) == ("SPRING", "u-1", "renewal")
    assert cart.hold_seconds == 600 and cart.codes == () and not cart.several
    plain = parse_cart(doc())
    assert plain.hold_seconds is None and plain.membership_status is None
    (only,) = plain.lines
    assert only.type_id is None and only.program_session_id is None and only.group_ids == ()


def test_a_line_that_is_not_an_object_is_refused_by_its_place() -> None:
    assert refused(doc(line("1"), 5)) == {"lines[1]": "must be an object"}  # type: ignore[arg-type]
    assert refused({"code": "C", "user_id": "u", "lines": [5]}) == {"lines[0]": "must be an object"}


def test_lines_must_be_a_non_empty_array() -> None:
    assert refused(doc(lines=None)) == {"lines": "is required"}
    assert set(refused(doc(lines="1"))) == {"lines"}
    assert set(refused(doc(lines=[]))) == {"lines"}
    assert set(refused({"code": "C", "user_id": "u"})) == {"lines"}


@pytest.mark.parametrize("name", ["line_id", "id", "type_id", "program_session_id"])
def test_a_line_text_is_1_to_200_characters(name: str) -> None:
    (parsed,) = parse_cart(doc(line(**{name: "x" * 200}))).lines
    assert getattr(parsed, name) == "x" * 200
    assert set(refused(doc(line(**{name: "x" * 201})))) == {f"lines[0].{name}"}
    assert set(refused(doc(line(**{name: ""})))) == {f"lines[0].{name}"}


def test_user_id_is_1_to_200_characters() -> None:
    assert parse_cart(doc(user_id="u" * 200)).user_id == "u" * 200
    assert set(refused(doc(user_id="u" * 201))) == {"user_id"}
    assert set(refused(doc(user_id=""))) == {"user_id"}


def test_a_code_is_1_to_64_characters() -> None:
    assert parse_cart(doc(code="C" * 64)).code == "C" * 64
    assert set(refused(doc(code="C" * 65))) == {"code"}
    assert set(refused(doc(code=""))) == {"code"}
    several = {"user_id": "u-1", "lines": [line()]}
    assert parse_cart({**several, "codes": ["C" * 64]}).codes == ("C" * 64,)
    assert set(refused({**several, "codes": ["A", "C" * 65]})) == {"codes[1]"}
    assert set(refused({**several, "codes": ["A", ""]})) == {"codes[1]"}


def test_group_ids_at_most_100_of_1_to_200_characters() -> None:
    hundred = [f"g-{i}" for i in range(100)]
    (parsed,) = parse_cart(doc(line(group_ids=hundred))).lines
    assert parsed.group_ids == tuple(hundred)
    assert set(refused(doc(line(group_ids=[*hundred, "g-100"])))) == {"lines[0].group_ids"}
    (long,) = parse_cart(doc(line(group_ids=["g" * 200]))).lines
    assert long.group_ids == ("g" * 200,)
    assert set(refused(doc(line(group_ids=["ok", "g" * 201])))) == {"lines[0].group_ids[1]"}
    assert set(refused(doc(line(group_ids=["", "ok"])))) == {"lines[0].group_ids[0]"}
    assert set(refused(doc(line(group_ids=["ok", 7])))) == {"lines[0].group_ids[1]"}
    assert set(refused(doc(line(group_ids={"g": 1})))) == {"lines[0].group_ids"}
    (empty,) = parse_cart(doc(line(group_ids=[]))).lines
    assert empty.group_ids == ()


def test_quantity_is_1_to_100000() -> None:
    assert MAX_QUANTITY == 100_000
    (most,) = parse_cart(doc(line(quantity=100_000, unit_price="1"))).lines
    assert most.quantity == 100_000 and most.total == D(100_000)
    (least,) = parse_cart(doc(line(quantity=1))).lines
    assert least.quantity == 1
    assert set(refused(doc(line(quantity=100_001, unit_price="1")))) == {"lines[0].quantity"}
    assert set(refused(doc(line(quantity=0)))) == {"lines[0].quantity"}


def test_a_line_total_stays_below_the_largest_amount() -> None:
    below = str(MAX_TOTAL / 2 - D("0.0001"))
    (parsed,) = parse_cart(doc(line(unit_price=below, quantity=2))).lines
    assert parsed.total == MAX_TOTAL - D("0.0002")
    at = str(MAX_TOTAL / 2)
    assert refused(doc(line(unit_price=at, quantity=2))) == {
        "lines[0].quantity": f"unit_price x quantity must be less than {MAX_TOTAL}"
    }


def test_the_cart_total_stays_below_the_largest_amount() -> None:
    half = str(MAX_TOTAL / 2)
    just_below = str(MAX_TOTAL / 2 - D("0.0001"))
    cart = parse_cart(doc(line("1", unit_price=half), line("2", unit_price=just_below)))
    assert sum(x.total for x in cart.lines) == MAX_TOTAL - D("0.0001")
    both = refused(doc(line("1", unit_price=half), line("2", unit_price=half)))
    assert both == {"lines": f"the cart's total must be less than {MAX_TOTAL}"}
    # A cart with a bad line is refused for that line alone: its total is not known.
    one_bad = refused(doc(line("1", unit_price=half), line("2", unit_price=half, quantity=0)))
    assert set(one_bad) == {"lines[1].quantity"}


def test_codes_replace_code() -> None:
    body = doc(codes=["A", "b"])
    del body["code"]
    cart = parse_cart(body)
    assert cart.code == "" and cart.codes == ("A", "b") and cart.several
    assert cart.policy == "all"
    five = parse_cart({**body, "codes": ["A", "B", "C", "D", "E"]})
    assert five.codes == ("A", "B", "C", "D", "E")
    assert set(refused({**body, "codes": ["A", "B", "C", "D", "E", "F"]})) == {"codes"}
    assert set(refused({**body, "codes": []})) == {"codes"}
    assert set(refused({**body, "codes": "A"})) == {"codes"}
    assert refused({**body, "codes": ["A", "b", "a"]}) == {"codes[2]": "repeats codes[0]"}
    assert set(refused({**body, "code": "A"})) == {"code"}


def test_policy_only_with_codes() -> None:
    body = {"user_id": "u-1", "lines": [line()], "codes": ["A", "B"]}
    assert parse_cart({**body, "policy": "partial"}).policy == "partial"
    assert parse_cart({**body, "policy": "all"}).policy == "all"
    assert set(refused({**body, "policy": "some"})) == {"policy"}
    assert set(refused(doc(policy="partial"))) == {"policy"}


def test_with_code_names_one_code_alone() -> None:
    cart = parse_cart(
        {"user_id": "u-1", "lines": [line()], "codes": ["A", "B"], "policy": "partial"}
    )
    one = cart.with_code("B")
    assert isinstance(one, Cart)
    assert one.code == "B" and one.codes == () and one.policy == "all" and not one.several
    assert one.lines == cart.lines and one.user_id == "u-1"


def test_a_hold_is_60_seconds_to_a_day() -> None:
    assert parse_cart(doc(hold_seconds=60)).hold_seconds == 60
    assert parse_cart(doc(hold_seconds=86_400)).hold_seconds == 86_400
    assert set(refused(doc(hold_seconds=59))) == {"hold_seconds"}
    assert set(refused(doc(hold_seconds=86_401))) == {"hold_seconds"}


def test_every_problem_is_named_at_once() -> None:
    bad = doc(
        line("1", quantity=0),
        line("2", kind="toy", extra=1),
        user_id="",
        membership_status="old",
    )
    found = refused(bad, UnknownField)
    assert set(found) == {
        "user_id",
        "membership_status",
        "lines[0].quantity",
        "lines[1].kind",
        "lines[1].extra",
    }


def test_a_repeated_line_id_is_named_where_it_repeats() -> None:
    found = refused(doc(line("a"), line("b"), line("a")))
    assert found == {"lines[2].line_id": "must be unique within the cart"}


def test_an_absent_required_field_is_reported_as_missing() -> None:
    """EduBrite reports a missing field (1001) apart from a wrong one: the flag carries it."""
    with pytest.raises(InvalidInput) as caught:
        parse_cart({"code": "C", "user_id": "u-1", "lines": [{"kind": "event", "line_id": 5}]})
    missing = {p.field: p.missing for p in caught.value.details}
    assert missing["lines[0].line_id"] is False  # given, but not text
    assert missing["lines[0].id"] is True
    with pytest.raises(InvalidInput) as no_lines:
        parse_cart({"code": "C", "user_id": "u-1"})
    assert [(p.field, p.missing) for p in no_lines.value.details] == [("lines", True)]


def test_every_bad_code_of_several_is_named() -> None:
    several = {"user_id": "u-1", "lines": [line()]}
    found = refused({**several, "codes": ["", "B", "b", "C" * 65]})
    assert set(found) == {"codes[0]", "codes[2]", "codes[3]"}
    assert found["codes[2]"] == "repeats codes[1]"


def test_a_group_id_of_one_character_is_fine() -> None:
    (parsed,) = parse_cart(doc(line(group_ids=["g"]))).lines
    assert parsed.group_ids == ("g",)


def test_every_bad_line_is_named_not_only_the_first() -> None:
    found = refused(doc(5, line("1", quantity=0), line("2"), line("2")))  # type: ignore[arg-type]
    assert set(found) == {"lines[0]", "lines[1].quantity", "lines[3].line_id"}
