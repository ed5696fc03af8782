"""Holds (SPEC 11.1): a held redemption claims everything an applied one does; confirm makes
it applied (or pending), release and expiry give every claim back, exactly once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from couponry.services import redemptions as svc
from couponry.services.check import check_invariants
from couponry.store.db import Database
from tests.conftest import Api, TenantKeys
from tests.integration.test_redemptions_api import make_group, members, pending


def _cart(code: str, user: str = "u1", price: str = "40.00", **extra: Any) -> dict[str, Any]:
    line = {"line_id": "1", "kind": "event", "id": "e", "unit_price": price, "quantity": 1}
    return {"code": code, "user_id": user, "lines": [line], **extra}


def _make(api: Api, tenant: TenantKeys, **fields: Any) -> dict[str, Any]:
    reply = api.post(f"/coupons/{tenant.tenant_id}", json=fields)
    assert reply.status_code == 201, reply.text
    return dict(reply.json())


def _hold(api: Api, tenant: TenantKeys, code: str, user: str = "u1", **extra: Any) -> Any:
    cart = _cart(code, user, hold_seconds=extra.pop("hold_seconds", 600), **extra)
    return api.post(f"/redemptions/{tenant.tenant_id}", json=cart)


def _act(api: Api, tenant: TenantKeys, rid: str, action: str) -> Any:
    return api.post(f"/redemptions/{tenant.tenant_id}/{rid}/{action}")


def _coupon(api: Api, tenant: TenantKeys, coupon: dict[str, Any]) -> dict[str, Any]:
    return dict(api.get(f"/coupons/{tenant.tenant_id}/{coupon['id']}").json())


def _expire(db: Database, rid: str, seconds_ago: int = 1) -> None:
    """Move a hold's end into the past (holds last at least 60 s)."""
    ended = datetime.now(UTC) - timedelta(seconds=seconds_ago)
    with db.transaction() as conn:
        conn.exec_driver_sql(
            "UPDATE redemptions SET hold_expires_at = ? WHERE id = ?"
            if db.sqlite
            else "UPDATE redemptions SET hold_expires_at = %s WHERE id = %s",
            (ended.replace(tzinfo=None), rid),
        )


def test_a_hold_claims_like_an_applied_redemption(
    api: Api, tenant: TenantKeys, db: Database
) -> None:
    coupon = _make(
        api,
        tenant,
        code="HOLD-GIFT",
        coupon_type="TOTAL_AMOUNT",
        value_amount="100.00",
        budget_amount="80.00",
        usage_limit=5,
        max_uses_per_user=1,
    )
    codes = f"/coupons/{tenant.tenant_id}/{coupon['id']}/codes"
    assert api.post(codes, json={"codes": ["HOLD-X1"]}).status_code == 201
    held = _hold(api, tenant, "hold-x1", hold_seconds=60)
    assert held.status_code == 201, held.text
    body = held.json()
    assert body["status"] == "held" and body["discount_total"] == "40.00"
    made = datetime.fromisoformat(body["created_at"].replace("Z", "+00:00"))
    ends = datetime.fromisoformat(body["hold_expires_at"].replace("Z", "+00:00"))
    assert ends - made == timedelta(seconds=60)
    view = _coupon(api, tenant, coupon)
    assert view["times_used"] == 1
    assert view["remaining_amount"] == 60 and view["budget_remaining"] == 40
    # the user's use and the code's use are taken too
    again = _hold(api, tenant, "HOLD-GIFT")
    assert again.status_code == 409 and again.json()["error"]["code"] == "user_limit_reached"
    used = api.get(codes).json()[0]
    assert used["times_used"] == 1
    stats = api.get(f"/coupons/{tenant.tenant_id}/{coupon['id']}/stats").json()
    assert stats["redemptions"]["held"] == 1 and stats["redemptions"]["applied"] == 0
    assert check_invariants(db, tenant_id=tenant.tenant_id).ok


