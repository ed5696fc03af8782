"""What a hostile review tried that held up (kept as regression tests; all pass)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

from couponry.services import redemptions as svc
from couponry.services.check import check_invariants
from couponry.services.tenants import get_tenant
from couponry.store.db import Database
from tests.conftest import Api, TenantKeys, make_tenant
from tests.integration.test_holds import _expire
from tests.integration.test_stale_reads_and_races import _cart, _make, _redeem


def _ok(db: Database, tenant: TenantKeys) -> None:
    assert check_invariants(db, tenant_id=tenant.tenant_id).problems == []


def _act(api: Api, tenant: TenantKeys, rid: str, action: str, **body: Any) -> Any:
    return api.post(f"/redemptions/{tenant.tenant_id}/{rid}/{action}", json=body or None)


def test_release_confirm_and_sweep_racing_give_back_once(
    api: Api, tenant: TenantKeys, db: Database
) -> None:
    coupon = _make(
        api,
        tenant,
        code="RACE-HOLD",
        coupon_type="TOTAL_AMOUNT",
        value_amount="500.00",
        budget_amount="300.00",
        max_uses_per_user=1,
    )
    codes = f"/coupons/{tenant.tenant_id}/{coupon['id']}/codes"
    api.post(codes, json={"codes": [f"RH-{i}" for i in range(12)], "max_uses": 1})
    rids = []
    for i in range(12):
        reply = _redeem(api, tenant, _cart(f"RH-{i}", f"u{i}", hold_seconds=600))
        assert reply.status_code == 201, reply.text
        rids.append(reply.json()["id"])
    for rid in rids:
        _expire(db, rid, seconds_ago=0)
    owner = get_tenant(db, tenant_id=tenant.tenant_id)
    barrier = threading.Barrier(3 * len(rids) + 1)
    errors: list[Any] = []

    def act(rid: str, action: str) -> None:
        barrier.wait()
        try:
            svc.change_redemption(
                db,
                tenant=owner,
                redemption_id=rid,
                action=action,
                approver=None,
                now=datetime.now(UTC),
            )
        except Exception as exc:
            errors.append(type(exc).__name__)

    def sweep() -> None:
        barrier.wait()
        svc.release_expired_holds(db, now=datetime.now(UTC) + timedelta(seconds=1))

    threads = [threading.Thread(target=sweep)]
    for rid in rids:
        threads += [threading.Thread(target=act, args=(rid, a)) for a in ("release", "confirm")]
        threads.append(threading.Thread(target=act, args=(rid, "release")))
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert set(errors) <= {"HoldExpired"}, errors
    view = api.get(f"/coupons/{tenant.tenant_id}/{coupon['id']}").json()
    assert view["times_used"] == 0 and view["remaining_amount"] == 500
    assert view["budget_remaining"] == 300
    _ok(db, tenant)


def test_legal_sequences_leave_counters_true(api: Api, tenant: TenantKeys, db: Database) -> None:
    # deactivate a held code, then release; delete a coupon with holds, then release/expire
    coupon = _make(api, tenant, code="SEQ-1", coupon_type="AMOUNT", value_amount="3.00")
    codes = f"/coupons/{tenant.tenant_id}/{coupon['id']}/codes"
    api.post(codes, json={"codes": ["SEQ-A", "SEQ-B", "SEQ-C"], "max_uses": 2})
    a = _redeem(api, tenant, _cart("SEQ-A", "u1", hold_seconds=600)).json()["id"]
    b = _redeem(api, tenant, _cart("seq-b", "u2", hold_seconds=600)).json()["id"]
    c = _redeem(api, tenant, _cart("SEQ-C", "u3")).json()["id"]
    assert api.delete(f"{codes}/SEQ-A").status_code == 200
    assert _act(api, tenant, a, "release").status_code == 200
    _ok(db, tenant)
    # set a budget on a coupon that has redemptions; lower it to what is given; raise it
    path = f"/coupons/{tenant.tenant_id}/{coupon['id']}"
    low = api.patch(path, json=[{"op": "add", "path": "/budget_amount", "value": "5.99"}])
    assert low.status_code == 422
    ok = api.patch(path, json=[{"op": "add", "path": "/budget_amount", "value": "6.00"}])
    assert ok.status_code == 200, ok.text
    spent = _redeem(api, tenant, _cart("SEQ-1", "u4"))
    assert spent.status_code == 409 and spent.json()["error"]["code"] == "budget_exhausted"
    _ok(db, tenant)
    # delete the coupon with a hold and an applied one; then release, expire, rollback
    assert api.delete(path).status_code in (200, 204)
    assert _act(api, tenant, b, "release").status_code == 200
    assert _act(api, tenant, c, "rollback").status_code == 200
    _ok(db, tenant)
    # the freed codes are taken again by another coupon: no confusion with the old uses
    again = _make(api, tenant, code="SEQ-2", coupon_type="PERCENT", value_percent=5)
    api.post(f"/coupons/{tenant.tenant_id}/{again['id']}/codes", json={"codes": ["SEQ-B", "SEQ-1"]})
    assert _redeem(api, tenant, _cart("SEQ-B", "u1")).status_code == 201
    _ok(db, tenant)


def test_a_code_of_another_tenant_is_not_found(
    api: Api, tenant: TenantKeys, db: Database, client: object
) -> None:
    coupon = _make(api, tenant, code="MINE-1", coupon_type="PERCENT", value_percent=5)
    api.post(f"/coupons/{tenant.tenant_id}/{coupon['id']}/codes", json={"codes": ["MINE-X"]})
    other = make_tenant(db, prefix="o")
    theirs = Api(client, other.checkout)  # type: ignore[arg-type]
    for code in ("MINE-1", "MINE-X"):
        reply = theirs.post(f"/redemptions/{other.tenant_id}", json=_cart(code, "u1"))
        assert reply.status_code == 404, reply.text
        cross = theirs.post(f"/redemptions/{tenant.tenant_id}", json=_cart(code, "u1"))
        assert cross.status_code == 403
    rid = _redeem(api, tenant, _cart("MINE-X", "u1", hold_seconds=600)).json()["id"]
    assert theirs.post(f"/redemptions/{other.tenant_id}/{rid}/release").status_code == 404
    assert theirs.post(f"/redemptions/{tenant.tenant_id}/{rid}/release").status_code == 403
    _ok(db, tenant)


def test_a_replayed_hold_claims_nothing_more(api: Api, tenant: TenantKeys, db: Database) -> None:
    coupon = _make(api, tenant, code="REPLAY-H", coupon_type="USAGE", usage_limit=5)
    codes = f"/coupons/{tenant.tenant_id}/{coupon['id']}/codes"
    api.post(codes, json={"codes": ["RPH-1"], "max_uses": 1})
    headers = {"Idempotency-Key": "hold-1"}
    body = _cart("RPH-1", "u1", hold_seconds=600)
    first = api.post(f"/redemptions/{tenant.tenant_id}", json=body, headers=headers)
    assert _act(api, tenant, first.json()["id"], "release").status_code == 200
    second = api.post(f"/redemptions/{tenant.tenant_id}", json=body, headers=headers)
    assert second.status_code == 201 and second.content == first.content
    assert api.get(codes).json()[0]["times_used"] == 0
    _ok(db, tenant)
