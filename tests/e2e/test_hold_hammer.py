"""Holds under load (SPEC 11.1), over two `couponry serve` processes on each database: exact
limits for holds, one outcome for every confirm racing its hold's end, and releases that give
back exactly what was claimed, to the cent. `couponry check` agrees afterwards."""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from couponry.store.db import Database
from tests.e2e.test_redemption_hammer import (
    assert_check_passes,
    cart,
    hammer,
    make_coupon,
    state,
    two_servers,
)

pytestmark = pytest.mark.slow


def held_cart(code: str, user: str, price: str = "10.00") -> dict[str, Any]:
    return {**cart(code, user, price), "hold_seconds": 600}


def act_all(
    servers: list[Any], ids: dict[str, str], rids: list[str], action: str
) -> list[tuple[int, dict[str, Any]]]:
    barrier = threading.Barrier(len(rids))

    def one(index: int) -> tuple[int, dict[str, Any]]:
        server = servers[index % len(servers)]
        barrier.wait()
        reply = httpx.post(
            f"{server.base}/redemptions/{ids['tenant']}/{rids[index]}/{action}",
            headers={"Authorization": ids["key"]},
            timeout=120,
        )
        return reply.status_code, reply.json()

    with ThreadPoolExecutor(max_workers=len(rids)) as pool:
        return list(pool.map(one, range(len(rids))))


def test_holds_are_exact_and_give_back_to_the_cent(database_url: str) -> None:
    with two_servers(database_url) as (ids, tenant, servers):
        limited = make_coupon(
            servers[0], ids, {"code": "HOLD-10", "coupon_type": "USAGE", "usage_limit": 10}
        )
        results = hammer(servers, ids, [held_cart("HOLD-10", f"h{i}") for i in range(100)])
        statuses = Counter(status for status, _ in results)
        assert statuses == {201: 10, 409: 90}, statuses
        assert {b["status"] for s, b in results if s == 201} == {"held"}
        coupon, records = state(servers[1], ids, limited["id"])
        assert coupon["times_used"] == 10 and len(records) == 10

        # a credit of 100.00 held by carts of 7.00: 14 full holds and one of 2.00 ...
        credit = make_coupon(
            servers[1],
            ids,
            {
                "code": "HOLD-CREDIT",
                "coupon_type": "TOTAL_AMOUNT",
                "value_amount": "100.00",
                "budget_amount": "95.50",
            },
        )
        results = hammer(
            servers, ids, [held_cart("HOLD-CREDIT", f"c{i}", "7.00") for i in range(40)]
        )
        held = [b for s, b in results if s == 201]
        assert sum(Decimal(b["discount_total"]) for b in held) == Decimal("95.50")
        # ... then every hold released twice at once: each claim comes back exactly once
        rids = [b["id"] for b in held] * 2
        released = act_all(servers, ids, rids, "release")
        assert {s for s, _ in released} == {200}
        assert {b["status"] for _, b in released} == {"released"}
        coupon, _ = state(servers[0], ids, credit["id"])
        assert coupon["times_used"] == 0
        assert Decimal(str(coupon["remaining_amount"])) == Decimal("100.00")
        assert Decimal(str(coupon["budget_remaining"])) == Decimal("95.50")
        assert_check_passes(database_url, tenant)


def test_every_confirm_racing_its_end_has_one_outcome(database_url: str) -> None:
    """50 holds end at the same instant; 50 confirms land around it while both servers'
    sweepers release what has ended. Each hold is confirmed (200, applied) or expired
    (409 hold_expired, released), never both, and the counters agree."""
    with two_servers(database_url) as (ids, tenant, servers):
        coupon = make_coupon(servers[0], ids, {"code": "RACE-END", "coupon_type": "USAGE"})
        results = hammer(servers, ids, [held_cart("RACE-END", f"r{i}") for i in range(50)])
        rids = [b["id"] for s, b in results if s == 201]
        assert len(rids) == 50
        end = datetime.now(UTC) + timedelta(seconds=5)
        db = Database.from_urls(database_url)
        try:
            with db.transaction() as conn:
                conn.execute(
                    text("UPDATE redemptions SET hold_expires_at = :end WHERE coupon_id = :c"),
                    {"end": end.replace(tzinfo=None), "c": coupon["id"]},
                )
        finally:
            db.dispose()
        rng = random.Random(7)
        offsets = [rng.uniform(-2.0, 2.0) for _ in rids]  # wide: a loaded machine queues

        def confirm(index: int) -> tuple[int, dict[str, Any]]:
            delay = (end - datetime.now(UTC)).total_seconds() + offsets[index]
            if delay > 0:
                time.sleep(delay)
            server = servers[index % 2]
            reply = httpx.post(
                f"{server.base}/redemptions/{ids['tenant']}/{rids[index]}/confirm",
                headers={"Authorization": ids["key"]},
                timeout=120,
            )
            return reply.status_code, reply.json()

        with ThreadPoolExecutor(max_workers=50) as pool:
            outcomes = list(pool.map(confirm, range(50)))
        assert {s for s, _ in outcomes} <= {200, 409}, outcomes
        assert {b["error"]["code"] for s, b in outcomes if s == 409} <= {"hold_expired"}
        # the sweepers release every hold that ended unconfirmed, within seconds
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            _, records = state(servers[1], ids, coupon["id"])
            if not any(r["status"] == "held" for r in records):
                break
            time.sleep(0.5)
        final = {r["id"]: r["status"] for r in records}
        for rid, (status, _) in zip(rids, outcomes, strict=True):
            assert final[rid] == ("applied" if status == 200 else "released"), (rid, status)
        confirmed = sum(1 for s, _ in outcomes if s == 200)
        assert 0 < confirmed < 50, f"{confirmed} confirmed: the race was not exercised"
        view, _ = state(servers[0], ids, coupon["id"])
        assert view["times_used"] == confirmed
        assert_check_passes(database_url, tenant)
