"""Checks of single input values, shared by both dialects.

Each checker takes the raw value and the field name, and either returns the clean value or
records a problem in `Problems` and returns None, so a request is refused with every offending
field named at once.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from couponry.domain.money import MAX_AMOUNT, MAX_PLACES, places
from couponry.errors import FieldProblem, InvalidInput, UnknownField

# Control characters other than tab, line feed and carriage return break XML and logs.
# C0 and C1 controls other than tab, LF and CR; lone surrogates (from bad JSON escapes, which
# no database or XML can store); and U+FFFE/U+FFFF, which XML forbids.
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")
_DECIMAL_TEXT = re.compile(r"^-?[0-9]+(\.[0-9]+)?$")
_ISO_INSTANT = re.compile(
    r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:\d{2})$", re.IGNORECASE
)
MAX_INT = 2_147_483_647


class Problems:
    """Collects field problems; `raise_if_any` turns them into one error."""

    def __init__(self) -> None:
        self.items: list[FieldProblem] = []
        self.unknown: list[str] = []

    def add(self, field: str, message: str, *, missing: bool = False) -> None:
        self.items.append(FieldProblem(field, message, missing))

    def add_unknown(self, field: str) -> None:
        self.unknown.append(field)
        self.items.append(FieldProblem(field, "is not a known field"))

    def __bool__(self) -> bool:
        return bool(self.items)

    def raise_if_any(self) -> None:
        if not self.items:
            return
        if self.unknown:
            names = ", ".join(self.unknown)
            raise UnknownField(f"Unknown field(s): {names}.", self.items)
        fields = ", ".join(dict.fromkeys(p.field for p in self.items))
        raise InvalidInput(f"Invalid value for: {fields}.", self.items)


def has_control_chars(text: str) -> bool:
    return _CONTROL.search(text) is not None


def check_text(
    value: Any, field: str, problems: Problems, *, max_len: int, min_len: int = 0
) -> str | None:
    if not isinstance(value, str):
        problems.add(field, "must be a string")
        return None
    if len(value) < min_len:
        problems.add(field, f"must be at least {min_len} characters")
        return None
    if len(value) > max_len:
        problems.add(field, f"must be at most {max_len} characters")
        return None
    if has_control_chars(value):
        problems.add(field, "must not contain control characters or invalid Unicode")
        return None
    return value


def check_bool(value: Any, field: str, problems: Problems) -> bool | None:
    if not isinstance(value, bool):
        problems.add(field, "must be true or false")
        return None
    return value


def check_int(
    value: Any, field: str, problems: Problems, *, minimum: int = 1, maximum: int = MAX_INT
) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int):
        problems.add(field, "must be a whole number")
        return None
    if value < minimum or value > maximum:
        problems.add(field, f"must be between {minimum} and {maximum}")
        return None
    return value


def parse_decimal(value: Any) -> Decimal | None:
    """A JSON number (parsed as Decimal or int) or a decimal string; None if neither."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, Decimal):
        return value if value.is_finite() else None
    if isinstance(value, float):
        return None  # never reached for JSON input: floats are parsed as Decimal
    if isinstance(value, str) and _DECIMAL_TEXT.match(value.strip()):
        try:
            return Decimal(value.strip())
        except InvalidOperation:
            return None
    return None


def check_money(
    value: Any, field: str, problems: Problems, *, positive: bool = True
) -> Decimal | None:
    amount = parse_decimal(value)
    if amount is None:
        problems.add(field, "must be a decimal number (such as 12.50)")
        return None
    if amount < 0:
        problems.add(field, "must not be negative")
        return None
    if positive and amount == 0:
        problems.add(field, "must be greater than 0")
        return None
    if places(amount) > MAX_PLACES:
        problems.add(field, f"must have at most {MAX_PLACES} decimal places")
        return None
    if amount >= MAX_AMOUNT:
        problems.add(field, f"must be less than {MAX_AMOUNT}")
        return None
    return amount


def check_percent(value: Any, field: str, problems: Problems) -> Decimal | None:
    amount = parse_decimal(value)
    if amount is None:
        problems.add(field, "must be a decimal number")
        return None
    if not (Decimal(0) < amount <= Decimal(100)):
        problems.add(field, "must be greater than 0 and at most 100")
        return None
    if places(amount) > MAX_PLACES:
        problems.add(field, f"must have at most {MAX_PLACES} decimal places")
        return None
    return amount


def parse_instant(text: str) -> datetime | None:
    if not _ISO_INSTANT.match(text):
        return None
    try:
        parsed = datetime.fromisoformat(text.upper().replace("Z", "+00:00"))
        # OverflowError: an offset can carry the instant past year 9999 or before year 1.
        return parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        return None


def check_instant(value: Any, field: str, problems: Problems) -> datetime | None:
    if not isinstance(value, str):
        problems.add(field, "must be an ISO 8601 instant string such as 2026-05-01T00:00:00Z")
        return None
    parsed = parse_instant(value)
    if parsed is None:
        problems.add(
            field, "must be an ISO 8601 instant with a time zone, such as 2026-05-01T00:00:00Z"
        )
        return None
    if parsed.year < 1971 or parsed.year > 9998:
        problems.add(field, "must be between 1971 and 9998")
        return None
    return parsed


def check_enum(value: Any, field: str, problems: Problems, allowed: Iterable[str]) -> str | None:
    options = tuple(allowed)
    if not isinstance(value, str) or value not in options:
        problems.add(field, "must be one of: " + ", ".join(options))
        return None
    return value


def check_id_list(
    value: Any, field: str, problems: Problems, *, max_items: int = 1000
) -> list[str]:
    if not isinstance(value, list):
        problems.add(field, "must be an array of strings")
        return []
    if len(value) > max_items:
        problems.add(field, f"must have at most {max_items} items")
        return []
    clean: list[str] = []
    for index, item in enumerate(value):
        text = check_text(item, f"{field}[{index}]", problems, max_len=200, min_len=1)
        if text is not None:
            clean.append(text)
    return clean


def format_instant(value: datetime | None) -> str | None:
    """ISO 8601 with a Z; fractions only when there are some."""
    if value is None:
        return None
    # isoformat: four-digit years as RFC 3339 wants (strftime's %Y drops the zeros before
    # year 1000), microseconds only when there are some, and 5x faster than strftime.
    return value.astimezone(UTC).replace(tzinfo=None).isoformat() + "Z"
