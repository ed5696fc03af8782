"""The cart a checkout sends to validate or redeem (SPEC 6.1), checked field by field."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

from couponry.domain.fields import Problems, check_enum, check_int, check_money, check_text
from couponry.domain.money import MAX_AMOUNT

# The range of a hold (SPEC 11.1); also in domain.redemptions, which imports the cart.
MIN_HOLD_SECONDS, MAX_HOLD_SECONDS = 60, 86_400

LINE_KINDS = (
    "course_session",
    "program_session",
    "event",
    "membership_package",
    "chapter_dues",
    "section_dues",
    "add_on_product",
    "other",
)
MEMBERSHIP_STATUSES = ("new", "renewal")
MAX_LINES = 500
MAX_QUANTITY = 100_000
# A line's total (unit_price x quantity) and the cart's total stay below MAX_AMOUNT, like every
# stored amount: then every discount, credit draw and recorded total fits the store (1/10,000
# units in a 64-bit integer) and a JSON number exactly, and validate and redeem agree.
MAX_TOTAL = MAX_AMOUNT
_CART_KEYS = {"code", "codes", "policy", "user_id", "membership_status", "lines", "hold_seconds"}
MAX_CODES = 5  # in one cart (SPEC 11.2)
POLICIES = ("all", "partial")
_LINE_KEYS = {
    "line_id",
    "kind",
    "id",
    "type_id",
    "group_ids",
    "program_session_id",
    "unit_price",
    "quantity",
}


@dataclass(frozen=True)
class CartLine:
    line_id: str
    kind: str
    id: str
    type_id: str | None
    group_ids: tuple[str, ...]
    program_session_id: str | None
    unit_price: Decimal
    quantity: int

    @property
    def total(self) -> Decimal:
        return self.unit_price * self.quantity


@dataclass(frozen=True)
class Cart:
    code: str
    user_id: str
    membership_status: str | None
    lines: tuple[CartLine, ...]
    hold_seconds: int | None = None  # make a hold (SPEC 11.1) rather than apply
    # Several codes (SPEC 11.2): then `code` is "" and `codes` holds them, in cart order.
    codes: tuple[str, ...] = ()
    policy: str = "all"

    @property
    def several(self) -> bool:
        return bool(self.codes)

    def with_code(self, code: str) -> Cart:
        """This cart as if it named one of its codes alone."""
        return replace(self, code=code, codes=(), policy="all")


def parse_cart(doc: Any) -> Cart:
    """Check a cart as a whole; InvalidInput / UnknownField name every problem."""
    problems = Problems()
    if not isinstance(doc, Mapping):
        problems.add("body", "must be a JSON object")
        problems.raise_if_any()
        raise AssertionError  # unreachable
    for key in doc:
        if key not in _CART_KEYS:
            problems.add_unknown(key)
    code, codes, policy = _codes(doc, problems)
    user_id = check_text(doc.get("user_id"), "user_id", problems, max_len=200, min_len=1)
    status = doc.get("membership_status")
    if status is not None:
        status = check_enum(status, "membership_status", problems, MEMBERSHIP_STATUSES)
    lines = _lines(doc.get("lines"), problems)
    hold = doc.get("hold_seconds")
    if hold is not None:
        hold = check_int(
            hold, "hold_seconds", problems, minimum=MIN_HOLD_SECONDS, maximum=MAX_HOLD_SECONDS
        )
    problems.raise_if_any()
    assert code is not None and user_id is not None
    return Cart(
        code=code,
        user_id=user_id,
        membership_status=status,
        lines=tuple(lines),
        hold_seconds=hold,
        codes=codes,
        policy=policy,
    )


def _codes(doc: Mapping[str, Any], problems: Problems) -> tuple[str | None, tuple[str, ...], str]:
    """`code`, or `codes` (1 to 5, distinct ignoring case) with a `policy`: never both."""
    policy = "all"
    if doc.get("policy") is not None:
        if "codes" not in doc:
            problems.add("policy", "is only allowed with codes")
        policy = check_enum(doc["policy"], "policy", problems, POLICIES) or "all"
    if "codes" not in doc:
        return check_text(doc.get("code"), "code", problems, max_len=64, min_len=1), (), policy
    if "code" in doc:
        problems.add("code", "give either code or codes, not both")
    raw = doc["codes"]
    if not isinstance(raw, list) or not 1 <= len(raw) <= MAX_CODES:
        problems.add("codes", f"must be an array of 1 to {MAX_CODES} codes")
        return "", (), policy
    codes: list[str] = []
    seen: dict[str, int] = {}
    for index, value in enumerate(raw):
        code = check_text(value, f"codes[{index}]", problems, max_len=64, min_len=1)
        if code is None:
            continue
        if code.lower() in seen:
            problems.add(f"codes[{index}]", f"repeats codes[{seen[code.lower()]}]")
            continue
        seen[code.lower()] = index
        codes.append(code)
    return "", tuple(codes), policy


def _lines(raw: Any, problems: Problems) -> list[CartLine]:
    if raw is None:
        problems.add("lines", "is required", missing=True)
        return []
    if not isinstance(raw, list) or not raw:
        problems.add("lines", "must be an array of at least one line")
        return []
    if len(raw) > MAX_LINES:
        problems.add("lines", f"must have at most {MAX_LINES} lines")
        return []
    lines: list[CartLine] = []
    seen: set[str] = set()
    for index, item in enumerate(raw):
        line = _line(item, f"lines[{index}]", problems)
        if line is None:
            continue
        if line.line_id in seen:
            problems.add(f"lines[{index}].line_id", "must be unique within the cart")
        seen.add(line.line_id)
        lines.append(line)
    if len(lines) == len(raw) and sum(line.total for line in lines) >= MAX_TOTAL:
        problems.add("lines", f"the cart's total must be less than {MAX_TOTAL}")
    return lines


def _line(item: Any, where: str, problems: Problems) -> CartLine | None:
    if not isinstance(item, Mapping):
        problems.add(where, "must be an object")
        return None
    before = len(problems.items)
    for key in item:
        if key not in _LINE_KEYS:
            problems.add_unknown(f"{where}.{key}")
    line_id = _required_text(item, "line_id", where, problems)
    kind = check_enum(item.get("kind"), f"{where}.kind", problems, LINE_KINDS)
    item_id = _required_text(item, "id", where, problems)
    type_id = _optional_text(item, "type_id", where, problems)
    program_session_id = _optional_text(item, "program_session_id", where, problems)
    groups = item.get("group_ids")
    group_ids: list[str] = []
    if groups is not None:
        if not isinstance(groups, list) or len(groups) > 100:
            problems.add(f"{where}.group_ids", "must be an array of at most 100 ids")
        else:
            for i, gid in enumerate(groups):
                text = check_text(gid, f"{where}.group_ids[{i}]", problems, max_len=200, min_len=1)
                if text is not None:
                    group_ids.append(text)
    price = check_money(item.get("unit_price"), f"{where}.unit_price", problems, positive=False)
    quantity = check_int(
        item.get("quantity"), f"{where}.quantity", problems, minimum=1, maximum=MAX_QUANTITY
    )
    if len(problems.items) != before:
        return None
    assert price is not None and quantity is not None
    if price * quantity >= MAX_TOTAL:
        problems.add(f"{where}.quantity", f"unit_price x quantity must be less than {MAX_TOTAL}")
        return None
    assert line_id and kind and item_id and price is not None and quantity is not None
    return CartLine(
        line_id=line_id,
        kind=kind,
        id=item_id,
        type_id=type_id,
        group_ids=tuple(group_ids),
        program_session_id=program_session_id,
        unit_price=price,
        quantity=quantity,
    )


def _required_text(item: Mapping[str, Any], key: str, where: str, problems: Problems) -> str | None:
    if item.get(key) is None:
        problems.add(f"{where}.{key}", "is required", missing=True)
        return None
    return check_text(item[key], f"{where}.{key}", problems, max_len=200, min_len=1)


def _optional_text(item: Mapping[str, Any], key: str, where: str, problems: Problems) -> str | None:
    if item.get(key) is None:
        return None
    return check_text(item[key], f"{where}.{key}", problems, max_len=200, min_len=1)
