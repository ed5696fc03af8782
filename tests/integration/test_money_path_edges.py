"""More of the money path's edges (SPEC 6.4, 10), on SQLite and PostgreSQL: approvals are
recorded, a credit lowered below what was drawn never goes negative, a claim takes a use while
any credit is left, and reading a redemption never waits for a change in progress."""

from __future__ import annotations

import secrets
import threading
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import text

from couponry.services import coupons as coupon_svc
from couponry.services import redemptions as redemption_svc
from couponry.services.tenants import get_tenant
from couponry.store.db import Database
from tests.conftest import Api, TenantKeys, now
from tests.integration.test_money_path import (
    act,
    add_codes,
    agreeing,
    amount,
    code_uses,
    stale_claim,
)
from tests.integration.test_redemptions_api import (
    cart,
    create_coupon,
    get_coupon,
    line,
    make_group,
    redeemed,
)

D = Decimal


def read(api: Api, tenant: TenantKeys, redemption_id: str) -> dict[str, Any]:
    reply = api.get(f"/redemptions/{tenant.tenant_id}/{redemption_id}")
    assert reply.status_code == 200, reply.text
    return reply.json()  # type: ignore[no-any-return]


def test_an_approval_is_recorded_and_nothing_else_is(api: Api, tenant: TenantKeys) -> None:
    approvers = make_group(api, tenant, "Approvers")
    c = create_coupon(
        api,
        tenant,
        require_approval=True,
        authorized_group_id=approvers,
        add_user_to_coupons_group=True,
    )
    approved = redeemed(api, tenant, cart(c["code"], "u-1"))
    rejected = redeemed(api, tenant, cart(c["code"], "u-2"))
    act(api, tenant, approved["id"], "approve")
    act(api, tenant, rejected["id"], "reject")
    first = read(api, tenant, approved["id"])
    assert first["approved_by"] == "admin" and first["approved_at"] == first["updated_at"]
    second = read(api, tenant, rejected["id"])
    assert second["approved_by"] is None and second["approved_at"] is None
    act(api, tenant, approved["id"], "rollback")
    after = read(api, tenant, approved["id"])
    assert after["approved_by"] == "admin" and after["approved_at"] == first["approved_at"]


def test_a_credit_lowered_below_what_was_drawn_never_goes_negative(
    api: Api, tenant: TenantKeys, db: Database
) -> None:
    c = create_coupon(api, tenant, coupon_type="TOTAL_AMOUNT", value_percent=None, value_amount=10)
    made = [
        redeemed(api, tenant, cart(c["code"], f"u-{i}", line(price=price)))
        for i, price in enumerate(("4.00", "2.00", "2.00", "2.00"))
    ]
    path = f"/coupons/{tenant.tenant_id}/{c['id']}"
    lowered = api.patch(path, json=[{"op": "replace", "path": "/value_amount", "value": "6.0001"}])
    assert lowered.status_code == 200, lowered.text
    assert amount(get_coupon(api, tenant, c["id"])["remaining_amount"]) == 0
    act(api, tenant, made[3]["id"], "rollback")  # 8 drawn of a credit of 6.0001: nothing left
    assert amount(get_coupon(api, tenant, c["id"])["remaining_amount"]) == 0
    agreeing(db, tenant)
    act(api, tenant, made[2]["id"], "rollback")  # 6 drawn: a ten-thousandth left
    assert amount(get_coupon(api, tenant, c["id"])["remaining_amount"]) == D("0.0001")
    act(api, tenant, made[0]["id"], "rollback")  # 2 drawn
    assert amount(get_coupon(api, tenant, c["id"])["remaining_amount"]) == D("4.0001")
    agreeing(db, tenant)


def test_a_claim_takes_a_use_while_any_credit_is_left(
    api: Api, tenant: TenantKeys, db: Database
) -> None:
    """A credit with a ten-thousandth left still has something: a claim that read the coupon
    before it came to that (and wants nothing: a free cart) takes its use."""
    c = create_coupon(
        api, tenant, coupon_type="TOTAL_AMOUNT", value_percent=None, value_amount="5.0001"
    )
    redeemed(api, tenant, cart(c["code"], "u-1", line(price="5.00")))
    assert amount(get_coupon(api, tenant, c["id"])["remaining_amount"]) == D("0.0001")
    assert stale_claim(db, tenant, c["id"], want=0) == 0
    assert get_coupon(api, tenant, c["id"])["times_used"] == 2


def test_reading_a_redemption_never_waits_for_a_change_in_progress(
    api: Api, tenant: TenantKeys, db: Database
) -> None:
    c = create_coupon(api, tenant)
    made = redeemed(api, tenant, cart(c["code"], "u-1"))
    replies: list[Any] = []
    with db.transaction() as conn:  # a change holds the redemption's row
        conn.execute(
            text("UPDATE redemptions SET updated_at = updated_at WHERE id = :id"),
            {"id": made["id"]},
        )
        reader = threading.Thread(
            target=lambda: replies.append(api.get(f"/redemptions/{tenant.tenant_id}/{made['id']}"))
        )
        reader.start()
        reader.join(3)
        answered = not reader.is_alive()
    reader.join(30)
    assert answered, "a read waited for the change to end"
    assert replies[0].status_code == 200 and replies[0].json()["id"] == made["id"]


def test_validate_counts_the_users_uses_of_this_coupon_only(api: Api, tenant: TenantKeys) -> None:
    limited = create_coupon(api, tenant, max_uses_per_user=2)
    other = create_coupon(api, tenant)
    for _ in range(2):
        redeemed(api, tenant, cart(limited["code"], "u-1"))
    redeemed(api, tenant, cart(other["code"], "u-1"))
    path = f"/coupons/{tenant.tenant_id}/validate"
    at_limit = api.post(path, json=cart(limited["code"], "u-1")).json()
    assert at_limit["valid"] is False
    assert [e["code"] for e in at_limit["errors"]] == ["user_limit_reached"]
    for _ in range(2):
        redeemed(api, tenant, cart(other["code"], "u-2"))
    fresh = api.post(path, json=cart(limited["code"], "u-2")).json()  # u-2 never used it
    assert fresh["valid"] is True and fresh["errors"] == []
    once = create_coupon(api, tenant, max_uses_per_user=1)
    first = api.post(path, json=cart(once["code"], "u-3")).json()  # no use yet: valid
    assert first["valid"] is True and first["errors"] == []


def test_giving_back_a_code_claimed_before_a_change_touches_no_other_code(
    api: Api, tenant: TenantKeys, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As test_money_path's race: the hot path gives its code's use back, that one only."""
    c = create_coupon(api, tenant)
    mark = secrets.token_hex(3).upper()
    raced, other = f"R-{mark}", f"O-{mark}"
    add_codes(api, tenant, c["id"], [raced, other], uses=3)
    redeemed(api, tenant, cart(other, "u-0"))
    original = redemption_svc.redeem_hot
    changed: list[bool] = []

    async def change_first(*args: Any, **kwargs: Any) -> Any:
        if not changed:
            changed.append(True)
            coupon_svc.patch_coupon(
                db,
                tenant=get_tenant(db, tenant_id=tenant.tenant_id),
                actor_id="admin",
                coupon_id=c["id"],
                operations=[{"op": "replace", "path": "/comment", "value": "changed"}],
                if_match=None,
                now=now(),
            )
        return await original(*args, **kwargs)

    monkeypatch.setattr(redemption_svc, "redeem_hot", change_first)
    redeemed(api, tenant, cart(raced, "u-1"))
    assert changed
    assert code_uses(api, tenant, c["id"]) == {raced: 1, other: 1}
    agreeing(db, tenant)
