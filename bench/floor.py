"""The driver floor: the exact SQL couponry issues for a request, run by a plain asyncpg loop at
the same concurrency as wrk, with no HTTP and no couponry code around it. What a scenario
costs above this floor is ours (HTTP, framework, rules, rendering); the floor is PostgreSQL's
and the driver's. Each client keeps one connection of its own (no pool in between).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import asyncpg

Step = Callable[[asyncpg.Connection], Awaitable[None]]


async def _run(dsn: str, concurrency: int, seconds: float, step: Step) -> dict[str, Any]:
    connections = [await asyncpg.connect(dsn) for _ in range(concurrency)]
    latencies: list[float] = []
    deadline = time.monotonic() + seconds

    async def client(conn: asyncpg.Connection) -> None:
        while time.monotonic() < deadline:
            started = time.perf_counter()
            await step(conn)
            latencies.append(time.perf_counter() - started)

    started = time.monotonic()
    await asyncio.gather(*(client(conn) for conn in connections))
    elapsed = time.monotonic() - started
    for conn in connections:
        await conn.close()
    latencies.sort()

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(len(latencies) * p))] * 1000

    return {
        "rps": len(latencies) / elapsed,
        "p50_ms": pct(0.5),
        "p99_ms": pct(0.99),
        "errors": 0,
        "requests": len(latencies),
    }


def get_floor(
    dsn: str, *, key_id: str, tenant_id: str, coupon_ids: list[str], concurrency: int, seconds: int
) -> dict[str, Any]:
    """GET coupon's one statement, with the parameters a GET sends, in the statement's order."""
    from couponry.store.hot_reads import KEY_AND_COUPON

    values = [{"key_id": key_id, "tenant_id": tenant_id, "coupon_id": c} for c in coupon_ids]
    params = [KEY_AND_COUPON.positional(v) for v in values]

    async def step(conn: asyncpg.Connection) -> None:
        await conn.fetchrow(KEY_AND_COUPON.postgres, *random.choice(params))

    return asyncio.run(_run(dsn, concurrency, seconds, step))


def redeem_floor(
    dsn: str,
    *,
    key_id: str,
    tenant_id: str,
    coupons: list[tuple[str, str]],
    concurrency: int,
    seconds: int,
) -> dict[str, Any]:
    """A redemption's two statements (the key and the coupon by code; then the claims and the
    record), with the parameters a redemption of the bench's cart sends, each autocommitted
    as couponry runs them for a coupon without a per-user limit and a request without an
    Idempotency-Key. `coupons` are (id, code) pairs."""
    from couponry.domain.paging import new_id
    from couponry.store.hot_redemptions import CLAIM_AND_RECORD, KEY_AND_COUPON_BY_CODE

    async def step(conn: asyncpg.Connection) -> None:
        coupon_id, code = random.choice(coupons)
        read = {"key_id": key_id, "tenant_id": tenant_id, "code": code.lower()}
        found = await conn.fetchrow(
            KEY_AND_COUPON_BY_CODE.postgres, *KEY_AND_COUPON_BY_CODE.positional(read)
        )
        now = datetime.now(UTC).replace(tzinfo=None)
        row = {
            "id": new_id(),
            "tenant_id": tenant_id,
            "coupon_id": coupon_id,
            "code": code,
            "user_id": f"u-{random.randrange(100_000_000)}",
            "status": "applied",
            "access": "full",
            "membership_status": None,
            "discount_units": 300000,
            "credit_units": 0,
            "lines": '[{"line_id": "1", "discount": "30.00"}]',
            "discount_line": None,
            "idempotency_key": None,
            "approved_by": None,
            "approved_at": None,
            "created_at": now,
            "updated_at": now,
            "hold_expires_at": None,
            "checkout_id": None,
            "user_limit": None,
            "sys_version": found["sys_version"],  # the claim holds only for the coupon read
            "held": 0,
            "day": now.date(),
        }
        await conn.fetchrow(CLAIM_AND_RECORD.postgres, *CLAIM_AND_RECORD.positional(row))

    return asyncio.run(_run(dsn, concurrency, seconds, step))
