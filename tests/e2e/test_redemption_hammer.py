"""The guarantee of SPEC 6.4, hammered: 150+ concurrent redemptions over several server
processes started with the CLI, on SQLite and PostgreSQL, then exact counts checked.

A usage limit L gives exactly L successes, a per-user limit is exact, a credit's discounts add
up to the credit exactly, and times_used, remaining_amount, the per-user counters and the
redemption records agree afterwards (`couponry check` says so too). Then a server process is
killed with SIGKILL in the middle of such a load, and the records still agree.
"""

from __future__ import annotations

import os
import secrets
import signal
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from decimal import Decimal
from typing import Any

import httpx
import pytest

from tests.e2e.server import Server, cli, cli_env, running_server

pytestmark = pytest.mark.slow
REQUESTS = 160


@contextmanager
def two_servers(database_url: str) -> Iterator[tuple[dict[str, str], str, list[Server]]]:
    """A tenant and key made with the CLI, then two `couponry serve` (2 workers and 1)."""
    env = cli_env(database_url)
    tenant = f"ham-{secrets.token_hex(4)}"
    cli("tenant", "create", tenant, "--name", "Hammer", "--admin", "boss", env=env)
    key = cli("key", "create", tenant, "--role", "admin", env=env).stdout.strip()
    with ExitStack() as stack:
        servers = [
            stack.enter_context(running_server(env, workers=2)),
            stack.enter_context(running_server(env, workers=1)),
        ]
        yield {"tenant": tenant, "key": key}, tenant, servers


