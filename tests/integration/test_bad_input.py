"""SPEC 9 through the REST API, on both backends: every bad input is refused with the right
status, error code and named field, with the SPEC 4.3 envelope and no internals, and NOTHING is
written: after a refused create the tenant's scan is unchanged; after a refused PUT or PATCH
the coupon's body and `sys_version` are unchanged.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

import pytest

from tests.conftest import Api, TenantKeys, percent_coupon

JSON = {"Content-Type": "application/json"}
LEAKS = ("Traceback", "sqlalchemy", "SELECT", "psycopg", "sqlite3")
MIB = 1024 * 1024
SEED_CODE = "SEED-1"


# --- helpers ------------------------------------------------------------------------------


def coupons(tid: str) -> str:
    return f"/coupons/{tid}"


def assert_no_internals(text: str) -> None:
    for word in LEAKS:
        assert word not in text, f"reply leaks {word!r}: {text[:500]}"
    lowered = text.lower()
    for word in ("traceback", "sqlalchemy", "psycopg", "sqlite3"):
        assert word not in lowered, f"reply leaks {word!r}: {text[:500]}"


def check_error(
    resp: Any, status: int, code: str, fields: tuple[str, ...] | list[str] = ()
) -> dict[str, Any]:
    """The SPEC 4.3 envelope with `status` and `code`, naming each of `fields`."""
    assert resp.status_code == status, f"{resp.status_code} {resp.text[:800]}"
    assert_no_internals(resp.text)
    assert resp.headers.get("x-request-id"), "every reply carries X-Request-Id"
    assert resp.headers.get("content-type", "").startswith("application/json")
    payload = resp.json()
    assert isinstance(payload, dict) and set(payload) == {"error"}, payload
    error = payload["error"]
    assert set(error) == {"code", "message", "details"}, error
    assert error["code"] == code, error
    assert isinstance(error["message"], str) and error["message"].strip()
    assert isinstance(error["details"], list)
    for detail in error["details"]:
        assert set(detail) == {"field", "message"}, detail
        assert isinstance(detail["field"], str) and isinstance(detail["message"], str)
    named = [d["field"] for d in error["details"]]
    for field in fields:
        assert field in named, f"{field!r} not named in {error['details']}"
    return error


def check_refused_somehow(resp: Any, statuses: tuple[int, ...]) -> dict[str, Any]:
    """Refused with one of `statuses` (where SPEC leaves the choice open), never a 500."""
    assert resp.status_code in statuses, f"{resp.status_code} {resp.text[:800]}"
    error = check_error(resp, resp.status_code, resp.json()["error"]["code"])
    return error


def scan_all(api: Api, tid: str) -> list[dict[str, Any]]:
    resp = api.get(coupons(tid), params={"limit": "1000"})
    assert resp.status_code == 200, resp.text
    assert "x-exclusive-start-key" not in resp.headers
    body = resp.json()
    assert isinstance(body, list)
    return body


def get_one(api: Api, tid: str, cid: str) -> dict[str, Any]:
    resp = api.get(f"{coupons(tid)}/{cid}")
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert resp.headers.get("etag") == f'"{body["sys_version"]}"'
    return body


@contextmanager
def nothing_created(api: Api, tid: str) -> Iterator[None]:
    before = scan_all(api, tid)
    yield
    after = scan_all(api, tid)
    assert len(after) == len(before), "a refused request created a coupon"
    assert after == before, "a refused request changed a coupon"


@contextmanager
def coupon_unchanged(api: Api, tid: str, cid: str) -> Iterator[None]:
    before = get_one(api, tid, cid)
    count = len(scan_all(api, tid))
    yield
    after = get_one(api, tid, cid)
    assert after["sys_version"] == before["sys_version"], "a refused write raised sys_version"
    assert after == before, "a refused write changed the coupon"
    assert len(scan_all(api, tid)) == count


def refused_create(
    api: Api, tid: str, status: int, code: str, fields: tuple[str, ...] = (), **kw: Any
) -> dict[str, Any]:
    with nothing_created(api, tid):
        return check_error(api.post(coupons(tid), **kw), status, code, fields)


def refused_put(
    api: Api,
    tid: str,
    cid: str,
    status: int,
    code: str,
    fields: tuple[str, ...] = (),
    **kw: Any,
) -> dict[str, Any]:
    with coupon_unchanged(api, tid, cid):
        return check_error(api.put(f"{coupons(tid)}/{cid}", **kw), status, code, fields)


def refused_patch(
    api: Api,
    tid: str,
    cid: str,
    status: int,
    code: str,
    fields: tuple[str, ...] = (),
    **kw: Any,
) -> dict[str, Any]:
    with coupon_unchanged(api, tid, cid):
        return check_error(api.patch(f"{coupons(tid)}/{cid}", **kw), status, code, fields)


def refused_batch(
    api: Api, tid: str, status: int, code: str, fields: tuple[str, ...] = (), **kw: Any
) -> dict[str, Any]:
    with nothing_created(api, tid):
        return check_error(api.post(f"{coupons(tid)}/batch", **kw), status, code, fields)


def put_body(**overrides: Any) -> dict[str, Any]:
    """A full PUT body that would change the seed (comment), with `overrides` on top."""
    return {**percent_coupon(name="Seed", comment="changed by a refused write"), **overrides}


def patch_ops(**overrides: Any) -> list[dict[str, Any]]:
    """A valid first operation, then one `add` per override: all or nothing."""
    ops: list[dict[str, Any]] = [
        {"op": "replace", "path": "/comment", "value": "changed by a refused write"}
    ]
    ops += [{"op": "add", "path": f"/{k}", "value": v} for k, v in overrides.items()]
    return ops


def nest(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def start_key(text: str | bytes) -> str:
    raw = text.encode() if isinstance(text, str) else text
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.fixture
def tid(tenant: TenantKeys) -> str:
    return tenant.tenant_id


@pytest.fixture
def seed(api: Api, tid: str) -> dict[str, Any]:
    """One stored coupon, so "nothing changed" compares something real."""
    body = percent_coupon(
        name="Seed",
        code=SEED_CODE,
        comment="keep me",
        usage_limit=5,
        custom_field_values=[{"custom_field_id": "cf-1", "string_value": "kept"}],
    )
    resp = api.post(coupons(tid), json=body)
    assert resp.status_code == 201, resp.text
    created: dict[str, Any] = resp.json()
    return created


# --- bad field values: create, PUT and PATCH ----------------------------------------------


def cf(**entry: Any) -> list[dict[str, Any]]:
    entry.setdefault("custom_field_id", "cf-x")
    return [entry]


CF0 = "custom_field_values[0]"
CHAPTERS = "chapter_dues_discount_info"


def chapters(**info: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"method": "amount", "amount": 5}
    body.update(info)
    return {"apply_to_chapter_dues": True, CHAPTERS: body}


def amount(value: Any) -> dict[str, Any]:
    return {"coupon_type": "AMOUNT", "value_percent": None, "value_amount": value}


BAD_FIELDS = [
    # wrong types
    pytest.param({"name": 5}, ["name"], id="name-number"),
    pytest.param({"name": ["Seed"]}, ["name"], id="name-array"),
    pytest.param({"code": 12345}, ["code"], id="code-number"),
    pytest.param({"is_active": "true"}, ["is_active"], id="bool-as-string"),
    pytest.param({"is_active": 1}, ["is_active"], id="bool-as-one"),
    pytest.param({"sys_locked": "false"}, ["sys_locked"], id="sys_locked-string"),
    pytest.param({"value_percent": "abc"}, ["value_percent"], id="percent-text"),
    pytest.param({"value_percent": True}, ["value_percent"], id="percent-bool"),
    pytest.param({"value_percent": [10]}, ["value_percent"], id="percent-array"),
    pytest.param({"usage_limit": "5"}, ["usage_limit"], id="int-as-string"),
    pytest.param({"usage_limit": 1.5}, ["usage_limit"], id="int-fraction"),
    pytest.param({"comment": {"text": "x"}}, ["comment"], id="comment-object"),
    pytest.param({"custom_field_values": {}}, ["custom_field_values"], id="cf-object"),
    pytest.param({"custom_field_values": "x"}, ["custom_field_values"], id="cf-string"),
    pytest.param({"custom_field_values": ["x"]}, [CF0], id="cf-entry-string"),
    pytest.param(
        {"custom_field_values": cf(boolean_value=1)}, [f"{CF0}.boolean_value"], id="cf-bool-one"
    ),
    pytest.param(
        {"custom_field_values": cf(numeric_value="5")},
        [f"{CF0}.numeric_value"],
        id="cf-number-string",
    ),
    pytest.param(
        {"custom_field_values": cf(list_value=["a", 2])},
        [f"{CF0}.list_value[1]"],
        id="cf-list-number",
    ),
    pytest.param({"entity_type": 5}, ["entity_type"], id="entity-type-number"),
    pytest.param({"apply_to_chapter_dues": "yes"}, ["apply_to_chapter_dues"], id="flag-string"),
    pytest.param({"apply_to_chapter_dues": True, CHAPTERS: []}, [CHAPTERS], id="info-array"),
    pytest.param({"authorized_group_id": 5}, ["authorized_group_id"], id="group-number"),
    pytest.param({"applies_to": 1}, ["applies_to"], id="applies-to-number"),
    # out-of-range numbers
    pytest.param({"value_percent": 0}, ["value_percent"], id="percent-zero"),
    pytest.param({"value_percent": -1}, ["value_percent"], id="percent-negative"),
    pytest.param({"value_percent": 100.01}, ["value_percent"], id="percent-over-100"),
    pytest.param({"value_percent": 1e6}, ["value_percent"], id="percent-million"),
    pytest.param({"usage_limit": 0}, ["usage_limit"], id="usage-limit-zero"),
    pytest.param({"usage_limit": -1}, ["usage_limit"], id="usage-limit-negative"),
    pytest.param({"usage_limit": 2**31}, ["usage_limit"], id="usage-limit-2-31"),
    pytest.param({"usage_limit": 10**20}, ["usage_limit"], id="usage-limit-huge"),
    pytest.param({"max_uses_per_user": 0}, ["max_uses_per_user"], id="per-user-zero"),
    pytest.param(amount(10**10), ["value_amount"], id="amount-too-large"),
    pytest.param({"maximum_discount": 10**12}, ["maximum_discount"], id="cap-too-large"),
    pytest.param(
        {"custom_field_values": cf(numeric_value=1e20)},
        [f"{CF0}.numeric_value"],
        id="cf-number-huge",
    ),
    pytest.param(
        chapters(maximum_number_of_chapters=0),
        [f"{CHAPTERS}.maximum_number_of_chapters"],
        id="info-max-zero",
    ),
    pytest.param(
        chapters(method="percentage", amount=101),
        [f"{CHAPTERS}.amount"],
        id="info-percent-over-100",
    ),
    # negative money
    pytest.param(amount(-5), ["value_amount"], id="amount-negative"),
    pytest.param(amount("-5.00"), ["value_amount"], id="amount-negative-string"),
    pytest.param(amount(-0.01), ["value_amount"], id="amount-minus-a-cent"),
    pytest.param({"maximum_discount": -1}, ["maximum_discount"], id="cap-negative"),
    pytest.param(chapters(amount=-1), [f"{CHAPTERS}.amount"], id="info-amount-negative"),
    # more than 4 decimal places
    pytest.param(amount(1.23456), ["value_amount"], id="amount-5-places"),
    pytest.param(amount("1.23456"), ["value_amount"], id="amount-5-places-string"),
    pytest.param({"value_percent": 10.00001}, ["value_percent"], id="percent-5-places"),
    pytest.param({"maximum_discount": 0.00001}, ["maximum_discount"], id="cap-5-places"),
    pytest.param(chapters(amount=1.00001), [f"{CHAPTERS}.amount"], id="info-5-places"),
    # NaN / Infinity as strings (the bare tokens are malformed JSON, tested below)
    pytest.param(amount("NaN"), ["value_amount"], id="amount-nan-string"),
    pytest.param(amount("Infinity"), ["value_amount"], id="amount-infinity-string"),
    pytest.param(amount("-Infinity"), ["value_amount"], id="amount-minus-infinity-string"),
    pytest.param({"value_percent": "NaN"}, ["value_percent"], id="percent-nan-string"),
    # unknown enum values
    pytest.param({"coupon_type": "BOGUS"}, ["coupon_type"], id="coupon-type-bogus"),
    pytest.param({"coupon_type": "percent"}, ["coupon_type"], id="coupon-type-lowercase"),
    pytest.param({"entity_type": "COURSE"}, ["entity_type"], id="entity-type-unknown"),
    pytest.param({"applies_to": "everyone"}, ["applies_to"], id="applies-to-unknown"),
    pytest.param({"discount_method": "line item"}, ["discount_method"], id="method-unknown"),
    pytest.param(chapters(method="fixed"), [f"{CHAPTERS}.method"], id="info-method-unknown"),
    # strings over their limits
    pytest.param({"name": "n" * 201}, ["name"], id="name-201"),
    pytest.param({"name": ""}, ["name"], id="name-empty"),
    pytest.param({"code": "C" * 65}, ["code"], id="code-65"),
    pytest.param({"code": "AB"}, ["code"], id="code-2"),
    pytest.param({"code": "with space"}, ["code"], id="code-space"),
    pytest.param({"code": "ÄBC"}, ["code"], id="code-non-ascii"),
    pytest.param({"comment": "c" * 2001}, ["comment"], id="comment-2001"),
    pytest.param({"sys_external_id": "e" * 201}, ["sys_external_id"], id="external-id-201"),
    pytest.param(
        {"code_generation_html": "h" * 65_537}, ["code_generation_html"], id="html-over-64k"
    ),
    pytest.param(
        {"custom_field_values": [{"custom_field_id": f"c{i}"} for i in range(101)]},
        ["custom_field_values"],
        id="cf-101-entries",
    ),
    pytest.param(
        {"custom_field_values": cf(string_value="s" * 10_001)},
        [f"{CF0}.string_value"],
        id="cf-string-too-long",
    ),
    pytest.param(
        {"discount_method": "discount line item", "discount_product_id": "p" * 201},
        ["discount_product_id"],
        id="product-id-201",
    ),
    # dates of the wrong type or form
    pytest.param({"starts_at": 1_777_593_600_000}, ["starts_at"], id="starts-epoch-ms"),
    pytest.param({"expires_at": 1_777_593_600}, ["expires_at"], id="expires-number"),
    pytest.param({"starts_at": True}, ["starts_at"], id="starts-bool"),
    pytest.param({"starts_at": "2026-05-01T00:00:00"}, ["starts_at"], id="starts-no-zone"),
    pytest.param({"expires_at": "2026-05-01"}, ["expires_at"], id="expires-date-only"),
    pytest.param({"expires_at": "01/05/2026"}, ["expires_at"], id="expires-local-form"),
    pytest.param({"starts_at": "2026-02-30T00:00:00Z"}, ["starts_at"], id="starts-no-such-day"),
    pytest.param(
        {"starts_at": "2026-06-01T00:00:00Z", "expires_at": "2026-05-01T00:00:00Z"},
        ["expires_at"],
        id="expires-before-starts",
    ),
    pytest.param(
        {"starts_at": "2026-05-01T02:00:00+02:00", "expires_at": "2026-05-01T00:00:00Z"},
        ["expires_at"],
        id="expires-same-instant",
    ),
    # rules between fields
    pytest.param({"coupon_type": "AMOUNT"}, ["value_amount"], id="amount-missing"),
    pytest.param({"value_percent": None}, ["value_percent"], id="percent-missing"),
    pytest.param({"coupon_type": "USAGE"}, ["value_percent"], id="usage-with-percent"),
    pytest.param({"value_amount": 5}, ["value_amount"], id="percent-with-amount"),
    pytest.param(
        {"entity_type": "EVENT", "entity_id": None}, ["entity_id"], id="event-without-entity-id"
    ),
    pytest.param(
        {"coupon_type": None, "value_percent": None},
        ["coupon_type"],
        id="neither-type-nor-category",
    ),
    pytest.param({"apply_to_chapter_dues": True}, [CHAPTERS], id="flag-without-info"),
    pytest.param(
        {"discount_method": "discount line item"},
        ["discount_product_id"],
        id="line-item-without-product",
    ),
    pytest.param({"require_approval": True}, ["require_approval"], id="approval-without-group"),
    pytest.param(
        {"set_membership_expiration": True},
        ["set_membership_expiration"],
        id="expiration-without-group",
    ),
    pytest.param(
        {"add_user_to_coupons_group": True},
        ["add_user_to_coupons_group"],
        id="add-to-group-without-group",
    ),
    # several at once
    pytest.param(
        {"name": "", "usage_limit": 0, "applies_to": "x", "starts_at": 5},
        ["name", "usage_limit", "applies_to", "starts_at"],
        id="several-at-once",
    ),
]

CONTROL_CHARS = {"nul": "\u0000", "esc": "\u001b", "del": "\u007f"}
CONTROL_TARGETS = {
    "name": lambda s: ({"name": f"Se{s}ed"}, ["name"]),
    "comment": lambda s: ({"comment": f"a{s}b"}, ["comment"]),
    "code": lambda s: ({"code": f"AB{s}CD"}, ["code"]),
    "external-id": lambda s: ({"sys_external_id": f"e{s}"}, ["sys_external_id"]),
    "html": lambda s: ({"code_generation_html": f"<b>{s}</b>"}, ["code_generation_html"]),
    "cf-string": lambda s: (
        {"custom_field_values": cf(string_value=f"x{s}y")},
        [f"{CF0}.string_value"],
    ),
    "cf-list": lambda s: (
        {"custom_field_values": cf(list_value=["ok", f"x{s}"])},
        [f"{CF0}.list_value[1]"],
    ),
    "cf-table": lambda s: (
        {"custom_field_values": cf(table_value=[{"col": [f"x{s}"]}])},
        [f"{CF0}.table_value"],
    ),
    "cf-id": lambda s: (
        {"custom_field_values": cf(custom_field_id=f"c{s}")},
        [f"{CF0}.custom_field_id"],
    ),
}
CONTROL_CASES = [
    pytest.param(*make(char), id=f"{target}-{name}")
    for target, make in CONTROL_TARGETS.items()
    for name, char in CONTROL_CHARS.items()
]
ALL_BAD_FIELDS = BAD_FIELDS + CONTROL_CASES


@pytest.mark.parametrize(("overrides", "fields"), ALL_BAD_FIELDS)
def test_create_refuses_bad_fields(
    api: Api, tid: str, seed: dict[str, Any], overrides: dict[str, Any], fields: list[str]
) -> None:
    body = {**percent_coupon(), **overrides}
    refused_create(api, tid, 422, "validation_failed", tuple(fields), json=body)


@pytest.mark.parametrize(("overrides", "fields"), ALL_BAD_FIELDS)
def test_put_refuses_bad_fields(
    api: Api, tid: str, seed: dict[str, Any], overrides: dict[str, Any], fields: list[str]
) -> None:
    refused_put(
        api, tid, seed["id"], 422, "validation_failed", tuple(fields), json=put_body(**overrides)
    )


@pytest.mark.parametrize(("overrides", "fields"), ALL_BAD_FIELDS)
def test_patch_refuses_bad_fields(
    api: Api, tid: str, seed: dict[str, Any], overrides: dict[str, Any], fields: list[str]
) -> None:
    refused_patch(
        api, tid, seed["id"], 422, "validation_failed", tuple(fields), json=patch_ops(**overrides)
    )


@pytest.mark.parametrize("char", ["\u0085", "\u009b"], ids=["nel", "csi"])
@pytest.mark.parametrize("field", ["name", "comment"])
def test_c1_control_characters_refused(
    api: Api, tid: str, seed: dict[str, Any], field: str, char: str
) -> None:
    # SPEC 9 refuses "control characters (other than tab, line feed and carriage return) in
    # any text"; U+0080-U+009F are control characters (Unicode Cc) too.
    body = percent_coupon(**{field: f"a{char}b"})
    refused_create(api, tid, 422, "validation_failed", (field,), json=body)
    refused_put(api, tid, seed["id"], 422, "validation_failed", (field,), json=put_body(**body))


UNKNOWN_FIELDS = [
    pytest.param({"value_ammount": 5}, ["value_ammount"], id="typo"),
    pytest.param({"Name": "x"}, ["Name"], id="wrong-case"),
    pytest.param({"sys_made_up": 1}, ["sys_made_up"], id="made-up-sys"),
    pytest.param({"custom_field_values": cf(colour="red")}, [f"{CF0}.colour"], id="cf-key"),
    pytest.param(chapters(colour="red"), [f"{CHAPTERS}.colour"], id="info-key"),
    pytest.param({"colour": "red", "name": ""}, ["colour", "name"], id="unknown-and-invalid"),
]


@pytest.mark.parametrize(("overrides", "fields"), UNKNOWN_FIELDS)
def test_unknown_fields_refused_everywhere(
    api: Api, tid: str, seed: dict[str, Any], overrides: dict[str, Any], fields: list[str]
) -> None:
    names = tuple(fields)
    body = {**percent_coupon(), **overrides}
    refused_create(api, tid, 422, "unknown_field", names, json=body)
    refused_put(api, tid, seed["id"], 422, "unknown_field", names, json=put_body(**overrides))
    refused_patch(api, tid, seed["id"], 422, "unknown_field", names, json=patch_ops(**overrides))


def test_allowed_text_is_kept(api: Api, tid: str) -> None:
    """Control: tab, LF and CR pass in a comment, and a decimal string is money."""
    body = {
        "coupon_type": "AMOUNT",
        "value_amount": "120.00",
        "comment": "one\ttwo\nthree\r\nfour",
        "code": "Ok_Code-1",
    }
    resp = api.post(coupons(tid), json=body)
    assert resp.status_code == 201, resp.text
    created = resp.json()
    assert created["comment"] == "one\ttwo\nthree\r\nfour"
    assert created["value_amount"] == 120
    assert created["code"] == "Ok_Code-1"


# --- malformed bodies ---------------------------------------------------------------------

MALFORMED = [
    pytest.param(b'{"coupon_type":"PERCENT","value_percent":NaN}', id="nan"),
    pytest.param(b'{"coupon_type":"PERCENT","value_percent":Infinity}', id="infinity"),
    pytest.param(b'{"coupon_type":"AMOUNT","value_amount":-Infinity}', id="minus-infinity"),
    pytest.param(
        b'{"coupon_type":"PERCENT","value_percent":5,'
        b'"custom_field_values":[{"custom_field_id":"a","numeric_value":NaN}]}',
        id="nan-nested",
    ),
    pytest.param(b'[{"op":"replace","path":"/value_percent","value":NaN}]', id="nan-in-patch"),
    pytest.param(b'{"coupon_type":"PERCENT",', id="truncated"),
    pytest.param(b"{'coupon_type':'PERCENT'}", id="single-quotes"),
    pytest.param(b'{"coupon_type":"PERCENT","value_percent":5,}', id="trailing-comma"),
    pytest.param(b'{"coupon_type":"PERCENT","value_percent":5} x', id="trailing-garbage"),
    pytest.param(b"{} {}", id="two-documents"),
    pytest.param(b"PERCENT", id="bare-word"),
    pytest.param(b'{"a":1 /* note */}', id="comment"),
    pytest.param(b"", id="empty"),
    pytest.param(b"  \n\t ", id="whitespace-only"),
    pytest.param(b'{"coupon_type":"PERCENT","value_percent":5,"name":"\xff\xfe"}', id="bad-utf8"),
    pytest.param(b'{"name":"\xc3\x28"}', id="bad-utf8-continuation"),
    pytest.param(b'{"name":"\xc0\xaf"}', id="overlong-utf8"),
    pytest.param(b'{"name":"\xed\xa0\x80"}', id="utf8-encoded-surrogate"),
    pytest.param('{"name":"café"}'.encode("latin-1"), id="latin-1"),
    pytest.param('{"coupon_type":"PERCENT","value_percent":5}'.encode("utf-16"), id="utf-16"),
    pytest.param(nest(100_000), id="100000-nested-arrays"),
    pytest.param(b'{"a":' * 100_000 + b"1" + b"}" * 100_000, id="100000-nested-objects"),
    pytest.param(b'{"comment":' + nest(100_000) + b"}", id="nested-in-a-field"),
    pytest.param(
        b'{"coupon_type":"PERCENT","value_percent":5,"usage_limit":1' + b"0" * 5000 + b"}",
        id="5000-digit-integer",
    ),
]


@pytest.mark.parametrize("raw", MALFORMED)
def test_create_malformed_json(api: Api, tid: str, seed: dict[str, Any], raw: bytes) -> None:
    refused_create(api, tid, 400, "malformed_json", content=raw, headers=JSON)


@pytest.mark.parametrize("raw", MALFORMED)
def test_put_malformed_json(api: Api, tid: str, seed: dict[str, Any], raw: bytes) -> None:
    refused_put(api, tid, seed["id"], 400, "malformed_json", content=raw, headers=JSON)


@pytest.mark.parametrize("raw", MALFORMED)
def test_patch_malformed_json(api: Api, tid: str, seed: dict[str, Any], raw: bytes) -> None:
    refused_patch(api, tid, seed["id"], 400, "malformed_json", content=raw, headers=JSON)


@pytest.mark.parametrize("raw", MALFORMED)
def test_batch_malformed_json(api: Api, tid: str, seed: dict[str, Any], raw: bytes) -> None:
    refused_batch(api, tid, 400, "malformed_json", content=raw, headers=JSON)


DEEP_BUT_PARSEABLE = [
    pytest.param(b'{"comment":' + nest(500) + b"}", id="array-in-comment"),
    pytest.param(
        b'{"coupon_type":"PERCENT","value_percent":5,"custom_field_values":'
        b'[{"custom_field_id":"a","table_value":[{"k":' + nest(500) + b"}]}]}",
        id="array-in-table-value",
    ),
    pytest.param(b'{"name":' + b'{"a":' * 500 + b"1" + b"}" * 500 + b"}", id="objects-in-name"),
]


@pytest.mark.parametrize("raw", DEEP_BUT_PARSEABLE)
def test_deep_nesting_that_parses_is_refused_cleanly(
    api: Api, tid: str, seed: dict[str, Any], raw: bytes
) -> None:
    with nothing_created(api, tid):
        check_refused_somehow(api.post(coupons(tid), content=raw, headers=JSON), (400, 422))
    cid = seed["id"]
    with coupon_unchanged(api, tid, cid):
        resp = api.put(f"{coupons(tid)}/{cid}", content=raw, headers=JSON)
        check_refused_somehow(resp, (400, 422))
    ops = b'[{"op":"add","path":"/comment","value":' + raw + b"}]"
    with coupon_unchanged(api, tid, cid):
        resp = api.patch(f"{coupons(tid)}/{cid}", content=ops, headers=JSON)
        check_refused_somehow(resp, (400, 422))
    batch = b'{"operations":[{"operation":"create","object":' + raw + b"}]}"
    with nothing_created(api, tid):
        resp = api.post(f"{coupons(tid)}/batch", content=batch, headers=JSON)
        assert resp.status_code in (200, 400, 422), resp.text[:500]
        assert_no_internals(resp.text)
        if resp.status_code == 200:
            assert resp.json()["success_count"] == 0


LONE_SURROGATES = [
    pytest.param(b'{"name":"\\ud800"}', id="name"),
    pytest.param(b'{"comment":"a\\udfffb"}', id="comment"),
    pytest.param(b'{"code_generation_html":"\\ud83d"}', id="html"),
    pytest.param(b'{"custom_field_values":[{"custom_field_id":"\\ud800"}]}', id="cf-id"),
    pytest.param(
        b'{"custom_field_values":[{"custom_field_id":"a","string_value":"\\udc00"}]}',
        id="cf-string",
    ),
    pytest.param(
        b'{"custom_field_values":[{"custom_field_id":"a","table_value":[{"\\ud800":1}]}]}',
        id="cf-table-key",
    ),
]


def with_percent(raw: bytes) -> bytes:
    """`{...}` -> `{"coupon_type":"PERCENT","value_percent":5,...}`."""
    return b'{"coupon_type":"PERCENT","value_percent":5,' + raw[1:]


@pytest.mark.parametrize("raw", LONE_SURROGATES)
def test_lone_surrogate_escapes_refused(
    api: Api, tid: str, seed: dict[str, Any], raw: bytes
) -> None:
    # `"\ud800"` is valid JSON syntax but no Unicode text: it can be neither stored nor sent
    # back as UTF-8, so it must be refused (400 or 422), never crash the server.
    body = with_percent(raw)
    with nothing_created(api, tid):
        check_refused_somehow(api.post(coupons(tid), content=body, headers=JSON), (400, 422))
    cid = seed["id"]
    with coupon_unchanged(api, tid, cid):
        resp = api.put(f"{coupons(tid)}/{cid}", content=body, headers=JSON)
        check_refused_somehow(resp, (400, 422))
    member, _, value = raw[1:-1].partition(b":")
    ops = b'[{"op":"add","path":"/' + member.strip(b'"') + b'","value":' + value + b"}]"
    with coupon_unchanged(api, tid, cid):
        resp = api.patch(f"{coupons(tid)}/{cid}", content=ops, headers=JSON)
        check_refused_somehow(resp, (400, 422))


def test_number_a_reply_cannot_carry_is_not_silently_changed(api: Api, tid: str) -> None:
    # SPEC 9 refuses out-of-range numbers. 1e-400 is a valid JSON number that no JSON reader
    # built on doubles can hold; it must be refused, or at least come back unchanged.
    raw = (
        b'{"coupon_type":"PERCENT","value_percent":5,'
        b'"custom_field_values":[{"custom_field_id":"a","numeric_value":1e-400}]}'
    )
    resp = api.post(coupons(tid), content=raw, headers=JSON)
    if resp.status_code == 201:
        body = json.loads(resp.text, parse_float=Decimal)
        assert body["custom_field_values"][0]["numeric_value"] == Decimal("1e-400")
    else:
        check_error(resp, 422, "validation_failed", (f"{CF0}.numeric_value",))


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(b"[]", id="empty-array"),
        pytest.param(json.dumps([percent_coupon()]).encode(), id="array-of-coupon"),
        pytest.param(b'"PERCENT"', id="string"),
        pytest.param(b"10", id="number"),
        pytest.param(b"true", id="boolean"),
        pytest.param(b"null", id="null"),
    ],
)
def test_body_must_be_an_object(api: Api, tid: str, seed: dict[str, Any], raw: bytes) -> None:
    refused_create(api, tid, 422, "validation_failed", ("body",), content=raw, headers=JSON)
    refused_put(
        api, tid, seed["id"], 422, "validation_failed", ("body",), content=raw, headers=JSON
    )


# --- size and content type ----------------------------------------------------------------


def body_of_size(size: int) -> bytes:
    """A JSON object of exactly `size` bytes (a coupon whose comment is far too long)."""
    head = b'{"coupon_type":"PERCENT","value_percent":5,"comment":"'
    tail = b'"}'
    return head + b"x" * (size - len(head) - len(tail)) + tail


def chunks(raw: bytes, size: int = 64 * 1024) -> Iterator[bytes]:
    for start in range(0, len(raw), size):
        yield raw[start : start + size]


@pytest.mark.parametrize("size", [MIB + 1, 2 * MIB, 5 * MIB])
def test_body_over_1_mib(api: Api, tid: str, seed: dict[str, Any], size: int) -> None:
    raw = body_of_size(size)
    assert len(raw) == size
    cid = seed["id"]
    refused_create(api, tid, 413, "payload_too_large", content=raw, headers=JSON)
    refused_put(api, tid, cid, 413, "payload_too_large", content=raw, headers=JSON)
    ops = b'[{"op":"replace","path":"/comment","value":"' + b"x" * size + b'"}]'
    refused_patch(api, tid, cid, 413, "payload_too_large", content=ops, headers=JSON)
    batch = b'{"operations":[{"operation":"create","object":' + raw + b"}]}"
    refused_batch(api, tid, 413, "payload_too_large", content=batch, headers=JSON)


def test_body_over_1_mib_without_content_length(api: Api, tid: str, seed: dict[str, Any]) -> None:
    raw = body_of_size(MIB + 100)
    refused_create(api, tid, 413, "payload_too_large", content=chunks(raw), headers=JSON)
    refused_put(api, tid, seed["id"], 413, "payload_too_large", content=chunks(raw), headers=JSON)


def test_body_of_exactly_1_mib_is_read(api: Api, tid: str, seed: dict[str, Any]) -> None:
    """Control for the limit: 1 MiB itself is allowed, so the comment rule answers."""
    raw = body_of_size(MIB)
    refused_create(api, tid, 422, "validation_failed", ("comment",), content=raw, headers=JSON)


WRONG_TYPES = [
    pytest.param({"Content-Type": "text/plain"}, id="text-plain"),
    pytest.param({"Content-Type": "application/x-www-form-urlencoded"}, id="form"),
    pytest.param({"Content-Type": "multipart/form-data; boundary=xyz"}, id="multipart"),
    pytest.param({"Content-Type": "application/xml"}, id="xml"),
    pytest.param({"Content-Type": "application/jsonx"}, id="jsonx"),
    pytest.param({"Content-Type": "text/json"}, id="text-json"),
    pytest.param({}, id="none"),
]
VALID_BODY = json.dumps(percent_coupon()).encode()


@pytest.mark.parametrize("headers", WRONG_TYPES)
def test_wrong_content_type(
    api: Api, tid: str, seed: dict[str, Any], headers: dict[str, str]
) -> None:
    cid = seed["id"]
    kw: dict[str, Any] = {"content": VALID_BODY, "headers": headers}
    refused_create(api, tid, 415, "unsupported_media_type", **kw)
    refused_put(api, tid, cid, 415, "unsupported_media_type", **kw)
    ops = json.dumps(patch_ops()).encode()
    refused_patch(api, tid, cid, 415, "unsupported_media_type", content=ops, headers=headers)
    batch = json.dumps({"operations": [{"operation": "create", "object": percent_coupon()}]})
    refused_batch(api, tid, 415, "unsupported_media_type", content=batch.encode(), headers=headers)


def test_real_form_and_multipart_posts_refused(api: Api, tid: str, seed: dict[str, Any]) -> None:
    form = {"coupon_type": "PERCENT", "value_percent": "5"}
    refused_create(api, tid, 415, "unsupported_media_type", data=form)
    files = {"file": ("coupon.json", VALID_BODY, "application/json")}
    refused_create(api, tid, 415, "unsupported_media_type", files=files)
    refused_put(api, tid, seed["id"], 415, "unsupported_media_type", data=form)


def test_patch_media_types(api: Api, tid: str, seed: dict[str, Any]) -> None:
    cid = seed["id"]
    ops = json.dumps(patch_ops()).encode()
    merge = {"Content-Type": "application/merge-patch+json"}
    refused_patch(api, tid, cid, 415, "unsupported_media_type", content=ops, headers=merge)
    patch_type = {"Content-Type": "application/json-patch+json"}
    refused_create(api, tid, 415, "unsupported_media_type", content=VALID_BODY, headers=patch_type)
    # Control: both PATCH media types are accepted.
    for media in ("application/json-patch+json", "application/json; charset=utf-8"):
        resp = api.patch(f"{coupons(tid)}/{cid}", content=ops, headers={"Content-Type": media})
        assert resp.status_code == 200, resp.text


def test_json_with_charset_is_accepted(api: Api, tid: str) -> None:
    headers = {"Content-Type": "application/json; charset=utf-8"}
    resp = api.post(coupons(tid), content=VALID_BODY, headers=headers)
    assert resp.status_code == 201, resp.text


# --- batch --------------------------------------------------------------------------------


def creates(count: int) -> dict[str, Any]:
    ops = [
        {"operation": "create", "object": percent_coupon(code=f"BATCH-{i}")} for i in range(count)
    ]
    return {"operations": ops}


@pytest.mark.parametrize("count", [0, 101, 1000])
def test_batch_size_out_of_range(api: Api, tid: str, seed: dict[str, Any], count: int) -> None:
    refused_batch(api, tid, 422, "invalid_batch", ("operations",), json=creates(count))


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({}, id="missing"),
        pytest.param({"operations": None}, id="null"),
        pytest.param({"operations": "create"}, id="string"),
        pytest.param({"operations": {"operation": "create"}}, id="object"),
    ],
)
def test_batch_operations_must_be_a_list(
    api: Api, tid: str, seed: dict[str, Any], body: dict[str, Any]
) -> None:
    refused_batch(api, tid, 422, "invalid_batch", ("operations",), json=body)


def test_batch_body_must_be_an_object(api: Api, tid: str, seed: dict[str, Any]) -> None:
    ops = creates(1)["operations"]
    refused_batch(api, tid, 422, "invalid_batch", json=ops)


def test_batch_unknown_top_level_field(api: Api, tid: str, seed: dict[str, Any]) -> None:
    body = {**creates(1), "atomic": True}
    refused_batch(api, tid, 422, "unknown_field", ("atomic",), json=body)


def test_batch_of_100_is_accepted(api: Api, tid: str, seed: dict[str, Any]) -> None:
    """Control for the limit: 100 operations run (deletes of unknown ids: nothing to write)."""
    ops = [{"operation": "delete", "id": f"0000-0000-0000-{i:04x}"} for i in range(100)]
    with nothing_created(api, tid):
        resp = api.post(f"{coupons(tid)}/batch", json={"operations": ops})
        assert resp.status_code == 200, resp.text
        body = resp.json()
    assert body["success_count"] == 0 and body["error_count"] == 100
    assert len(body["results"]) == 100


def test_refused_batch_operations_write_nothing(api: Api, tid: str, seed: dict[str, Any]) -> None:
    before = scan_all(api, tid)
    cid = seed["id"]
    ops = [
        {"operation": "create", "object": percent_coupon(name="", code="BAD-ONE")},
        {"operation": "create", "object": percent_coupon(code="GOOD-ONE")},
        {"operation": "update", "id": cid, "object": put_body(usage_limit=0)},
        {"operation": "patch", "id": cid, "patch_directives": patch_ops(sys_version=99)},
        {"operation": "create", "object": percent_coupon(code=SEED_CODE.lower())},
        {"operation": "create", "object": {**percent_coupon(), "id": "abcd-ef01-2345-6789"}},
        {"operation": "frobnicate", "object": percent_coupon()},
    ]
    resp = api.post(f"{coupons(tid)}/batch", json={"operations": ops})
    assert resp.status_code == 200, resp.text
    assert_no_internals(resp.text)
    body = resp.json()
    outcomes = [r["outcome"] for r in body["results"]]
    assert outcomes == ["error", "success", "error", "error", "error", "error", "error"]
    assert body["success_count"] == 1 and body["error_count"] == 6
    assert "name" in body["results"][0]["error_message"]
    after = scan_all(api, tid)
    assert len(after) == len(before) + 1
    assert {c["code"] for c in after} == {c["code"] for c in before} | {"GOOD-ONE"}
    assert get_one(api, tid, cid) == seed


# --- group paths --------------------------------------------------------------------------

BAD_PATHS = [
    pytest.param('{name:"Training"', 16, id="unclosed-brace"),
    pytest.param("{name:Training}", 6, id="unquoted-value"),
    pytest.param('{label:"x"}', 1, id="unknown-key"),
    pytest.param("*/", 2, id="trailing-slash"),
    pytest.param('{name:"a"}//*', 11, id="empty-segment"),
    pytest.param('{name:"a\\q"}', 8, id="bad-escape"),
    pytest.param('{name:"a"} {name:"b"}', 11, id="missing-slash"),
    pytest.param('{name:"unterminated}', 20, id="unterminated-string"),
    pytest.param('{name "a"}', 6, id="missing-colon"),
    pytest.param("**", 1, id="double-star"),
    pytest.param("{}", 1, id="empty-braces"),
    pytest.param('{name:"ok"}/{code:"x"}/?', 23, id="stray-character"),
]


@pytest.mark.parametrize(("path", "position"), BAD_PATHS)
def test_malformed_group_path_in_entity_id(
    api: Api, tid: str, seed: dict[str, Any], path: str, position: int
) -> None:
    scope = {"entity_type": "GROUP", "entity_id": path}
    cid = seed["id"]
    for error in (
        refused_create(
            api, tid, 422, "invalid_group_path", ("entity_id",), json=percent_coupon(**scope)
        ),
        refused_put(
            api, tid, cid, 422, "invalid_group_path", ("entity_id",), json=put_body(**scope)
        ),
        refused_patch(
            api, tid, cid, 422, "invalid_group_path", ("entity_id",), json=patch_ops(**scope)
        ),
    ):
        assert f"position {position}" in error["message"], error
        detail = next(d for d in error["details"] if d["field"] == "entity_id")
        assert f"position {position}" in detail["message"]


@pytest.mark.parametrize(("path", "position"), BAD_PATHS[:4])
def test_malformed_group_path_in_authorized_group(
    api: Api, tid: str, seed: dict[str, Any], path: str, position: int
) -> None:
    body = percent_coupon(authorized_group_id=path, require_approval=True)
    error = refused_create(api, tid, 422, "invalid_group_path", ("authorized_group_id",), json=body)
    assert f"position {position}" in error["message"]
    refused_put(
        api,
        tid,
        seed["id"],
        422,
        "invalid_group_path",
        ("authorized_group_id",),
        json=put_body(authorized_group_id=path),
    )


# --- JSON Patch ---------------------------------------------------------------------------

REPLACE_COMMENT = {"op": "replace", "path": "/comment", "value": "changed"}
BAD_PATCHES = [
    pytest.param({"op": "replace", "path": "/name", "value": "x"}, ["patch"], id="object"),
    pytest.param("replace", ["patch"], id="string"),
    pytest.param(5, ["patch"], id="number"),
    pytest.param(None, ["patch"], id="null"),
    pytest.param(["replace"], ["patch[0]"], id="element-string"),
    pytest.param([REPLACE_COMMENT, 5], ["patch[1]"], id="element-number"),
    pytest.param([{"path": "/name", "value": "x"}], ["patch[0].op"], id="missing-op"),
    pytest.param([{"op": "frobnicate", "path": "/name"}], ["patch[0].op"], id="unknown-op"),
    pytest.param(
        [{"op": "REPLACE", "path": "/name", "value": "x"}], ["patch[0].op"], id="op-wrong-case"
    ),
    pytest.param([{"op": 5, "path": "/name", "value": "x"}], ["patch[0].op"], id="op-number"),
    pytest.param([{"op": "replace", "value": "x"}], ["patch[0].path"], id="missing-path"),
    pytest.param([{"op": "replace", "path": 5, "value": "x"}], ["patch[0].path"], id="path-number"),
    pytest.param(
        [{"op": "replace", "path": "name", "value": "x"}],
        ["patch[0].path"],
        id="pointer-without-slash",
    ),
    pytest.param(
        [{"op": "replace", "path": "/na~2me", "value": "x"}],
        ["patch[0].path"],
        id="pointer-bad-escape",
    ),
    pytest.param(
        [{"op": "replace", "path": "#/name", "value": "x"}],
        ["patch[0].path"],
        id="pointer-fragment",
    ),
    pytest.param([{"op": "add", "path": "/name"}], ["patch[0].value"], id="add-without-value"),
    pytest.param(
        [{"op": "replace", "path": "/name"}], ["patch[0].value"], id="replace-without-value"
    ),
    pytest.param([{"op": "test", "path": "/name"}], ["patch[0].value"], id="test-without-value"),
    pytest.param([{"op": "move", "path": "/comment"}], ["patch[0].from"], id="move-without-from"),
    pytest.param(
        [{"op": "copy", "from": "name", "path": "/comment"}], ["patch[0].from"], id="copy-bad-from"
    ),
    pytest.param([{"op": "remove", "path": "/nope"}], ["patch[0].path"], id="remove-missing"),
    pytest.param(
        [{"op": "replace", "path": "/nope", "value": 1}], ["patch[0].path"], id="replace-missing"
    ),
    pytest.param(
        [{"op": "add", "path": "/custom_field_values/7/x", "value": 1}],
        ["patch[0].path"],
        id="add-under-missing-parent",
    ),
    pytest.param(
        [{"op": "add", "path": "/custom_field_values/5", "value": {}}],
        ["patch[0].path"],
        id="index-out-of-range",
    ),
    pytest.param(
        [{"op": "add", "path": "/custom_field_values/01", "value": {}}],
        ["patch[0].path"],
        id="index-leading-zero",
    ),
    pytest.param(
        [{"op": "move", "from": "/nope", "path": "/comment"}],
        ["patch[0].from"],
        id="move-from-missing",
    ),
    pytest.param(
        [REPLACE_COMMENT, {"op": "remove", "path": "/nope"}],
        ["patch[1].path"],
        id="second-op-fails",
    ),
]


@pytest.mark.parametrize(("ops", "fields"), BAD_PATCHES)
def test_malformed_json_patch(
    api: Api, tid: str, seed: dict[str, Any], ops: Any, fields: list[str]
) -> None:
    raw = json.dumps(ops).encode()
    refused_patch(
        api, tid, seed["id"], 422, "invalid_patch", tuple(fields), content=raw, headers=JSON
    )


def test_failed_test_operation_changes_nothing(api: Api, tid: str, seed: dict[str, Any]) -> None:
    ops = [REPLACE_COMMENT, {"op": "test", "path": "/name", "value": "Not the name"}]
    refused_patch(api, tid, seed["id"], 409, "patch_test_failed", ("patch[1].value",), json=ops)


READ_ONLY = [
    "id",
    "times_used",
    "remaining_amount",
    "sys_version",
    "sys_created_at",
    "sys_last_modified_at",
    "sys_created_by_id",
    "sys_last_modified_by_id",
    "sys_deleted_by_id",
]


def read_only_ops(field: str, current: Any) -> dict[str, dict[str, Any]]:
    path = f"/{field}"
    return {
        "replace-same-value": {"op": "replace", "path": path, "value": current},
        "replace-other-value": {"op": "replace", "path": path, "value": "other"},
        "add-same-value": {"op": "add", "path": path, "value": current},
        "remove": {"op": "remove", "path": path},
        "move-away": {"op": "move", "from": path, "path": "/comment"},
        "move-onto": {"op": "move", "from": "/comment", "path": path},
        "copy-onto": {"op": "copy", "from": "/name", "path": path},
    }


@pytest.mark.parametrize(
    "shape",
    [
        "replace-same-value",
        "replace-other-value",
        "add-same-value",
        "remove",
        "move-away",
        "move-onto",
        "copy-onto",
    ],
)
@pytest.mark.parametrize("field", READ_ONLY)
def test_patch_writing_read_only_field_refused(
    api: Api, tid: str, seed: dict[str, Any], field: str, shape: str
) -> None:
    op = read_only_ops(field, seed[field])[shape]
    refused_patch(
        api, tid, seed["id"], 422, "invalid_patch", ("patch[1]",), json=[REPLACE_COMMENT, op]
    )


@pytest.mark.parametrize("field", READ_ONLY)
def test_patch_writing_read_only_field_nested_or_via_root_refused(
    api: Api, tid: str, seed: dict[str, Any], field: str
) -> None:
    cid = seed["id"]
    ops = [{"op": "add", "path": f"/{field}/x", "value": 1}]
    refused_patch(api, tid, cid, 422, "invalid_patch", ("patch[0]",), json=ops)
    whole = {k: v for k, v in seed.items() if k != field}
    ops = [{"op": "replace", "path": "", "value": whole}]
    refused_patch(api, tid, cid, 422, "invalid_patch", ("patch[0]",), json=ops)


def test_test_and_copy_may_read_read_only_fields(api: Api, tid: str, seed: dict[str, Any]) -> None:
    """Control: the refusal is about writing, not naming, a read-only field."""
    cid = seed["id"]
    ops = [
        {"op": "test", "path": "/sys_version", "value": seed["sys_version"]},
        {"op": "test", "path": "/times_used", "value": 0},
        {"op": "copy", "from": "/id", "path": "/comment"},
    ]
    resp = api.patch(f"{coupons(tid)}/{cid}", json=ops)
    assert resp.status_code == 200, resp.text
    assert resp.json()["comment"] == cid
    assert resp.json()["sys_version"] == seed["sys_version"] + 1


# --- query strings and headers ------------------------------------------------------------

BAD_START_KEYS = [
    pytest.param("random text!", id="random-text"),
    pytest.param("not-a-key", id="not-a-key"),
    pytest.param(start_key(os.urandom(24)), id="base64-random-bytes"),
    pytest.param(start_key(b"\x00\x01\x02garbage\xff"), id="base64-garbage"),
    pytest.param(start_key("v1:abc"), id="base64-non-number"),
    pytest.param(start_key("v1:-1"), id="base64-negative"),
    pytest.param(start_key("v1:01"), id="base64-leading-zero"),
    pytest.param(start_key("v2:5"), id="base64-other-version"),
    pytest.param(start_key("v1:5 "), id="base64-trailing-space"),
    pytest.param(start_key("v1:9999999999999999999"), id="base64-beyond-int64"),
    pytest.param(start_key("v1:9223372036854775808"), id="base64-int64-max-plus-1"),
    pytest.param("A" * 10_000, id="very-long"),
    pytest.param(start_key("v1:" + "9" * 500), id="very-long-number"),
    pytest.param("a\u00e9b", id="non-ascii"),
    pytest.param("ab\x00cd", id="nul"),
    pytest.param("djE6MQ==" * 3, id="padding-in-the-middle"),
]


@pytest.mark.parametrize("key", BAD_START_KEYS)
def test_malformed_exclusive_start_key(api: Api, tid: str, seed: dict[str, Any], key: str) -> None:
    resp = api.get(coupons(tid), params={"exclusiveStartKey": key})
    # NUL in any query parameter is refused before a handler runs (it would reach SQL).
    check_error(resp, 400, "invalid_query" if "\x00" in key else "invalid_exclusive_start_key")


@pytest.mark.parametrize("key", BAD_START_KEYS[:10])
def test_malformed_exclusive_start_key_header(
    api: Api, tid: str, seed: dict[str, Any], key: str
) -> None:
    resp = api.get(coupons(tid), headers={"X-Exclusive-Start-Key": key})
    check_error(resp, 400, "invalid_exclusive_start_key")


@pytest.mark.parametrize(
    "limit",
    ["0", "1001", "-1", "abc", "1.5", "", " 5", "1e2", "0x10", "10000000000000000000000", "²"],
)
def test_bad_limit(api: Api, tid: str, seed: dict[str, Any], limit: str) -> None:
    resp = api.get(coupons(tid), params={"limit": limit})
    check_error(resp, 400, "invalid_query", ("limit",))


@pytest.mark.parametrize("limit", ["1", "1000"])
def test_limit_bounds_accepted(api: Api, tid: str, seed: dict[str, Any], limit: str) -> None:
    resp = api.get(coupons(tid), params={"limit": limit})
    assert resp.status_code == 200, resp.text
    assert [c["id"] for c in resp.json()] == [seed["id"]]


@pytest.mark.parametrize("fields", ["nope", "name,nope", "NAME", "", ",", "name;code", "error"])
def test_bad_fields(api: Api, tid: str, seed: dict[str, Any], fields: str) -> None:
    resp = api.get(coupons(tid), params={"fields": fields})
    check_error(resp, 400, "invalid_fields", ("fields",))
    resp = api.get(f"{coupons(tid)}/{seed['id']}", params={"fields": fields})
    check_error(resp, 400, "invalid_fields", ("fields",))


@pytest.mark.parametrize("value", ["yes", "1", "0", "", "truee", "null"])
def test_bad_consistent_read(api: Api, tid: str, seed: dict[str, Any], value: str) -> None:
    resp = api.get(f"{coupons(tid)}/{seed['id']}", params={"consistentRead": value})
    check_error(resp, 400, "invalid_query", ("consistentRead",))
    resp = api.get(coupons(tid), params={"consistentRead": value})
    check_error(resp, 400, "invalid_query", ("consistentRead",))


@pytest.mark.parametrize("value", ["maybe", "1", ""])
def test_bad_is_active_filter(api: Api, tid: str, seed: dict[str, Any], value: str) -> None:
    resp = api.get(coupons(tid), params={"is_active": value})
    check_error(resp, 400, "invalid_query", ("is_active",))


BAD_IF_MATCH = [
    pytest.param("abc", id="word"),
    pytest.param('"abc"', id="quoted-word"),
    pytest.param('"-1"', id="negative"),
    pytest.param('"1.5"', id="fraction"),
    pytest.param('"99999999999"', id="11-digits"),
    pytest.param('""', id="empty-quotes"),
    pytest.param('"1", "2"', id="list"),
    pytest.param(b'"\xc2\xb2"', id="non-ascii"),
]


@pytest.mark.parametrize("value", BAD_IF_MATCH)
def test_bad_if_match(api: Api, tid: str, seed: dict[str, Any], value: str | bytes) -> None:
    cid = seed["id"]
    headers = {"If-Match": value}
    refused_put(
        api, tid, cid, 400, "invalid_query", ("If-Match",), json=put_body(), headers=headers
    )
    refused_patch(
        api, tid, cid, 400, "invalid_query", ("If-Match",), json=patch_ops(), headers=headers
    )


def asgi_request(
    api: Api, method: str, path: str, headers: list[tuple[bytes, bytes]], body: bytes
) -> tuple[int, dict[str, str], bytes]:
    """Call the app with header bytes exactly as given.

    The test client re-encodes header values as UTF-8, so it cannot send the single latin-1
    byte a real HTTP client can (b"\\xb2" arrives as "\u00b2", SUPERSCRIPT TWO).
    """
    messages: list[dict[str, Any]] = []
    pending = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive() -> dict[str, Any]:
        return pending.pop() if pending else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        messages.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"testserver"), *headers],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }
    try:
        asyncio.run(api.client.app(scope, receive, send))  # type: ignore[arg-type]
    except Exception:
        # Starlette re-raises an unhandled error after sending its 500 (for the server to
        # log); the reply already sent is what a caller sees.
        if not any(m["type"] == "http.response.start" for m in messages):
            raise
    start = next(m for m in messages if m["type"] == "http.response.start")
    reply = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.response.body")
    names = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in start["headers"]}
    return start["status"], names, reply


@pytest.mark.parametrize("byte", [b"\xb2", b"\xb3", b"\xb9"], ids=["sup2", "sup3", "sup1"])
@pytest.mark.parametrize("method", ["PUT", "PATCH"])
def test_if_match_with_a_latin1_digit_byte(
    api: Api, tid: str, seed: dict[str, Any], method: str, byte: bytes
) -> None:
    # HTTP header bytes are read as latin-1, where 0xB2 is a "digit" to str.isdigit().
    cid = seed["id"]
    body = json.dumps(put_body() if method == "PUT" else patch_ops()).encode()
    assert api.key is not None
    headers = [
        (b"authorization", api.key.encode()),
        (b"content-type", b"application/json"),
        (b"if-match", b'"' + byte + b'"'),
    ]
    with coupon_unchanged(api, tid, cid):
        status, reply_headers, reply = asgi_request(
            api, method, f"{coupons(tid)}/{cid}", headers, body
        )
    text = reply.decode()
    assert status == 400, f"{status} {text[:500]}"
    assert_no_internals(text)
    assert reply_headers.get("x-request-id")
    error = json.loads(text)["error"]
    assert error["code"] == "invalid_query"
    assert "If-Match" in [d["field"] for d in error["details"]]


def test_stale_versions_change_nothing(api: Api, tid: str, seed: dict[str, Any]) -> None:
    cid = seed["id"]
    version = seed["sys_version"]
    stale = {"If-Match": f'"{version + 1}"'}
    refused_put(api, tid, cid, 409, "version_conflict", json=put_body(), headers=stale)
    refused_patch(api, tid, cid, 409, "version_conflict", json=patch_ops(), headers=stale)
    refused_put(api, tid, cid, 409, "version_conflict", json=put_body(sys_version=version + 7))
    both = {"If-Match": f'"{version}"'}
    refused_put(
        api,
        tid,
        cid,
        409,
        "version_conflict",
        json=put_body(sys_version=version + 1),
        headers=both,
    )


@pytest.mark.parametrize("value", ["1", 1.5, True, [1], {"v": 1}])
def test_put_body_sys_version_must_be_an_int(
    api: Api, tid: str, seed: dict[str, Any], value: Any
) -> None:
    refused_put(
        api,
        tid,
        seed["id"],
        422,
        "validation_failed",
        ("sys_version",),
        json=put_body(sys_version=value),
    )


# --- ids and codes ------------------------------------------------------------------------


@pytest.mark.parametrize("variant", ["Dup-Code", "dup-code", "DUP-CODE", "dUP-cODE"])
def test_duplicate_code_ignores_case(api: Api, tid: str, variant: str) -> None:
    first = api.post(coupons(tid), json=percent_coupon(code="Dup-Code"))
    assert first.status_code == 201, first.text
    refused_create(api, tid, 409, "code_taken", json=percent_coupon(code=variant))
    other = api.post(coupons(tid), json=percent_coupon(code="OTHER-1"))
    assert other.status_code == 201, other.text
    oid = other.json()["id"]
    refused_put(api, tid, oid, 409, "code_taken", json=percent_coupon(code=variant))
    refused_patch(api, tid, oid, 409, "code_taken", json=patch_ops(code=variant))
    with nothing_created(api, tid):
        ops = {"operations": [{"operation": "create", "object": percent_coupon(code=variant)}]}
        resp = api.post(f"{coupons(tid)}/batch", json=ops)
        assert resp.status_code == 200, resp.text
        assert resp.json()["results"][0]["outcome"] == "error"
        assert resp.json()["results"][0]["error_code"] == "code_taken"


def test_abc_versus_abc(api: Api, tid: str) -> None:
    assert api.post(coupons(tid), json=percent_coupon(code="ABC")).status_code == 201
    refused_create(api, tid, 409, "code_taken", json=percent_coupon(code="abc"))


@pytest.mark.parametrize("value", ["abcd-ef01-2345-6789", "mine", 5, True, ""])
def test_create_with_id_refused(api: Api, tid: str, seed: dict[str, Any], value: Any) -> None:
    refused_create(api, tid, 422, "id_not_allowed", json=percent_coupon(id=value))


def test_create_with_existing_id_refused(api: Api, tid: str, seed: dict[str, Any]) -> None:
    refused_create(api, tid, 422, "id_not_allowed", json=percent_coupon(id=seed["id"]))


def test_id_not_allowed_names_the_field(api: Api, tid: str, seed: dict[str, Any]) -> None:
    # SPEC 4.3: "Validation names every offending field"; here the offending field is `id`.
    refused_create(
        api, tid, 422, "id_not_allowed", ("id",), json=percent_coupon(id="abcd-ef01-2345-6789")
    )


@pytest.mark.parametrize("value", ["0000-0000-0000-0000", "other", 5, "", True])
def test_put_id_must_match_path(api: Api, tid: str, seed: dict[str, Any], value: Any) -> None:
    refused_put(api, tid, seed["id"], 422, "id_mismatch", ("id",), json=put_body(id=value))


def test_put_with_matching_id_is_accepted(api: Api, tid: str, seed: dict[str, Any]) -> None:
    """Control: a GET body can be edited and sent back."""
    body = {**seed, "comment": "edited"}
    resp = api.put(f"{coupons(tid)}/{seed['id']}", json=body)
    assert resp.status_code == 200, resp.text
    assert resp.json()["comment"] == "edited"
    assert resp.json()["sys_version"] == seed["sys_version"] + 1


@pytest.mark.parametrize("raw_id", ["%00abc", "ab%1Bcd", "%7F", "abc%00"])
def test_control_characters_in_path_ids(
    api: Api, tid: str, seed: dict[str, Any], raw_id: str
) -> None:
    path = f"{coupons(tid)}/{raw_id}"
    check_refused_somehow(api.get(path), (400, 404))
    with coupon_unchanged(api, tid, seed["id"]):
        check_refused_somehow(api.put(path, json=put_body()), (400, 404))
        check_refused_somehow(api.patch(path, json=patch_ops()), (400, 404))
        check_refused_somehow(api.delete(path), (400, 404))


@pytest.mark.parametrize("code", ["a\x00b", "\x00", "SEED\x1b-1", "SEED-1\x7f"])
def test_control_characters_in_code_filter(
    api: Api, tid: str, seed: dict[str, Any], code: str
) -> None:
    resp = api.get(coupons(tid), params={"code": code})
    if resp.status_code == 200:
        assert resp.json() == []
    else:
        check_error(resp, 400, resp.json()["error"]["code"])


# --- the envelope -------------------------------------------------------------------------


def test_error_reply_echoes_the_callers_request_id(api: Api, tid: str) -> None:
    resp = api.post(
        coupons(tid), json=percent_coupon(name=""), headers={"X-Request-Id": "req-bad-input-1"}
    )
    check_error(resp, 422, "validation_failed", ("name",))
    assert resp.headers["x-request-id"] == "req-bad-input-1"


# --- carts (SPEC 6.1): validate and redeem refuse a bad cart, and redeem writes nothing ------

BAD_CARTS: list[tuple[dict[str, Any], str, tuple[str, ...]]] = [
    ({"lines": [5]}, "validation_failed", ("lines[0]",)),
    ({"lines": []}, "validation_failed", ("lines",)),
    ({"lines": None}, "validation_failed", ("lines",)),
    ({"user_id": "u" * 201}, "validation_failed", ("user_id",)),
    ({"code": "C" * 65}, "validation_failed", ("code",)),
    ({"hold_seconds": 59}, "validation_failed", ("hold_seconds",)),
    ({"membership_status": "old"}, "validation_failed", ("membership_status",)),
    (
        {
            "lines": [
                {"line_id": "1", "kind": "event", "id": "e", "unit_price": "1", "quantity": 100_001}
            ]
        },
        "validation_failed",
        ("lines[0].quantity",),
    ),
    (
        {
            "lines": [
                {"line_id": "1", "kind": "event", "id": "e" * 201, "unit_price": "1", "quantity": 1}
            ]
        },
        "validation_failed",
        ("lines[0].id",),
    ),
    (
        {
            "lines": [
                {
                    "line_id": "1",
                    "kind": "event",
                    "id": "e",
                    "unit_price": "1",
                    "quantity": 1,
                    "group_ids": [f"g{i}" for i in range(101)],
                }
            ]
        },
        "validation_failed",
        ("lines[0].group_ids",),
    ),
    (
        {
            "lines": [
                {
                    "line_id": "1",
                    "kind": "event",
                    "id": "e",
                    "unit_price": "1",
                    "quantity": 1,
                    "price": 2,
                }
            ]
        },
        "unknown_field",
        ("lines[0].price",),
    ),
    ({"codes": ["A", "a"]}, "validation_failed", ("code", "codes[1]")),
    ({"policy": "all"}, "validation_failed", ("policy",)),
]


@pytest.mark.parametrize(("changes", "code", "fields"), BAD_CARTS)
def test_a_bad_cart_is_refused_and_nothing_is_redeemed(
    api: Api,
    tid: str,
    seed: dict[str, Any],
    changes: dict[str, Any],
    code: str,
    fields: tuple[str, ...],
) -> None:
    good_line = {"line_id": "1", "kind": "event", "id": "e", "unit_price": "10", "quantity": 1}
    body = {"code": SEED_CODE, "user_id": "u-1", "lines": [good_line], **changes}
    check_error(api.post(f"/coupons/{tid}/validate", json=body), 422, code, fields)
    check_error(api.post(f"/redemptions/{tid}", json=body), 422, code, fields)
    keyed = api.post(f"/redemptions/{tid}", json=body, headers={"Idempotency-Key": "bad-cart"})
    check_error(keyed, 422, code, fields)
    assert get_one(api, tid, seed["id"])["times_used"] == 0
    listed = api.get(f"/redemptions/{tid}")
    assert listed.status_code == 200 and listed.json() == []
    # The key was not remembered: a good cart under it redeems.
    good = {"code": SEED_CODE, "user_id": "u-1", "lines": [good_line]}
    made = api.post(f"/redemptions/{tid}", json=good, headers={"Idempotency-Key": "bad-cart"})
    assert made.status_code == 201, made.text