def test_release_gives_every_claim_back_once(api: Api, tenant: TenantKeys, db: Database) -> None:
    coupon = _make(
        api,
        tenant,
        code="HOLD-BACK",
        coupon_type="TOTAL_AMOUNT",
        value_amount="100.00",
        budget_amount="90.00",
        max_uses_per_user=1,
    )
    codes = f"/coupons/{tenant.tenant_id}/{coupon['id']}/codes"
    api.post(codes, json={"codes": ["BACK-X1"]})
    rid = _hold(api, tenant, "BACK-X1").json()["id"]
    released = _act(api, tenant, rid, "release")
    assert released.status_code == 200 and released.json()["status"] == "released"
    assert _act(api, tenant, rid, "release").json()["status"] == "released"  # unchanged
    view = _coupon(api, tenant, coupon)
    assert view["times_used"] == 0
    assert view["remaining_amount"] == 100 and view["budget_remaining"] == 90
    assert api.get(codes).json()[0]["times_used"] == 0
    # the user may use it again: their use came back too
    assert _hold(api, tenant, "BACK-X1").status_code == 201
    for action in ("confirm", "rollback"):
        refused = _act(api, tenant, rid, action)
        assert refused.status_code == 409
        assert refused.json()["error"]["code"] == "invalid_redemption_state"
    stats = api.get(f"/coupons/{tenant.tenant_id}/{coupon['id']}/stats").json()
    assert stats["redemptions"]["released"] == 1 and stats["redemptions"]["held"] == 1
    assert check_invariants(db, tenant_id=tenant.tenant_id).ok


def test_confirm_applies_it_with_its_group_effects(
    api: Api, tenant: TenantKeys, db: Database
) -> None:
    group = make_group(api, tenant)
    _make(
        api,
        tenant,
        code="HOLD-JOIN",
        coupon_type="PERCENT",
        value_percent=10,
        authorized_group_id=group,
        add_user_to_coupons_group=True,
    )
    rid = _hold(api, tenant, "HOLD-JOIN", "joiner").json()["id"]
    assert "joiner" not in members(api, tenant, group)  # not before the confirm
    confirmed = _act(api, tenant, rid, "confirm")
    assert confirmed.status_code == 200 and confirmed.json()["status"] == "applied"
    assert "joiner" in members(api, tenant, group)
    again = _act(api, tenant, rid, "confirm")
    assert again.status_code == 200 and again.json() == confirmed.json()
    rolled = _act(api, tenant, rid, "rollback")  # applied now: a rollback acts on it
    assert rolled.status_code == 200
    assert _act(api, tenant, rid, "confirm").json()["status"] == "rolled_back"  # unchanged
    assert check_invariants(db, tenant_id=tenant.tenant_id).ok


def test_a_confirmed_hold_of_an_approval_coupon_waits_for_approval(
    api: Api, tenant: TenantKeys, db: Database
) -> None:
    _, coupon = pending(api, tenant, code="HOLD-APPROVE")
    rid = _hold(api, tenant, "HOLD-APPROVE").json()["id"]
    confirmed = _act(api, tenant, rid, "confirm")
    assert confirmed.json()["status"] == "pending_approval"
    stats = api.get(f"/coupons/{tenant.tenant_id}/{coupon['id']}/stats").json()
    assert stats["redemptions"]["pending_approval"] == 1 and stats["redemptions"]["held"] == 0
    assert check_invariants(db, tenant_id=tenant.tenant_id).ok


def test_a_hold_is_rolled_back_only_by_release(api: Api, tenant: TenantKeys) -> None:
    _make(api, tenant, code="HOLD-NOROLL", coupon_type="USAGE")
    rid = _hold(api, tenant, "HOLD-NOROLL").json()["id"]
    refused = _act(api, tenant, rid, "rollback")
    assert refused.status_code == 409
    assert "release" in refused.json()["error"]["message"]


