"""The driver floor: the exact SQL couponry issues for a request, run by a plain asyncpg loop at
the same concurrency as wrk, with no HTTP and no couponry code around it. What a scenario
costs above this floor is ours (HTTP, framework, rules, rendering); the floor is PostgreSQL's
and the driver's.
"""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

import asyncpg


async def _run(
    dsn: str, concurrency: int, seconds: float, params: list[list[Any]]
) -> dict[str, Any]:
    from couponry.store.hot_reads import KEY_AND_COUPON as GET_STATEMENT

    pool = await asyncpg.create_pool(dsn, min_size=concurrency, max_size=concurrency)
    latencies: list[float] = []
    deadline = time.monotonic() + seconds

    async def client() -> None:
        while time.monotonic() < deadline:
            args = random.choice(params)
            started = time.perf_counter()
            async with pool.acquire() as conn:
                await conn.fetchrow(GET_STATEMENT.postgres, *args)
            latencies.append(time.perf_counter() - started)

    started = time.monotonic()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    elapsed = time.monotonic() - started
    await pool.close()
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
    from couponry.store.hot_reads import KEY_AND_COUPON as GET_STATEMENT

    values = [{"key_id": key_id, "tenant_id": tenant_id, "coupon_id": c} for c in coupon_ids]
    params = [GET_STATEMENT.positional(v) for v in values]
    return asyncio.run(_run(dsn, concurrency, seconds, params))
