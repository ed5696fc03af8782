"""Several codes in one cart (SPEC 11.2): validate, redeem with the policies `all` and
`partial`, idempotency, holds of a checkout, and a checkout's redemptions moved together."""

from __future__ import annotations

import threading
from decimal import Decimal
from typing import Any

import pytest

from couponry.errors import CouponryError
from couponry.services import redemptions as svc
from couponry.services.check import check_invariants
from couponry.services.tenants import get_tenant
from couponry.store.db import Database
from tests.conftest import Api, TenantKeys, now


def _cart(codes: list[str], user: str = "u1", *prices: str, **extra: Any) -> dict[str, Any]:
    lines = [
        {"line_id": str(n), "kind": "event", "id": "e", "unit_price": price, "quantity": 1}
        for n, price in enumerate(prices or ("100.00",), start=1)
    ]
    return {"codes": codes, "user_id": user, "lines": lines, **extra}


def _make(api: Api, tenant: TenantKeys, code: str, **fields: Any) -> dict[str, Any]:
    body = {"code": code, "coupon_type": "PERCENT", **fields}
    if body["coupon_type"] == "PERCENT":
        body.setdefault("value_percent", 10)
    reply = api.post(f"/coupons/{tenant.tenant_id}", json=body)
    assert reply.status_code == 201, reply.text
    return dict(reply.json())


def _validate(api: Api, tenant: TenantKeys, cart: dict[str, Any]) -> dict[str, Any]:
    reply = api.post(f"/coupons/{tenant.tenant_id}/validate", json=cart)
    assert reply.status_code == 200, reply.text
    return dict(reply.json())


def _redeem(api: Api, tenant: TenantKeys, cart: dict[str, Any], key: str | None = None) -> Any:
    headers = {"Idempotency-Key": key} if key else {}
    return api.post(f"/redemptions/{tenant.tenant_id}", json=cart, headers=headers)


def _uses(api: Api, tenant: TenantKeys, coupon: dict[str, Any]) -> int:
    return int(api.get(f"/coupons/{tenant.tenant_id}/{coupon['id']}").json()["times_used"])


def test_combinable_codes_stack_in_priority_order(api: Api, tenant: TenantKeys) -> None:
    _make(api, tenant, "TEN-OFF", coupon_type="AMOUNT", value_amount="10.00", stacking="combinable")
    _make(api, tenant, "HALF", value_percent=50, stacking="combinable", priority=5)
    result = _validate(api, tenant, _cart(["TEN-OFF", "HALF"]))
    assert result["valid"] is True
    # HALF (priority 5) first: 50.00 off 100.00; then 10.00 off what is left
    assert [(r["code"], r["discount_total"]) for r in result["results"]] == [
        ("TEN-OFF", "10.00"),
        ("HALF", "50.00"),
    ]
    assert result["discount_total"] == "60.00"
    assert result["lines"] == [{"line_id": "1", "discount": "60.00"}]


def test_an_exclusive_code_wins_and_the_other_is_not_combinable(
    api: Api, tenant: TenantKeys
) -> None:
    _make(api, tenant, "ALONE", value_percent=20)  # exclusive by default
    _make(api, tenant, "WITH-OTHERS", value_percent=5, stacking="combinable")
    result = _validate(api, tenant, _cart(["ALONE", "WITH-OTHERS"]))
    assert result["valid"] is False and result["discount_total"] == "20.00"
    second = result["results"][1]
    assert second["applied"] is False and second["discount_total"] == "0.00"
    assert second["errors"][0]["code"] == "not_combinable"
    assert "ALONE" in second["errors"][0]["message"]
    unknown = _validate(api, tenant, _cart(["ALONE", "NO-SUCH"]))["results"][1]
    assert unknown["coupon_id"] is None
    assert unknown["errors"][0]["code"] == "coupon_not_found"


def test_policy_all_refuses_everything_naming_the_code(
    api: Api, tenant: TenantKeys, db: Database
) -> None:
    first = _make(api, tenant, "ALL-A", stacking="combinable")
    second = _make(api, tenant, "ALL-B", stacking="combinable", usage_limit=1)
    assert _redeem(api, tenant, {**_cart(["ALL-B"]), "codes": ["ALL-B"]}).status_code == 201
    refused = _redeem(api, tenant, _cart(["ALL-A", "ALL-B"], "u2"))
    assert refused.status_code == 409, refused.text
    error = refused.json()["error"]
    assert error["code"] == "usage_limit_reached" and "ALL-B" in error["message"]
    assert _uses(api, tenant, first) == 0 and _uses(api, tenant, second) == 1
    assert check_invariants(db, tenant_id=tenant.tenant_id).ok


def test_policy_partial_skips_refused_codes(api: Api, tenant: TenantKeys, db: Database) -> None:
    good = _make(api, tenant, "PART-A", stacking="combinable", value_percent=10)
    gone = _make(api, tenant, "PART-B", stacking="combinable", usage_limit=1)
    assert _redeem(api, tenant, _cart(["PART-B"])).status_code == 201
    reply = _redeem(api, tenant, _cart(["PART-A", "PART-B", "NOPE"], "u2", policy="partial"))
    assert reply.status_code == 201, reply.text
    body = reply.json()
    assert [r["code"] for r in body["redemptions"]] == ["PART-A"]
    assert body["redemptions"][0]["checkout_id"] == body["checkout_id"]
    assert [(s["code"], s["errors"][0]["code"]) for s in body["skipped"]] == [
        ("PART-B", "usage_limit_reached"),
        ("NOPE", "coupon_not_found"),
    ]
    assert body["discount_total"] == "10.00"
    assert _uses(api, tenant, good) == 1 and _uses(api, tenant, gone) == 1
    assert check_invariants(db, tenant_id=tenant.tenant_id).ok


