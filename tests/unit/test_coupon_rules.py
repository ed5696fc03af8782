"""The coupon field rules (SPEC 3, 9) without a database.

Covers `parse_coupon_input` (one field at a time, the rules between fields, unknown and
read-only fields), `check_change_allowed`, `remaining_after_change`, and the single-value
checkers of `domain.fields` / `domain.money`. Every refusal asserts the exact error class, its
public `code`, and the fields named in `details`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from couponry.domain import fields as f
from couponry.domain.coupons import (
    CATEGORIES,
    IGNORED_SYS_FIELDS,
    PRIORITY_MAX,
    PRIORITY_MIN,
    READ_ONLY_FIELDS,
    Category,
    Coupon,
    CouponFields,
    check_change_allowed,
    parse_coupon_input,
    remaining_after_change,
    stored_coupon_view,
)
from couponry.domain.money import MAX_AMOUNT, from_units, minor_unit, places, round_money, to_units
from couponry.errors import (
    CodeFrozen,
    CouponLocked,
    CouponryError,
    IdNotAllowed,
    InvalidInput,
    UnknownField,
)
from tests.conftest import percent_coupon

# --- helpers ------------------------------------------------------------------------------


def amount_coupon(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"coupon_type": "AMOUNT", "value_amount": 5}
    body.update(overrides)
    return body


def parse(doc: dict[str, Any], *, creating: bool = True) -> CouponFields:
    return parse_coupon_input(doc, creating=creating)


def refuse(
    doc: dict[str, Any],
    *,
    error: type[CouponryError] = InvalidInput,
    code: str = "validation_failed",
    creating: bool = True,
) -> CouponryError:
    """Parse `doc`, expecting exactly `error` with `code`; return the error."""
    with pytest.raises(CouponryError) as info:
        parse_coupon_input(doc, creating=creating)
    exc = info.value
    assert type(exc) is error, f"{type(exc).__name__}: {exc.message} {exc.details}"
    assert exc.code == code
    assert isinstance(exc.message, str) and exc.message.strip()
    for problem in exc.details:
        assert isinstance(problem.message, str) and problem.message.strip()
    return exc


def named(exc: CouponryError) -> set[str]:
    return {p.field for p in exc.details}


def assert_refused(
    doc: dict[str, Any],
    *fields_named: str,
    error: type[CouponryError] = InvalidInput,
    code: str = "validation_failed",
    creating: bool = True,
) -> CouponryError:
    """Refused with `error`/`code`, and `details` names exactly `fields_named`."""
    exc = refuse(doc, error=error, code=code, creating=creating)
    assert named(exc) == set(fields_named), exc.details
    return exc


def text_of(field: str, value: str) -> dict[str, Any]:
    """A valid PERCENT coupon whose text field `field` holds `value`."""
    return percent_coupon(**{field: value})


# --- a valid coupon, and its defaults -----------------------------------------------------


def test_minimal_percent_coupon_parses_with_defaults() -> None:
    parsed = parse(percent_coupon())
    assert parsed.coupon_type == "PERCENT"
    assert parsed.value_percent == Decimal(10)
    assert parsed.is_active is True
    assert parsed.sys_locked is False
    assert parsed.discount_method == "inline discount"
    assert parsed.applies_to == "all members"
    assert parsed.stacking == "exclusive" and parsed.priority == 0
    assert parsed.entity_type is None  # defaulted to SITE later, with the tenant at hand
    assert parsed.name is None and parsed.code is None  # generated later
    for flag in (
        "set_membership_expiration",
        "add_user_to_coupons_group",
        "require_approval",
        "preview_access_only",
        *(cat.flag for cat in CATEGORIES),
    ):
        assert getattr(parsed, flag) is False


def test_full_coupon_round_trips_its_values() -> None:
    doc = amount_coupon(
        name="Spring sale",
        code="SPRING_2026-a",
        is_active=False,
        comment="line one\nline two\r\n\tindented",
        custom_field_values=[
            {
                "custom_field_id": "cf-1",
                "string_value": "hello",
                "numeric_value": Decimal("12.5"),
                "boolean_value": True,
                "file_url_value": "https://example.org/f.pdf",
                "list_value": ["a", "b"],
                "table_value": [{"col": "x", "n": 1}],
            }
        ],
        code_generation_html="<b>CODE</b>\n",
        sys_external_id="ext-1",
        entity_type="EVENT",
        entity_id="event-42",
        value_amount="120.00",
        maximum_discount=Decimal("50.5"),
        starts_at="2026-05-01T02:00:00+02:00",
        expires_at="2026-06-01T00:00:00Z",
        usage_limit=10,
        max_uses_per_user=1,
        applies_to="new members",
        authorized_group_id="grp-1",
        set_membership_expiration=True,
        add_user_to_coupons_group=True,
        require_approval=True,
        preview_access_only=True,
        discount_method="discount line item",
        discount_product_id="prod-9",
        stacking="combinable",
        priority=-5,
    )
    parsed = parse(doc)
    assert parsed.name == "Spring sale"
    assert parsed.code == "SPRING_2026-a"  # stored as given
    assert parsed.is_active is False
    assert parsed.comment == "line one\nline two\r\n\tindented"
    assert parsed.value_amount == Decimal("120.00")
    assert isinstance(parsed.value_amount, Decimal)
    assert parsed.maximum_discount == Decimal("50.5")
    assert parsed.starts_at == datetime(2026, 5, 1, 0, 0, tzinfo=UTC)
    assert parsed.expires_at == datetime(2026, 6, 1, tzinfo=UTC)
    assert parsed.usage_limit == 10 and parsed.max_uses_per_user == 1
    assert parsed.applies_to == "new members"
    assert parsed.discount_product_id == "prod-9"
    assert parsed.stacking == "combinable" and parsed.priority == -5
    assert parsed.custom_field_values is not None
    entry = parsed.custom_field_values[0]
    assert entry["custom_field_id"] == "cf-1"
    assert entry["numeric_value"] == Decimal("12.5")
    assert entry["list_value"] == ["a", "b"]
    assert entry["table_value"] == [{"col": "x", "n": 1}]


@pytest.mark.parametrize(
    "field",
    [
        "name",
        "code",
        "comment",
        "custom_field_values",
        "code_generation_html",
        "sys_external_id",
        "entity_type",
        "entity_id",
        "maximum_discount",
        "starts_at",
        "expires_at",
        "usage_limit",
        "max_uses_per_user",
        "authorized_group_id",
        "discount_product_id",
    ],
)
def test_optional_fields_accept_null(field: str) -> None:
    assert getattr(parse(percent_coupon(**{field: None})), field) is None


# --- identity and metadata (SPEC 3.1) -----------------------------------------------------


@pytest.mark.parametrize("length", [1, 2, 199, 200])
def test_name_lengths_accepted(length: int) -> None:
    assert parse(percent_coupon(name="n" * length)).name == "n" * length


@pytest.mark.parametrize("value", ["", "n" * 201, "n" * 5000, 5, True, ["a"], {"a": "b"}])
def test_name_refused(value: Any) -> None:
    assert_refused(percent_coupon(name=value), "name")


@pytest.mark.parametrize(
    "code", ["abc", "ABC", "a-b", "a_b", "A1_-z9", "x" * 64, "123", "---", "___"]
)
def test_code_accepted_and_stored_as_given(code: str) -> None:
    assert parse(percent_coupon(code=code)).code == code


@pytest.mark.parametrize(
    "code",
    [
        "",
        "ab",
        "x" * 65,
        "ab c",
        " abc",
        "abc ",
        "ab.c",
        "ab/c",
        "ab!c",
        "ab+c",
        "ab%c",
        "äbc",
        "abcé",
        "١٢٣",  # Arabic-Indic digits: digits, but not [0-9]
        "\uff41\uff42\uff43",  # full-width letters
        "ab\u00a0c",
        "ab\tc",
        "abc\n",
        "ab\x00c",
        "ab\x1bc",
        "ab\x7fc",
        123,
        True,
        ["abc"],
    ],
)
def test_code_refused(code: Any) -> None:
    assert_refused(percent_coupon(code=code), "code")


@pytest.mark.parametrize("length", [0, 1, 2000])
def test_comment_lengths_accepted(length: int) -> None:
    assert parse(percent_coupon(comment="c" * length)).comment == "c" * length


@pytest.mark.parametrize("value", ["c" * 2001, 5, False, ["c"], {"c": 1}])
def test_comment_refused(value: Any) -> None:
    assert_refused(percent_coupon(comment=value), "comment")


def test_code_generation_html_up_to_64_kib_accepted() -> None:
    html = "<p>" + "x" * (65_536 - 7) + "</p>"
    assert len(html) == 65_536
    assert parse(percent_coupon(code_generation_html=html)).code_generation_html == html


@pytest.mark.parametrize("value", ["x" * 65_537, "x" * 200_000, 5, ["<b>"]])
def test_code_generation_html_refused(value: Any) -> None:
    assert_refused(percent_coupon(code_generation_html=value), "code_generation_html")


def test_sys_external_id_up_to_200_accepted() -> None:
    assert parse(percent_coupon(sys_external_id="e" * 200)).sys_external_id == "e" * 200


@pytest.mark.parametrize("value", ["e" * 201, 42, True, ["e"]])
def test_sys_external_id_refused(value: Any) -> None:
    assert_refused(percent_coupon(sys_external_id=value), "sys_external_id")


def test_sys_locked_accepted() -> None:
    assert parse(percent_coupon(sys_locked=True)).sys_locked is True


# --- custom field values ------------------------------------------------------------------


def cf(**entry: Any) -> dict[str, Any]:
    """A coupon with one custom field value (custom_field_id defaults to 'cf-1')."""
    entry.setdefault("custom_field_id", "cf-1")
    return percent_coupon(custom_field_values=[entry])


CF0 = "custom_field_values[0]"


def test_custom_fields_normalised_to_all_keys() -> None:
    parsed = parse(cf(string_value="s"))
    assert parsed.custom_field_values == [
        {
            "custom_field_id": "cf-1",
            "string_value": "s",
            "numeric_value": None,
            "boolean_value": None,
            "file_url_value": None,
            "list_value": None,
            "table_value": None,
        }
    ]


@pytest.mark.parametrize("count", [0, 1, 100])
def test_custom_fields_up_to_100_entries_accepted(count: int) -> None:
    entries = [{"custom_field_id": f"cf-{i}"} for i in range(count)]
    parsed = parse(percent_coupon(custom_field_values=entries))
    assert parsed.custom_field_values is not None
    assert len(parsed.custom_field_values) == count


def test_custom_fields_more_than_100_refused() -> None:
    entries = [{"custom_field_id": f"cf-{i}"} for i in range(101)]
    assert_refused(percent_coupon(custom_field_values=entries), "custom_field_values")


@pytest.mark.parametrize("value", [{}, {"custom_field_id": "x"}, "cf", 5, True])
def test_custom_fields_must_be_an_array(value: Any) -> None:
    assert_refused(percent_coupon(custom_field_values=value), "custom_field_values")


@pytest.mark.parametrize("entry", ["cf-1", 5, None, ["cf-1"]])
def test_custom_field_entry_must_be_an_object(entry: Any) -> None:
    assert_refused(percent_coupon(custom_field_values=[entry]), CF0)


def test_custom_field_unknown_key_is_unknown_field() -> None:
    exc = assert_refused(
        cf(colour="red"), f"{CF0}.colour", error=UnknownField, code="unknown_field"
    )
    assert "colour" in exc.message


@pytest.mark.parametrize(
    ("entry", "field"),
    [
        ({"custom_field_id": None}, "custom_field_id"),
        ({"custom_field_id": ""}, "custom_field_id"),
        ({"custom_field_id": 7}, "custom_field_id"),
        ({"custom_field_id": "i" * 201}, "custom_field_id"),
        ({"string_value": 5}, "string_value"),
        ({"string_value": ["s"]}, "string_value"),
        ({"string_value": "s" * 10_001}, "string_value"),
        ({"numeric_value": "5"}, "numeric_value"),  # a number, not a string
        ({"numeric_value": True}, "numeric_value"),
        ({"numeric_value": "abc"}, "numeric_value"),
        ({"numeric_value": Decimal("NaN")}, "numeric_value"),
        ({"numeric_value": Decimal("Infinity")}, "numeric_value"),
        ({"numeric_value": Decimal("1e15")}, "numeric_value"),
        ({"numeric_value": Decimal("1234567890.123456")}, "numeric_value"),
        ({"boolean_value": 1}, "boolean_value"),
        ({"boolean_value": "true"}, "boolean_value"),
        ({"file_url_value": 5}, "file_url_value"),
        ({"file_url_value": "u" * 2001}, "file_url_value"),
        ({"list_value": "a"}, "list_value"),
        ({"list_value": {"a": 1}}, "list_value"),
        ({"list_value": ["a"] * 1001}, "list_value"),
        ({"list_value": ["a", 1]}, "list_value[1]"),
        ({"list_value": ["a", None]}, "list_value[1]"),
        ({"table_value": {"a": 1}}, "table_value"),
        ({"table_value": [1]}, "table_value"),
        ({"table_value": [["a"]]}, "table_value"),
        ({"table_value": [{"a": 1}] * 1001}, "table_value"),
    ],
)
def test_custom_field_value_types(entry: dict[str, Any], field: str) -> None:
    assert_refused(cf(**entry), f"{CF0}.{field}")


def test_custom_field_table_nesting_is_bounded() -> None:
    deep: Any = "leaf"
    for _ in range(50):
        deep = {"k": deep}
    assert_refused(cf(table_value=[deep]), f"{CF0}.table_value")


@pytest.mark.parametrize(
    ("entry", "field"),
    [
        ({"custom_field_id": "cf\x001"}, "custom_field_id"),
        ({"string_value": "bad\x00"}, "string_value"),
        ({"string_value": "bad\x1b[31m"}, "string_value"),
        ({"string_value": "bad\x7f"}, "string_value"),
        ({"file_url_value": "https://x/\x00"}, "file_url_value"),
        ({"list_value": ["fine", "bad\x1b"]}, "list_value[1]"),
        ({"table_value": [{"col": "bad\x00"}]}, "table_value"),
        ({"table_value": [{"bad\x1bkey": "v"}]}, "table_value"),
        ({"table_value": [{"col": ["ok", {"deeper": "bad\x7f"}]}]}, "table_value"),
    ],
)
def test_custom_field_control_characters_refused_when_nested(
    entry: dict[str, Any], field: str
) -> None:
    assert_refused(cf(**entry), f"{CF0}.{field}")


def test_custom_field_problems_named_per_entry() -> None:
    doc = percent_coupon(
        custom_field_values=[
            {"custom_field_id": "ok", "string_value": "fine"},
            {"custom_field_id": "bad", "boolean_value": "yes"},
            {"custom_field_id": "", "numeric_value": "1"},
        ]
    )
    assert_refused(
        doc,
        "custom_field_values[1].boolean_value",
        "custom_field_values[2].custom_field_id",
        "custom_field_values[2].numeric_value",
    )


# --- control characters in every text -----------------------------------------------------

TEXT_FIELDS = [
    "name",
    "comment",
    "code",
    "sys_external_id",
    "code_generation_html",
    "entity_id",
    "authorized_group_id",
    "discount_product_id",
]
CONTROL_CHARS = ["\x00", "\x01", "\x08", "\x0b", "\x0c", "\x0e", "\x1b", "\x1f", "\x7f"]


@pytest.mark.parametrize("char", CONTROL_CHARS, ids=lambda c: f"U+{ord(c):04X}")
@pytest.mark.parametrize("field", TEXT_FIELDS)
def test_control_characters_refused_in_any_text(field: str, char: str) -> None:
    assert_refused(text_of(field, f"ab{char}cd"), field)


@pytest.mark.parametrize("char", ["\u0080", "\u0085", "\u009b", "\u009f"], ids=repr)
@pytest.mark.parametrize("field", ["name", "comment", "sys_external_id"])
def test_c1_control_characters_refused(field: str, char: str) -> None:
    # SPEC 9: "control characters (other than tab, line feed and carriage return) in any
    # text". U+0080-U+009F are control characters too (Unicode category Cc); U+009B is the
    # 8-bit CSI that terminals honour, the very thing the rule keeps out of logs.
    assert_refused(text_of(field, f"ab{char}cd"), field)


@pytest.mark.parametrize("field", ["comment", "name", "code_generation_html", "sys_external_id"])
def test_tab_newline_and_carriage_return_allowed_in_text(field: str) -> None:
    value = "one\ttwo\nthree\r\nfour"
    assert getattr(parse(text_of(field, value)), field) == value


@pytest.mark.parametrize("char", ["\t", "\n", "\r"], ids=repr)
def test_tab_newline_carriage_return_allowed_in_custom_string(char: str) -> None:
    parsed = parse(cf(string_value=f"a{char}b", list_value=[f"c{char}d"]))
    assert parsed.custom_field_values is not None
    assert parsed.custom_field_values[0]["string_value"] == f"a{char}b"
    assert parsed.custom_field_values[0]["list_value"] == [f"c{char}d"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("plain", False),
        ("tab\tnewline\ncr\r", False),
        ("émoji 🎉 ünïcode", False),
        ("\x00", True),
        ("\x1b", True),
        ("\x7f", True),
        ("\x0b", True),
        ("\x85", True),
        ("\x9b", True),
    ],
)
def test_has_control_chars(text: str, expected: bool) -> None:
    assert f.has_control_chars(text) is expected


# --- what it discounts (SPEC 3.2) ---------------------------------------------------------


@pytest.mark.parametrize("coupon_type", ["USAGE", "AMOUNT", "PERCENT", "TOTAL_AMOUNT"])
def test_coupon_types_accepted(coupon_type: str) -> None:
    doc: dict[str, Any] = {"coupon_type": coupon_type}
    if coupon_type in ("AMOUNT", "TOTAL_AMOUNT"):
        doc["value_amount"] = "10.00"
    if coupon_type == "PERCENT":
        doc["value_percent"] = 10
    assert parse(doc).coupon_type == coupon_type


@pytest.mark.parametrize("value", ["BOGUS", "percent", "Percent", " PERCENT", "", 1, True])
def test_unknown_coupon_type_refused(value: Any) -> None:
    assert_refused(percent_coupon(coupon_type=value), "coupon_type")


@pytest.mark.parametrize("entity_type", ["SITE", "PROGRAM_SESSION", "COURSE_SESSION", "EVENT"])
def test_entity_types_accepted(entity_type: str) -> None:
    parsed = parse(percent_coupon(entity_type=entity_type, entity_id="x-1"))
    assert parsed.entity_type == entity_type
    assert parsed.entity_id == "x-1"


@pytest.mark.parametrize("value", ["COURSE", "site", "GROUPS", "", 3])
def test_unknown_entity_type_refused(value: Any) -> None:
    assert_refused(percent_coupon(entity_type=value, entity_id="x"), "entity_type")


@pytest.mark.parametrize("entity_type", ["PROGRAM_SESSION", "COURSE_SESSION", "EVENT", "GROUP"])
@pytest.mark.parametrize("entity_id", [None, "absent"])
def test_entity_id_required_unless_site(entity_type: str, entity_id: str | None) -> None:
    doc = percent_coupon(entity_type=entity_type)
    if entity_id is None:
        doc["entity_id"] = None
    assert_refused(doc, "entity_id")


@pytest.mark.parametrize("entity_id", [None, "t-1", "t-1.example.org"])
def test_site_entity_id_optional(entity_id: str | None) -> None:
    parsed = parse(percent_coupon(entity_type="SITE", entity_id=entity_id))
    assert parsed.entity_id == entity_id


@pytest.mark.parametrize("value", ["", 7, ["g"]])
def test_entity_id_type_refused(value: Any) -> None:
    assert_refused(percent_coupon(entity_type="EVENT", entity_id=value), "entity_id")


def test_entity_scope_without_coupon_type_refused() -> None:
    doc = {
        "apply_to_add_on_products": True,
        "add_on_products_discount_info": {"method": "amount", "amount": 5},
        "entity_type": "EVENT",
        "entity_id": "e-1",
    }
    assert_refused(doc, "entity_type")


@pytest.mark.parametrize("coupon_type", ["AMOUNT", "TOTAL_AMOUNT"])
def test_value_amount_required_for_amount_types(coupon_type: str) -> None:
    assert_refused({"coupon_type": coupon_type}, "value_amount")
    assert_refused({"coupon_type": coupon_type, "value_amount": None}, "value_amount")


@pytest.mark.parametrize("coupon_type", ["AMOUNT", "TOTAL_AMOUNT"])
@pytest.mark.parametrize("value", [0, "0", "0.00", -1, "-0.01"])
def test_value_amount_must_be_positive(coupon_type: str, value: Any) -> None:
    assert_refused({"coupon_type": coupon_type, "value_amount": value}, "value_amount")


@pytest.mark.parametrize("coupon_type", ["USAGE", "PERCENT"])
def test_value_amount_refused_for_other_types(coupon_type: str) -> None:
    doc: dict[str, Any] = {"coupon_type": coupon_type, "value_amount": 5}
    if coupon_type == "PERCENT":
        doc["value_percent"] = 10
    assert_refused(doc, "value_amount")


def test_value_amount_refused_without_coupon_type() -> None:
    doc = {
        "apply_to_membership_packages": True,
        "membership_package_discount_info": {"method": "amount", "amount": 5},
        "value_amount": 5,
    }
    assert_refused(doc, "value_amount")


def test_value_percent_required_for_percent() -> None:
    assert_refused({"coupon_type": "PERCENT"}, "value_percent")
    assert_refused(percent_coupon(value_percent=None), "value_percent")


@pytest.mark.parametrize("value", [Decimal("0.0001"), 1, 50, "50", "99.9999", 100, "100.00"])
def test_value_percent_range_accepted(value: Any) -> None:
    assert parse(percent_coupon(value_percent=value)).value_percent == Decimal(str(value))


@pytest.mark.parametrize(
    "value",
    [
        0,
        "0",
        Decimal("0.0000"),
        -1,
        Decimal("-0.5"),
        Decimal("100.0001"),
        101,
        10**6,
        Decimal("10.00001"),
        "abc",
        "NaN",
        "Infinity",
        Decimal("NaN"),
        Decimal("Infinity"),
        True,
        [10],
    ],
)
def test_value_percent_refused(value: Any) -> None:
    assert_refused(percent_coupon(value_percent=value), "value_percent")


@pytest.mark.parametrize("coupon_type", ["USAGE", "AMOUNT", "TOTAL_AMOUNT"])
def test_value_percent_refused_for_other_types(coupon_type: str) -> None:
    doc: dict[str, Any] = {"coupon_type": coupon_type, "value_percent": 10}
    if coupon_type != "USAGE":
        doc["value_amount"] = 5
    assert_refused(doc, "value_percent")


def test_coupon_with_neither_type_nor_category_refused() -> None:
    assert_refused({}, "coupon_type")
    assert_refused({"name": "Nothing", "code": "NOTHING"}, "coupon_type")
    flags_off = {cat.flag: False for cat in CATEGORIES}
    assert_refused(flags_off, "coupon_type")


def test_info_without_its_flag_does_not_count_as_a_category() -> None:
    doc = {"membership_package_discount_info": {"method": "amount", "amount": 5}}
    assert_refused(doc, "coupon_type")


# --- Rhythm categories --------------------------------------------------------------------


def category_coupon(cat: Category, **info: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"method": "amount", "amount": 5}
    body.update(info)
    return {cat.flag: True, cat.info: body}


CATEGORY_IDS = [cat.flag for cat in CATEGORIES]


@pytest.mark.parametrize("cat", CATEGORIES, ids=CATEGORY_IDS)
def test_category_alone_is_a_valid_coupon(cat: Category) -> None:
    parsed = parse(category_coupon(cat, amount="12.50"))
    assert parsed.coupon_type is None
    assert getattr(parsed, cat.flag) is True
    info = getattr(parsed, cat.info)
    assert info["method"] == "amount"
    assert info["amount"] == Decimal("12.50")
    assert info[cat.ids_key] == [] and info[cat.type_ids_key] == []  # empty: all of that kind


@pytest.mark.parametrize("cat", CATEGORIES, ids=CATEGORY_IDS)
def test_category_id_lists_kept(cat: Category) -> None:
    doc = category_coupon(cat, **{cat.ids_key: ["a", "b"], cat.type_ids_key: ["t"]})
    info = getattr(parse(doc), cat.info)
    assert info[cat.ids_key] == ["a", "b"]
    assert info[cat.type_ids_key] == ["t"]


@pytest.mark.parametrize("cat", CATEGORIES, ids=CATEGORY_IDS)
@pytest.mark.parametrize("value", ["0.0001", 1, 50, 100])
def test_category_percentage_accepted(cat: Category, value: Any) -> None:
    info = getattr(parse(category_coupon(cat, method="percentage", amount=value)), cat.info)
    assert info["method"] == "percentage"
    assert info["amount"] == Decimal(str(value))


@pytest.mark.parametrize("cat", CATEGORIES, ids=CATEGORY_IDS)
@pytest.mark.parametrize("info", ["absent", None])
def test_category_flag_true_requires_info(cat: Category, info: Any) -> None:
    doc: dict[str, Any] = {cat.flag: True}
    if info is None:
        doc[cat.info] = None
    assert_refused(doc, cat.info)


@pytest.mark.parametrize("cat", CATEGORIES, ids=CATEGORY_IDS)
@pytest.mark.parametrize("value", ["amount", ["method"], 5, True])
def test_category_info_must_be_an_object(cat: Category, value: Any) -> None:
    assert_refused({cat.flag: True, cat.info: value}, cat.info)


@pytest.mark.parametrize("cat", CATEGORIES, ids=CATEGORY_IDS)
@pytest.mark.parametrize("method", ["absent", None, "fixed", "Amount", "percent", 1])
def test_category_method_must_be_amount_or_percentage(cat: Category, method: Any) -> None:
    doc = category_coupon(cat, method=method)
    if method == "absent":
        del doc[cat.info]["method"]
    assert_refused(doc, f"{cat.info}.method")


@pytest.mark.parametrize("cat", CATEGORIES, ids=CATEGORY_IDS)
@pytest.mark.parametrize("amount", [0, -1, Decimal("100.0001"), 101, "NaN", "absent"])
def test_category_percentage_range(cat: Category, amount: Any) -> None:
    doc = category_coupon(cat, method="percentage", amount=amount)
    if amount == "absent":
        del doc[cat.info]["amount"]
    assert_refused(doc, f"{cat.info}.amount")


@pytest.mark.parametrize("cat", CATEGORIES, ids=CATEGORY_IDS)
@pytest.mark.parametrize(
    "amount", [0, -1, "-5.00", "1.00001", "NaN", "Infinity", MAX_AMOUNT, True, "absent"]
)
def test_category_amount_is_positive_money(cat: Category, amount: Any) -> None:
    doc = category_coupon(cat, method="amount", amount=amount)
    if amount == "absent":
        del doc[cat.info]["amount"]
    assert_refused(doc, f"{cat.info}.amount")


@pytest.mark.parametrize("cat", CATEGORIES, ids=CATEGORY_IDS)
@pytest.mark.parametrize("which", ["ids_key", "type_ids_key"])
@pytest.mark.parametrize(
    ("value", "suffix"),
    [
        ("p-1", ""),
        ({"id": "p-1"}, ""),
        (["p"] * 1001, ""),
        ([1], "[0]"),
        (["ok", ""], "[1]"),
        (["ok", None], "[1]"),
        (["ok", "i" * 201], "[1]"),
        (["ok", "bad\x00"], "[1]"),
    ],
)
def test_category_id_lists_checked(cat: Category, which: str, value: Any, suffix: str) -> None:
    key = getattr(cat, which)
    assert_refused(category_coupon(cat, **{key: value}), f"{cat.info}.{key}{suffix}")


@pytest.mark.parametrize("cat", CATEGORIES, ids=CATEGORY_IDS)
def test_category_info_unknown_key_refused(cat: Category) -> None:
    assert_refused(
        category_coupon(cat, colour="red"),
        f"{cat.info}.colour",
        error=UnknownField,
        code="unknown_field",
    )


@pytest.mark.parametrize("cat", [c for c in CATEGORIES if c.max_key], ids=lambda c: str(c.max_key))
@pytest.mark.parametrize("value", [0, -1, "2", Decimal("1.5"), True])
def test_category_maximum_number_is_a_positive_int(cat: Category, value: Any) -> None:
    assert cat.max_key is not None
    assert_refused(category_coupon(cat, **{cat.max_key: value}), f"{cat.info}.{cat.max_key}")


@pytest.mark.parametrize("cat", [c for c in CATEGORIES if c.max_key], ids=lambda c: str(c.max_key))
def test_category_maximum_number_accepted(cat: Category) -> None:
    assert cat.max_key is not None
    info = getattr(parse(category_coupon(cat, **{cat.max_key: 3})), cat.info)
    assert info[cat.max_key] == 3


@pytest.mark.parametrize("cat", [c for c in CATEGORIES if not c.max_key], ids=lambda c: c.flag)
def test_maximum_number_key_only_where_the_schema_has_it(cat: Category) -> None:
    assert_refused(
        category_coupon(cat, maximum_number_of_chapters=2),
        f"{cat.info}.maximum_number_of_chapters",
        error=UnknownField,
        code="unknown_field",
    )


@pytest.mark.parametrize("cat", CATEGORIES, ids=CATEGORY_IDS)
@pytest.mark.parametrize("value", [1, 0, "true", "false", None])
def test_category_flags_are_strict_booleans(cat: Category, value: Any) -> None:
    doc = percent_coupon(**{cat.flag: value})
    assert_refused(doc, cat.flag)


def test_category_info_problems_named_together() -> None:
    cat = CATEGORIES[1]  # chapter dues: has every kind of key
    assert cat.max_key is not None
    doc = category_coupon(
        cat,
        method="percentage",
        amount=150,
        **{cat.ids_key: "x", cat.type_ids_key: [3], cat.max_key: 0},
    )
    assert_refused(
        doc,
        f"{cat.info}.amount",
        f"{cat.info}.{cat.ids_key}",
        f"{cat.info}.{cat.type_ids_key}[0]",
        f"{cat.info}.{cat.max_key}",
    )


# --- discount method ----------------------------------------------------------------------


@pytest.mark.parametrize("product", ["absent", None])
def test_discount_line_item_requires_product(product: Any) -> None:
    doc = percent_coupon(discount_method="discount line item")
    if product is None:
        doc["discount_product_id"] = None
    assert_refused(doc, "discount_product_id")


def test_discount_line_item_with_product_accepted() -> None:
    parsed = parse(percent_coupon(discount_method="discount line item", discount_product_id="p"))
    assert parsed.discount_method == "discount line item"
    assert parsed.discount_product_id == "p"


@pytest.mark.parametrize(
    "value", ["line item", "Inline Discount", "inline", "", None, 1, ["inline discount"]]
)
def test_discount_method_enum(value: Any) -> None:
    assert_refused(percent_coupon(discount_method=value), "discount_method")


@pytest.mark.parametrize("value", ["", "p" * 201, 9])
def test_discount_product_id_refused(value: Any) -> None:
    doc = percent_coupon(discount_method="discount line item", discount_product_id=value)
    assert_refused(doc, "discount_product_id")


@pytest.mark.parametrize("value", [0, -1, "-0.01", "0.00001", "NaN", "x", True, MAX_AMOUNT])
def test_maximum_discount_is_positive_money(value: Any) -> None:
    assert_refused(percent_coupon(maximum_discount=value), "maximum_discount")


# --- who, when, how often (SPEC 3.3) ------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-05-01T00:00:00Z", datetime(2026, 5, 1, tzinfo=UTC)),
        ("2026-05-01T00:00Z", datetime(2026, 5, 1, tzinfo=UTC)),
        ("2026-05-01T00:00:00.250Z", datetime(2026, 5, 1, 0, 0, 0, 250_000, tzinfo=UTC)),
        ("2026-05-01T02:00:00+02:00", datetime(2026, 5, 1, tzinfo=UTC)),
        ("2026-04-30T19:00:00-05:00", datetime(2026, 5, 1, tzinfo=UTC)),
    ],
)
def test_instants_parsed_to_utc(text: str, expected: datetime) -> None:
    parsed = parse(percent_coupon(starts_at=text))
    assert parsed.starts_at == expected
    assert parsed.starts_at is not None and parsed.starts_at.utcoffset() is not None


@pytest.mark.parametrize("field", ["starts_at", "expires_at"])
@pytest.mark.parametrize(
    "value",
    [
        1_777_593_600_000,  # epoch ms: the EduBrite form, not the JSON one
        1_777_593_600,
        Decimal("1777593600.5"),
        True,
        ["2026-05-01T00:00:00Z"],
        {"date": "2026-05-01"},
        "2026-05-01T00:00:00",  # no time zone
        "2026-05-01T00:00",
        "2026-05-01",
        "2026-05-01 00:00:00Z",
        "01/05/2026",
        "tomorrow",
        "",
        "2026-13-01T00:00:00Z",
        "2026-02-30T00:00:00Z",
        "2026-05-01T25:00:00Z",
    ],
)
def test_instants_refused(field: str, value: Any) -> None:
    assert_refused(percent_coupon(**{field: value}), field)


@pytest.mark.parametrize(
    ("starts", "expires"),
    [
        ("2026-06-01T00:00:00Z", "2026-05-01T00:00:00Z"),
        ("2026-05-01T00:00:00Z", "2026-05-01T00:00:00Z"),
        ("2026-05-01T02:00:00+02:00", "2026-05-01T00:00:00Z"),  # the same instant
        ("2026-05-01T00:00:00.001Z", "2026-05-01T00:00:00Z"),
    ],
)
def test_expiry_must_be_after_start(starts: str, expires: str) -> None:
    assert_refused(percent_coupon(starts_at=starts, expires_at=expires), "expires_at")


@pytest.mark.parametrize(
    ("starts", "expires"),
    [
        ("2026-05-01T00:00:00Z", "2026-05-01T00:00:00.001Z"),
        ("2026-05-01T00:00:00Z", "2026-05-01T01:00:00+00:30"),
        (None, "2026-05-01T00:00:00Z"),
        ("2026-05-01T00:00:00Z", None),
    ],
)
def test_expiry_after_start_accepted(starts: str | None, expires: str | None) -> None:
    parsed = parse(percent_coupon(starts_at=starts, expires_at=expires))
    assert (parsed.starts_at is None) == (starts is None)
    assert (parsed.expires_at is None) == (expires is None)


@pytest.mark.parametrize("field", ["usage_limit", "max_uses_per_user"])
@pytest.mark.parametrize("value", [1, 2, 1000, 2_147_483_647])
def test_positive_ints_accepted(field: str, value: int) -> None:
    assert getattr(parse(percent_coupon(**{field: value})), field) == value


@pytest.mark.parametrize("field", ["usage_limit", "max_uses_per_user"])
@pytest.mark.parametrize(
    "value",
    [0, -1, -100, "5", Decimal("1.5"), Decimal("2.0"), True, False, [1], 2**31, 10**30],
)
def test_positive_ints_refused(field: str, value: Any) -> None:
    assert_refused(percent_coupon(**{field: value}), field)


@pytest.mark.parametrize("value", ["new members", "renewing members", "all members"])
def test_applies_to_accepted(value: str) -> None:
    assert parse(percent_coupon(applies_to=value)).applies_to == value


@pytest.mark.parametrize("value", ["everyone", "New members", "all", "", None, 1, ["all members"]])
def test_applies_to_enum(value: Any) -> None:
    assert_refused(percent_coupon(applies_to=value), "applies_to")


# --- several codes in one cart (SPEC 11.2) ------------------------------------------------


@pytest.mark.parametrize("value", ["exclusive", "combinable"])
def test_stacking_accepted(value: str) -> None:
    assert parse(percent_coupon(stacking=value)).stacking == value


@pytest.mark.parametrize(
    "value", ["Exclusive", "COMBINABLE", "stackable", "", None, True, 1, ["combinable"]]
)
def test_stacking_enum(value: Any) -> None:
    exc = assert_refused(percent_coupon(stacking=value), "stacking")
    if value is not None:
        assert "exclusive, combinable" in exc.details[0].message


@pytest.mark.parametrize("value", [PRIORITY_MIN, -1, 0, 1, 7, PRIORITY_MAX])
def test_priority_accepted(value: int) -> None:
    assert parse(percent_coupon(priority=value)).priority == value


@pytest.mark.parametrize(
    "value",
    [PRIORITY_MIN - 1, PRIORITY_MAX + 1, 10**30, -(10**30)],
)
def test_priority_out_of_range_refused_naming_its_bounds(value: int) -> None:
    exc = assert_refused(percent_coupon(priority=value), "priority")
    assert exc.details[0].message == f"must be between {PRIORITY_MIN} and {PRIORITY_MAX}"


@pytest.mark.parametrize("value", ["5", Decimal("1.5"), Decimal("2.0"), True, False, None, [1]])
def test_priority_must_be_a_whole_number(value: Any) -> None:
    assert_refused(percent_coupon(priority=value), "priority")


VIEW_KEPT: dict[str, Any] = {
    "times_used": 0,
    "remaining_amount": None,
    "budget_remaining": None,
    "sys_version": 1,
    "sys_created_at": datetime(2026, 1, 1, tzinfo=UTC),
    "sys_last_modified_at": datetime(2026, 1, 1, tzinfo=UTC),
    "sys_created_by_id": "k1",
    "sys_last_modified_by_id": "k1",
    "sys_deleted_by_id": None,
}


def test_stored_coupon_without_stacking_fields_reads_their_defaults() -> None:
    # Coupons stored before SPEC 11.2 have no `stacking` or `priority` in their body.
    older = {k: v for k, v in vars(spring()).items() if k not in ("stacking", "priority")}
    fields_ = CouponFields.from_stored(older)
    assert fields_.stacking == "exclusive" and fields_.priority == 0
    assert fields_ == spring()
    view = stored_coupon_view("abcd-ef01-2345-6789", older, **VIEW_KEPT)
    assert view["stacking"] == "exclusive" and view["priority"] == 0


def test_stacking_fields_are_shown_as_stored() -> None:
    data = spring(stacking="combinable", priority=12)
    view = stored_coupon_view("abcd-ef01-2345-6789", vars(data), **VIEW_KEPT)
    assert view["stacking"] == "combinable" and view["priority"] == 12
    assert CouponFields.from_stored(vars(data)) == data


GROUP_FLAGS = ["set_membership_expiration", "add_user_to_coupons_group", "require_approval"]


@pytest.mark.parametrize("flag", GROUP_FLAGS)
def test_group_flags_need_authorized_group(flag: str) -> None:
    assert_refused(percent_coupon(**{flag: True}), flag)
    assert_refused(percent_coupon(**{flag: True, "authorized_group_id": None}), flag)


@pytest.mark.parametrize("flag", GROUP_FLAGS)
def test_group_flags_with_authorized_group_accepted(flag: str) -> None:
    parsed = parse(percent_coupon(**{flag: True, "authorized_group_id": "g-1"}))
    assert getattr(parsed, flag) is True
    assert parsed.authorized_group_id == "g-1"


def test_all_group_flags_named_at_once() -> None:
    assert_refused(percent_coupon(**dict.fromkeys(GROUP_FLAGS, True)), *GROUP_FLAGS)


def test_preview_access_only_needs_no_group() -> None:
    assert parse(percent_coupon(preview_access_only=True)).preview_access_only is True


@pytest.mark.parametrize("value", ["", 5, ["g"]])
def test_authorized_group_id_type(value: Any) -> None:
    assert_refused(percent_coupon(authorized_group_id=value), "authorized_group_id")


BOOLEAN_FIELDS = [
    "is_active",
    "sys_locked",
    "set_membership_expiration",
    "add_user_to_coupons_group",
    "require_approval",
    "preview_access_only",
]


@pytest.mark.parametrize("field", BOOLEAN_FIELDS)
@pytest.mark.parametrize("value", [1, 0, "true", "false", "1", "yes", Decimal(1), None, [True], {}])
def test_booleans_are_strict(field: str, value: Any) -> None:
    assert_refused(percent_coupon(**{field: value}), field)


@pytest.mark.parametrize("field", BOOLEAN_FIELDS)
@pytest.mark.parametrize("value", [True, False])
def test_booleans_accepted(field: str, value: bool) -> None:
    doc = percent_coupon(**{field: value})
    if field in GROUP_FLAGS:
        doc["authorized_group_id"] = "g-1"
    assert getattr(parse(doc), field) is value


# --- unknown, read-only and ignored fields ------------------------------------------------


@pytest.mark.parametrize(
    "field", ["value_ammount", "Name", "coupon-type", "discount", "sys_made_up", "", "id "]
)
def test_unknown_field_refused_and_named(field: str) -> None:
    exc = assert_refused(
        percent_coupon(**{field: 1}), field, error=UnknownField, code="unknown_field"
    )
    assert field in exc.message


def test_several_unknown_fields_named_at_once() -> None:
    assert_refused(
        percent_coupon(colour="red", size=3, valid_until="2026"),
        "colour",
        "size",
        "valid_until",
        error=UnknownField,
        code="unknown_field",
    )


def test_unknown_and_invalid_fields_named_together() -> None:
    assert_refused(
        percent_coupon(colour="red", name="", usage_limit=0),
        "colour",
        "name",
        "usage_limit",
        error=UnknownField,
        code="unknown_field",
    )


@pytest.mark.parametrize("value", ["abcd-ef01-2345-6789", "anything", 5, ""])
def test_id_on_create_refused(value: Any) -> None:
    exc = refuse(percent_coupon(id=value), error=IdNotAllowed, code="id_not_allowed")
    assert "id" in exc.message


def test_id_on_create_refused_before_other_problems() -> None:
    doc = percent_coupon(id="abcd-ef01-2345-6789", name="")
    refuse(doc, error=IdNotAllowed, code="id_not_allowed")


def test_id_on_update_is_ignored() -> None:
    doc = percent_coupon(id="abcd-ef01-2345-6789")
    assert parse(doc, creating=False) == parse(percent_coupon(), creating=False)


SERVER_SET = {
    "times_used": 3,
    "remaining_amount": 12.5,
    "budget_remaining": 4.25,
    "sys_version": 7,
    "sys_created_at": "2026-01-01T00:00:00Z",
    "sys_last_modified_at": "2026-01-02T00:00:00Z",
    "sys_created_by_id": "key-1",
    "sys_last_modified_by_id": "key-2",
    "sys_deleted_by_id": None,
}


def test_server_set_fields_list_is_complete() -> None:
    assert set(SERVER_SET) | {"id"} == set(READ_ONLY_FIELDS)


@pytest.mark.parametrize("creating", [True, False])
def test_read_only_fields_dropped(creating: bool) -> None:
    plain = parse(percent_coupon(name="Same"), creating=creating)
    assert parse(percent_coupon(name="Same", **SERVER_SET), creating=creating) == plain


@pytest.mark.parametrize("creating", [True, False])
@pytest.mark.parametrize("field", IGNORED_SYS_FIELDS)
def test_ignored_sys_fields_dropped(creating: bool, field: str) -> None:
    plain = parse(percent_coupon(), creating=creating)
    for value in (None, "x", 5, True, {"a": 1}):
        assert parse(percent_coupon(**{field: value}), creating=creating) == plain


def test_a_get_body_can_be_sent_back() -> None:
    view: dict[str, Any] = {
        "id": "abcd-ef01-2345-6789",
        **percent_coupon(name="Round trip", code="ROUND"),
        **SERVER_SET,
        **dict.fromkeys(IGNORED_SYS_FIELDS),
    }
    parsed = parse(view, creating=False)
    assert parsed.name == "Round trip" and parsed.code == "ROUND"


# --- many problems at once ----------------------------------------------------------------


def test_field_problems_named_at_once() -> None:
    doc = percent_coupon(
        name="",
        code="a",
        comment=5,
        usage_limit=0,
        max_uses_per_user="2",
        value_percent=0,
        is_active="yes",
        starts_at="2026-05-01",
        applies_to="everyone",
        sys_external_id="e" * 201,
    )
    exc = assert_refused(
        doc,
        "name",
        "code",
        "comment",
        "usage_limit",
        "max_uses_per_user",
        "value_percent",
        "is_active",
        "starts_at",
        "applies_to",
        "sys_external_id",
    )
    assert len(exc.details) == 10


def test_rule_problems_named_at_once() -> None:
    doc = {
        "coupon_type": "AMOUNT",
        "value_percent": 5,
        "entity_type": "EVENT",
        "discount_method": "discount line item",
        "starts_at": "2026-06-01T00:00:00Z",
        "expires_at": "2026-05-01T00:00:00Z",
        "require_approval": True,
    }
    assert_refused(
        doc,
        "value_amount",
        "value_percent",
        "entity_id",
        "discount_product_id",
        "expires_at",
        "require_approval",
    )


def test_field_and_rule_problems_named_at_once() -> None:
    # SPEC 4.3 "Validation names every offending field at once": a bad `name` must not hide
    # that an AMOUNT coupon lacks `value_amount` (the two do not depend on each other).
    assert_refused({"coupon_type": "AMOUNT", "name": ""}, "name", "value_amount")


# --- money (SPEC 2) -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("120.00", Decimal("120.00")),
        ("0.01", Decimal("0.01")),
        ("12", Decimal(12)),
        ("1.2345", Decimal("1.2345")),
        (120, Decimal(120)),
        (Decimal("99.5"), Decimal("99.5")),
        (Decimal("0.0001"), Decimal("0.0001")),
        (Decimal("1E+2"), Decimal(100)),
        (Decimal("9999999999.9999"), Decimal("9999999999.9999")),
    ],
)
def test_money_accepted(value: Any, expected: Decimal) -> None:
    problems = f.Problems()
    result = f.check_money(value, "value_amount", problems)
    assert not problems, problems.items
    assert isinstance(result, Decimal)
    assert result == expected
    # and through the whole coupon:
    assert parse(amount_coupon(value_amount=value)).value_amount == expected


def test_money_decimal_string_keeps_its_scale() -> None:
    value = parse(amount_coupon(value_amount="120.00")).value_amount
    assert value is not None and str(value) == "120.00"


MONEY_REFUSED = [
    "NaN",
    "nan",
    "sNaN",
    "Infinity",
    "-Infinity",
    "inf",
    "Inf",
    Decimal("NaN"),
    Decimal("sNaN"),
    Decimal("Infinity"),
    Decimal("-Infinity"),
    "",
    " ",
    "abc",
    "12,50",
    "1.2.3",
    "$12",
    "0x10",
    "١٢",
    True,
    False,
    [5],
    {"amount": 5},
    1.5,  # a float never carries money (JSON numbers arrive as Decimal)
]


@pytest.mark.parametrize("value", MONEY_REFUSED, ids=repr)
def test_money_not_a_decimal_refused(value: Any) -> None:
    problems = f.Problems()
    assert f.check_money(value, "value_amount", problems) is None
    assert [p.field for p in problems.items] == ["value_amount"]
    assert_refused(amount_coupon(value_amount=value), "value_amount")


@pytest.mark.parametrize(
    "value", [-1, "-1", "-0.01", Decimal("-5"), Decimal("-0.0001"), "-120.00"], ids=repr
)
def test_negative_money_refused(value: Any) -> None:
    problems = f.Problems()
    assert f.check_money(value, "value_amount", problems, positive=False) is None
    assert [p.field for p in problems.items] == ["value_amount"]
    assert "negative" in problems.items[0].message
    assert_refused(amount_coupon(value_amount=value), "value_amount")


def test_zero_money_allowed_only_when_not_required_positive() -> None:
    problems = f.Problems()
    assert f.check_money("0.00", "x", problems, positive=False) == Decimal(0)
    assert not problems
    assert f.check_money("0.00", "x", problems) is None
    assert [p.field for p in problems.items] == ["x"]


@pytest.mark.parametrize(
    "value", ["1.00001", "0.12345", Decimal("0.00001"), Decimal("10.123456"), "5.99999"], ids=repr
)
def test_money_more_than_four_places_refused(value: Any) -> None:
    problems = f.Problems()
    assert f.check_money(value, "value_amount", problems) is None
    assert "4 decimal places" in problems.items[0].message
    assert_refused(amount_coupon(value_amount=value), "value_amount")


@pytest.mark.parametrize("value", [MAX_AMOUNT, str(MAX_AMOUNT), 10**12, Decimal("1E+30")], ids=repr)
def test_money_out_of_range_refused(value: Any) -> None:
    assert_refused(amount_coupon(value_amount=value), "value_amount")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (5, Decimal(5)),
        (Decimal("1.5"), Decimal("1.5")),
        ("12.50", Decimal("12.50")),
        ("-3", Decimal(-3)),
    ],
)
def test_parse_decimal_accepts(value: Any, expected: Decimal) -> None:
    assert f.parse_decimal(value) == expected


@pytest.mark.parametrize(
    "value", [True, 1.5, "NaN", "Infinity", Decimal("NaN"), Decimal("-Infinity"), None, "x"]
)
def test_parse_decimal_refuses(value: Any) -> None:
    assert f.parse_decimal(value) is None


@pytest.mark.parametrize(
    ("amount", "expected"),
    [
        (Decimal("1.50"), 2),
        (Decimal("1.5"), 1),
        (Decimal(1), 0),
        (Decimal("1E+2"), 0),
        (Decimal("0.0001"), 4),
        (Decimal("1.00001"), 5),
    ],
)
def test_places(amount: Decimal, expected: int) -> None:
    assert places(amount) == expected


@pytest.mark.parametrize(
    ("currency", "expected"),
    [
        ("USD", 2),
        ("usd", 2),
        ("EUR", 2),
        ("JPY", 0),
        ("jpy", 0),
        ("KWD", 3),
        ("BHD", 3),
        ("CLF", 4),
        ("XYZ", 2),
    ],
)
def test_minor_units(currency: str, expected: int) -> None:
    assert minor_unit(currency) == expected


@pytest.mark.parametrize(
    ("currency", "amount", "expected"),
    [
        ("USD", "1.005", "1.01"),
        ("USD", "1.004", "1.00"),
        ("USD", "0.125", "0.13"),  # half-up, not banker's (0.12)
        ("USD", "2.675", "2.68"),
        ("USD", "0.0049", "0.00"),
        ("USD", "10", "10.00"),
        ("USD", "35", "35.00"),
        ("USD", "99.995", "100.00"),
        ("JPY", "0.5", "1"),
        ("JPY", "2.5", "3"),  # banker's would give 2
        ("JPY", "1.4999", "1"),
        ("JPY", "1499.5", "1500"),
        ("JPY", "100", "100"),
        ("KWD", "1.0005", "1.001"),
        ("KWD", "1.0004", "1.000"),
        ("KWD", "0.0025", "0.003"),
        ("KWD", "7", "7.000"),
    ],
)
def test_round_money_half_up_to_the_minor_unit(currency: str, amount: str, expected: str) -> None:
    result = round_money(Decimal(amount), currency)
    assert str(result) == expected  # the value and exactly the minor unit's places


@pytest.mark.parametrize(
    "amount", [Decimal("12.3456"), Decimal("0.0001"), Decimal("9999999999.9999"), Decimal(7)]
)
def test_units_round_trip(amount: Decimal) -> None:
    units = to_units(amount)
    assert isinstance(units, int)
    assert from_units(units) == amount


# --- changing a stored coupon -------------------------------------------------------------

NOW = datetime(2026, 5, 1, tzinfo=UTC)


def stored(data: CouponFields, **extra: Any) -> Coupon:
    return Coupon(
        id="abcd-ef01-2345-6789",
        tenant_id="t-test",
        data=data,
        sys_version=3,
        sys_created_at=NOW,
        sys_last_modified_at=NOW,
        sys_created_by_id="k1",
        sys_last_modified_by_id="k1",
        **extra,
    )


def spring(**overrides: Any) -> CouponFields:
    return parse({**percent_coupon(code="SPRING", name="Spring"), **overrides})


def test_unlocked_coupon_takes_any_change() -> None:
    current = stored(spring())
    check_change_allowed(current, spring(name="Renamed", is_active=False))
    check_change_allowed(current, spring(sys_locked=True))


def test_locked_coupon_may_be_unlocked() -> None:
    current = stored(spring(sys_locked=True))
    check_change_allowed(current, spring(sys_locked=False))


@pytest.mark.parametrize(
    "change",
    [
        {"name": "Renamed"},
        {"is_active": False},
        {"value_percent": 20},
        {"comment": "note"},
        {"name": "Renamed", "sys_locked": False},  # unlocking plus another change
        {"is_active": False, "sys_locked": False},
    ],
)
def test_locked_coupon_refuses_other_changes(change: dict[str, Any]) -> None:
    change.setdefault("sys_locked", True)
    current = stored(spring(sys_locked=True))
    with pytest.raises(CouponLocked) as info:
        check_change_allowed(current, spring(**change))
    assert info.value.code == "coupon_locked"


def test_redeemed_coupon_keeps_its_code() -> None:
    current = stored(spring(), redeemed=True, times_used=1)
    with pytest.raises(CodeFrozen) as info:
        check_change_allowed(current, parse(percent_coupon(code="AUTUMN", name="Spring")))
    assert info.value.code == "code_frozen"


def test_redeemed_coupon_other_changes_allowed() -> None:
    current = stored(spring(), redeemed=True, times_used=1)
    check_change_allowed(current, spring(name="Renamed"))
    check_change_allowed(current, parse(percent_coupon(name="No code given")))


def test_unredeemed_coupon_code_may_change() -> None:
    current = stored(spring())
    check_change_allowed(current, parse(percent_coupon(code="AUTUMN")))


def total(value: Any, **overrides: Any) -> CouponFields:
    return parse({"coupon_type": "TOTAL_AMOUNT", "value_amount": value, **overrides})


@pytest.mark.parametrize(
    ("old", "remaining", "new", "expected"),
    [
        ("100", "30", "150", "80"),  # raised by the difference
        ("100", "30", "100", "30"),
        ("100", "30", "120.50", "50.50"),
        ("100", "30", "80", "10"),  # lowered by the difference
        ("100", "30", "70", "0"),
        ("100", "30", "50", "0"),  # never below zero
        ("100", "0", "100.01", "0.01"),
    ],
)
def test_remaining_follows_value_amount(old: str, remaining: str, new: str, expected: str) -> None:
    # remaining = value - drawn, so what redemptions drew is the difference
    drawn = Decimal(old) - Decimal(remaining)
    current = stored(total(old), remaining_amount=Decimal(remaining), credit_drawn=drawn)
    result = remaining_after_change(current, total(new))
    assert result == Decimal(expected)


def test_remaining_is_the_new_value_when_becoming_total_amount() -> None:
    current = stored(parse(amount_coupon(value_amount=40)))
    assert remaining_after_change(current, total("75.25")) == Decimal("75.25")


def test_remaining_without_stored_remaining_is_the_new_value() -> None:
    current = stored(total("100"), remaining_amount=None)
    assert remaining_after_change(current, total("60")) == Decimal(60)


@pytest.mark.parametrize(
    "new", [percent_coupon(), amount_coupon(value_amount=50), {"coupon_type": "USAGE"}]
)
def test_remaining_is_none_for_other_types(new: dict[str, Any]) -> None:
    current = stored(total("100"), remaining_amount=Decimal(30))
    assert remaining_after_change(current, parse(new)) is None
