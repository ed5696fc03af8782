"""A coupon's stats (SPEC 10): counts by status, codes, and the last 90 days, from counters."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from couponry.services.check import check_invariants
from couponry.store.db import Database
from tests.conftest import Api, TenantKeys
from tests.integration.test_redemptions_api import act, cart, line, pending, redeemed


def _stats(api: Api, tenant: TenantKeys, coupon: dict[str, Any]) -> dict[str, Any]:
    reply = api.get(f"/coupons/{tenant.tenant_id}/{coupon['id']}/stats")
    assert reply.status_code == 200, reply.text
    return dict(reply.json())


def test_stats_count_every_status_and_every_code(
    api: Api, tenant: TenantKeys, db: Database
) -> None:
    _, coupon = pending(api, tenant, code="STATS-OWN", value_percent=10)
    codes = f"/coupons/{tenant.tenant_id}/{coupon['id']}/codes"
    assert api.post(codes, json={"codes": ["ST-A1", "ST-B2", "ST-C3"]}).status_code == 201
    assert api.delete(f"{codes}/ST-C3").status_code == 200
    empty = _stats(api, tenant, coupon)
    assert empty == {
        "times_used": 0,
        "discount_total": "0.00",
        "redemptions": {
            "applied": 0,
            "pending_approval": 0,
            "held": 0,
            "rolled_back": 0,
            "rejected": 0,
            "released": 0,
        },
        "codes": {"total": 3, "active": 2, "used": 0},
        "by_day": [],
    }
    made = [
        redeemed(api, tenant, cart(code, f"u{n}", line(price="50.00")))
        for n, code in enumerate(["ST-A1", "STATS-OWN", "ST-B2", "STATS-OWN"])
    ]
    assert {r["status"] for r in made} == {"pending_approval"}
    assert act(api, tenant, made[0]["id"], "approve").status_code == 200
    assert act(api, tenant, made[1]["id"], "approve").status_code == 200
    assert act(api, tenant, made[1]["id"], "rollback").status_code == 200
    assert act(api, tenant, made[2]["id"], "reject").status_code == 200
    stats = _stats(api, tenant, coupon)
    assert stats["times_used"] == 2  # the applied one and the one still pending
    assert stats["discount_total"] == "10.00"
    assert stats["redemptions"] == {
        "applied": 1,
        "pending_approval": 1,
        "held": 0,
        "rolled_back": 1,
        "rejected": 1,
        "released": 0,
    }
    assert stats["codes"] == {"total": 3, "active": 2, "used": 1}  # ST-B2's use came back
    today = datetime.now(UTC).date().isoformat()
    # each redemption counted on the day it was made, whatever its status now
    assert stats["by_day"] == [{"date": today, "redemptions": 4, "discount_total": "20.00"}]
    assert check_invariants(db, tenant_id=tenant.tenant_id).ok


def test_by_day_covers_the_last_90_days(api: Api, tenant: TenantKeys, db: Database) -> None:
    _, coupon = pending(api, tenant, code="STATS-DAYS")
    today = datetime.now(UTC).date()
    with db.transaction() as conn:
        for back, count in ((90, 7), (89, 3), (30, 2)):
            conn.exec_driver_sql(
                "INSERT INTO coupon_days (coupon_id, day, tenant_id, redemptions, discount_units)"
                " VALUES (%(c)s, %(d)s, %(t)s, %(n)s, %(u)s)"
                if db.primary.dialect.name == "postgresql"
                else "INSERT INTO coupon_days (coupon_id, day, tenant_id, redemptions, "
                "discount_units) VALUES (:c, :d, :t, :n, :u)",
                {
                    "c": coupon["id"],
                    "d": (today - timedelta(days=back)).isoformat(),
                    "t": tenant.tenant_id,
                    "n": count,
                    "u": count * 12_500,
                },
            )
    days = _stats(api, tenant, coupon)["by_day"]
    assert days == [
        {
            "date": (today - timedelta(days=89)).isoformat(),
            "redemptions": 3,
            "discount_total": "3.75",
        },
        {
            "date": (today - timedelta(days=30)).isoformat(),
            "redemptions": 2,
            "discount_total": "2.50",
        },
    ]


def test_any_role_reads_stats_of_its_own_tenant_only(
    api: Api, tenant: TenantKeys, other_tenant: TenantKeys
) -> None:
    _, coupon = pending(api, tenant, code="STATS-ROLE")
    path = f"/coupons/{tenant.tenant_id}/{coupon['id']}/stats"
    for key in (tenant.read, tenant.checkout, tenant.admin):
        assert api.as_key(key).get(path).status_code == 200
    assert api.as_key(other_tenant.admin).get(path).status_code == 403
    theirs = f"/coupons/{other_tenant.tenant_id}/{coupon['id']}/stats"
    assert api.as_key(other_tenant.admin).get(theirs).status_code == 404
    assert api.get(f"/coupons/{tenant.tenant_id}/nope/stats").status_code == 404
    api.delete(f"/coupons/{tenant.tenant_id}/{coupon['id']}")
    assert api.get(path).status_code == 404
