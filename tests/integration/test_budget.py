"""A coupon's budget (SPEC 10): what it gives in all never passes `budget_amount`, whatever
the concurrency; the last redemption gets what is left; then 409 budget_exhausted."""

from __future__ import annotations

import threading
from decimal import Decimal
from typing import Any

from couponry.errors import CouponryError
from couponry.services import redemptions as svc
from couponry.services.check import check_invariants
from couponry.services.tenants import get_tenant
from couponry.store.db import Database
from tests.conftest import Api, TenantKeys, now


def _cart(code: str, user: str = "u1", *prices: str) -> dict[str, Any]:
    lines = [
        {"line_id": str(n), "kind": "event", "id": "e", "unit_price": price, "quantity": 1}
        for n, price in enumerate(prices or ("10.00",), start=1)
    ]
    return {"code": code, "user_id": user, "lines": lines}


def _make(api: Api, tenant: TenantKeys, **fields: Any) -> dict[str, Any]:
    reply = api.post(f"/coupons/{tenant.tenant_id}", json=fields)
    assert reply.status_code == 201, reply.text
    return dict(reply.json())


def _redeem(api: Api, tenant: TenantKeys, cart: dict[str, Any]) -> Any:
    return api.post(f"/redemptions/{tenant.tenant_id}", json=cart)


def _view(api: Api, tenant: TenantKeys, coupon: dict[str, Any]) -> dict[str, Any]:
    return dict(api.get(f"/coupons/{tenant.tenant_id}/{coupon['id']}").json())


def test_the_last_discount_is_what_is_left(api: Api, tenant: TenantKeys, db: Database) -> None:
    coupon = _make(
        api, tenant, code="BUDGET-20", coupon_type="AMOUNT", value_amount="7.00", budget_amount=20
    )
    assert coupon["budget_amount"] == 20 and coupon["budget_remaining"] == 20
    given = []
    for n in range(3):
        reply = _redeem(api, tenant, _cart("BUDGET-20", f"u{n}"))
        assert reply.status_code == 201, reply.text
        given.append(reply.json()["discount_total"])
    assert given == ["7.00", "7.00", "6.00"]
    assert _view(api, tenant, coupon)["budget_remaining"] == 0
    spent = _redeem(api, tenant, _cart("BUDGET-20", "u9"))
    assert spent.status_code == 409 and spent.json()["error"]["code"] == "budget_exhausted"
    check = api.post(f"/coupons/{tenant.tenant_id}/validate", json=_cart("BUDGET-20", "u9"))
    assert [e["code"] for e in check.json()["errors"]] == ["budget_exhausted"]
    assert _view(api, tenant, coupon)["times_used"] == 3
    assert check_invariants(db, tenant_id=tenant.tenant_id).ok


def test_lines_give_up_their_discount_in_order(api: Api, tenant: TenantKeys) -> None:
    _make(
        api,
        tenant,
        code="BUDGET-LINES",
        coupon_type="PERCENT",
        value_percent=50,
        budget_amount="12.00",
    )
    reply = _redeem(api, tenant, _cart("BUDGET-LINES", "u1", "10.00", "10.00", "10.00"))
    assert reply.status_code == 201, reply.text
    body = reply.json()
    assert body["discount_total"] == "12.00"
    assert [line["discount"] for line in body["lines"]] == ["5.00", "5.00", "2.00"]
    preview = api.post(
        f"/coupons/{tenant.tenant_id}/validate", json=_cart("BUDGET-LINES", "u2", "10.00")
    ).json()
    assert preview["valid"] is False  # nothing left


def test_a_remainder_below_a_cent_gives_nothing(api: Api, tenant: TenantKeys, db: Database) -> None:
    coupon = _make(
        api,
        tenant,
        code="BUDGET-ODD",
        coupon_type="AMOUNT",
        value_amount="5.00",
        budget_amount="10.005",
    )
    for n in range(2):
        assert _redeem(api, tenant, _cart("BUDGET-ODD", f"u{n}")).status_code == 201
    refused = _redeem(api, tenant, _cart("BUDGET-ODD", "u3"))
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "budget_exhausted"
    view = _view(api, tenant, coupon)
    assert view["times_used"] == 2 and Decimal(str(view["budget_remaining"])) == Decimal("0.005")
    assert check_invariants(db, tenant_id=tenant.tenant_id).ok


