"""Races on a real database: threads hammer one coupon and exact counts are checked."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

from couponry.errors import CodeTaken, CouponryError, VersionConflict
from couponry.services import coupons as svc
from couponry.services.tenants import get_tenant
from couponry.store.db import Database
from tests.conftest import Api, TenantKeys, now, percent_coupon

THREADS = 16


def race(workers: int, action: Callable[[int], Any]) -> list[Any]:
    """Start every worker at once; return each one's result or exception."""
    barrier = threading.Barrier(workers)
    results: list[Any] = [None] * workers

    def run(index: int) -> None:
        barrier.wait()
        try:
            results[index] = action(index)
        except Exception as exc:  # collected and asserted on below
            results[index] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results


def test_writers_from_one_version_have_exactly_one_winner(db: Database, tenant: TenantKeys) -> None:
    owner = get_tenant(db, tenant_id=tenant.tenant_id)
    coupon = svc.create_coupon(db, tenant=owner, actor_id="test", doc=percent_coupon(), now=now())
    for round_ in range(3):
        version = svc.get_coupon(db, tenant_id=owner.id, coupon_id=coupon.id).sys_version

        def write(i: int, round_: int = round_, version: int = version) -> Any:
            return svc.replace_coupon(
                db,
                tenant=owner,
                actor_id=f"writer-{i}",
                coupon_id=coupon.id,
                doc=percent_coupon(comment=f"round {round_} writer {i}"),
                if_match=version,
                now=now(),
            )

        results = race(THREADS, write)
        winners = [r for r in results if not isinstance(r, Exception)]
        losers = [r for r in results if isinstance(r, Exception)]
        assert len(winners) == 1, results
        assert all(isinstance(r, VersionConflict) for r in losers), losers
        stored = svc.get_coupon(db, tenant_id=owner.id, coupon_id=coupon.id)
        assert stored.sys_version == version + 1
        assert stored.data.comment == winners[0].data.comment


def test_unconditional_writers_all_apply_in_turn(db: Database, tenant: TenantKeys) -> None:
    owner = get_tenant(db, tenant_id=tenant.tenant_id)
    coupon = svc.create_coupon(db, tenant=owner, actor_id="test", doc=percent_coupon(), now=now())
    results = race(
        THREADS,
        lambda i: svc.patch_coupon(
            db,
            tenant=owner,
            actor_id="w",
            coupon_id=coupon.id,
            operations=[{"op": "replace", "path": "/comment", "value": f"w{i}"}],
            if_match=None,
            now=now(),
        ),
    )
    assert not [r for r in results if isinstance(r, Exception)], results
    stored = svc.get_coupon(db, tenant_id=owner.id, coupon_id=coupon.id)
    # every writer saw the latest version, so none was lost: one version step each
    assert stored.sys_version == 1 + THREADS
    assert sorted(r.sys_version for r in results) == list(range(2, THREADS + 2))


def test_one_code_is_taken_once_under_concurrency(db: Database, tenant: TenantKeys) -> None:
    owner = get_tenant(db, tenant_id=tenant.tenant_id)
    results = race(
        THREADS,
        lambda i: svc.create_coupon(
            db,
            tenant=owner,
            actor_id="t",
            doc=percent_coupon(code="RACE-CODE" if i % 2 else "race-code"),
            now=now(),
        ),
    )
    kinds = Counter(type(r).__name__ for r in results)
    assert kinds["Coupon"] == 1, kinds
    assert all(isinstance(r, CodeTaken) for r in results if isinstance(r, CouponryError))
    assert sum(isinstance(r, Exception) for r in results) == THREADS - 1


def test_scan_over_many_pages_sees_every_coupon_once(api: Api, tenant: TenantKeys) -> None:
    total = 260
    made: list[str] = []
    for start in range(0, total, 100):
        ops = [
            {"operation": "create", "object": percent_coupon()}
            for _ in range(min(100, total - start))
        ]
        reply = api.post(f"/coupons/{tenant.tenant_id}/batch", json={"operations": ops})
        made += [r["object"]["id"] for r in reply.json()["results"]]
    seen: list[str] = []
    pages = 0
    url = f"/coupons/{tenant.tenant_id}?limit=20&fields=code"
    key = None
    while True:
        reply = api.get(url + (f"&exclusiveStartKey={key}" if key else ""))
        assert reply.status_code == 200
        seen += [c["id"] for c in reply.json()]
        pages += 1
        key = reply.headers.get("x-exclusive-start-key")
        if key is None:
            break
    assert pages == 13
    assert seen == made  # oldest first, each exactly once
