"""EduBrite form parameters to canonical coupon fields, and coupons back to EduBrite fields.

Names differ on purpose (SPEC 7.2): the request takes `authorizedGroup` (an id or a path) and
the reply shows the resolved `authorizedGroupId`; the reply's `usedCount` is `times_used`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from couponry.domain.coupons import Coupon
from couponry.domain.fields import Problems, format_instant
from couponry.errors import BadParameter, FieldProblem

# request parameter -> canonical field
PARAM_FIELDS = {
    "couponName": "name",
    "authCode": "code",
    "type": "coupon_type",
    "entityType": "entity_type",
    "entityId": "entity_id",
    "valueCount": "usage_limit",
    "valueAmount": "value_amount",
    "valuePercent": "value_percent",
    "startDate": "starts_at",
    "expDate": "expires_at",
    "authorizedGroup": "authorized_group_id",
    "setMembershipExpiration": "set_membership_expiration",
    "addUserToCouponsGroup": "add_user_to_coupons_group",
    "requireApproval": "require_approval",
    "previewAccessOnly": "preview_access_only",
    "status": "is_active",
    "comment": "comment",
}
FIELD_PARAMS = {field: param for param, field in PARAM_FIELDS.items()}
BOOLEAN_PARAMS = {
    "setMembershipExpiration",
    "addUserToCouponsGroup",
    "requireApproval",
    "previewAccessOnly",
}
DATE_PARAMS = {"startDate", "expDate"}
# Optional fields an empty value clears on update; any other empty value is refused.
CLEARABLE = {"comment", "startDate", "expDate", "valueCount", "authorizedGroup"}
COMMON_PARAMS = {"dispatch", "xml", "realUserName"}
DISPATCH_PARAMS: dict[str, set[str]] = {
    "createCoupon": set(PARAM_FIELDS),
    "updateCoupon": set(PARAM_FIELDS) | {"id"},
    "getCoupon": {"id", "authCode"},
    "listCoupons": {"currPage", "pageSize", "status"},
    "deleteCoupon": {"id"},
}
READ_DISPATCHES = {"getCoupon", "listCoupons"}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MILLIS = re.compile(r"^-?[0-9]{1,15}$")
# What a datetime can hold (years 1 to 9999); the domain then asks for 1971 to 9998.
_MIN_MILLIS = (datetime(1, 1, 1, tzinfo=UTC) - _EPOCH) // timedelta(milliseconds=1)
_MAX_MILLIS = (datetime(9999, 12, 31, 23, 59, 59, 999000, tzinfo=UTC) - _EPOCH) // timedelta(
    milliseconds=1
)
_COUNT = re.compile(r"^[0-9]{1,10}$")


def param_name(field: str) -> str:
    """The EduBrite name of a canonical field (for error messages)."""
    head, dot, rest = field.partition(".")
    return FIELD_PARAMS.get(head, head) + dot + rest


# Only names with an underscore: they cannot be the plain words a caller's value may hold.
_FIELD_WORDS = re.compile(
    r"\b(" + "|".join(sorted((f for f in FIELD_PARAMS if "_" in f), key=len, reverse=True)) + r")\b"
)


def in_edubrite_terms(message: str) -> str:
    """Domain rule messages name canonical fields; this dialect's callers know the parameters."""
    return _FIELD_WORDS.sub(lambda m: FIELD_PARAMS[m.group(1)], message)


def refuse(problems: Problems) -> None:
    """Raise the adapter's own refusal (its fields are already parameter names)."""
    if problems.items:
        fields = ", ".join(dict.fromkeys(p.field for p in problems.items))
        raise BadParameter(f"Bad parameter(s): {fields}.", problems.items)


def required_for(dispatch: str, params: Mapping[str, str]) -> None:
    """1001 before anything else: the parameters a dispatch cannot do without."""
    problems = Problems()

    def need(name: str, why: str = "is required") -> None:
        if not params.get(name, "").strip():
            problems.add(name, why, missing=True)

    if dispatch == "createCoupon":
        need("type")
        kind = params.get("type", "").strip().upper()
        if kind in ("AMOUNT", "TOTAL_AMOUNT"):
            need("valueAmount", f"is required when type is {kind}")
        if kind == "PERCENT":
            need("valuePercent", "is required when type is PERCENT")
        entity = params.get("entityType", "").strip().upper()
        if entity and entity != "SITE":
            need("entityId", f"is required when entityType is {entity}")
    elif dispatch in ("updateCoupon", "deleteCoupon"):
        need("id")
    elif dispatch == "getCoupon" and not params.get("authCode", "").strip():
        need("id", "is required (or authCode)")
    refuse(problems)


