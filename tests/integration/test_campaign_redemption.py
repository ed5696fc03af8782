"""Redeeming and validating by a campaign code (SPEC 10): the code's own `max_uses` is claimed
with the coupon's use, refusals name the code's state, rollback gives the use back, the
redemption records the code, and `couponry check` agrees with every counter afterwards."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from couponry.services.check import check_invariants
from couponry.store.db import Database
from tests.conftest import Api, TenantKeys, percent_coupon


def _cart(code: str, user: str = "u1", price: str = "20.00") -> dict[str, Any]:
    return {
        "code": code,
        "user_id": user,
        "lines": [{"line_id": "1", "kind": "event", "id": "e", "unit_price": price, "quantity": 1}],
    }


def _campaign(
    api: Api, tenant: TenantKeys, codes: list[str], *, max_uses: int | None = 1, **fields: Any
) -> dict[str, Any]:
    reply = api.post(f"/coupons/{tenant.tenant_id}", json=percent_coupon(**fields))
    assert reply.status_code == 201, reply.text
    coupon = dict(reply.json())
    added = api.post(
        f"/coupons/{tenant.tenant_id}/{coupon['id']}/codes",
        json={"codes": codes, "max_uses": max_uses},
    )
    assert added.status_code == 201, added.text
    return coupon


def _code(api: Api, tenant: TenantKeys, coupon: dict[str, Any], code: str) -> dict[str, Any]:
    listed = api.get(f"/coupons/{tenant.tenant_id}/{coupon['id']}/codes", params={"limit": "1000"})
    return next(c for c in listed.json() if c["code"] == code)


def _coupon(api: Api, tenant: TenantKeys, coupon: dict[str, Any]) -> dict[str, Any]:
    return dict(api.get(f"/coupons/{tenant.tenant_id}/{coupon['id']}").json())


def _redeem(api: Api, tenant: TenantKeys, cart: dict[str, Any], key: str | None = None) -> Any:
    headers = {"Idempotency-Key": key} if key else {}
    return api.post(f"/redemptions/{tenant.tenant_id}", json=cart, headers=headers)


def test_a_single_use_code_redeems_once_in_any_case(
    api: Api, tenant: TenantKeys, db: Database
) -> None:
    coupon = _campaign(api, tenant, ["Spring-AAA1", "Spring-BBB2"], code="SPRING-OWN")
    first = _redeem(api, tenant, _cart("spring-aaa1"))
    assert first.status_code == 201, first.text
    assert first.json()["code"] == "Spring-AAA1"  # as the tenant's codes spell it
    assert first.json()["coupon_id"] == coupon["id"]
    assert first.json()["discount_total"] == "2.00"
    again = _redeem(api, tenant, _cart("SPRING-AAA1", user="u2"))
    assert again.status_code == 409, again.text
    assert again.json()["error"]["code"] == "code_used_up"
    code = _code(api, tenant, coupon, "Spring-AAA1")
    assert code["times_used"] == 1 and code["last_used_at"] is not None
    assert _code(api, tenant, coupon, "Spring-BBB2")["times_used"] == 0
    # the coupon counts the uses of all its codes, and its own code still redeems
    assert _redeem(api, tenant, _cart("spring-own", user="u3")).status_code == 201
    assert _redeem(api, tenant, _cart("Spring-BBB2", user="u4")).status_code == 201
    assert _coupon(api, tenant, coupon)["times_used"] == 3
    assert check_invariants(db, tenant_id=tenant.tenant_id).ok


def test_validate_says_what_redeem_would(api: Api, tenant: TenantKeys) -> None:
    coupon = _campaign(api, tenant, ["VAL-CODE-1"])
    path = f"/coupons/{tenant.tenant_id}/validate"
    fresh = api.post(path, json=_cart("val-code-1"))
    assert fresh.status_code == 200 and fresh.json()["valid"] is True, fresh.text
    assert fresh.json()["discount_total"] == "2.00"
    assert _redeem(api, tenant, _cart("VAL-CODE-1")).status_code == 201
    used = api.post(path, json=_cart("VAL-CODE-1", user="u2")).json()
    assert used["valid"] is False
    assert [e["code"] for e in used["errors"]] == ["code_used_up"]
    api.delete(f"/coupons/{tenant.tenant_id}/{coupon['id']}/codes/VAL-CODE-1")
    off = api.post(path, json=_cart("VAL-CODE-1", user="u2")).json()
    assert [e["code"] for e in off["errors"]] == ["coupon_inactive"]


def test_a_deactivated_code_is_inactive_and_keeps_nothing(
    api: Api, tenant: TenantKeys, db: Database
) -> None:
    coupon = _campaign(api, tenant, ["OFF-CODE-1"], max_uses=None)
    gone = api.delete(f"/coupons/{tenant.tenant_id}/{coupon['id']}/codes/off-code-1")
    assert gone.status_code == 200, gone.text
    refused = _redeem(api, tenant, _cart("OFF-CODE-1"))
    assert refused.status_code == 422 and refused.json()["error"]["code"] == "coupon_inactive"
    assert _coupon(api, tenant, coupon)["times_used"] == 0
    assert _code(api, tenant, coupon, "OFF-CODE-1")["times_used"] == 0
    assert check_invariants(db, tenant_id=tenant.tenant_id).ok


def test_rollback_gives_the_code_its_use_back(api: Api, tenant: TenantKeys, db: Database) -> None:
    coupon = _campaign(api, tenant, ["BACK-CODE-1"])
    made = _redeem(api, tenant, _cart("BACK-CODE-1"))
    assert made.status_code == 201
    rid = made.json()["id"]
    path = f"/coupons/{tenant.tenant_id}/{coupon['id']}/codes"
    assert [c["code"] for c in api.get(path, params={"used": "true"}).json()] == ["BACK-CODE-1"]
    back = api.post(f"/redemptions/{tenant.tenant_id}/{rid}/rollback")
    assert back.status_code == 200, back.text
    assert _code(api, tenant, coupon, "BACK-CODE-1")["times_used"] == 0
    assert api.get(path, params={"used": "true"}).json() == []
    assert _coupon(api, tenant, coupon)["times_used"] == 0
    assert check_invariants(db, tenant_id=tenant.tenant_id).ok
    # used again, by someone else: the use that came back is a real one
    assert _redeem(api, tenant, _cart("BACK-CODE-1", user="u2")).status_code == 201
    assert _redeem(api, tenant, _cart("BACK-CODE-1", user="u3")).status_code == 409
    assert check_invariants(db, tenant_id=tenant.tenant_id).ok


def test_redemptions_are_found_by_code(api: Api, tenant: TenantKeys) -> None:
    _campaign(api, tenant, ["FIND-ME-1", "FIND-ME-2"], max_uses=3)
    for user, code in (("a", "FIND-ME-1"), ("b", "find-me-2"), ("c", "Find-Me-1")):
        assert _redeem(api, tenant, _cart(code, user=user)).status_code == 201
    found = api.get(f"/redemptions/{tenant.tenant_id}", params={"code": "find-me-1"})
    assert found.status_code == 200
    assert [(r["user_id"], r["code"]) for r in found.json()] == [
        ("a", "FIND-ME-1"),
        ("c", "FIND-ME-1"),
    ]
    none = api.get(f"/redemptions/{tenant.tenant_id}", params={"code": "NOT-A-CODE"})
    assert none.json() == []


@pytest.mark.parametrize("key", [None, "k-usage"])
def test_a_refused_coupon_claim_leaves_the_code_unused(
    api: Api, tenant: TenantKeys, db: Database, key: str | None
) -> None:
    """The coupon's usage limit refuses after the code's use was claimed: it is undone."""
    coupon = _campaign(api, tenant, ["LIM-A1", "LIM-B2"], usage_limit=1)
    assert _redeem(api, tenant, _cart("LIM-A1")).status_code == 201
    refused = _redeem(api, tenant, _cart("LIM-B2", user="u2"), key=key)
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "usage_limit_reached"
    assert _code(api, tenant, coupon, "LIM-B2")["times_used"] == 0
    assert _coupon(api, tenant, coupon)["times_used"] == 1
    assert check_invariants(db, tenant_id=tenant.tenant_id).ok
    if key:  # the refusal is what the key replays
        replay = _redeem(api, tenant, _cart("LIM-B2", user="u2"), key=key)
        assert replay.status_code == 409 and replay.json() == refused.json()


@pytest.mark.parametrize("key", [None, "k-user"])
def test_a_refused_user_claim_leaves_the_code_unused(
    api: Api, tenant: TenantKeys, db: Database, key: str | None
) -> None:
    coupon = _campaign(api, tenant, ["USR-A1", "USR-B2"], max_uses_per_user=1)
    assert _redeem(api, tenant, _cart("USR-A1")).status_code == 201
    refused = _redeem(api, tenant, _cart("USR-B2"), key=key)
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "user_limit_reached"
    assert _code(api, tenant, coupon, "USR-B2")["times_used"] == 0
    assert _coupon(api, tenant, coupon)["times_used"] == 1
    assert check_invariants(db, tenant_id=tenant.tenant_id).ok


def test_a_credit_coupon_redeems_by_code_and_gives_back(
    api: Api, tenant: TenantKeys, db: Database
) -> None:
    """A credit goes through the other claim path; the code's use is claimed there too."""
    reply = api.post(
        f"/coupons/{tenant.tenant_id}",
        json={"code": "GIFT-OWN", "coupon_type": "TOTAL_AMOUNT", "value_amount": "25.00"},
    )
    coupon = dict(reply.json())
    codes = f"/coupons/{tenant.tenant_id}/{coupon['id']}/codes"
    assert api.post(codes, json={"codes": ["GIFT-X1"], "max_uses": 1}).status_code == 201
    made = _redeem(api, tenant, _cart("gift-x1"))
    assert made.status_code == 201 and made.json()["discount_total"] == "20.00"
    assert _redeem(api, tenant, _cart("gift-x1", user="u2")).json()["error"]["code"] == (
        "code_used_up"
    )
    api.post(f"/redemptions/{tenant.tenant_id}/{made.json()['id']}/rollback")
    assert _code(api, tenant, coupon, "GIFT-X1")["times_used"] == 0
    assert _coupon(api, tenant, coupon)["remaining_amount"] == 25
    assert check_invariants(db, tenant_id=tenant.tenant_id).ok


