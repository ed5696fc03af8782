"""The canonical coupon: its writable fields, their rules (SPEC 3), and its JSON view."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from couponry.domain.fields import (
    Problems,
    check_bool,
    check_enum,
    check_id_list,
    check_instant,
    check_int,
    check_money,
    check_percent,
    check_text,
    format_instant,
    has_control_chars,
    parse_decimal,
)
from couponry.errors import CodeFrozen, CouponLocked, FieldProblem, IdNotAllowed, InvalidInput

COUPON_TYPES = ("USAGE", "AMOUNT", "PERCENT", "TOTAL_AMOUNT")
ENTITY_TYPES = ("SITE", "PROGRAM_SESSION", "COURSE_SESSION", "EVENT", "GROUP")
DISCOUNT_METHODS = ("discount line item", "inline discount")
APPLIES_TO = ("new members", "renewing members", "all members")
INFO_METHODS = ("amount", "percentage")
STACKING_MODES = ("exclusive", "combinable")  # SPEC 11.2; the first is the default
# Room for any ordering a tenant needs, with gaps to insert between; bounded so a typo such as
# 10000000 is caught. Outside it, a 422 names `priority`.
PRIORITY_MIN = -1000
PRIORITY_MAX = 1000
CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I/L look-alikes


@dataclass(frozen=True)
class Category:
    """One Rhythm-style discount category and the cart line kind it covers."""

    flag: str
    info: str
    line_kind: str
    ids_key: str
    type_ids_key: str
    max_key: str | None = None


CATEGORIES = (
    Category(
        "apply_to_membership_packages",
        "membership_package_discount_info",
        "membership_package",
        "package_ids",
        "type_ids",
    ),
    Category(
        "apply_to_chapter_dues",
        "chapter_dues_discount_info",
        "chapter_dues",
        "chapter_ids",
        "chapter_type_ids",
        "maximum_number_of_chapters",
    ),
    Category(
        "apply_to_section_dues",
        "section_dues_discount_info",
        "section_dues",
        "section_ids",
        "section_type_ids",
        "maximum_number_of_sections",
    ),
    Category(
        "apply_to_add_on_products",
        "add_on_products_discount_info",
        "add_on_product",
        "add_on_ids",
        "add_on_type_ids",
    ),
)

# Rhythm metadata we accept on write, ignore, and show as null.
IGNORED_SYS_FIELDS = (
    "sys_bulk_load_pk",
    "sys_bulk_load_at",
    "sys_bulk_load_id",
    "sys_bulk_load_record_no",
    "sys_bulk_load_source_file",
    "sys_last_bulk_data_operation_id",
    "sys_last_bulk_data_operation_sys_version",
    "sys_directive",
    "sys_calculated_field_error",
    "sys_snapshot_base_version",
    "sys_has_files_in_s3",
    "sys_configuration_snapshot_id",
    "sys_last_security_context",
    "sys_calculated_field_errors",
)
# Set by the server; ignored when a client sends them back (so a GET body can be PUT).
READ_ONLY_FIELDS = (
    "id",
    "times_used",
    "remaining_amount",
    "budget_remaining",
    "sys_version",
    "sys_created_at",
    "sys_last_modified_at",
    "sys_created_by_id",
    "sys_last_modified_by_id",
    "sys_deleted_by_id",
)
CUSTOM_FIELD_KEYS = (
    "custom_field_id",
    "string_value",
    "numeric_value",
    "boolean_value",
    "file_url_value",
    "list_value",
    "table_value",
)


@dataclass(frozen=True)
class CouponFields:
    """Everything a client may write. `None` means unset (or: keep / generate, for `code`)."""

    name: str | None = None
    code: str | None = None
    is_active: bool = True
    comment: str | None = None
    custom_field_values: list[dict[str, Any]] | None = None
    code_generation_html: str | None = None
    sys_external_id: str | None = None
    sys_locked: bool = False
    coupon_type: str | None = None
    entity_type: str | None = None
    entity_id: str | None = None
    value_amount: Decimal | None = None
    value_percent: Decimal | None = None
    apply_to_membership_packages: bool = False
    membership_package_discount_info: dict[str, Any] | None = None
    apply_to_chapter_dues: bool = False
    chapter_dues_discount_info: dict[str, Any] | None = None
    apply_to_section_dues: bool = False
    section_dues_discount_info: dict[str, Any] | None = None
    apply_to_add_on_products: bool = False
    add_on_products_discount_info: dict[str, Any] | None = None
    discount_method: str = "inline discount"
    discount_product_id: str | None = None
    maximum_discount: Decimal | None = None
    starts_at: datetime | None = None
    expires_at: datetime | None = None
    usage_limit: int | None = None
    max_uses_per_user: int | None = None
    applies_to: str = "all members"
    authorized_group_id: str | None = None
    set_membership_expiration: bool = False
    add_user_to_coupons_group: bool = False
    require_approval: bool = False
    preview_access_only: bool = False
    budget_amount: Decimal | None = None  # what the coupon may give in all (SPEC 10)
    # Added after the others: a stored body without them reads these defaults (`from_stored`,
    # `stored_coupon_view`), so no migration is needed.
    stacking: str = "exclusive"  # SPEC 11.2: or "combinable"
    priority: int = 0  # SPEC 11.2: higher applies first

    @classmethod
    def from_stored(cls, values: Mapping[str, Any]) -> CouponFields:
        """The fields of a stored coupon (checked when they were written), made without
        `__init__`: its frozen assignments (one per field) were a third of reading a coupon
        (measured). A name that is not a field is still refused."""
        unknown = values.keys() - _FIELD_NAMES
        if unknown:
            raise TypeError(f"not coupon fields: {sorted(unknown)}")
        made = object.__new__(cls)
        made.__dict__.update(_FIELD_DEFAULTS)
        made.__dict__.update(values)
        return made


WRITABLE_FIELDS = tuple(f.name for f in fields(CouponFields))
_FIELD_NAMES = frozenset(WRITABLE_FIELDS)
_FIELD_DEFAULTS = {f.name: f.default for f in fields(CouponFields)}


@dataclass(frozen=True)
class Coupon:
    """A stored coupon: the writable fields plus what the server keeps."""

    id: str
    tenant_id: str
    data: CouponFields
    sys_version: int
    sys_created_at: datetime
    sys_last_modified_at: datetime
    sys_created_by_id: str | None
    sys_last_modified_by_id: str | None
    times_used: int = 0
    remaining_amount: Decimal | None = None
    sys_deleted_by_id: str | None = None
    redeemed: bool = field(default=False)
    credit_drawn: Decimal = Decimal(0)  # by redemptions that hold it (applied or pending)
    given: Decimal = Decimal(0)  # the discounts of the redemptions that hold a use

    @property
    def code(self) -> str:
        assert self.data.code is not None
        return self.data.code

    @property
    def budget_remaining(self) -> Decimal | None:
        return budget_left(self.data.budget_amount, self.given)


def budget_left(budget: Decimal | None, given: Decimal) -> Decimal | None:
    """What a budget has left to give (never below zero), or None without a budget."""
    return None if budget is None else max(Decimal(0), budget - given)


def generate_code(length: int = 10) -> str:
    """A random code a person can read aloud: uppercase, no look-alike characters."""
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(length))


def normalise_code(code: str) -> str:
    """Codes are unique and looked up ignoring case."""
    return code.lower()


def name_key(name: str | None, code: str | None) -> str | None:
    """A name as the console's search compares it: lower case (the typed text is too).

    None when the name is the code in another case (a coupon created without a name is named
    after its code): the search by code finds those, and the search by name, which leaves out
    what the code search found, would otherwise read each of them only to leave it out.
    """
    if name is None:
        return None
    lowered = name.lower()
    return None if code is not None and lowered == code.lower() else lowered


def check_code(value: Any, field_name: str, problems: Problems) -> str | None:
    if not isinstance(value, str):
        problems.add(field_name, "must be a string")
        return None
    if not (3 <= len(value) <= 64) or any(
        not (c.isascii() and (c.isalnum() or c in "_-")) for c in value
    ):
        problems.add(field_name, "must be 3-64 characters of letters, digits, '_' or '-'")
        return None
    return value


# --- parsing a client document ------------------------------------------------------------


def parse_coupon_input(doc: Mapping[str, Any], *, creating: bool) -> CouponFields:
    """Check a JSON document as a whole and return the writable fields it sets.

    Fields left out take their defaults. Read-only and ignored `sys_*` fields are dropped; an
    `id` is refused when creating. Raises InvalidInput / UnknownField naming every problem.
    """
    if creating and doc.get("id") is not None:
        raise IdNotAllowed(details=[FieldProblem("id", "is set by the server; leave it out")])
    problems = Problems()
    values: dict[str, Any] = {}
    for key, raw in doc.items():
        if key in READ_ONLY_FIELDS or key in IGNORED_SYS_FIELDS:
            continue
        if key not in WRITABLE_FIELDS:
            problems.add_unknown(key)
            continue
        if raw is None:
            if key in _NULLABLE:
                values[key] = None
            else:
                problems.add(key, "must not be null")
            continue
        checked = _FIELD_CHECKS[key](raw, key, problems)
        if checked is not None:
            values[key] = checked
    draft = CouponFields(**values)
    refused = frozenset(p.field.split(".", 1)[0].split("[", 1)[0] for p in problems.items)
    check_rules(draft, problems, refused)
    problems.raise_if_any()
    return draft


def check_rules(c: CouponFields, problems: Problems, refused: frozenset[str] = frozenset()) -> None:
    """Rules between fields (SPEC 3.2, 3.3).

    A rule that reads a field already refused (in `refused`) is skipped: that field reads as
    unset here, and blaming its neighbours for it would only mislead.
    """

    def add(field: str, message: str, *reads: str) -> None:
        if field not in refused and not refused.intersection(reads):
            problems.add(field, message, missing=message.startswith("is required"))

    flags = tuple(cat.flag for cat in CATEGORIES)
    has_category = any(getattr(c, flag) for flag in flags)
    if c.coupon_type is None and not has_category:
        add(
            "coupon_type",
            "a coupon must discount something: set coupon_type or an apply_to_*",
            *flags,
        )
    if c.coupon_type is None and (c.entity_type is not None or c.entity_id is not None):
        add("entity_type", "entity_type and entity_id need coupon_type", "coupon_type")
    if c.coupon_type is not None:
        entity_type = c.entity_type or "SITE"
        if entity_type != "SITE" and not c.entity_id:
            add("entity_id", f"is required when entity_type is {entity_type}", "entity_type")
    needs_amount = c.coupon_type in ("AMOUNT", "TOTAL_AMOUNT")
    if needs_amount and c.value_amount is None:
        add("value_amount", f"is required when coupon_type is {c.coupon_type}")
    if not needs_amount and c.value_amount is not None:
        add(
            "value_amount",
            "is only allowed when coupon_type is AMOUNT or TOTAL_AMOUNT",
            "coupon_type",
        )
    if c.coupon_type == "PERCENT" and c.value_percent is None:
        add("value_percent", "is required when coupon_type is PERCENT")
    if c.coupon_type != "PERCENT" and c.value_percent is not None:
        add("value_percent", "is only allowed when coupon_type is PERCENT", "coupon_type")
    for cat in CATEGORIES:
        if getattr(c, cat.flag) and getattr(c, cat.info) is None:
            add(cat.info, f"is required when {cat.flag} is true")
    if c.discount_method == "discount line item" and not c.discount_product_id:
        add("discount_product_id", "is required when discount_method is discount line item")
    if c.starts_at and c.expires_at and c.expires_at <= c.starts_at:
        add("expires_at", "must be after starts_at", "starts_at")
    if c.authorized_group_id is None:
        for flag in ("set_membership_expiration", "add_user_to_coupons_group", "require_approval"):
            if getattr(c, flag):
                add(flag, "needs authorized_group_id", "authorized_group_id")


def _text(max_len: int, min_len: int = 0) -> Any:
    def check(value: Any, name: str, problems: Problems) -> str | None:
        return check_text(value, name, problems, max_len=max_len, min_len=min_len)

    return check


def _enum(options: tuple[str, ...]) -> Any:
    def check(value: Any, name: str, problems: Problems) -> str | None:
        return check_enum(value, name, problems, options)

    return check


def _positive_int(value: Any, name: str, problems: Problems) -> int | None:
    return check_int(value, name, problems, minimum=1)


def _priority(value: Any, name: str, problems: Problems) -> int | None:
    return check_int(value, name, problems, minimum=PRIORITY_MIN, maximum=PRIORITY_MAX)


def _check_info(category: Category) -> Any:
    allowed = {"method", "amount", category.ids_key, category.type_ids_key}
    if category.max_key:
        allowed.add(category.max_key)

    def check(value: Any, name: str, problems: Problems) -> dict[str, Any] | None:
        if not isinstance(value, dict):
            problems.add(name, "must be an object")
            return None
        before = len(problems.items)
        for key in value:
            if key not in allowed:
                problems.add_unknown(f"{name}.{key}")
        method = check_enum(value.get("method"), f"{name}.method", problems, INFO_METHODS)
        amount: Decimal | None = None
        if method == "percentage":
            amount = check_percent(value.get("amount"), f"{name}.amount", problems)
        elif method == "amount":
            amount = check_money(value.get("amount"), f"{name}.amount", problems)
        info: dict[str, Any] = {"method": method, "amount": amount}
        for key in (category.ids_key, category.type_ids_key):
            raw = value.get(key)
            info[key] = [] if raw is None else check_id_list(raw, f"{name}.{key}", problems)
        if category.max_key:
            raw_max = value.get(category.max_key)
            info[category.max_key] = (
                None
                if raw_max is None
                else check_int(raw_max, f"{name}.{category.max_key}", problems, minimum=1)
            )
        return info if len(problems.items) == before else None

    return check


MAX_CUSTOM_FIELDS = 100


def patched_coupon_problem(document: Any) -> FieldProblem | None:
    """What a patch may not build even for a moment (checked after each operation).

    The whole coupon is checked once the patch is applied; this catches growth early, so a
    patch that copies the custom fields into themselves stops at the first copy too many.
    """
    values = document.get("custom_field_values") if isinstance(document, dict) else None
    if isinstance(values, list) and len(values) > MAX_CUSTOM_FIELDS:
        return FieldProblem("custom_field_values", f"must have at most {MAX_CUSTOM_FIELDS} entries")
    return None


def _check_custom_fields(value: Any, name: str, problems: Problems) -> list[dict[str, Any]] | None:
    if not isinstance(value, list):
        problems.add(name, "must be an array")
        return None
    if len(value) > MAX_CUSTOM_FIELDS:
        problems.add(name, f"must have at most {MAX_CUSTOM_FIELDS} entries")
        return None
    before = len(problems.items)
    clean: list[dict[str, Any]] = []
    for index, entry in enumerate(value):
        where = f"{name}[{index}]"
        if not isinstance(entry, dict):
            problems.add(where, "must be an object")
            continue
        for key in entry:
            if key not in CUSTOM_FIELD_KEYS:
                problems.add_unknown(f"{where}.{key}")
        item: dict[str, Any] = {k: None for k in CUSTOM_FIELD_KEYS}
        item["custom_field_id"] = check_text(
            entry.get("custom_field_id"),
            f"{where}.custom_field_id",
            problems,
            max_len=200,
            min_len=1,
        )
        _custom_values(entry, where, item, problems)
        clean.append(item)
    return clean if len(problems.items) == before else None


def _custom_values(
    entry: dict[str, Any], where: str, item: dict[str, Any], problems: Problems
) -> None:
    if entry.get("string_value") is not None:
        item["string_value"] = check_text(
            entry["string_value"], f"{where}.string_value", problems, max_len=10_000
        )
    if entry.get("file_url_value") is not None:
        item["file_url_value"] = check_text(
            entry["file_url_value"], f"{where}.file_url_value", problems, max_len=2_000
        )
    if entry.get("boolean_value") is not None:
        item["boolean_value"] = check_bool(
            entry["boolean_value"], f"{where}.boolean_value", problems
        )
    if entry.get("numeric_value") is not None:
        number = parse_decimal(entry["numeric_value"])
        if number is None or isinstance(entry["numeric_value"], str):
            problems.add(f"{where}.numeric_value", "must be a number")
        elif number != 0 and not (Decimal("1e-15") <= abs(number) < Decimal("1e15")):
            problems.add(f"{where}.numeric_value", "must be 0 or between 1e-15 and 1e15 in size")
        elif len(number.normalize().as_tuple().digits) > 15:
            problems.add(f"{where}.numeric_value", "must have at most 15 significant digits")
        else:
            item["numeric_value"] = number
    if entry.get("list_value") is not None:
        item["list_value"] = _check_string_list(
            entry["list_value"], f"{where}.list_value", problems
        )
    if entry.get("table_value") is not None:
        table = entry["table_value"]
        if not isinstance(table, list) or not all(isinstance(row, dict) for row in table):
            problems.add(f"{where}.table_value", "must be an array of objects")
        elif len(table) > 1000:
            problems.add(f"{where}.table_value", "must have at most 1000 rows")
        elif not _clean_json(table, 0):
            problems.add(
                f"{where}.table_value", "must not contain control characters or nest too deep"
            )
        else:
            item["table_value"] = table


def _check_string_list(value: Any, name: str, problems: Problems) -> list[str] | None:
    if not isinstance(value, list) or len(value) > 1000:
        problems.add(name, "must be an array of at most 1000 strings")
        return None
    out: list[str] = []
    for index, text in enumerate(value):
        checked = check_text(text, f"{name}[{index}]", problems, max_len=2_000)
        if checked is not None:
            out.append(checked)
    return out


def _clean_json(value: Any, depth: int) -> bool:
    """Free-form JSON (table_value) is stored as given, but never with control characters."""
    if depth > 8:
        return False
    if isinstance(value, str):
        return not has_control_chars(value)
    if isinstance(value, list):
        return all(_clean_json(v, depth + 1) for v in value)
    if isinstance(value, dict):
        return all(
            _clean_json(k, depth + 1) and _clean_json(v, depth + 1) for k, v in value.items()
        )
    return True


_NULLABLE = {
    "name",
    "code",
    "comment",
    "custom_field_values",
    "code_generation_html",
    "sys_external_id",
    "coupon_type",
    "entity_type",
    "entity_id",
    "value_amount",
    "value_percent",
    "discount_product_id",
    "maximum_discount",
    "starts_at",
    "expires_at",
    "usage_limit",
    "max_uses_per_user",
    "authorized_group_id",
    "budget_amount",
    *(cat.info for cat in CATEGORIES),
}

# The fields that take one of a few values: the checks below and the console's form read them.
CHOICES: dict[str, tuple[str, ...]] = {
    "coupon_type": COUPON_TYPES,
    "entity_type": ENTITY_TYPES,
    "discount_method": DISCOUNT_METHODS,
    "applies_to": APPLIES_TO,
    "stacking": STACKING_MODES,
}
NULLABLE_FIELDS = frozenset(_NULLABLE)

_FIELD_CHECKS: dict[str, Any] = {
    "name": _text(200, 1),
    "code": check_code,
    "is_active": check_bool,
    "comment": _text(2_000),
    "custom_field_values": _check_custom_fields,
    "code_generation_html": _text(65_536),
    "sys_external_id": _text(200),
    "sys_locked": check_bool,
    "coupon_type": _enum(CHOICES["coupon_type"]),
    "entity_type": _enum(CHOICES["entity_type"]),
    "entity_id": _text(2_000, 1),
    "value_amount": check_money,
    "value_percent": check_percent,
    "discount_method": _enum(CHOICES["discount_method"]),
    "discount_product_id": _text(200, 1),
    "maximum_discount": check_money,
    "starts_at": check_instant,
    "expires_at": check_instant,
    "usage_limit": _positive_int,
    "max_uses_per_user": _positive_int,
    "applies_to": _enum(CHOICES["applies_to"]),
    "authorized_group_id": _text(2_000, 1),
    "budget_amount": check_money,
    "stacking": _enum(CHOICES["stacking"]),
    "priority": _priority,
    **{cat.flag: check_bool for cat in CATEGORIES},
    **{cat.info: _check_info(cat) for cat in CATEGORIES},
    **{
        flag: check_bool
        for flag in (
            "set_membership_expiration",
            "add_user_to_coupons_group",
            "require_approval",
            "preview_access_only",
        )
    },
}
assert set(_FIELD_CHECKS) == set(WRITABLE_FIELDS)


# --- changing a stored coupon -------------------------------------------------------------


def check_change_allowed(current: Coupon, new: CouponFields) -> None:
    """A locked coupon takes only the change that unlocks it; a redeemed one keeps its code."""
    if current.data.sys_locked:
        unlocked_only = replace(current.data, sys_locked=False)
        if not (new == unlocked_only):
            raise CouponLocked()
    if current.redeemed and new.code is not None and new.code != current.data.code:
        raise CodeFrozen()
    check_budget_change(current.given, new.budget_amount)


_CENT = Decimal("0.01")


def check_budget_change(given: Decimal, budget: Decimal | None) -> None:
    """A budget can never be set below what its coupon has already given (SPEC 10)."""
    if budget is not None and budget < given:
        exponent = given.as_tuple().exponent
        shown = given if isinstance(exponent, int) and exponent < -2 else given.quantize(_CENT)
        raise InvalidInput(
            details=[
                FieldProblem(
                    "budget_amount",
                    f"must be at least what the coupon has already given ({shown})",
                )
            ]
        )


def remaining_after_change(current: Coupon, new: CouponFields) -> Decimal | None:
    """TOTAL_AMOUNT credit left: the value less what redemptions hold, never below zero.

    So raising `value_amount` raises it by the difference, and lowering it floors at zero.
    """
    if new.coupon_type != "TOTAL_AMOUNT" or new.value_amount is None:
        return None
    return max(Decimal(0), new.value_amount - current.credit_drawn)


# --- the JSON view ------------------------------------------------------------------------


def coupon_view(coupon: Coupon) -> dict[str, Any]:
    """The coupon as the REST dialect shows it (Rhythm field names; money as Decimal)."""
    return stored_coupon_view(
        coupon.id,
        vars(coupon.data),
        times_used=coupon.times_used,
        remaining_amount=coupon.remaining_amount,
        budget_remaining=coupon.budget_remaining,
        sys_version=coupon.sys_version,
        sys_created_at=coupon.sys_created_at,
        sys_last_modified_at=coupon.sys_last_modified_at,
        sys_created_by_id=coupon.sys_created_by_id,
        sys_last_modified_by_id=coupon.sys_last_modified_by_id,
        sys_deleted_by_id=coupon.sys_deleted_by_id,
    )


def stored_coupon_view(
    coupon_id: str,
    fields: Mapping[str, Any],
    *,
    times_used: int,
    remaining_amount: Decimal | None,
    budget_remaining: Decimal | None,
    sys_version: int,
    sys_created_at: datetime,
    sys_last_modified_at: datetime,
    sys_created_by_id: str | None,
    sys_last_modified_by_id: str | None,
    sys_deleted_by_id: str | None,
) -> dict[str, Any]:
    """The view from the writable fields by name (a `CouponFields`' own, or as stored: a name
    an older record lacks shows its default) and what the server keeps. GET renders a stored
    coupon with it, without making the `Coupon` first (a fifth of a GET's CPU, measured)."""
    view: dict[str, Any] = {"id": coupon_id}
    given = fields.get
    for name, default in _FIELD_DEFAULTS.items():
        value = given(name, default)
        view[name] = format_instant(value) if isinstance(value, datetime) else value
    view["times_used"] = times_used
    view["remaining_amount"] = remaining_amount
    view["budget_remaining"] = budget_remaining
    view["sys_version"] = sys_version
    view["sys_created_at"] = format_instant(sys_created_at)
    view["sys_last_modified_at"] = format_instant(sys_last_modified_at)
    view["sys_created_by_id"] = sys_created_by_id
    view["sys_last_modified_by_id"] = sys_last_modified_by_id
    view["sys_deleted_by_id"] = sys_deleted_by_id
    view.update(_IGNORED_VIEW)
    return view


_IGNORED_VIEW = dict.fromkeys(IGNORED_SYS_FIELDS)


ALL_VIEW_FIELDS = (
    "id",
    *WRITABLE_FIELDS,
    "times_used",
    "remaining_amount",
    "budget_remaining",
    *READ_ONLY_FIELDS[4:],
    *IGNORED_SYS_FIELDS,
)