def check_known(dispatch: str, params: Mapping[str, str]) -> None:
    allowed = DISPATCH_PARAMS[dispatch] | COMMON_PARAMS
    unknown = sorted(k for k in params if k not in allowed)
    if unknown:
        raise BadParameter(
            f"Unknown parameter(s) for {dispatch}: {', '.join(unknown)}.",
            [FieldProblem(k, "is not a parameter of " + dispatch) for k in unknown],
        )


def require(params: Mapping[str, str], *names: str) -> None:
    missing = [n for n in names if not params.get(n, "").strip()]
    if missing:
        raise BadParameter(
            f"Missing parameter(s): {', '.join(missing)}.",
            [FieldProblem(n, "is required", missing=True) for n in missing],
        )


def coupon_fields(params: Mapping[str, str], *, updating: bool) -> dict[str, Any]:
    """Canonical field values for the coupon parameters given.

    On create an empty value means "not given"; on update it clears a clearable field and is
    refused for any other.
    """
    problems = Problems()
    fields: dict[str, Any] = {}
    for param, field in PARAM_FIELDS.items():
        if param not in params:
            continue
        raw = params[param]
        if raw.strip() == "":
            if not updating:
                continue
            if param in CLEARABLE:
                fields[field] = None
            else:
                problems.add(param, "cannot be cleared")
            continue
        value = _convert(param, raw, problems)
        if value is not None:
            fields[field] = value
    refuse(problems)
    return fields


def _convert(param: str, raw: str, problems: Problems) -> Any:
    text = raw.strip()
    if param in BOOLEAN_PARAMS:
        if text.lower() not in ("true", "false"):
            problems.add(param, "must be true or false")
            return None
        return text.lower() == "true"
    if param == "status":
        if text.upper() not in ("ACTIVE", "INACTIVE"):
            problems.add(param, "must be ACTIVE or INACTIVE")
            return None
        return text.upper() == "ACTIVE"
    if param in DATE_PARAMS:
        if not _MILLIS.match(text):
            problems.add(param, "must be epoch milliseconds, such as 1495163497116")
            return None
        millis = int(text)
        if not _MIN_MILLIS <= millis <= _MAX_MILLIS:
            problems.add(param, "must be between 1971 and 9998")
            return None
        return format_instant(_EPOCH + timedelta(milliseconds=millis))
    if param == "valueCount":
        if not _COUNT.match(text):
            problems.add(param, "must be a positive whole number")
            return None
        return int(text)
    if param in ("authCode", "type", "entityType", "entityId", "authorizedGroup"):
        return text
    return raw  # names, comments and amounts as given (amounts are parsed as decimals)


def page_params(params: Mapping[str, str]) -> tuple[int, int, bool | None]:
    """listCoupons: currPage from 0, pageSize 1-100 (default 20), optional status."""
    problems = Problems()
    page, size, active = 0, 20, None
    raw_page = params.get("currPage", "").strip()
    if raw_page:
        if _COUNT.match(raw_page) and int(raw_page) <= 10_000_000:
            page = int(raw_page)
        else:
            problems.add("currPage", "must be a whole number from 0")
    raw_size = params.get("pageSize", "").strip()
    if raw_size:
        if _COUNT.match(raw_size) and 1 <= int(raw_size) <= 100:
            size = int(raw_size)
        else:
            problems.add("pageSize", "must be a whole number from 1 to 100")
    status = params.get("status", "").strip()
    if status:
        if status.upper() in ("ACTIVE", "INACTIVE"):
            active = status.upper() == "ACTIVE"
        else:
            problems.add("status", "must be ACTIVE or INACTIVE")
    refuse(problems)
    return page, size, active


def _millis(value: datetime | None) -> int | None:
    if value is None:
        return None
    return (value - _EPOCH) // timedelta(milliseconds=1)


def edubrite_view(coupon: Coupon) -> list[tuple[str, Any]]:
    """The coupon's EduBrite fields, in reply order, typed (str, int, Decimal, bool, None)."""
    d = coupon.data
    return [
        ("couponName", d.name),
        ("authCode", d.code),
        ("type", d.coupon_type),
        ("entityType", d.entity_type),
        ("entityId", d.entity_id),
        ("valueCount", d.usage_limit),
        ("usedCount", coupon.times_used),
        ("valueAmount", d.value_amount),
        ("remainingAmount", coupon.remaining_amount),
        ("valuePercent", d.value_percent),
        ("startDate", _millis(d.starts_at)),
        ("expDate", _millis(d.expires_at)),
        ("authorizedGroupId", d.authorized_group_id),
        ("setMembershipExpiration", d.set_membership_expiration),
        ("addUserToCouponsGroup", d.add_user_to_coupons_group),
        ("requireApproval", d.require_approval),
        ("previewAccessOnly", d.preview_access_only),
        ("status", "ACTIVE" if d.is_active else "INACTIVE"),
        ("comment", d.comment),
    ]


def plain_decimal(value: Decimal) -> str:
    """`12.5`, never `1.25E+1`."""
    text = format(value.normalize(), "f")
    return text