def test_rollback_gives_the_budget_back(api: Api, tenant: TenantKeys, db: Database) -> None:
    coupon = _make(
        api, tenant, code="BUDGET-BACK", coupon_type="AMOUNT", value_amount="4.00", budget_amount=8
    )
    first = _redeem(api, tenant, _cart("BUDGET-BACK", "u1")).json()
    _redeem(api, tenant, _cart("BUDGET-BACK", "u2"))
    assert _view(api, tenant, coupon)["budget_remaining"] == 0
    api.post(f"/redemptions/{tenant.tenant_id}/{first['id']}/rollback")
    assert _view(api, tenant, coupon)["budget_remaining"] == 4
    assert _redeem(api, tenant, _cart("BUDGET-BACK", "u3")).status_code == 201
    assert check_invariants(db, tenant_id=tenant.tenant_id).ok


def test_a_budget_is_never_set_below_what_was_given(api: Api, tenant: TenantKeys) -> None:
    coupon = _make(
        api, tenant, code="BUDGET-SET", coupon_type="AMOUNT", value_amount="6.00", budget_amount=50
    )
    path = f"/coupons/{tenant.tenant_id}/{coupon['id']}"
    assert _redeem(api, tenant, _cart("BUDGET-SET", "u1")).status_code == 201
    low = api.patch(path, json=[{"op": "replace", "path": "/budget_amount", "value": 5}])
    assert low.status_code == 422, low.text
    details = low.json()["error"]["details"]
    assert details[0]["field"] == "budget_amount" and "6.00" in details[0]["message"]
    assert _view(api, tenant, coupon)["budget_amount"] == 50  # nothing written
    raised = api.patch(path, json=[{"op": "replace", "path": "/budget_amount", "value": 60}])
    assert raised.status_code == 200, raised.text
    assert raised.json()["budget_remaining"] == 54  # raised by the difference
    exact = api.patch(path, json=[{"op": "replace", "path": "/budget_amount", "value": 6}])
    assert exact.status_code == 200 and exact.json()["budget_remaining"] == 0
    gone = api.patch(path, json=[{"op": "replace", "path": "/budget_amount", "value": None}])
    assert gone.status_code == 200 and gone.json()["budget_remaining"] is None
    for bad in (0, -1, "ten"):
        reply = api.patch(path, json=[{"op": "replace", "path": "/budget_amount", "value": bad}])
        assert reply.status_code == 422
        assert reply.json()["error"]["details"][0]["field"] == "budget_amount"


def test_a_budget_caps_a_credit_too(api: Api, tenant: TenantKeys, db: Database) -> None:
    coupon = _make(
        api,
        tenant,
        code="GIFT-CAPPED",
        coupon_type="TOTAL_AMOUNT",
        value_amount="50.00",
        budget_amount="15.00",
    )
    first = _redeem(api, tenant, _cart("GIFT-CAPPED", "u1", "12.00"))
    assert first.json()["discount_total"] == "12.00"
    second = _redeem(api, tenant, _cart("GIFT-CAPPED", "u2", "12.00"))
    assert second.json()["discount_total"] == "3.00"
    refused = _redeem(api, tenant, _cart("GIFT-CAPPED", "u3", "12.00"))
    assert refused.json()["error"]["code"] == "budget_exhausted"
    view = _view(api, tenant, coupon)
    assert view["remaining_amount"] == 35 and view["budget_remaining"] == 0
    assert check_invariants(db, tenant_id=tenant.tenant_id).ok


def test_concurrent_discounts_add_up_to_the_budget_to_the_cent(
    api: Api, tenant: TenantKeys, db: Database
) -> None:
    """40 buyers at once against a budget of 100.00 in discounts of 7.00: 14 full ones and
    one of 2.00, on either database."""
    _make(
        api,
        tenant,
        code="BUDGET-RACE",
        coupon_type="AMOUNT",
        value_amount="7.00",
        budget_amount="100.00",
    )
    owner = get_tenant(db, tenant_id=tenant.tenant_id)
    barrier = threading.Barrier(40)
    given: list[Decimal] = []
    refused: list[str] = []
    lock = threading.Lock()

    def buy(n: int) -> None:
        barrier.wait()
        try:
            outcome = svc.redeem(
                db, tenant=owner, doc=_cart("BUDGET-RACE", f"b{n}"), idempotency_key=None, now=now()
            )
            assert outcome.redemption is not None
            with lock:
                given.append(outcome.redemption.discount_total)
        except CouponryError as error:
            with lock:
                refused.append(error.code)

    threads = [threading.Thread(target=buy, args=(n,)) for n in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sum(given) == Decimal("100.00")
    assert sorted(given) == [Decimal("2.00")] + [Decimal("7.00")] * 14
    assert set(refused) == {"budget_exhausted"} and len(refused) == 25
    assert check_invariants(db, tenant_id=tenant.tenant_id).ok