def make_coupon(server: Server, ids: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
    reply = httpx.post(
        f"{server.base}/coupons/{ids['tenant']}",
        json=body,
        headers={"Authorization": ids["key"]},
        timeout=30,
    )
    assert reply.status_code == 201, reply.text
    return reply.json()  # type: ignore[no-any-return]


def cart(code: str, user: str, price: str = "10.00") -> dict[str, Any]:
    return {
        "code": code,
        "user_id": user,
        "lines": [
            {"line_id": "1", "kind": "event", "id": "ev-1", "unit_price": price, "quantity": 1}
        ],
    }


def hammer(
    servers: list[Server], ids: dict[str, str], carts: list[dict[str, Any]]
) -> list[tuple[int, dict[str, Any]]]:
    """All carts at once, alternating between the servers; (status, body) per request."""
    barrier = threading.Barrier(len(carts))

    def one(index: int) -> tuple[int, dict[str, Any]]:
        server = servers[index % len(servers)]
        barrier.wait()
        try:
            reply = httpx.post(
                f"{server.base}/redemptions/{ids['tenant']}",
                json=carts[index],
                headers={"Authorization": ids["key"]},
                timeout=120,
            )
        except httpx.HTTPError as exc:
            return 0, {"transport": str(exc)}
        return reply.status_code, reply.json()

    with ThreadPoolExecutor(max_workers=len(carts)) as pool:
        return list(pool.map(one, range(len(carts))))


def state(server: Server, ids: dict[str, str], coupon_id: str) -> tuple[dict[str, Any], list[Any]]:
    h = {"Authorization": ids["key"]}
    coupon = httpx.get(f"{server.base}/coupons/{ids['tenant']}/{coupon_id}", headers=h).json()
    records: list[Any] = []
    url = f"{server.base}/redemptions/{ids['tenant']}?coupon_id={coupon_id}&limit=1000"
    while url:
        reply = httpx.get(url, headers=h)
        records += reply.json()
        key = reply.headers.get("x-exclusive-start-key")
        url = (
            f"{server.base}/redemptions/{ids['tenant']}?coupon_id={coupon_id}&limit=1000"
            f"&exclusiveStartKey={key}"
            if key
            else ""
        )
    return coupon, records


def assert_check_passes(database_url: str, tenant: str) -> None:
    result = cli("check", tenant, env=cli_env(database_url), check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("ok:")


def test_limits_are_exact_under_load(database_url: str) -> None:
    with two_servers(database_url) as (ids, tenant, servers):
        # a usage limit of 20 against 160 buyers
        limited = make_coupon(
            servers[0], ids, {"code": "LIMIT-20", "coupon_type": "USAGE", "usage_limit": 20}
        )
        results = hammer(servers, ids, [cart("limit-20", f"u{i}") for i in range(REQUESTS)])
        statuses = Counter(status for status, _ in results)
        assert statuses == {201: 20, 409: REQUESTS - 20}, statuses
        assert {b["error"]["code"] for s, b in results if s == 409} == {"usage_limit_reached"}
        coupon, records = state(servers[1], ids, limited["id"])
        assert coupon["times_used"] == 20 and len(records) == 20
        assert {r["id"] for s, r in results if s == 201} == {r["id"] for r in records}

        # two uses per user, ten users, sixteen attempts each
        per_user = make_coupon(
            servers[1],
            ids,
            {
                "code": "TWO-EACH",
                "coupon_type": "PERCENT",
                "value_percent": 10,
                "max_uses_per_user": 2,
            },
        )
        results = hammer(
            servers, ids, [cart("TWO-EACH", f"user-{i % 10}") for i in range(REQUESTS)]
        )
        wins = Counter(b["user_id"] for s, b in results if s == 201)
        assert wins == {f"user-{n}": 2 for n in range(10)}
        assert {b["error"]["code"] for s, b in results if s != 201} == {"user_limit_reached"}
        coupon, records = state(servers[0], ids, per_user["id"])
        assert coupon["times_used"] == 20 and len(records) == 20

        # a credit of 100.00 drawn by carts of 7.00: 14 full draws and one of 2.00
        credit = make_coupon(
            servers[0],
            ids,
            {"code": "CREDIT-100", "coupon_type": "TOTAL_AMOUNT", "value_amount": "100.00"},
        )
        results = hammer(
            servers, ids, [cart("CREDIT-100", f"c{i}", "7.00") for i in range(REQUESTS)]
        )
        drawn = [Decimal(b["discount_total"]) for s, b in results if s == 201]
        assert sum(drawn) == Decimal("100.00")
        assert sorted(drawn) == [Decimal("2.00")] + [Decimal("7.00")] * 14
        assert {b["error"]["code"] for s, b in results if s != 201} == {"credit_exhausted"}
        coupon, records = state(servers[1], ids, credit["id"])
        assert coupon["remaining_amount"] == 0 and coupon["times_used"] == 15
        assert sum(Decimal(r["discount_total"]) for r in records) == Decimal("100.00")

        assert_check_passes(database_url, tenant)


def add_codes(server: Server, ids: dict[str, str], coupon_id: str, codes: list[str]) -> None:
    reply = httpx.post(
        f"{server.base}/coupons/{ids['tenant']}/{coupon_id}/codes",
        json={"codes": codes, "max_uses": 1},
        headers={"Authorization": ids["key"]},
        timeout=30,
    )
    assert reply.status_code == 201, reply.text


def code_uses(server: Server, ids: dict[str, str], coupon_id: str) -> dict[str, int]:
    reply = httpx.get(
        f"{server.base}/coupons/{ids['tenant']}/{coupon_id}/codes?limit=1000",
        headers={"Authorization": ids["key"]},
    )
    return {c["code"]: c["times_used"] for c in reply.json()}


def test_campaign_codes_and_budgets_are_exact_under_load(database_url: str) -> None:
    """SPEC 10 under load: 50 single-use codes against 200 buyers give exactly 50 (with and
    without a usage limit on the coupon, so both claim paths are hammered), and a budget's
    discounts add up to it to the cent."""
    requests = 200
    with two_servers(database_url) as (ids, tenant, servers):
        codes = [f"SINGLE-{n:02d}" for n in range(50)]
        open_coupon = make_coupon(
            servers[0], ids, {"code": "CAMPAIGN-OPEN", "coupon_type": "USAGE"}
        )
        add_codes(servers[0], ids, open_coupon["id"], codes)
        carts = [cart(codes[i % 50].lower(), f"buyer-{i}") for i in range(requests)]
        results = hammer(servers, ids, carts)
        statuses = Counter(status for status, _ in results)
        assert statuses == {201: 50, 409: requests - 50}, statuses
        assert {b["error"]["code"] for s, b in results if s == 409} == {"code_used_up"}
        assert sorted(b["code"] for s, b in results if s == 201) == codes
        assert set(code_uses(servers[1], ids, open_coupon["id"]).values()) == {1}
        coupon, records = state(servers[1], ids, open_coupon["id"])
        assert coupon["times_used"] == 50 and len(records) == 50

        # the coupon's usage limit (30) binds before the codes do
        limited = make_coupon(
            servers[1], ids, {"code": "CAMPAIGN-30", "coupon_type": "USAGE", "usage_limit": 30}
        )
        limited_codes = [f"LIMITED-{n:02d}" for n in range(50)]
        add_codes(servers[1], ids, limited["id"], limited_codes)
        carts = [cart(limited_codes[i % 50], f"buyer-{i}") for i in range(requests)]
        results = hammer(servers, ids, carts)
        assert Counter(status for status, _ in results)[201] == 30
        refusals = {b["error"]["code"] for s, b in results if s != 201}
        assert refusals <= {"usage_limit_reached", "code_used_up"}, refusals
        uses = code_uses(servers[0], ids, limited["id"])
        assert sum(uses.values()) == 30 and max(uses.values()) == 1
        coupon, records = state(servers[0], ids, limited["id"])
        assert coupon["times_used"] == 30 and len(records) == 30

        # a budget of 100.00 given in discounts of 7.00: 14 full and one of 2.00
        budget = make_coupon(
            servers[0],
            ids,
            {
                "code": "BUDGET-100",
                "coupon_type": "AMOUNT",
                "value_amount": "7.00",
                "budget_amount": "100.00",
            },
        )
        results = hammer(servers, ids, [cart("BUDGET-100", f"b{i}") for i in range(requests)])
        given = [Decimal(b["discount_total"]) for s, b in results if s == 201]
        assert sum(given) == Decimal("100.00")
        assert sorted(given) == [Decimal("2.00")] + [Decimal("7.00")] * 14
        assert {b["error"]["code"] for s, b in results if s != 201} == {"budget_exhausted"}
        coupon, records = state(servers[1], ids, budget["id"])
        assert coupon["budget_remaining"] == 0
        assert sum(Decimal(r["discount_total"]) for r in records) == Decimal("100.00")

        assert_check_passes(database_url, tenant)


def test_sigkill_mid_load_leaves_records_and_counters_agreeing(database_url: str) -> None:
    with two_servers(database_url) as (ids, tenant, servers):
        coupon = make_coupon(
            servers[0],
            ids,
            {
                "code": "KILL-ME",
                "coupon_type": "TOTAL_AMOUNT",
                "value_amount": "900.00",
                "usage_limit": 120,
                "max_uses_per_user": 3,
            },
        )
        victim = servers[1]
        answered = Counter[int]()
        stop = threading.Event()

        def kill_when_busy() -> None:
            # wait until the victim is in the thick of it, then pull the plug
            deadline = time.monotonic() + 30
            while answered[1] < 15 and time.monotonic() < deadline:
                time.sleep(0.005)
            os.kill(victim.pid, signal.SIGKILL)
            stop.set()

        results: list[tuple[int, int]] = []
        lock = threading.Lock()

        def one(index: int) -> None:
            target = index % 2
            server = servers[target]
            try:
                reply = httpx.post(
                    f"{server.base}/redemptions/{ids['tenant']}",
                    json=cart("KILL-ME", f"k{index % 70}", "9.00"),
                    headers={"Authorization": ids["key"]},
                    timeout=60,
                )
                status = reply.status_code
            except httpx.HTTPError:
                status = 0
            with lock:
                answered[target] += 1
                results.append((target, status))

        killer = threading.Thread(target=kill_when_busy)
        killer.start()
        with ThreadPoolExecutor(max_workers=REQUESTS) as pool:
            list(pool.map(one, range(2 * REQUESTS)))
        killer.join()
        assert stop.is_set()
        lost = [s for t, s in results if t == 1 and s == 0]
        assert lost, "the victim died before any request reached it in flight"
        assert all(s in (201, 409) for t, s in results if t == 0)

        live = servers[0]
        final, records = state(live, ids, coupon["id"])
        seen = sum(1 for _, s in results if s == 201)
        assert len(records) >= seen  # a request may commit and lose its reply with the process
        assert final["times_used"] == len(records) <= 120
        drawn = sum(Decimal(r["discount_total"]) for r in records)
        assert Decimal(str(final["remaining_amount"])) == Decimal("900.00") - drawn >= 0
        per_user = Counter(r["user_id"] for r in records)
        assert max(per_user.values()) <= 3
        assert_check_passes(database_url, tenant)