def test_confirm_after_the_end_is_hold_expired_released_or_not(
    api: Api, tenant: TenantKeys, db: Database
) -> None:
    coupon = _make(api, tenant, code="HOLD-LATE", coupon_type="USAGE", usage_limit=1)
    rid = _hold(api, tenant, "HOLD-LATE").json()["id"]
    _expire(db, rid)
    late = _act(api, tenant, rid, "confirm")
    assert late.status_code == 409 and late.json()["error"]["code"] == "hold_expired"
    assert _coupon(api, tenant, coupon)["times_used"] == 1  # not swept yet: still held
    assert svc.release_expired_holds(db, now=datetime.now(UTC)) >= 1
    assert _coupon(api, tenant, coupon)["times_used"] == 0
    swept = api.get(f"/redemptions/{tenant.tenant_id}/{rid}").json()
    assert swept["status"] == "released"
    late = _act(api, tenant, rid, "confirm")
    assert late.status_code == 409 and late.json()["error"]["code"] == "hold_expired"
    assert svc.release_expired_holds(db, now=datetime.now(UTC)) == 0  # once only
    assert check_invariants(db, tenant_id=tenant.tenant_id).ok


def test_the_sweep_leaves_holds_that_have_not_ended(
    api: Api, tenant: TenantKeys, db: Database
) -> None:
    _make(api, tenant, code="HOLD-LIVE", coupon_type="USAGE")
    rid = _hold(api, tenant, "HOLD-LIVE", hold_seconds=60).json()["id"]
    release_expired_holds = svc.release_expired_holds
    release_expired_holds(db, now=datetime.now(UTC) + timedelta(seconds=59))
    assert api.get(f"/redemptions/{tenant.tenant_id}/{rid}").json()["status"] == "held"
    assert release_expired_holds(db, now=datetime.now(UTC) + timedelta(seconds=61)) >= 1
    assert api.get(f"/redemptions/{tenant.tenant_id}/{rid}").json()["status"] == "released"


@pytest.mark.parametrize("seconds", [59, 86_401, 0, -5, "60", 60.5, True])
def test_hold_seconds_out_of_range_is_refused(api: Api, tenant: TenantKeys, seconds: Any) -> None:
    _make(api, tenant, code=f"HOLD-RANGE-{abs(hash(repr(seconds))) % 10_000}", coupon_type="USAGE")
    code = api.get(f"/coupons/{tenant.tenant_id}").json()[-1]["code"]
    reply = api.post(f"/redemptions/{tenant.tenant_id}", json=_cart(code, hold_seconds=seconds))
    assert reply.status_code == 422, reply.text
    assert reply.json()["error"]["details"][0]["field"] == "hold_seconds"


def test_checkout_keys_confirm_and_release_readers_do_not(api: Api, tenant: TenantKeys) -> None:
    _make(api, tenant, code="HOLD-KEYS", coupon_type="USAGE")
    checkout = api.as_key(tenant.checkout)
    first = _hold(checkout, tenant, "HOLD-KEYS", "a").json()["id"]
    second = _hold(checkout, tenant, "HOLD-KEYS", "b").json()["id"]
    reader = api.as_key(tenant.read)
    assert _act(reader, tenant, first, "confirm").status_code == 403
    assert _act(reader, tenant, first, "release").status_code == 403
    assert _act(checkout, tenant, first, "confirm").status_code == 200
    assert _act(checkout, tenant, second, "release").status_code == 200


def test_holds_are_listed_by_status(api: Api, tenant: TenantKeys) -> None:
    _make(api, tenant, code="HOLD-LIST", coupon_type="AMOUNT", value_amount="5.00")
    rid = _hold(api, tenant, "HOLD-LIST").json()["id"]
    listed = api.get(f"/redemptions/{tenant.tenant_id}", params={"status": "held"}).json()
    assert [r["id"] for r in listed] == [rid]
    assert Decimal(listed[0]["discount_total"]) == Decimal("5.00")
    plain = api.post(f"/redemptions/{tenant.tenant_id}", json=_cart("HOLD-LIST", "u2")).json()
    assert "hold_expires_at" not in plain and "checkout_id" not in plain  # SPEC 6's reply