def test_check_finds_a_code_counter_that_lies(api: Api, tenant: TenantKeys, db: Database) -> None:
    coupon = _campaign(api, tenant, ["LIE-CODE-1"])
    assert _redeem(api, tenant, _cart("LIE-CODE-1")).status_code == 201
    with db.transaction() as conn:
        conn.exec_driver_sql("UPDATE coupon_codes SET times_used = 0 WHERE code = 'LIE-CODE-1'")
    problems = check_invariants(db, tenant_id=tenant.tenant_id).problems
    assert any("LIE-CODE-1" in p and "counter says 0 uses" in p for p in problems), problems
    assert any(f"coupon {coupon['id']}: codes used counted 1, codes say 0" in p for p in problems)


def test_another_tenant_cannot_redeem_a_code(
    api: Api, tenant: TenantKeys, other_tenant: TenantKeys
) -> None:
    _campaign(api, tenant, ["MINE-ONLY-1"])
    theirs = api.as_key(other_tenant.admin)
    reply = theirs.post(f"/redemptions/{other_tenant.tenant_id}", json=_cart("MINE-ONLY-1"))
    assert reply.status_code == 404 and reply.json()["error"]["code"] == "coupon_not_found"


def test_discount_totals_are_kept_exact(api: Api, tenant: TenantKeys) -> None:
    _campaign(api, tenant, ["SUM-A", "SUM-B"], max_uses=None)
    totals = [
        Decimal(
            _redeem(api, tenant, _cart(code, user=f"u{n}", price="33.33")).json()["discount_total"]
        )
        for n, code in enumerate(["SUM-A", "SUM-B", "SUM-A"])
    ]
    assert totals == [Decimal("3.33")] * 3
