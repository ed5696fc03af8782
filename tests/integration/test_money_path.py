"""The money path's counters and records, end to end (SPEC 6, 10, 11), on SQLite and PostgreSQL.

Each claim path is exercised: the common coupon (no credit, budget or group: the hot path),
a GROUP coupon (the synchronous claim without a draw) and a credit (TOTAL_AMOUNT, the claim
that draws). What is asserted is what a user of the service sees: replies, refusals, the
coupon's `times_used` / `remaining_amount` / `budget_remaining`, its stats, the records
listed, and `couponry check` finding counters and records in agreement.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import text

from couponry.domain.fields import parse_instant
from couponry.services import coupons as coupon_svc
from couponry.services import redemptions as redemption_svc
from couponry.services.check import CheckReport, check_invariants
from couponry.services.tenants import get_tenant
from couponry.store.coupon_repo import CouponRepository
from couponry.store.db import Database
from couponry.store.redemption_repo import RedemptionRepository
from tests.conftest import Api, TenantKeys, make_tenant, now
from tests.integration.test_redemptions_api import (
    cart,
    create_coupon,
    get_coupon,
    line,
    listing,
    make_group,
    redeem,
    redeemed,
)

D = Decimal


# --- helpers ----------------------------------------------------------------------------------


def agreeing(db: Database, tenant: TenantKeys) -> CheckReport:
    """`couponry check` over the tenant: every counter agrees with the records."""
    report = check_invariants(db, tenant_id=tenant.tenant_id)
    assert report.ok, report.problems
    return report


def stats(api: Api, tenant: TenantKeys, coupon_id: str) -> dict[str, Any]:
    reply = api.get(f"/coupons/{tenant.tenant_id}/{coupon_id}/stats")
    assert reply.status_code == 200, reply.text
    return reply.json()  # type: ignore[no-any-return]


def act(api: Api, tenant: TenantKeys, redemption_id: str, action: str) -> dict[str, Any]:
    path = f"/redemptions/{tenant.tenant_id}/{redemption_id}/{action}"
    approving = action in ("approve", "reject")
    reply = api.post(path, json={"approver": "admin"}) if approving else api.post(path)
    assert reply.status_code == 200, reply.text
    return reply.json()  # type: ignore[no-any-return]


def refusal(reply: Any) -> tuple[int, str]:
    return reply.status_code, reply.json()["error"]["code"]


def amount(value: Any) -> Decimal:
    return D(str(value))


# Each way a coupon is claimed: (its fields, the cart lines it covers).
Kind = Callable[[Api, TenantKeys], tuple[dict[str, Any], dict[str, Any]]]


def _common(api: Api, tenant: TenantKeys) -> tuple[dict[str, Any], dict[str, Any]]:
    return {"coupon_type": "PERCENT", "value_percent": 10}, line(price="50.00")


def _group(api: Api, tenant: TenantKeys) -> tuple[dict[str, Any], dict[str, Any]]:
    group = make_group(api, tenant, f"G-{secrets.token_hex(3)}")
    fields = {"coupon_type": "PERCENT", "value_percent": 10, "entity_type": "GROUP"}
    return {**fields, "entity_id": group}, line(price="50.00", group_ids=[group])


def _credit(api: Api, tenant: TenantKeys) -> tuple[dict[str, Any], dict[str, Any]]:
    credit = {"coupon_type": "TOTAL_AMOUNT", "value_percent": None, "value_amount": 1000}
    return credit, line(price="50.00")


KINDS: dict[str, Kind] = {"common": _common, "group": _group, "credit": _credit}


def coupon_of(api: Api, tenant: TenantKeys, kind: str, **fields: Any) -> tuple[str, str, Any]:
    """A coupon claimed the `kind` way: (its id, its code, the line its carts hold)."""
    base, covered = KINDS[kind](api, tenant)
    c = create_coupon(api, tenant, **{**base, **fields})
    return str(c["id"]), str(c["code"]), covered


# --- per-user limits ----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", list(KINDS))
def test_a_user_gets_exactly_max_uses_per_user(
    api: Api, tenant: TenantKeys, db: Database, kind: str
) -> None:
    coupon_id, code, covered = coupon_of(api, tenant, kind, max_uses_per_user=3)
    for _ in range(3):
        redeemed(api, tenant, cart(code, "u-1", covered))
    assert refusal(redeem(api, tenant, cart(code, "u-1", covered))) == (409, "user_limit_reached")
    redeemed(api, tenant, cart(code, "u-2", covered))  # another user is not limited by u-1
    assert get_coupon(api, tenant, coupon_id)["times_used"] == 4
    assert len(listing(api, tenant, coupon_id=coupon_id, user_id="u-1")) == 3
    report = agreeing(db, tenant)
    assert report.user_counters == 2 and report.redemptions == 4


@pytest.mark.parametrize("kind", list(KINDS))
def test_a_rollback_gives_the_user_back_exactly_one_use(
    api: Api, tenant: TenantKeys, db: Database, kind: str
) -> None:
    coupon_id, code, covered = coupon_of(api, tenant, kind, max_uses_per_user=3)
    _, other_code, other_line = coupon_of(api, tenant, kind, max_uses_per_user=3)
    redeemed(api, tenant, cart(other_code, "u-1", other_line))  # u-1's use of another coupon
    made = [redeemed(api, tenant, cart(code, "u-1", covered)) for _ in range(3)]
    redeemed(api, tenant, cart(code, "u-2", covered))  # and another user of this one
    assert act(api, tenant, made[0]["id"], "rollback")["status"] == "rolled_back"
    assert agreeing(db, tenant).user_counters == 3
    assert get_coupon(api, tenant, coupon_id)["times_used"] == 3
    redeemed(api, tenant, cart(code, "u-1", covered))  # the one use given back
    assert refusal(redeem(api, tenant, cart(code, "u-1", covered))) == (409, "user_limit_reached")
    counts = stats(api, tenant, coupon_id)
    assert counts["times_used"] == 4
    assert counts["redemptions"]["applied"] == 4 and counts["redemptions"]["rolled_back"] == 1
    agreeing(db, tenant)


@pytest.mark.parametrize("kind", list(KINDS))
def test_a_rejection_gives_the_user_back_exactly_one_use(
    api: Api, tenant: TenantKeys, db: Database, kind: str
) -> None:
    approvers = make_group(api, tenant, f"A-{secrets.token_hex(3)}")
    coupon_id, code, covered = coupon_of(
        api,
        tenant,
        kind,
        max_uses_per_user=2,
        require_approval=True,
        authorized_group_id=approvers,
        add_user_to_coupons_group=True,
    )
    first = redeemed(api, tenant, cart(code, "u-1", covered))
    second = redeemed(api, tenant, cart(code, "u-1", covered))
    assert first["status"] == second["status"] == "pending_approval"
    pending = stats(api, tenant, coupon_id)["redemptions"]
    assert pending["pending_approval"] == 2 and pending["applied"] == 0
    assert act(api, tenant, first["id"], "reject")["status"] == "rejected"
    assert act(api, tenant, second["id"], "approve")["status"] == "applied"
    counts = stats(api, tenant, coupon_id)
    assert counts["times_used"] == 1
    assert counts["redemptions"]["pending_approval"] == 0
    assert counts["redemptions"]["applied"] == 1 and counts["redemptions"]["rejected"] == 1
    agreeing(db, tenant)
    redeemed(api, tenant, cart(code, "u-1", covered))
    assert refusal(redeem(api, tenant, cart(code, "u-1", covered))) == (409, "user_limit_reached")
    agreeing(db, tenant)


def test_max_uses_per_user_cannot_drop_below_a_users_uses(api: Api, tenant: TenantKeys) -> None:
    coupon_id, code, covered = coupon_of(api, tenant, "group", max_uses_per_user=3)
    for _ in range(2):
        redeemed(api, tenant, cart(code, "u-1", covered))
    redeemed(api, tenant, cart(code, "u-2", covered))
    path = f"/coupons/{tenant.tenant_id}/{coupon_id}"
    low = api.patch(path, json=[{"op": "replace", "path": "/max_uses_per_user", "value": 1}])
    assert low.status_code == 409, low.text
    fine = api.patch(path, json=[{"op": "replace", "path": "/max_uses_per_user", "value": 2}])
    assert fine.status_code == 200, fine.text
    assert refusal(redeem(api, tenant, cart(code, "u-1", covered))) == (409, "user_limit_reached")


# --- usage limits and refused claims under an Idempotency-Key -----------------------------------


@pytest.mark.parametrize("kind", list(KINDS))
def test_the_last_use_goes_once_and_a_refusal_leaves_no_record(
    api: Api, tenant: TenantKeys, db: Database, kind: str
) -> None:
    coupon_id, code, covered = coupon_of(api, tenant, kind, usage_limit=2, max_uses_per_user=1)
    redeemed(api, tenant, cart(code, "u-1", covered))
    refused_user = redeem(api, tenant, cart(code, "u-1", covered), key="k-user")
    assert refusal(refused_user) == (409, "user_limit_reached")
    redeemed(api, tenant, cart(code, "u-2", covered))
    refused = redeem(api, tenant, cart(code, "u-3", covered), key="k-last")
    assert refusal(refused) == (409, "usage_limit_reached")
    again = redeem(api, tenant, cart(code, "u-3", covered), key="k-last")  # replayed
    assert refusal(again) == (409, "usage_limit_reached")
    records = listing(api, tenant, coupon_id=coupon_id)
    assert sorted(r["user_id"] for r in records) == ["u-1", "u-2"]
    counts = stats(api, tenant, coupon_id)
    assert counts["times_used"] == 2 and sum(d["redemptions"] for d in counts["by_day"]) == 2
    report = agreeing(db, tenant)
    assert report.redemptions == 2 and report.user_counters == 2


# --- credits ---------------------------------------------------------------------------------


def test_a_credit_is_spent_down_to_its_last_minor_unit(
    api: Api, tenant: TenantKeys, db: Database
) -> None:
    c = create_coupon(
        api, tenant, coupon_type="TOTAL_AMOUNT", value_percent=None, value_amount="10.01"
    )
    first = redeemed(api, tenant, cart(c["code"], "u-1", line(price="10.00")))
    assert first["discount_total"] == "10.00"
    assert amount(get_coupon(api, tenant, c["id"])["remaining_amount"]) == D("0.01")
    last = redeemed(api, tenant, cart(c["code"], "u-2", line(price="5.00")))
    assert last["discount_total"] == "0.01"
    assert amount(get_coupon(api, tenant, c["id"])["remaining_amount"]) == 0
    spent = redeem(api, tenant, cart(c["code"], "u-3", line(price="5.00")))
    assert refusal(spent) == (409, "credit_exhausted")
    agreeing(db, tenant)
    act(api, tenant, first["id"], "rollback")
    assert amount(get_coupon(api, tenant, c["id"])["remaining_amount"]) == D("10.00")
    agreeing(db, tenant)


def test_a_credit_keeps_what_rounding_could_not_give(
    api: Api, tenant: TenantKeys, db: Database
) -> None:
    """A credit of 10.005 gives 10.00 to a cart of 20.00: the half cent stays on the coupon
    (given back from the draw), and is then too little for another redemption."""
    c = create_coupon(
        api, tenant, coupon_type="TOTAL_AMOUNT", value_percent=None, value_amount="10.005"
    )
    r = redeemed(api, tenant, cart(c["code"], "u-1", line(price="20.00")))
    assert r["discount_total"] == "10.00"
    assert amount(get_coupon(api, tenant, c["id"])["remaining_amount"]) == D("0.005")
    assert stats(api, tenant, c["id"])["discount_total"] == "10.00"
    spent = redeem(api, tenant, cart(c["code"], "u-2", line(price="20.00")))
    assert refusal(spent) == (409, "credit_exhausted")
    agreeing(db, tenant)
    act(api, tenant, r["id"], "rollback")
    assert amount(get_coupon(api, tenant, c["id"])["remaining_amount"]) == D("10.005")
    again = redeemed(api, tenant, cart(c["code"], "u-3", line(price="4.00")))
    assert again["discount_total"] == "4.00"
    assert amount(get_coupon(api, tenant, c["id"])["remaining_amount"]) == D("6.005")
    agreeing(db, tenant)


def test_a_free_cart_draws_nothing_from_a_credit(
    api: Api, tenant: TenantKeys, db: Database
) -> None:
    c = create_coupon(
        api, tenant, coupon_type="TOTAL_AMOUNT", value_percent=None, value_amount="25"
    )
    free = redeemed(api, tenant, cart(c["code"], "u-1", line(price="0")))
    assert free["discount_total"] == "0.00"
    after = get_coupon(api, tenant, c["id"])
    assert after["times_used"] == 1 and amount(after["remaining_amount"]) == 25
    agreeing(db, tenant)


# --- budgets ---------------------------------------------------------------------------------


def test_a_budget_caps_what_is_given_and_a_rollback_returns_it(
    api: Api, tenant: TenantKeys, db: Database
) -> None:
    c = create_coupon(api, tenant, value_percent=50, budget_amount="15")
    first = redeemed(api, tenant, cart(c["code"], "u-1", line(price="20.00")))
    assert first["discount_total"] == "10.00"
    second = redeemed(api, tenant, cart(c["code"], "u-2", line(price="20.00")))
    assert second["discount_total"] == "5.00"  # what the budget had left
    current = get_coupon(api, tenant, c["id"])
    assert amount(current["budget_remaining"]) == 0 and current["times_used"] == 2
    spent = redeem(api, tenant, cart(c["code"], "u-3", line(price="20.00")))
    assert refusal(spent) == (409, "budget_exhausted")
    assert stats(api, tenant, c["id"])["discount_total"] == "15.00"
    agreeing(db, tenant)
    act(api, tenant, second["id"], "rollback")
    assert amount(get_coupon(api, tenant, c["id"])["budget_remaining"]) == 5
    third = redeemed(api, tenant, cart(c["code"], "u-3", line(price="6.00")))
    assert third["discount_total"] == "3.00"
    assert amount(get_coupon(api, tenant, c["id"])["budget_remaining"]) == 2
    agreeing(db, tenant)


def test_a_credit_with_a_budget_draws_the_lesser(
    api: Api, tenant: TenantKeys, db: Database
) -> None:
    c = create_coupon(
        api,
        tenant,
        coupon_type="TOTAL_AMOUNT",
        value_percent=None,
        value_amount="30",
        budget_amount="12",
    )
    first = redeemed(api, tenant, cart(c["code"], "u-1", line(price="8.00")))
    assert first["discount_total"] == "8.00"
    second = redeemed(api, tenant, cart(c["code"], "u-2", line(price="8.00")))
    assert second["discount_total"] == "4.00"
    current = get_coupon(api, tenant, c["id"])
    assert amount(current["remaining_amount"]) == 18 and amount(current["budget_remaining"]) == 0
    agreeing(db, tenant)


# --- what stats count ------------------------------------------------------------------------


@pytest.mark.parametrize("kind", list(KINDS))
def test_stats_count_each_redemption_of_the_day(
    api: Api, tenant: TenantKeys, db: Database, kind: str
) -> None:
    coupon_id, code, covered = coupon_of(api, tenant, kind)
    for user, price in (("u-1", "30.00"), ("u-2", "12.00"), ("u-3", "0.50")):
        redeemed(api, tenant, cart(code, user, {**covered, "unit_price": price}))
    counts = stats(api, tenant, coupon_id)
    wanted = "42.50" if kind == "credit" else "4.25"
    assert counts["discount_total"] == wanted
    (today,) = counts["by_day"]
    assert today["redemptions"] == 3 and today["discount_total"] == wanted
    assert today["date"] == now().date().isoformat()
    agreeing(db, tenant)


def test_a_redeemed_coupon_keeps_its_code(api: Api, tenant: TenantKeys) -> None:
    for kind in KINDS:
        coupon_id, code, covered = coupon_of(api, tenant, kind)
        path = f"/coupons/{tenant.tenant_id}/{coupon_id}"
        renamed = api.patch(path, json=[{"op": "replace", "path": "/code", "value": code + "-B"}])
        assert renamed.status_code == 200, renamed.text
        redeemed(api, tenant, cart(code + "-B", "u-1", covered))
        again = api.patch(path, json=[{"op": "replace", "path": "/code", "value": code + "-C"}])
        assert again.status_code in (409, 422), again.text
        assert get_coupon(api, tenant, coupon_id)["code"] == code + "-B"


# --- holds -----------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", list(KINDS))
def test_a_released_hold_gives_everything_back(
    api: Api, tenant: TenantKeys, db: Database, kind: str
) -> None:
    coupon_id, code, covered = coupon_of(api, tenant, kind, usage_limit=1, max_uses_per_user=1)
    held = redeemed(api, tenant, cart(code, "u-1", covered, hold_seconds=60))
    assert held["status"] == "held"
    assert stats(api, tenant, coupon_id)["redemptions"]["held"] == 1
    assert refusal(redeem(api, tenant, cart(code, "u-2", covered))) == (409, "usage_limit_reached")
    agreeing(db, tenant)
    assert act(api, tenant, held["id"], "release")["status"] == "released"
    counts = stats(api, tenant, coupon_id)
    assert counts["times_used"] == 0
    assert counts["redemptions"]["held"] == 0 and counts["redemptions"]["released"] == 1
    if kind == "credit":
        assert amount(get_coupon(api, tenant, coupon_id)["remaining_amount"]) == 1000
    agreeing(db, tenant)
    redeemed(api, tenant, cart(code, "u-1", covered))


@pytest.mark.parametrize("kind", list(KINDS))
def test_a_hold_expires_at_its_end_not_before(
    api: Api, tenant: TenantKeys, db: Database, kind: str
) -> None:
    coupon_id, code, covered = coupon_of(api, tenant, kind, usage_limit=1)
    held = redeemed(api, tenant, cart(code, "u-1", covered, hold_seconds=60))
    end = parse_instant(held["hold_expires_at"])
    assert end is not None
    redemption_svc.release_expired_holds(db, now=end - timedelta(milliseconds=1))
    assert act_status(api, tenant, held["id"]) == "held"
    assert redemption_svc.release_expired_holds(db, now=end) >= 1
    assert act_status(api, tenant, held["id"]) == "released"
    assert get_coupon(api, tenant, coupon_id)["times_used"] == 0
    agreeing(db, tenant)


def act_status(api: Api, tenant: TenantKeys, redemption_id: str) -> str:
    reply = api.get(f"/redemptions/{tenant.tenant_id}/{redemption_id}")
    assert reply.status_code == 200, reply.text
    return str(reply.json()["status"])


# --- idempotency keys ----------------------------------------------------------------------------


def test_keys_older_than_their_lifetime_are_purged_a_few_at_a_time(
    api: Api, tenant: TenantKeys, other_tenant: TenantKeys, db: Database
) -> None:
    lifetime = redemption_svc.KEY_LIFETIME
    cutoff = now() - lifetime
    old, young = cutoff - timedelta(minutes=1), cutoff + timedelta(minutes=1)
    edge = cutoff  # created at the cutoff itself: kept
    olds = [f"old-{i}" for i in range(51)]
    with db.transaction() as conn:
        mine = RedemptionRepository(conn, tenant.tenant_id)
        for key in olds:
            assert mine.reserve_key(key, "first", old)
        assert mine.reserve_key("young", "first", young)
        assert mine.reserve_key("edge", "first", edge)
        assert RedemptionRepository(conn, other_tenant.tenant_id).reserve_key("old-0", "x", old)
    with db.transaction() as conn:
        RedemptionRepository(conn, tenant.tenant_id).purge_keys(before=cutoff)
    with db.reader() as conn:
        mine = RedemptionRepository(conn, tenant.tenant_id)
        kept = [key for key in olds if mine.key_record(key) is not None]
        assert len(kept) == 1  # at most 50 go in one purge
        assert mine.key_record("young") is not None
        assert mine.key_record("edge") is not None
        assert RedemptionRepository(conn, other_tenant.tenant_id).key_record("old-0") is not None
    c = create_coupon(api, tenant)
    purged = next(key for key in olds if key not in kept)
    assert redeem(api, tenant, cart(c["code"], "u-1"), key=purged).status_code == 201
    assert refusal(redeem(api, tenant, cart(c["code"], "u-2"), key="young")) == (
        409,
        "idempotency_key_in_use",
    )


# --- campaign codes ----------------------------------------------------------------------------


def add_codes(api: Api, tenant: TenantKeys, coupon_id: str, codes: list[str], uses: int) -> None:
    path = f"/coupons/{tenant.tenant_id}/{coupon_id}/codes"
    reply = api.post(path, json={"codes": codes, "max_uses": uses})
    assert reply.status_code == 201, reply.text


def code_uses(api: Api, tenant: TenantKeys, coupon_id: str) -> dict[str, int]:
    path = f"/coupons/{tenant.tenant_id}/{coupon_id}/codes"
    reply = api.get(path, params={"limit": "1000"})
    assert reply.status_code == 200, reply.text
    return {c["code"]: c["times_used"] for c in reply.json()}


@pytest.mark.parametrize("kind", list(KINDS))
def test_a_campaign_code_counts_its_uses_and_the_coupon_its_used_codes(
    api: Api, tenant: TenantKeys, db: Database, kind: str
) -> None:
    coupon_id, _, covered = coupon_of(api, tenant, kind, usage_limit=10)
    mark = secrets.token_hex(3).upper()
    a, b = f"A-{mark}", f"B-{mark}"
    add_codes(api, tenant, coupon_id, [a, b], uses=2)
    first = redeemed(api, tenant, cart(a.lower(), "u-1", covered))
    assert first["code"] == a
    second = redeemed(api, tenant, cart(a, "u-2", covered))
    assert stats(api, tenant, coupon_id)["codes"] == {"total": 2, "active": 2, "used": 1}
    used_up = redeem(api, tenant, cart(a, "u-3", covered))
    assert refusal(used_up) == (409, "code_used_up")
    redeemed(api, tenant, cart(b, "u-3", covered))
    assert code_uses(api, tenant, coupon_id) == {a: 2, b: 1}
    assert stats(api, tenant, coupon_id)["codes"]["used"] == 2
    assert get_coupon(api, tenant, coupon_id)["times_used"] == 3
    agreeing(db, tenant)
    act(api, tenant, first["id"], "rollback")
    assert code_uses(api, tenant, coupon_id) == {a: 1, b: 1}
    assert stats(api, tenant, coupon_id)["codes"]["used"] == 2  # a is still used once
    act(api, tenant, second["id"], "rollback")
    assert code_uses(api, tenant, coupon_id) == {a: 0, b: 1}
    assert stats(api, tenant, coupon_id)["codes"]["used"] == 1
    agreeing(db, tenant)
    redeemed(api, tenant, cart(a, "u-4", covered))  # its uses came back
    assert code_uses(api, tenant, coupon_id)[a] == 1
    agreeing(db, tenant)


@pytest.mark.parametrize("kind", list(KINDS))
def test_a_code_use_refused_after_its_claim_is_given_back(
    api: Api, tenant: TenantKeys, db: Database, kind: str
) -> None:
    """The code is claimed first; the coupon's last use or the user's limit then refuses:
    the code keeps its use, with or without an Idempotency-Key."""
    coupon_id, own, covered = coupon_of(api, tenant, kind, usage_limit=1, max_uses_per_user=1)
    code = f"C-{secrets.token_hex(3).upper()}"
    add_codes(api, tenant, coupon_id, [code], uses=5)
    redeemed(api, tenant, cart(own, "u-1", covered))
    for key in (None, "k-code"):
        refused = redeem(api, tenant, cart(code, "u-2", covered), key=key)
        assert refusal(refused) == (409, "usage_limit_reached")
        refused_user = redeem(api, tenant, cart(code, "u-1", covered), key=key and key + "-u")
        assert refusal(refused_user)[0] == 409
    assert code_uses(api, tenant, coupon_id) == {code: 0}
    assert stats(api, tenant, coupon_id)["codes"]["used"] == 0
    agreeing(db, tenant)


# --- records -----------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", list(KINDS))
def test_a_redemption_reads_back_as_it_was_made(
    api: Api, tenant: TenantKeys, db: Database, kind: str
) -> None:
    _, code, covered = coupon_of(
        api, tenant, kind, discount_method="discount line item", discount_product_id="p-9"
    )
    body = cart(code, "u-1", covered, line("2", price="7.50"), membership_status="new")
    made = redeem(api, tenant, body, key=f"k-{kind}")
    assert made.status_code == 201, made.text
    reply = made.json()
    path = f"/redemptions/{tenant.tenant_id}"
    read = api.get(f"{path}/{reply['id']}")
    assert read.status_code == 200 and read.json() == reply
    total = reply["discount_total"]
    assert reply["discount_line"] == {"product_id": "p-9", "amount": total}
    assert reply["idempotency_key"] == f"k-{kind}" and reply["membership_status"] == "new"
    assert sum(D(x["discount"]) for x in reply["lines"]) == D(total) > 0
    assert listing(api, tenant, code=code.lower()) == [reply]
    assert listing(api, tenant, user_id="u-1", status="applied") == [reply]
    assert listing(api, tenant, status="rolled_back") == []
    assert listing(api, tenant, coupon_id="not-an-id") == []
    for unknown in ("00000000-0000-0000-0000-000000000000", "not-an-id"):
        assert api.get(f"{path}/{unknown}").status_code == 404
    agreeing(db, tenant)


@pytest.mark.parametrize("kind", list(KINDS))
def test_without_a_per_user_limit_a_user_redeems_again_and_again(
    api: Api, tenant: TenantKeys, db: Database, kind: str
) -> None:
    coupon_id, code, covered = coupon_of(api, tenant, kind)
    for _ in range(3):
        redeemed(api, tenant, cart(code, "u-1", covered))
    assert get_coupon(api, tenant, coupon_id)["times_used"] == 3
    report = agreeing(db, tenant)
    assert report.user_counters == 1 and report.redemptions == 3


@pytest.mark.parametrize("kind", list(KINDS))
def test_a_confirmed_hold_is_applied_or_waits_for_approval(
    api: Api, tenant: TenantKeys, db: Database, kind: str
) -> None:
    coupon_id, code, covered = coupon_of(api, tenant, kind)
    held = redeemed(api, tenant, cart(code, "u-1", covered, hold_seconds=600))
    assert act(api, tenant, held["id"], "confirm")["status"] == "applied"
    counts = stats(api, tenant, coupon_id)["redemptions"]
    assert counts["held"] == 0 and counts["applied"] == 1
    agreeing(db, tenant)
    approvers = make_group(api, tenant, f"A-{secrets.token_hex(3)}")
    approved_id, approved_code, approved_line = coupon_of(
        api,
        tenant,
        kind,
        require_approval=True,
        authorized_group_id=approvers,
        add_user_to_coupons_group=True,
    )
    waiting = redeemed(api, tenant, cart(approved_code, "u-1", approved_line, hold_seconds=600))
    assert act(api, tenant, waiting["id"], "confirm")["status"] == "pending_approval"
    counts = stats(api, tenant, approved_id)["redemptions"]
    assert counts["held"] == 0 and counts["pending_approval"] == 1 and counts["applied"] == 0
    agreeing(db, tenant)


# --- a claim on a stale read (what a concurrent redemption meets) -----------------------------


def stale_claim(db: Database, tenant: TenantKeys, coupon_id: str, want: int | None) -> Any:
    """Claim a use as a redemption that read the coupon before another one took what was left."""
    with db.transaction() as conn:
        coupon = CouponRepository(conn, tenant.tenant_id).get(coupon_id)
        assert coupon is not None
        repo = RedemptionRepository(conn, tenant.tenant_id)
        return repo.claim_use(coupon_id, version=coupon.sys_version, want_units=want)


def test_a_claim_takes_nothing_from_a_spent_credit_or_budget_or_the_last_use(
    api: Api, tenant: TenantKeys, db: Database
) -> None:
    credit = create_coupon(
        api, tenant, coupon_type="TOTAL_AMOUNT", value_percent=None, value_amount="5"
    )
    redeemed(api, tenant, cart(credit["code"], "u-1", line(price="5.00")))
    assert stale_claim(db, tenant, credit["id"], want=0) is None
    assert stale_claim(db, tenant, credit["id"], want=10_000) is None
    budget = create_coupon(api, tenant, value_percent=100, budget_amount="5")
    redeemed(api, tenant, cart(budget["code"], "u-1", line(price="5.00")))
    assert stale_claim(db, tenant, budget["id"], want=0) is None
    limited = create_coupon(api, tenant, usage_limit=1, coupon_type="USAGE", value_percent=None)
    redeemed(api, tenant, cart(limited["code"], "u-1"))
    assert stale_claim(db, tenant, limited["id"], want=None) is None
    for spent in (credit, budget, limited):
        assert get_coupon(api, tenant, spent["id"])["times_used"] == 1
    agreeing(db, tenant)
    fresh = create_coupon(
        api, tenant, coupon_type="TOTAL_AMOUNT", value_percent=None, value_amount=3
    )
    assert stale_claim(db, tenant, fresh["id"], want=50_000) == 30_000  # all that is left
    assert stale_claim(db, tenant, fresh["id"], want=50_000) is None


def test_a_budget_keeps_what_rounding_could_not_give(
    api: Api, tenant: TenantKeys, db: Database
) -> None:
    c = create_coupon(api, tenant, value_percent=100, budget_amount="10.005")
    r = redeemed(api, tenant, cart(c["code"], "u-1", line(price="20.00")))
    assert r["discount_total"] == "10.00"
    assert amount(get_coupon(api, tenant, c["id"])["budget_remaining"]) == D("0.005")
    spent = redeem(api, tenant, cart(c["code"], "u-2", line(price="20.00")))
    assert refusal(spent) == (409, "budget_exhausted")
    agreeing(db, tenant)


# --- couponry check sees a counter that lies ---------------------------------------------------


def lie(db: Database, sql: str, **params: Any) -> None:
    with db.transaction() as conn:
        conn.execute(text(sql), params)


def test_check_names_each_counter_that_disagrees_with_the_records(
    api: Api, tenant: TenantKeys, db: Database
) -> None:
    unused = create_coupon(api, tenant)  # no redemptions: its counters are all zero
    credit = create_coupon(
        api, tenant, coupon_type="TOTAL_AMOUNT", value_percent=None, value_amount="30"
    )
    approvers = make_group(api, tenant, "Approvers")
    pending = create_coupon(
        api,
        tenant,
        require_approval=True,
        authorized_group_id=approvers,
        add_user_to_coupons_group=True,
        max_uses_per_user=2,
    )
    redeemed(api, tenant, cart(credit["code"], "u-1", line(price="10.00")))
    redeemed(api, tenant, cart(pending["code"], "u-2"))
    report = agreeing(db, tenant)
    assert report.coupons == 3 and report.redemptions == 2 and report.user_counters == 2
    lie(db, "UPDATE coupons SET times_used = 2, pending_count = 0 WHERE id = :id", id=pending["id"])
    lie(db, "UPDATE coupons SET remaining_units = 210000 WHERE id = :id", id=credit["id"])
    lie(db, "UPDATE coupon_user_uses SET uses = 3 WHERE coupon_id = :id", id=pending["id"])
    lie(db, "DELETE FROM coupon_user_uses WHERE coupon_id = :id", id=credit["id"])
    lie(db, "UPDATE coupons SET given_units = 5 WHERE id = :id", id=unused["id"])
    problems = check_invariants(db, tenant_id=tenant.tenant_id).problems
    text_of = "\n".join(problems)
    assert "times_used 2, redemptions holding a use 1" in text_of
    assert "0 pending_approval counted, redemptions say 1" in text_of
    assert "remaining 210000 units, value less drawn is 200000" in text_of
    assert f"coupon {pending['id']} user 'u-2': counter says 3 uses, redemptions say 1" in text_of
    assert "3 uses exceed max_uses_per_user 2" in text_of
    assert f"coupon {credit['id']} user 'u-1': counter says 0 uses, redemptions say 1" in text_of
    assert f"coupon {unused['id']} ({tenant.tenant_id}/{unused['code']}): gave 5 units" in text_of
    assert len(problems) == 7
    other = check_invariants(db, tenant_id=make_tenant(db).tenant_id)
    assert other.ok and other.coupons == 0


def test_a_code_claimed_before_the_coupon_changed_keeps_one_use(
    api: Api, tenant: TenantKeys, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An admin's change lands between a redemption's read and its claims (made
    deterministic here): the campaign code's use, claimed on its own, is given back before
    the redemption is decided again, so the code counts the one redemption made."""
    coupon_id, _, covered = coupon_of(api, tenant, "common")
    code = f"R-{secrets.token_hex(3).upper()}"
    add_codes(api, tenant, coupon_id, [code], uses=3)
    original = redemption_svc.redeem_hot
    changed: list[bool] = []

    async def change_first(*args: Any, **kwargs: Any) -> Any:
        if not changed:
            changed.append(True)
            coupon_svc.patch_coupon(
                db,
                tenant=get_tenant(db, tenant_id=tenant.tenant_id),
                actor_id="admin",
                coupon_id=coupon_id,
                operations=[{"op": "replace", "path": "/comment", "value": "changed"}],
                if_match=None,
                now=now(),
            )
        return await original(*args, **kwargs)

    monkeypatch.setattr(redemption_svc, "redeem_hot", change_first)
    made = redeemed(api, tenant, cart(code, "u-1", covered))
    assert changed and made["code"] == code
    assert code_uses(api, tenant, coupon_id) == {code: 1}
    assert get_coupon(api, tenant, coupon_id)["times_used"] == 1
    assert stats(api, tenant, coupon_id)["codes"]["used"] == 1
    agreeing(db, tenant)
