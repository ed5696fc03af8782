"""Validation and redemption over REST (SPEC 6): refusals, side effects, the lifecycle,
idempotency, listing, tenant isolation and roles, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import secrets
import threading
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from starlette.testclient import TestClient

from couponry.services import tenants as tenant_svc
from couponry.store.db import Database
from tests.conftest import Api, TenantKeys, make_tenant, now, percent_coupon

D = Decimal
REDEMPTION_FIELDS = {
    "id",
    "coupon_id",
    "code",
    "user_id",
    "status",
    "access",
    "discount_total",
    "lines",
    "discount_line",
    "created_at",
}


# --- helpers ----------------------------------------------------------------------------------


def create_coupon(api: Api, tenant: TenantKeys, **body: Any) -> dict[str, Any]:
    reply = api.post(f"/coupons/{tenant.tenant_id}", json=percent_coupon(**body))
    assert reply.status_code == 201, reply.text
    return reply.json()  # type: ignore[no-any-return]


def credit_coupon(api: Api, tenant: TenantKeys, amount: Any, **body: Any) -> dict[str, Any]:
    return create_coupon(
        api, tenant, coupon_type="TOTAL_AMOUNT", value_percent=None, value_amount=amount, **body
    )


def make_group(api: Api, tenant: TenantKeys, name: str = "Members") -> str:
    reply = api.post(f"/groups/{tenant.tenant_id}", json={"name": name})
    assert reply.status_code == 201, reply.text
    return str(reply.json()["id"])


def add_member(api: Api, tenant: TenantKeys, group_id: str, user: str, **body: Any) -> None:
    reply = api.put(f"/groups/{tenant.tenant_id}/{group_id}/members/{user}", json=body)
    assert reply.status_code in (200, 201), reply.text


def members(api: Api, tenant: TenantKeys, group_id: str) -> dict[str, Any]:
    reply = api.get(f"/groups/{tenant.tenant_id}/{group_id}/members")
    assert reply.status_code == 200, reply.text
    return {m["user_id"]: m for m in reply.json()}


def line(
    line_id: str = "1",
    kind: str = "course_session",
    item_id: str = "cs-1",
    price: str = "100.00",
    qty: int = 1,
    **extra: Any,
) -> dict[str, Any]:
    return {
        "line_id": line_id,
        "kind": kind,
        "id": item_id,
        "unit_price": price,
        "quantity": qty,
        **extra,
    }


def cart(code: str, user: str = "u-1", *lines: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"code": code, "user_id": user, "lines": list(lines) or [line()], **extra}


def redeem(api: Api, tenant: TenantKeys, body: dict[str, Any], key: str | None = None) -> Any:
    headers = {"Idempotency-Key": key} if key else None
    return api.post(f"/redemptions/{tenant.tenant_id}", json=body, headers=headers)


def redeemed(api: Api, tenant: TenantKeys, body: dict[str, Any]) -> dict[str, Any]:
    reply = redeem(api, tenant, body)
    assert reply.status_code == 201, reply.text
    return reply.json()  # type: ignore[no-any-return]


def validate(api: Api, tenant: TenantKeys, body: dict[str, Any]) -> dict[str, Any]:
    reply = api.post(f"/coupons/{tenant.tenant_id}/validate", json=body)
    assert reply.status_code == 200, reply.text
    return reply.json()  # type: ignore[no-any-return]


def get_coupon(api: Api, tenant: TenantKeys, coupon_id: str) -> dict[str, Any]:
    reply = api.get(f"/coupons/{tenant.tenant_id}/{coupon_id}")
    assert reply.status_code == 200, reply.text
    return reply.json()  # type: ignore[no-any-return]


def listing(api: Api, tenant: TenantKeys, **query: Any) -> list[dict[str, Any]]:
    """Every redemption matching the filters, following the pages."""
    found: list[dict[str, Any]] = []
    params = {"limit": 1000, **query}
    while True:
        reply = api.get(f"/redemptions/{tenant.tenant_id}", params=params)
        assert reply.status_code == 200, reply.text
        found.extend(reply.json())
        start = reply.headers.get("x-exclusive-start-key")
        if not start:
            return found
        params = {**params, "exclusiveStartKey": start}


def act(
    api: Api, tenant: TenantKeys, redemption_id: str, action: str, approver: str | None = "admin"
) -> Any:
    path = f"/redemptions/{tenant.tenant_id}/{redemption_id}/{action}"
    if action == "rollback":
        return api.post(path)
    return api.post(path, json={"approver": approver})


def error_code(reply: Any) -> str:
    return str(reply.json()["error"]["code"])


def snapshot(api: Api, tenant: TenantKeys, coupon_id: str) -> tuple[Any, Any, Any]:
    """What a refusal must not change: the counters and the redemption records."""
    c = get_coupon(api, tenant, coupon_id)
    return c["times_used"], c["remaining_amount"], listing(api, tenant, coupon_id=coupon_id)


def number(value: Any) -> Decimal:
    return D(str(value))


def tenant_with_currency(db: Database, currency: str) -> TenantKeys:
    tenant_id = f"c-{currency.lower()}-{secrets.token_hex(4)}"
    tenant_svc.create_tenant(
        db,
        tenant_id=tenant_id,
        name=f"{currency} tenant",
        site_urls=[],
        admins=["admin"],
        currency=currency,
        now=now(),
    )
    keys = {
        role: tenant_svc.create_key(db, tenant_id=tenant_id, role=role, now=now())
        for role in ("admin", "checkout", "read")
    }
    return TenantKeys(tenant_id, keys["admin"], keys["checkout"], keys["read"])


# --- refusal scenarios, shared by validate and redeem -----------------------------------------

Scenario = Callable[[Api, TenantKeys], tuple[str, dict[str, Any]]]


def _inactive(api: Api, t: TenantKeys) -> tuple[str, dict[str, Any]]:
    c = create_coupon(api, t, is_active=False)
    return c["id"], cart(c["code"])


def _not_started(api: Api, t: TenantKeys) -> tuple[str, dict[str, Any]]:
    c = create_coupon(api, t, starts_at="2099-01-01T00:00:00Z")
    return c["id"], cart(c["code"])


def _expired(api: Api, t: TenantKeys) -> tuple[str, dict[str, Any]]:
    c = create_coupon(api, t, expires_at="2020-01-01T00:00:00Z")
    return c["id"], cart(c["code"])


def _not_in_group(api: Api, t: TenantKeys) -> tuple[str, dict[str, Any]]:
    group = make_group(api, t)
    add_member(api, t, group, "someone-else")
    c = create_coupon(api, t, authorized_group_id=group)
    return c["id"], cart(c["code"], "u-outsider")


def _status_mismatch(api: Api, t: TenantKeys) -> tuple[str, dict[str, Any]]:
    c = create_coupon(api, t, applies_to="new members")
    return c["id"], cart(c["code"], "u-1", membership_status="renewal")


def _not_applicable(api: Api, t: TenantKeys) -> tuple[str, dict[str, Any]]:
    c = create_coupon(api, t, entity_type="EVENT", entity_id="ev-1")
    return c["id"], cart(c["code"], "u-1", line(kind="event", item_id="ev-2"))


def _usage_limit(api: Api, t: TenantKeys) -> tuple[str, dict[str, Any]]:
    c = create_coupon(api, t, usage_limit=1)
    redeemed(api, t, cart(c["code"], "u-first"))
    return c["id"], cart(c["code"], "u-second")


def _user_limit(api: Api, t: TenantKeys) -> tuple[str, dict[str, Any]]:
    c = create_coupon(api, t, usage_limit=10, max_uses_per_user=1)
    redeemed(api, t, cart(c["code"], "u-1"))
    return c["id"], cart(c["code"], "u-1")


def _credit_spent(api: Api, t: TenantKeys) -> tuple[str, dict[str, Any]]:
    c = credit_coupon(api, t, 50)
    redeemed(api, t, cart(c["code"], "u-1", line(price="80.00")))
    return c["id"], cart(c["code"], "u-2")


REFUSAL_SCENARIOS: list[tuple[str, int, Scenario]] = [
    ("coupon_inactive", 422, _inactive),
    ("coupon_not_started", 422, _not_started),
    ("coupon_expired", 422, _expired),
    ("not_in_authorized_group", 422, _not_in_group),
    ("membership_status_mismatch", 422, _status_mismatch),
    ("coupon_not_applicable", 422, _not_applicable),
    ("usage_limit_reached", 409, _usage_limit),
    ("user_limit_reached", 409, _user_limit),
    ("credit_exhausted", 409, _credit_spent),
]
REFUSAL_IDS = [name for name, _, _ in REFUSAL_SCENARIOS]


# --- validate ---------------------------------------------------------------------------------


def test_validate_quotes_every_line_and_changes_nothing(api: Api, tenant: TenantKeys) -> None:
    c = create_coupon(api, tenant, value_percent=25, entity_type="COURSE_SESSION", entity_id="cs-1")
    body = cart(
        c["code"].lower(),
        "u-1",
        line("a", price="2.97"),
        line("b", kind="event", item_id="ev-1", price="50.00"),
    )
    result = validate(api, tenant, body)
    assert result == {
        "valid": True,
        "coupon_id": c["id"],
        "code": c["code"],
        "discount_total": "0.74",
        "lines": [{"line_id": "a", "discount": "0.74"}, {"line_id": "b", "discount": "0.00"}],
        "discount_line": None,
        "errors": [],
    }
    assert validate(api, tenant, body) == result
    coupon = get_coupon(api, tenant, c["id"])
    assert coupon["times_used"] == 0 and coupon["sys_version"] == 1
    assert listing(api, tenant) == []


def test_validate_unknown_code(api: Api, tenant: TenantKeys) -> None:
    result = validate(api, tenant, cart("NO-SUCH-CODE", "u-1", line("a"), line("b")))
    assert result["valid"] is False
    assert result["coupon_id"] is None
    assert result["discount_total"] == "0.00"
    assert result["lines"] == [
        {"line_id": "a", "discount": "0.00"},
        {"line_id": "b", "discount": "0.00"},
    ]
    assert result["discount_line"] is None
    assert [e["code"] for e in result["errors"]] == ["coupon_not_found"]
    assert result["errors"][0]["message"]


@pytest.mark.parametrize(("code", "status", "scenario"), REFUSAL_SCENARIOS, ids=REFUSAL_IDS)
def test_validate_reports_each_refusal(
    api: Api, tenant: TenantKeys, code: str, status: int, scenario: Scenario
) -> None:
    coupon_id, body = scenario(api, tenant)
    before = snapshot(api, tenant, coupon_id)
    result = validate(api, tenant, body)
    assert result["valid"] is False
    assert result["coupon_id"] == coupon_id
    assert [e["code"] for e in result["errors"]] == [code]
    assert result["discount_total"] == "0.00"
    assert [x["discount"] for x in result["lines"]] == ["0.00"] * len(body["lines"])
    assert snapshot(api, tenant, coupon_id) == before


def test_validate_reports_the_first_refusal_in_order(api: Api, tenant: TenantKeys) -> None:
    group = make_group(api, tenant)
    c = create_coupon(
        api,
        tenant,
        expires_at="2020-01-01T00:00:00Z",
        authorized_group_id=group,
        applies_to="renewing members",
        entity_type="EVENT",
        entity_id="nowhere",
    )
    result = validate(api, tenant, cart(c["code"], "u-1"))
    assert [e["code"] for e in result["errors"]] == ["coupon_expired"]


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        (b'{"code": "X", "user_id": "u", "lines": [', 400),
        (b'{"code": "X", "user_id": "u"}', 422),
        (b'{"code": "X", "user_id": "u", "lines": []}', 422),
        (
            b'{"code": "X", "lines": [{"line_id": "1", "kind": "other", "id": "a", '
            b'"unit_price": "1", "quantity": 1}]}',
            422,
        ),
        (
            b'{"code": "X", "user_id": "u", "lines": [{"line_id": "1", "kind": "thing", '
            b'"id": "a", "unit_price": "1", "quantity": 1}]}',
            422,
        ),
        (
            b'{"code": "X", "user_id": "u", "lines": [{"line_id": "1", "kind": "other", '
            b'"id": "a", "unit_price": "-1", "quantity": 1}]}',
            422,
        ),
        (
            b'{"code": "X", "user_id": "u", "lines": [{"line_id": "1", "kind": "other", '
            b'"id": "a", "unit_price": "1", "quantity": 0}]}',
            422,
        ),
        (
            b'{"code": "X", "user_id": "u", "extra": 1, "lines": [{"line_id": "1", '
            b'"kind": "other", "id": "a", "unit_price": "1", "quantity": 1}]}',
            422,
        ),
        (b"[]", 422),
    ],
)
def test_malformed_cart_is_refused(api: Api, tenant: TenantKeys, raw: bytes, status: int) -> None:
    headers = {"Content-Type": "application/json"}
    for path in (f"/coupons/{tenant.tenant_id}/validate", f"/redemptions/{tenant.tenant_id}"):
        reply = api.post(path, content=raw, headers=headers)
        assert reply.status_code == status, (path, reply.text)
        assert "error" in reply.json()
    assert listing(api, tenant) == []


def test_more_than_500_lines_is_refused(api: Api, tenant: TenantKeys) -> None:
    c = create_coupon(api, tenant)
    many = [line(str(i), price="1.00") for i in range(501)]
    refused = api.post(f"/coupons/{tenant.tenant_id}/validate", json=cart(c["code"], "u", *many))
    assert refused.status_code == 422
    fine = validate(api, tenant, cart(c["code"], "u", *many[:500]))
    assert fine["valid"] is True and fine["discount_total"] == "50.00"
    assert len(fine["lines"]) == 500


def test_discount_line_item(api: Api, tenant: TenantKeys) -> None:
    c = create_coupon(
        api, tenant, discount_method="discount line item", discount_product_id="disc-1"
    )
    body = cart(c["code"], "u-1", line("a", price="40.00"), line("b", price="60.00", qty=2))
    result = validate(api, tenant, body)
    assert result["discount_line"] == {"product_id": "disc-1", "amount": "16.00"}
    assert result["discount_total"] == "16.00"
    r = redeemed(api, tenant, body)
    assert r["discount_line"] == {"product_id": "disc-1", "amount": "16.00"}
    assert r["lines"] == [
        {"line_id": "a", "discount": "4.00"},
        {"line_id": "b", "discount": "12.00"},
    ]


@pytest.mark.parametrize(
    ("currency", "price", "total", "zero"),
    [
        ("JPY", "155", "16", "0"),
        ("KWD", "1.2345", "0.123", "0.000"),
        ("USD", "2.97", "0.30", "0.00"),
    ],
)
def test_amounts_have_exactly_the_minor_unit_places(
    client: TestClient, db: Database, currency: str, price: str, total: str, zero: str
) -> None:
    t = tenant_with_currency(db, currency)
    api = Api(client, t.admin)
    c = create_coupon(api, t, entity_type="EVENT", entity_id="ev-1")
    body = cart(c["code"], "u-1", line("a", "event", "ev-1", price=price), line("b", price=price))
    result = validate(api, t, body)
    assert result["discount_total"] == total
    assert result["lines"] == [
        {"line_id": "a", "discount": total},
        {"line_id": "b", "discount": zero},
    ]
    r = redeemed(api, t, body)
    assert r["discount_total"] == total
    assert [x["discount"] for x in r["lines"]] == [total, zero]
    unknown = validate(api, t, cart("NOPE", "u-1"))
    assert unknown["discount_total"] == zero


# --- redeem -----------------------------------------------------------------------------------


def test_redeem_returns_the_redemption(api: Api, tenant: TenantKeys) -> None:
    c = create_coupon(api, tenant, code="Spring-25", value_percent=25)
    reply = redeem(api, tenant, cart("sPRING-25", "u-42", line("1", price="120.00")))
    assert reply.status_code == 201, reply.text
    r = reply.json()
    assert set(r) >= REDEMPTION_FIELDS
    assert r["coupon_id"] == c["id"]
    assert r["code"].lower() == "spring-25"
    assert r["user_id"] == "u-42"
    assert r["status"] == "applied" and r["access"] == "full"
    assert r["discount_total"] == "30.00"
    assert r["lines"] == [{"line_id": "1", "discount": "30.00"}]
    assert r["discount_line"] is None
    assert r["created_at"].endswith("Z")
    assert len(r["id"]) == 19
    assert get_coupon(api, tenant, c["id"])["times_used"] == 1
    assert api.get(f"/redemptions/{tenant.tenant_id}/{r['id']}").json() == r
    assert listing(api, tenant) == [r]


def test_unknown_code_is_404(api: Api, tenant: TenantKeys) -> None:
    reply = redeem(api, tenant, cart("NO-SUCH-CODE"))
    assert reply.status_code == 404
    assert error_code(reply) == "coupon_not_found"
    assert listing(api, tenant) == []


@pytest.mark.parametrize(("code", "status", "scenario"), REFUSAL_SCENARIOS, ids=REFUSAL_IDS)
def test_each_refusal_has_its_status_and_changes_nothing(
    api: Api, tenant: TenantKeys, code: str, status: int, scenario: Scenario
) -> None:
    coupon_id, body = scenario(api, tenant)
    before = snapshot(api, tenant, coupon_id)
    reply = redeem(api, tenant, body)
    assert reply.status_code == status, reply.text
    assert error_code(reply) == code
    assert reply.json()["error"]["message"]
    assert snapshot(api, tenant, coupon_id) == before


def test_refusal_order_at_the_409s(api: Api, tenant: TenantKeys) -> None:
    c = credit_coupon(api, tenant, 10, usage_limit=1, max_uses_per_user=1)
    redeemed(api, tenant, cart(c["code"], "u-1", line(price="10.00")))
    # usage limit, user limit and credit all fail: the usage limit is named
    reply = redeem(api, tenant, cart(c["code"], "u-1"))
    assert reply.status_code == 409 and error_code(reply) == "usage_limit_reached"
    api.patch(
        f"/coupons/{tenant.tenant_id}/{c['id']}",
        json=[{"op": "replace", "path": "/usage_limit", "value": 5}],
    )
    reply = redeem(api, tenant, cart(c["code"], "u-1"))
    assert reply.status_code == 409 and error_code(reply) == "user_limit_reached"
    reply = redeem(api, tenant, cart(c["code"], "u-2"))
    assert reply.status_code == 409 and error_code(reply) == "credit_exhausted"


def test_a_credit_gives_what_is_left_then_refuses(api: Api, tenant: TenantKeys) -> None:
    c = credit_coupon(api, tenant, 50)
    first = redeemed(api, tenant, cart(c["code"], "u-1", line("a", price="30.00")))
    assert first["discount_total"] == "30.00"
    assert number(get_coupon(api, tenant, c["id"])["remaining_amount"]) == 20
    second = redeemed(
        api, tenant, cart(c["code"], "u-2", line("a", price="15.00"), line("b", price="15.00"))
    )
    # 20 left for 30 of cart: the last line gives up its discount first
    assert second["discount_total"] == "20.00"
    assert second["lines"] == [
        {"line_id": "a", "discount": "15.00"},
        {"line_id": "b", "discount": "5.00"},
    ]
    coupon = get_coupon(api, tenant, c["id"])
    assert number(coupon["remaining_amount"]) == 0 and coupon["times_used"] == 2
    spent = redeem(api, tenant, cart(c["code"], "u-3"))
    assert spent.status_code == 409 and error_code(spent) == "credit_exhausted"
    assert validate(api, tenant, cart(c["code"], "u-3"))["errors"][0]["code"] == "credit_exhausted"
    after = get_coupon(api, tenant, c["id"])
    assert after["times_used"] == 2 and number(after["remaining_amount"]) == 0


def test_validate_shows_what_the_credit_would_give(api: Api, tenant: TenantKeys) -> None:
    c = credit_coupon(api, tenant, "12.50")
    result = validate(
        api, tenant, cart(c["code"], "u", line("a", price="10"), line("b", price="10"))
    )
    assert result["valid"] is True
    assert result["discount_total"] == "12.50"
    assert [x["discount"] for x in result["lines"]] == ["10.00", "2.50"]
    assert number(get_coupon(api, tenant, c["id"])["remaining_amount"]) == D("12.5")


def assert_counters_agree(api: Api, tenant: TenantKeys, coupon: dict[str, Any]) -> None:
    """times_used, remaining_amount and the redemption records say the same (SPEC 6.4)."""
    current = get_coupon(api, tenant, coupon["id"])
    records = listing(api, tenant, coupon_id=coupon["id"])
    holding = [r for r in records if r["status"] in ("applied", "pending_approval")]
    assert current["times_used"] == len(holding)
    if coupon["coupon_type"] == "TOTAL_AMOUNT":
        drawn = sum((D(r["discount_total"]) for r in holding), D(0))
        assert number(current["remaining_amount"]) == number(coupon["value_amount"]) - drawn


def test_counters_and_records_agree_through_a_lifecycle(api: Api, tenant: TenantKeys) -> None:
    group = make_group(api, tenant)
    c = credit_coupon(
        api,
        tenant,
        100,
        authorized_group_id=group,
        add_user_to_coupons_group=True,
        require_approval=True,
        usage_limit=3,
    )
    ids = []
    for i, price in enumerate(("20.00", "30.00", "10.00")):
        r = redeemed(api, tenant, cart(c["code"], f"u-{i}", line(price=price)))
        assert r["status"] == "pending_approval"
        ids.append(r["id"])
        assert_counters_agree(api, tenant, c)
    full = redeem(api, tenant, cart(c["code"], "u-9"))
    assert full.status_code == 409 and error_code(full) == "usage_limit_reached"
    steps = [
        (ids[0], "approve", "applied"),
        (ids[1], "approve", "applied"),
        (ids[2], "reject", "rejected"),
        (ids[1], "rollback", "rolled_back"),
    ]
    for rid, action, status in steps:
        reply = act(api, tenant, rid, action)
        assert reply.status_code == 200, reply.text
        assert reply.json()["status"] == status
        assert_counters_agree(api, tenant, c)
    final = get_coupon(api, tenant, c["id"])
    assert final["times_used"] == 1 and number(final["remaining_amount"]) == 80
    again = redeemed(api, tenant, cart(c["code"], "u-9", line(price="100.00")))
    assert again["discount_total"] == "80.00"
    assert_counters_agree(api, tenant, c)
    statuses = [r["status"] for r in listing(api, tenant, coupon_id=c["id"])]
    assert statuses == ["applied", "rolled_back", "rejected", "pending_approval"]


def test_rollback_gives_back_the_use_and_the_per_user_use(api: Api, tenant: TenantKeys) -> None:
    c = create_coupon(api, tenant, usage_limit=2, max_uses_per_user=1)
    a = redeemed(api, tenant, cart(c["code"], "u-a"))
    redeemed(api, tenant, cart(c["code"], "u-b"))
    assert redeem(api, tenant, cart(c["code"], "u-c")).status_code == 409
    assert act(api, tenant, a["id"], "rollback").status_code == 200
    assert_counters_agree(api, tenant, c)
    redeemed(api, tenant, cart(c["code"], "u-a"))  # the user's use came back too
    assert get_coupon(api, tenant, c["id"])["times_used"] == 2
    assert_counters_agree(api, tenant, c)


def test_redemptions_do_not_raise_sys_version(api: Api, tenant: TenantKeys) -> None:
    c = create_coupon(api, tenant, comment="v1")
    r = redeemed(api, tenant, cart(c["code"]))
    after = api.get(f"/coupons/{tenant.tenant_id}/{c['id']}")
    assert after.json()["sys_version"] == 1 and after.headers["etag"] == '"1"'
    assert after.json()["times_used"] == 1
    assert act(api, tenant, r["id"], "rollback").status_code == 200
    assert get_coupon(api, tenant, c["id"])["sys_version"] == 1
    body = {k: v for k, v in after.json().items() if k != "id"}
    body["comment"] = "edited after a redemption"
    put = api.put(f"/coupons/{tenant.tenant_id}/{c['id']}", json=body, headers={"If-Match": '"1"'})
    assert put.status_code == 200, put.text
    assert put.json()["sys_version"] == 2
    redeemed(api, tenant, cart(c["code"], "u-2"))
    patch = api.patch(
        f"/coupons/{tenant.tenant_id}/{c['id']}",
        json=[{"op": "replace", "path": "/comment", "value": "again"}],
        headers={"If-Match": '"2"'},
    )
    assert patch.status_code == 200, patch.text


# --- side effects (SPEC 6.3) ------------------------------------------------------------------


def test_authorized_group_needs_a_current_member(api: Api, tenant: TenantKeys) -> None:
    group = make_group(api, tenant)
    add_member(api, tenant, group, "u-current")
    add_member(api, tenant, group, "u-later", expires_at="2099-01-01T00:00:00Z")
    add_member(api, tenant, group, "u-expired", expires_at="2020-01-01T00:00:00Z")
    c = create_coupon(api, tenant, authorized_group_id=group)
    assert redeem(api, tenant, cart(c["code"], "u-current")).status_code == 201
    assert redeem(api, tenant, cart(c["code"], "u-later")).status_code == 201
    for user in ("u-expired", "u-nobody"):
        reply = redeem(api, tenant, cart(c["code"], user))
        assert reply.status_code == 422, reply.text
        assert error_code(reply) == "not_in_authorized_group"
    assert get_coupon(api, tenant, c["id"])["times_used"] == 2
    assert set(members(api, tenant, group)) == {"u-current", "u-later", "u-expired"}


def test_add_user_to_coupons_group(api: Api, tenant: TenantKeys) -> None:
    group = make_group(api, tenant)
    c = create_coupon(api, tenant, authorized_group_id=group, add_user_to_coupons_group=True)
    assert redeem(api, tenant, cart(c["code"], "u-new")).status_code == 201
    found = members(api, tenant, group)
    assert found["u-new"]["expires_at"] is None
    assert found["u-new"]["role"] == "member"


def test_set_membership_expiration(api: Api, tenant: TenantKeys) -> None:
    group = make_group(api, tenant)
    add_member(api, tenant, group, "u-lapsed", expires_at="2020-01-01T00:00:00Z")
    c = create_coupon(
        api,
        tenant,
        authorized_group_id=group,
        add_user_to_coupons_group=True,
        set_membership_expiration=True,
        expires_at="2031-06-30T12:00:00Z",
    )
    assert redeem(api, tenant, cart(c["code"], "u-new")).status_code == 201
    assert redeem(api, tenant, cart(c["code"], "u-lapsed")).status_code == 201
    found = members(api, tenant, group)
    assert found["u-new"]["expires_at"] == c["expires_at"] == "2031-06-30T12:00:00Z"
    assert found["u-lapsed"]["expires_at"] == c["expires_at"]


def test_preview_access_only(api: Api, tenant: TenantKeys) -> None:
    c = create_coupon(api, tenant, preview_access_only=True)
    r = redeemed(api, tenant, cart(c["code"]))
    assert r["access"] == "preview"
    assert api.get(f"/redemptions/{tenant.tenant_id}/{r['id']}").json()["access"] == "preview"


def test_require_approval_holds_use_and_credit_and_delays_group_effects(
    api: Api, tenant: TenantKeys
) -> None:
    group = make_group(api, tenant)
    c = credit_coupon(
        api,
        tenant,
        50,
        authorized_group_id=group,
        add_user_to_coupons_group=True,
        set_membership_expiration=True,
        expires_at="2032-01-01T00:00:00Z",
        require_approval=True,
    )
    r = redeemed(api, tenant, cart(c["code"], "u-1", line(price="30.00")))
    assert r["status"] == "pending_approval"
    held = get_coupon(api, tenant, c["id"])
    assert held["times_used"] == 1 and number(held["remaining_amount"]) == 20
    assert "u-1" not in members(api, tenant, group)
    approved = act(api, tenant, r["id"], "approve")
    assert approved.status_code == 200, approved.text
    assert approved.json()["status"] == "applied"
    assert approved.json()["approved_by"] == "admin"
    assert members(api, tenant, group)["u-1"]["expires_at"] == "2032-01-01T00:00:00Z"
    after = get_coupon(api, tenant, c["id"])
    assert after["times_used"] == 1 and number(after["remaining_amount"]) == 20


def test_rejected_redemption_has_no_group_effects(api: Api, tenant: TenantKeys) -> None:
    group = make_group(api, tenant)
    c = create_coupon(
        api,
        tenant,
        authorized_group_id=group,
        add_user_to_coupons_group=True,
        require_approval=True,
    )
    r = redeemed(api, tenant, cart(c["code"], "u-1"))
    assert act(api, tenant, r["id"], "reject").json()["status"] == "rejected"
    assert "u-1" not in members(api, tenant, group)
    assert get_coupon(api, tenant, c["id"])["times_used"] == 0


# --- lifecycle (SPEC 6.4) ---------------------------------------------------------------------


def pending(api: Api, tenant: TenantKeys, **body: Any) -> tuple[str, dict[str, Any]]:
    group = make_group(api, tenant)
    c = create_coupon(
        api,
        tenant,
        authorized_group_id=group,
        add_user_to_coupons_group=True,
        require_approval=True,
        **body,
    )
    return group, c


def test_approve_and_reject_need_an_admin_key(api: Api, tenant: TenantKeys) -> None:
    _, c = pending(api, tenant)
    r = redeemed(api, tenant, cart(c["code"]))
    for key in (tenant.checkout, tenant.read):
        for action in ("approve", "reject"):
            reply = act(api.as_key(key), tenant, r["id"], action)
            assert reply.status_code == 403, reply.text
    assert api.get(f"/redemptions/{tenant.tenant_id}/{r['id']}").json()["status"] == (
        "pending_approval"
    )


def test_who_may_approve(api: Api, tenant: TenantKeys) -> None:
    group, c = pending(api, tenant)
    add_member(api, tenant, group, "group-admin", role="admin")
    add_member(api, tenant, group, "plain-member")
    add_member(api, tenant, group, "old-admin", role="admin", expires_at="2020-01-01T00:00:00Z")
    other_group = make_group(api, tenant, "Other")
    add_member(api, tenant, other_group, "elsewhere-admin", role="admin")
    r = redeemed(api, tenant, cart(c["code"], "u-1"))
    for approver in ("nobody", "plain-member", "elsewhere-admin", "old-admin"):
        for action in ("approve", "reject"):
            reply = act(api, tenant, r["id"], action, approver)
            assert reply.status_code == 403, (approver, reply.text)
            assert error_code(reply) == "approver_not_allowed"
    for bad in ({}, {"approver": ""}, {"approver": 7}, {"approver": "admin", "x": 1}):
        reply = api.post(f"/redemptions/{tenant.tenant_id}/{r['id']}/approve", json=bad)
        assert reply.status_code == 422, (bad, reply.text)
    ok = act(api, tenant, r["id"], "approve", "group-admin")
    assert ok.status_code == 200 and ok.json()["approved_by"] == "group-admin"
    r2 = redeemed(api, tenant, cart(c["code"], "u-2"))
    assert act(api, tenant, r2["id"], "reject", "admin").status_code == 200


def test_tenant_admin_list_allows_other_names(client: TestClient, db: Database) -> None:
    t = make_tenant(db, admins=("alice", "bob"))
    api = Api(client, t.admin)
    _, c = pending(api, t)
    r = redeemed(api, t, cart(c["code"]))
    assert act(api, t, r["id"], "approve", "admin").status_code == 403
    assert act(api, t, r["id"], "approve", "bob").status_code == 200


def test_transitions_and_repeats(api: Api, tenant: TenantKeys) -> None:
    _, c = pending(api, tenant)
    a = redeemed(api, tenant, cart(c["code"], "u-a"))
    b = redeemed(api, tenant, cart(c["code"], "u-b"))
    assert get_coupon(api, tenant, c["id"])["times_used"] == 2

    approved = act(api, tenant, a["id"], "approve")
    assert approved.status_code == 200 and approved.json()["status"] == "applied"
    again = act(api, tenant, a["id"], "approve")
    assert again.status_code == 200 and again.json() == approved.json()

    rejected = act(api, tenant, b["id"], "reject")
    assert rejected.status_code == 200 and rejected.json()["status"] == "rejected"
    assert get_coupon(api, tenant, c["id"])["times_used"] == 1
    again = act(api, tenant, b["id"], "reject")
    assert again.status_code == 200 and again.json() == rejected.json()
    assert get_coupon(api, tenant, c["id"])["times_used"] == 1  # not released twice

    rolled = act(api.as_key(tenant.checkout), tenant, a["id"], "rollback")
    assert rolled.status_code == 200 and rolled.json()["status"] == "rolled_back"
    assert get_coupon(api, tenant, c["id"])["times_used"] == 0
    again = act(api, tenant, a["id"], "rollback")
    assert again.status_code == 200 and again.json() == rolled.json()
    assert get_coupon(api, tenant, c["id"])["times_used"] == 0  # not released twice

    for rid, action in (
        (a["id"], "approve"),  # rolled back
        (a["id"], "reject"),
        (b["id"], "approve"),  # rejected
        (b["id"], "rollback"),
    ):
        reply = act(api, tenant, rid, action)
        assert reply.status_code == 409, (action, reply.text)
        assert error_code(reply) == "invalid_redemption_state"


def test_invalid_states(api: Api, tenant: TenantKeys) -> None:
    plain = create_coupon(api, tenant)
    applied = redeemed(api, tenant, cart(plain["code"]))
    never = act(api, tenant, applied["id"], "approve")
    assert never.status_code == 409 and error_code(never) == "invalid_redemption_state"
    refused = act(api, tenant, applied["id"], "reject")
    assert refused.status_code == 409 and error_code(refused) == "invalid_redemption_state"
    _, c = pending(api, tenant)
    waiting = redeemed(api, tenant, cart(c["code"]))
    early = act(api, tenant, waiting["id"], "rollback")
    assert early.status_code == 409 and error_code(early) == "invalid_redemption_state"
    assert api.get(f"/redemptions/{tenant.tenant_id}/{waiting['id']}").json()["status"] == (
        "pending_approval"
    )
    assert api.get(f"/redemptions/{tenant.tenant_id}/{applied['id']}").json()["status"] == (
        "applied"
    )
    assert get_coupon(api, tenant, plain["id"])["times_used"] == 1


def test_approved_then_rolled_back_cannot_be_approved_again(api: Api, tenant: TenantKeys) -> None:
    _, c = pending(api, tenant)
    r = redeemed(api, tenant, cart(c["code"]))
    assert act(api, tenant, r["id"], "approve").status_code == 200
    assert act(api, tenant, r["id"], "rollback").status_code == 200
    reply = act(api, tenant, r["id"], "approve")
    assert reply.status_code == 409 and error_code(reply) == "invalid_redemption_state"
    assert get_coupon(api, tenant, c["id"])["times_used"] == 0


def test_unknown_redemption_is_404(api: Api, tenant: TenantKeys) -> None:
    for rid in ("ffff-ffff-ffff-ffff", "not-an-id"):
        assert api.get(f"/redemptions/{tenant.tenant_id}/{rid}").status_code == 404
        for action in ("approve", "reject", "rollback"):
            reply = act(api, tenant, rid, action)
            assert reply.status_code == 404, reply.text
            assert error_code(reply) == "redemption_not_found"


# --- idempotency ------------------------------------------------------------------------------


def post_raw(api: Api, tenant: TenantKeys, raw: bytes, key: str | None) -> Any:
    headers = {"Content-Type": "application/json"}
    if key is not None:
        headers["Idempotency-Key"] = key
    return api.post(f"/redemptions/{tenant.tenant_id}", content=raw, headers=headers)


def test_same_key_same_body_replays(api: Api, tenant: TenantKeys) -> None:
    c = create_coupon(api, tenant)
    first = post_raw(
        api,
        tenant,
        json.dumps(
            {
                "code": c["code"],
                "user_id": "u-1",
                "lines": [
                    {"line_id": "1", "kind": "other", "id": "x", "unit_price": 120.0, "quantity": 2}
                ],
            }
        ).encode(),
        "key-1",
    )
    assert first.status_code == 201, first.text
    assert "idempotent-replayed" not in first.headers
    spelled_otherwise = (
        '{\n  "lines": [ { "quantity": 2, "unit_price": 120.00, "id": "x", "kind": "other",'
        ' "line_id": "1" } ],\n  "user_id" : "u-1",  "code":"' + c["code"] + '"\n}'
    ).encode()
    second = post_raw(api, tenant, spelled_otherwise, "key-1")
    assert second.status_code == 201
    assert second.headers["idempotent-replayed"] == "true"
    assert second.content == first.content
    assert get_coupon(api, tenant, c["id"])["times_used"] == 1
    assert [r["id"] for r in listing(api, tenant)] == [first.json()["id"]]
    third = post_raw(api, tenant, spelled_otherwise, "key-2")
    assert third.status_code == 201 and third.json()["id"] != first.json()["id"]
    assert get_coupon(api, tenant, c["id"])["times_used"] == 2


def test_same_key_other_body_is_refused(api: Api, tenant: TenantKeys) -> None:
    c = create_coupon(api, tenant)
    assert redeem(api, tenant, cart(c["code"], "u-1"), key="k").status_code == 201
    for changed in (cart(c["code"], "u-2"), cart(c["code"], "u-1", line(price="99.00"))):
        reply = redeem(api, tenant, changed, key="k")
        assert reply.status_code == 422, reply.text
        assert error_code(reply) == "idempotency_key_reused"
    assert get_coupon(api, tenant, c["id"])["times_used"] == 1
    assert len(listing(api, tenant)) == 1
    # the original body still replays
    assert redeem(api, tenant, cart(c["code"], "u-1"), key="k").headers["idempotent-replayed"]


def test_refusals_are_replayed(api: Api, tenant: TenantKeys) -> None:
    c = create_coupon(api, tenant, usage_limit=1)
    redeemed(api, tenant, cart(c["code"], "u-1"))
    body = cart(c["code"], "u-2")
    first = redeem(api, tenant, body, key="late")
    assert first.status_code == 409 and error_code(first) == "usage_limit_reached"
    raised = api.patch(
        f"/coupons/{tenant.tenant_id}/{c['id']}",
        json=[{"op": "replace", "path": "/usage_limit", "value": 5}],
    )
    assert raised.status_code == 200, raised.text
    replay = redeem(api, tenant, body, key="late")
    assert replay.status_code == 409
    assert replay.headers["idempotent-replayed"] == "true"
    assert replay.content == first.content
    assert get_coupon(api, tenant, c["id"])["times_used"] == 1
    assert redeem(api, tenant, body, key="fresh").status_code == 201
    unknown = redeem(api, tenant, cart("NOPE-NOPE"), key="nf")
    assert unknown.status_code == 404
    again = redeem(api, tenant, cart("NOPE-NOPE"), key="nf")
    assert again.status_code == 404 and again.headers["idempotent-replayed"] == "true"


def test_a_malformed_cart_is_not_remembered(api: Api, tenant: TenantKeys) -> None:
    c = create_coupon(api, tenant)
    bad = redeem(api, tenant, {"code": c["code"], "user_id": "u-1", "lines": []}, key="k-bad")
    assert bad.status_code == 422
    broken = post_raw(api, tenant, b'{"code": ', "k-bad")
    assert broken.status_code == 400
    good = redeem(api, tenant, cart(c["code"], "u-1"), key="k-bad")
    assert good.status_code == 201, good.text
    assert "idempotent-replayed" not in good.headers


def test_idempotency_key_limits(api: Api, tenant: TenantKeys) -> None:
    c = create_coupon(api, tenant)
    assert redeem(api, tenant, cart(c["code"]), key="k" * 255).status_code == 201
    too_long = redeem(api, tenant, cart(c["code"], "u-2"), key="k" * 256)
    assert too_long.status_code in (400, 422)
    assert get_coupon(api, tenant, c["id"])["times_used"] == 1


def test_keys_are_per_tenant(
    client: TestClient, tenant: TenantKeys, other_tenant: TenantKeys
) -> None:
    a_api, b_api = Api(client, tenant.admin), Api(client, other_tenant.admin)
    a_coupon = create_coupon(a_api, tenant, code="SHARED-CODE")
    b_coupon = create_coupon(b_api, other_tenant, code="SHARED-CODE")
    body = cart("SHARED-CODE", "u-1")
    a_reply = redeem(a_api, tenant, body, key="same-key")
    b_reply = redeem(b_api, other_tenant, body, key="same-key")
    assert a_reply.status_code == b_reply.status_code == 201
    assert "idempotent-replayed" not in b_reply.headers
    assert a_reply.json()["coupon_id"] == a_coupon["id"]
    assert b_reply.json()["coupon_id"] == b_coupon["id"]
    # and a different body under that key is fine in B too, but reused in A
    other_body = cart("SHARED-CODE", "u-2")
    assert redeem(a_api, tenant, other_body, key="k2").status_code == 201
    assert redeem(b_api, other_tenant, cart("SHARED-CODE", "u-3"), key="k2").status_code == 201


def test_concurrent_requests_with_one_key_redeem_once(api: Api, tenant: TenantKeys) -> None:
    """Ten requests with one key at once: one redemption, and all ten get its reply.

    SPEC 6.4 also lets a request that arrives while the first runs get 409
    idempotency_key_in_use; this service waits and replays instead (the key's row lock on
    PostgreSQL, the write lock on SQLite), and that is what is checked here.
    """
    c = create_coupon(api, tenant)
    body = json.dumps(cart(c["code"], "u-1")).encode()
    workers = 10
    barrier = threading.Barrier(workers)
    results: list[Any] = [None] * workers

    def run(index: int) -> None:
        # One TestClient per thread over the same app: a client shared between threads is not
        # safe, while the app and its database pool are.
        own = TestClient(api.client.app, raise_server_exceptions=False)
        barrier.wait()
        try:
            results[index] = post_raw(Api(own, tenant.checkout), tenant, body, "race-key")
        except Exception as exc:  # asserted on below
            results[index] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert [getattr(r, "status_code", r) for r in results] == [201] * workers, [
        getattr(r, "text", r) for r in results
    ]
    assert len({r.content for r in results}) == 1
    assert sum(1 for r in results if "idempotent-replayed" not in r.headers) == 1
    assert get_coupon(api, tenant, c["id"])["times_used"] == 1
    assert len(listing(api, tenant)) == 1
    late = post_raw(api, tenant, body, "race-key")
    assert late.status_code == 201 and late.content == results[0].content
    assert late.headers["idempotent-replayed"] == "true"


# --- listing ----------------------------------------------------------------------------------


def test_listing_pages_and_filters(api: Api, tenant: TenantKeys) -> None:
    one = create_coupon(api, tenant)
    two = create_coupon(api, tenant)
    made = []
    for i in range(5):
        code = (one if i % 2 == 0 else two)["code"]
        made.append(redeemed(api, tenant, cart(code, f"u-{i % 3}")))
    assert act(api, tenant, made[1]["id"], "rollback").status_code == 200
    made[1] = api.get(f"/redemptions/{tenant.tenant_id}/{made[1]['id']}").json()

    base = f"/redemptions/{tenant.tenant_id}"
    page1 = api.get(f"{base}?limit=2")
    assert page1.status_code == 200
    assert page1.json() == made[:2]
    start = page1.headers["x-exclusive-start-key"]
    page2 = api.get(f"{base}?limit=2&exclusiveStartKey={start}")
    assert page2.json() == made[2:4]
    via_header = api.get(f"{base}?limit=2", headers={"X-Exclusive-Start-Key": start})
    assert via_header.json() == made[2:4]
    page3 = api.get(f"{base}?limit=2&exclusiveStartKey={page2.headers['x-exclusive-start-key']}")
    assert page3.json() == made[4:]
    assert "x-exclusive-start-key" not in page3.headers
    assert listing(api, tenant) == made

    assert [r["id"] for r in listing(api, tenant, coupon_id=one["id"])] == [
        made[0]["id"],
        made[2]["id"],
        made[4]["id"],
    ]
    assert [r["id"] for r in listing(api, tenant, user_id="u-0")] == [
        made[0]["id"],
        made[3]["id"],
    ]
    assert [r["id"] for r in listing(api, tenant, status="rolled_back")] == [made[1]["id"]]
    assert listing(api, tenant, status="pending_approval") == []
    assert [r["id"] for r in listing(api, tenant, coupon_id=two["id"], status="applied")] == [
        made[3]["id"]
    ]
    assert listing(api, tenant, coupon_id="ffff-ffff-ffff-ffff") == []
    bad = api.get(f"{base}?status=done")
    assert bad.status_code == 400 and "error" in bad.json()
    for query in ("limit=0", "limit=1001", "limit=x", "exclusiveStartKey=%%%"):
        assert api.get(f"{base}?{query}").status_code == 400, query


def test_redemptions_of_a_deleted_coupon_stay_readable(api: Api, tenant: TenantKeys) -> None:
    c = create_coupon(api, tenant)
    r = redeemed(api, tenant, cart(c["code"]))
    assert api.delete(f"/coupons/{tenant.tenant_id}/{c['id']}").status_code == 200
    got = api.get(f"/redemptions/{tenant.tenant_id}/{r['id']}")
    assert got.status_code == 200 and got.json() == r
    assert listing(api, tenant, coupon_id=c["id"]) == [r]
    gone = redeem(api, tenant, cart(c["code"], "u-2"))
    assert gone.status_code == 404 and error_code(gone) == "coupon_not_found"


def test_tenant_isolation(client: TestClient, tenant: TenantKeys, other_tenant: TenantKeys) -> None:
    a, b = Api(client, tenant.admin), Api(client, other_tenant.admin)
    b_coupon = create_coupon(b, other_tenant, code="B-ONLY")
    b_redemption = redeemed(b, other_tenant, cart("B-ONLY", "u-b"))
    b_path = f"/redemptions/{other_tenant.tenant_id}"
    rid = b_redemption["id"]
    # A's key on B's paths: 403
    for reply in (
        a.get(b_path),
        a.get(f"{b_path}/{rid}"),
        a.post(b_path, json=cart("B-ONLY", "u-a")),
        a.post(f"/coupons/{other_tenant.tenant_id}/validate", json=cart("B-ONLY", "u-a")),
        a.post(f"{b_path}/{rid}/rollback"),
        a.post(f"{b_path}/{rid}/approve", json={"approver": "admin"}),
        a.post(f"{b_path}/{rid}/reject", json={"approver": "admin"}),
    ):
        assert reply.status_code == 403, reply.text
    # B's redemption id on A's path: 404
    a_path = f"/redemptions/{tenant.tenant_id}"
    assert a.get(f"{a_path}/{rid}").status_code == 404
    for action in ("rollback", "approve", "reject"):
        assert act(a, tenant, rid, action).status_code == 404
    assert listing(a, tenant) == []
    assert listing(a, tenant, coupon_id=b_coupon["id"]) == []
    # B's code is unknown to A
    reply = redeem(a, tenant, cart("B-ONLY", "u-a"))
    assert reply.status_code == 404 and error_code(reply) == "coupon_not_found"
    assert validate(a, tenant, cart("b-only", "u-a"))["coupon_id"] is None
    # nothing of B changed
    assert b.get(f"{b_path}/{rid}").json() == b_redemption
    assert get_coupon(b, other_tenant, b_coupon["id"])["times_used"] == 1


# --- roles ------------------------------------------------------------------------------------


def test_read_key_may_only_read(api: Api, tenant: TenantKeys) -> None:
    c = create_coupon(api, tenant)
    r = redeemed(api, tenant, cart(c["code"]))
    reader = api.as_key(tenant.read)
    assert reader.get(f"/redemptions/{tenant.tenant_id}").status_code == 200
    assert reader.get(f"/redemptions/{tenant.tenant_id}/{r['id']}").json() == r
    assert (
        reader.post(f"/coupons/{tenant.tenant_id}/validate", json=cart(c["code"])).status_code
        == 403
    )
    assert redeem(reader, tenant, cart(c["code"], "u-2")).status_code == 403
    assert act(reader, tenant, r["id"], "rollback").status_code == 403
    assert get_coupon(api, tenant, c["id"])["times_used"] == 1


def test_checkout_key_may_validate_redeem_and_roll_back(api: Api, tenant: TenantKeys) -> None:
    _, c = pending(api, tenant)
    plain = create_coupon(api, tenant)
    checkout = api.as_key(tenant.checkout)
    assert validate(checkout, tenant, cart(plain["code"]))["valid"] is True
    r = redeemed(checkout, tenant, cart(plain["code"]))
    assert checkout.get(f"/redemptions/{tenant.tenant_id}/{r['id']}").status_code == 200
    assert act(checkout, tenant, r["id"], "rollback").status_code == 200
    waiting = redeemed(checkout, tenant, cart(c["code"]))
    for action in ("approve", "reject"):
        reply = act(checkout, tenant, waiting["id"], action)
        assert reply.status_code == 403, reply.text
    assert act(api, tenant, waiting["id"], "approve").status_code == 200


def test_no_key_is_401(client: TestClient, tenant: TenantKeys) -> None:
    anonymous = Api(client, None)
    assert anonymous.get(f"/redemptions/{tenant.tenant_id}").status_code == 401
    assert redeem(anonymous, tenant, cart("X-X-X")).status_code == 401
    bad = Api(client, "k0000000000000000.nope")
    assert bad.post(f"/coupons/{tenant.tenant_id}/validate", json=cart("XYZ")).status_code == 401
