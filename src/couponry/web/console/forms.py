"""The coupon form of the console, derived from the coupon's one description (CouponFields).

Each writable field gets one labelled input whose kind follows the field's type; the values
typed are handed, as text, to the same domain checks the API uses (`parse_coupon_input`), so
the rules live in one place. A refused form is shown again with every value as typed and each
problem beside its field.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import datetime
from decimal import Decimal
from typing import Any

from couponry.domain.coupons import (
    CHOICES,
    NULLABLE_FIELDS,
    Coupon,
    CouponFields,
    parse_coupon_input,
)
from couponry.domain.fields import format_instant
from couponry.errors import (
    CouponryError,
    FieldProblem,
    Forbidden,
    InvalidInput,
    NotFound,
    Unauthorized,
)
from couponry.web.errors import status_for

# Shown first, in this order; the other fields follow in CouponFields' order.
_FIRST = (
    "code",
    "name",
    "is_active",
    "coupon_type",
    "value_amount",
    "value_percent",
    "usage_limit",
    "max_uses_per_user",
    "starts_at",
    "expires_at",
    "entity_type",
    "entity_id",
    "comment",
)
_LABELS = {"sys_external_id": "External id", "sys_locked": "Locked"}
_HINTS = {
    "code": "3-64 letters, digits, '_' or '-'; left empty, one is made up",
    "starts_at": "such as 2026-05-01T00:00:00Z",
    "expires_at": "such as 2026-12-31T23:59:59Z",
    "value_amount": "such as 12.50",
    "value_percent": "greater than 0, at most 100",
}


@dataclass(frozen=True)
class FormField:
    name: str
    label: str
    kind: str  # text, textarea, checkbox, select, number, json
    choices: tuple[str, ...]
    optional: bool  # an empty input means "not set"
    hint: str
    primary: bool  # shown before "More fields"


def _kind(name: str, annotation: str) -> str:
    if name in CHOICES:
        return "select"
    if annotation == "bool":
        return "checkbox"
    if annotation.startswith("int"):
        return "number"
    if annotation.startswith(("dict", "list")):
        return "json"
    if name in ("comment", "code_generation_html"):
        return "textarea"
    return "text"  # str, Decimal and datetime: typed as text, checked by the domain


def _label(name: str) -> str:
    return _LABELS.get(name) or name.replace("_", " ").capitalize()


def _build() -> tuple[FormField, ...]:
    by_name = {f.name: str(f.type) for f in fields(CouponFields)}
    order = [*_FIRST, *(n for n in by_name if n not in _FIRST)]
    return tuple(
        FormField(
            name=n,
            label=_label(n),
            kind=_kind(n, by_name[n]),
            choices=CHOICES.get(n, ()),
            optional=n in NULLABLE_FIELDS,
            hint=_HINTS.get(n, ""),
            primary=n in _FIRST,
        )
        for n in order
    )


COUPON_FORM = _build()
_BY_NAME = {f.name: f for f in COUPON_FORM}


def _as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "on" if value else ""
    if isinstance(value, datetime):
        return format_instant(value) or ""
    if isinstance(value, (dict, list)):
        return json.dumps(value, indent=1, default=_json_value)
    return str(value)


def _json_value(value: Any) -> Any:
    """A JSON field's numbers as numbers (the API's checks refuse a number sent as text)."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, datetime):
        return format_instant(value)
    raise TypeError(f"cannot show {type(value).__name__} as JSON")


def values_of(coupon: Coupon | None) -> dict[str, str]:
    """What the form shows for a coupon (or, without one, for a new coupon's defaults)."""
    data = coupon.data if coupon is not None else CouponFields()
    return {f.name: _as_text(getattr(data, f.name)) for f in COUPON_FORM}


def typed_values(form: Mapping[str, Any]) -> dict[str, str]:
    """The values as typed, kept to show the form again (unchecked boxes are not sent)."""
    return {f.name: str(form.get(f.name, "")) for f in COUPON_FORM}


def coupon_document(typed: Mapping[str, str]) -> dict[str, Any]:
    """The form as the API's JSON document; InvalidInput when a JSON field is not JSON."""
    doc: dict[str, Any] = {}
    problems: list[FieldProblem] = []
    for f in COUPON_FORM:
        text = typed.get(f.name, "")
        if f.kind == "checkbox":
            doc[f.name] = text != ""
        elif text.strip() == "":
            if f.optional:
                doc[f.name] = None
            # else: left out, so the field takes its default
        elif f.kind == "number":
            stripped = text.strip()
            doc[f.name] = int(stripped) if _is_int(stripped) else text
        elif f.kind == "json":
            try:
                doc[f.name] = json.loads(text, parse_float=Decimal)
            except ValueError as exc:
                problems.append(FieldProblem(f.name, f"must be JSON ({exc.args[0]})"))
            except RecursionError:
                problems.append(FieldProblem(f.name, "must be JSON nested less deeply"))
        else:
            doc[f.name] = text
    if problems:
        # The rest of the form checked too (the domain's checks, which do no I/O), so every
        # error shows at once; a field that is not JSON has its one error.
        bad = {p.field for p in problems}
        try:
            parse_coupon_input(doc, creating=False)
        except CouponryError as refused:
            problems += [p for p in refused.details if p.field.split(".")[0] not in bad]
        raise InvalidInput("Some fields are not valid.", problems)
    return doc


def _is_int(text: str) -> bool:
    body = text[1:] if text[:1] == "-" else text
    return body.isascii() and body.isdigit() and len(body) < 12


def field_errors(
    error: CouponryError, names: tuple[str, ...] | None = None
) -> tuple[dict[str, list[str]], list[str]]:
    """Each problem beside the field it concerns; the rest (and the message) for the top."""
    known = set(names) if names is not None else set(_BY_NAME)
    by_field: dict[str, list[str]] = {}
    general: list[str] = []
    for problem in error.details:
        top = problem.field.split(".", 1)[0].split("[", 1)[0]
        text = problem.message if problem.field == top else f"{problem.field}: {problem.message}"
        if top in known:
            by_field.setdefault(top, []).append(text)
        else:
            general.append(f"{problem.field}: {problem.message}")
    if not by_field and not general:
        general.append(error.message)
    return by_field, general


def shown_in_form(error: CouponryError) -> bool:
    """Refusals the form shows beside its fields, or at its top (a coupon changed by someone
    else meanwhile, a locked coupon, a redeemed coupon's code), with everything typed kept.
    What the form cannot help with (not found, not allowed) is the console's error page."""
    return not isinstance(error, (NotFound, Forbidden, Unauthorized)) and (status_for(error) < 500)


GENERATION_FIELDS = ("count", "pattern")


def generation_document(typed: Mapping[str, str]) -> dict[str, Any]:
    """`Generate codes` as the API's JSON: a count that is not a whole number goes as typed,
    for the domain's check to name; an empty pattern is left out (ten random characters)."""
    count = typed.get("count", "").strip()
    doc: dict[str, Any] = {"count": int(count) if _is_int(count) else (count or None)}
    pattern = typed.get("pattern", "").strip()
    if pattern:
        doc["pattern"] = pattern
    return doc