def test_a_checkout_reply_is_replayed(api: Api, tenant: TenantKeys, db: Database) -> None:
    a = _make(api, tenant, "KEY-A", stacking="combinable")
    b = _make(api, tenant, "KEY-B", stacking="combinable", value_percent=20)
    cart = _cart(["KEY-A", "KEY-B"])
    first = _redeem(api, tenant, cart, key="checkout-1")
    assert first.status_code == 201, first.text
    body = first.json()
    assert body["discount_total"] == "28.00"  # 20% of 100, then 10% of 80
    assert body["skipped"] == [] and len(body["redemptions"]) == 2
    again = _redeem(api, tenant, cart, key="checkout-1")
    assert again.status_code == 201 and again.content == first.content
    assert again.headers["Idempotent-Replayed"] == "true"
    assert _uses(api, tenant, a) == 1 and _uses(api, tenant, b) == 1
    assert check_invariants(db, tenant_id=tenant.tenant_id).ok


def test_a_held_checkout_is_confirmed_and_released_together(
    api: Api, tenant: TenantKeys, db: Database
) -> None:
    a = _make(api, tenant, "HC-A", stacking="combinable")
    b = _make(api, tenant, "HC-B", stacking="combinable")
    held = _redeem(api, tenant, _cart(["HC-A", "HC-B"], hold_seconds=600)).json()
    cid = held["checkout_id"]
    assert {r["status"] for r in held["redemptions"]} == {"held"}
    path = f"/redemptions/{tenant.tenant_id}/checkouts/{cid}"
    confirmed = api.post(f"{path}/confirm")
    assert confirmed.status_code == 200, confirmed.text
    assert {r["status"] for r in confirmed.json()["redemptions"]} == {"applied"}
    assert api.post(f"{path}/confirm").status_code == 200  # already there: unchanged
    refused = api.post(f"{path}/release")  # applied ones cannot be released
    assert refused.status_code == 409
    assert {r["status"] for r in api.post(f"{path}/rollback").json()["redemptions"]} == {
        "rolled_back"
    }
    assert _uses(api, tenant, a) == 0 and _uses(api, tenant, b) == 0
    held = _redeem(api, tenant, _cart(["HC-A", "HC-B"], "u2", hold_seconds=600)).json()
    one = held["redemptions"][0]["id"]
    api.post(f"/redemptions/{tenant.tenant_id}/{one}/release")  # one of them alone
    both = api.post(f"/redemptions/{tenant.tenant_id}/checkouts/{held['checkout_id']}/release")
    assert {r["status"] for r in both.json()["redemptions"]} == {"released"}
    assert _uses(api, tenant, a) == 0 and _uses(api, tenant, b) == 0
    missing = api.post(f"/redemptions/{tenant.tenant_id}/checkouts/0000-0000-0000-0000/confirm")
    assert missing.status_code == 404
    assert check_invariants(db, tenant_id=tenant.tenant_id).ok


@pytest.mark.parametrize(
    ("cart", "field"),
    [
        ({"codes": [], "user_id": "u"}, "codes"),
        ({"codes": ["A1A", "a1a"], "user_id": "u"}, "codes[1]"),
        ({"codes": ["A", "B", "C", "D", "E", "F"], "user_id": "u"}, "codes"),
        ({"codes": ["AAA"], "code": "BBB", "user_id": "u"}, "code"),
        ({"code": "AAA", "policy": "all", "user_id": "u"}, "policy"),
        ({"codes": ["AAA"], "policy": "some", "user_id": "u"}, "policy"),
    ],
)
def test_bad_code_lists_are_refused(
    api: Api, tenant: TenantKeys, cart: dict[str, Any], field: str
) -> None:
    cart["lines"] = [
        {"line_id": "1", "kind": "event", "id": "e", "unit_price": "1.00", "quantity": 1}
    ]
    for path in (f"/coupons/{tenant.tenant_id}/validate", f"/redemptions/{tenant.tenant_id}"):
        reply = api.post(path, json=cart)
        assert reply.status_code == 422, reply.text
        assert field in [d["field"] for d in reply.json()["error"]["details"]]


def test_policy_all_under_concurrency_leaves_every_counter(
    api: Api, tenant: TenantKeys, db: Database
) -> None:
    """30 buyers at once, each with two codes, one of which has 10 uses: exactly 10 checkouts
    go through, and the other code is used exactly as often (nothing claimed for the rest)."""
    wide = _make(api, tenant, "CC-WIDE", stacking="combinable")
    narrow = _make(api, tenant, "CC-NARROW", stacking="combinable", usage_limit=10)
    owner = get_tenant(db, tenant_id=tenant.tenant_id)
    barrier = threading.Barrier(30)
    wins: list[Decimal] = []
    lock = threading.Lock()

    def buy(n: int) -> None:
        barrier.wait()
        try:
            outcome = svc.redeem(
                db,
                tenant=owner,
                doc=_cart(["CC-WIDE", "CC-NARROW"], f"b{n}"),
                idempotency_key=None,
                now=now(),
            )
        except CouponryError:
            return
        assert outcome.checkout is not None
        with lock:
            wins.append(outcome.checkout.total)

    threads = [threading.Thread(target=buy, args=(n,)) for n in range(30)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(wins) == 10
    assert _uses(api, tenant, narrow) == 10 and _uses(api, tenant, wide) == 10
    assert check_invariants(db, tenant_id=tenant.tenant_id).ok
