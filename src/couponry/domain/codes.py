"""A coupon's campaign codes (SPEC 10): what a request to add some must hold, and their view."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from couponry.domain.coupons import check_code, normalise_code
from couponry.domain.fields import Problems, check_int, format_instant
from couponry.errors import FieldProblem

MAX_CODES_PER_CALL = 1000
_ADD_KEYS = frozenset({"codes", "max_uses"})


@dataclass(frozen=True)
class NewCodes:
    codes: tuple[str, ...]  # as given
    max_uses: int | None  # None: unlimited


@dataclass(frozen=True)
class CampaignCode:
    seq: int
    coupon_id: str
    code: str
    max_uses: int | None
    times_used: int
    is_active: bool
    created_at: datetime
    last_used_at: datetime | None


@dataclass(frozen=True)
class TypedCode:
    """The code a cart names, as the tenant's codes hold it: the coupon's own code, or one of
    its campaign codes with that code's own limit and state."""

    code: str  # as stored (the redemption records it so)
    own: bool
    is_active: bool
    max_uses: int | None
    times_used: int

    @property
    def normalized(self) -> str:
        return normalise_code(self.code)

    @property
    def used_up(self) -> bool:
        return self.max_uses is not None and self.times_used >= self.max_uses


def parse_new_codes(doc: Any) -> NewCodes:
    """`{"codes": [...], "max_uses": 1}`: 1 to 1,000 codes, each as a coupon's `code` (SPEC
    3.1), none twice (ignoring case); `max_uses` 1 or more, null for unlimited, default 1.
    InvalidInput / UnknownField name every problem; a repeated code is named at each place."""
    problems = Problems()
    if not isinstance(doc, Mapping):
        problems.add("body", "must be a JSON object")
        problems.raise_if_any()
        raise AssertionError  # unreachable
    for key in doc:
        if key not in _ADD_KEYS:
            problems.add_unknown(str(key))
    raw = doc.get("codes")
    codes: list[str] = []
    if not isinstance(raw, list) or not 1 <= len(raw) <= MAX_CODES_PER_CALL:
        problems.add(
            "codes", f"must be an array of 1 to {MAX_CODES_PER_CALL} codes", missing=raw is None
        )
    else:
        first_at: dict[str, int] = {}
        for index, value in enumerate(raw):
            code = check_code(value, f"codes[{index}]", problems)
            if code is None:
                continue
            key = normalise_code(code)
            if key in first_at:
                problems.add(
                    f"codes[{index}]", f"repeats codes[{first_at[key]}] ({code!r}, ignoring case)"
                )
                continue
            first_at[key] = index
            codes.append(code)
    max_uses: int | None = 1
    if "max_uses" in doc:
        given = doc["max_uses"]
        max_uses = None if given is None else check_int(given, "max_uses", problems)
    problems.raise_if_any()
    return NewCodes(tuple(codes), max_uses)


def taken_codes_refusal(taken: list[str]) -> list[FieldProblem]:
    return [FieldProblem("codes", f"{code!r} is already a code of this tenant") for code in taken]


def code_view(code: CampaignCode) -> dict[str, Any]:
    return {
        "code": code.code,
        "max_uses": code.max_uses,
        "times_used": code.times_used,
        "is_active": code.is_active,
        "created_at": format_instant(code.created_at),
        "last_used_at": format_instant(code.last_used_at),
    }


CSV_HEADER = ("code", "max_uses", "times_used", "is_active", "created_at", "last_used_at")
# OWASP's CSV injection advice: a cell a spreadsheet could read as a formula starts with one of
# these; it is written quoted, after a single quote, so it shows as the text it is.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Any) -> str:
    """One cell: text as is (quoted when it holds a comma, quote or line break), numbers and
    booleans as JSON writes them, instants as the API shows them, nothing for null."""
    if value is None:
        text = ""
    elif isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, datetime):
        text = format_instant(value) or ""
    else:
        text = str(value)
    if text.startswith(_FORMULA_STARTS):
        text = "'" + text
        return '"' + text.replace('"', '""') + '"'
    if any(c in text for c in ',"\r\n'):
        return '"' + text.replace('"', '""') + '"'
    return text


def csv_line(values: tuple[Any, ...]) -> str:
    return ",".join(csv_cell(v) for v in values) + "\r\n"


def code_csv_line(code: CampaignCode) -> str:
    return csv_line(
        (
            code.code,
            code.max_uses,
            code.times_used,
            code.is_active,
            code.created_at,
            code.last_used_at,
        )
    )
