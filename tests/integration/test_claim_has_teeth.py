"""The hammer has teeth: swap the one-statement claim for a read-then-write and it overshoots.

This proves the concurrency tests would catch the bug they exist for. It runs on PostgreSQL,
where transactions run concurrently; SQLite's BEGIN IMMEDIATE serialises every write
transaction, so there even a read-then-write inside one cannot overshoot.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import select, update

from couponry.errors import CouponryError
from couponry.services import codes as code_svc
from couponry.services import coupons as coupon_svc
from couponry.services import redemptions as svc
from couponry.services.tenants import get_tenant
from couponry.store.db import Database
from couponry.store.redemption_repo import RedemptionRepository
from couponry.store.tables import coupon_codes, coupons
from tests.conftest import TenantKeys, now

LIMIT = 10
BUYERS = 60


def naive_claim(self: RedemptionRepository, coupon_id: str, **_: Any) -> Any:
    """The bug: read the count, decide, then write."""
    row = self.conn.execute(
        select(coupons.c.times_used, coupons.c.usage_limit).where(coupons.c.id == coupon_id)
    ).one()
    if row.usage_limit is not None and row.times_used >= row.usage_limit:
        return None
    time.sleep(0.005)  # the window every real request has between its read and its write
    self.conn.execute(
        update(coupons).where(coupons.c.id == coupon_id).values(times_used=coupons.c.times_used + 1)
    )
    return 0


def redeem_all(db: Database, tenant: TenantKeys, code: str) -> int:
    owner = get_tenant(db, tenant_id=tenant.tenant_id)
    barrier = threading.Barrier(BUYERS)
    wins: list[str] = []

    def buy(index: int) -> None:
        barrier.wait()
        doc = {
            "code": code,
            "user_id": f"buyer-{index}",
            "lines": [
                {"line_id": "1", "kind": "event", "id": "e", "unit_price": "5", "quantity": 1}
            ],
        }
        try:
            outcome = svc.redeem(db, tenant=owner, doc=doc, idempotency_key=None, now=now())
            assert outcome.redemption is not None  # without a key, a refusal rises
            wins.append(outcome.redemption.id)
        except CouponryError:
            pass

    threads = [threading.Thread(target=buy, args=(i,)) for i in range(BUYERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return len(wins)


def make(db: Database, tenant: TenantKeys, code: str) -> None:
    owner = get_tenant(db, tenant_id=tenant.tenant_id)
    coupon_svc.create_coupon(
        db,
        tenant=owner,
        actor_id="t",
        doc={"code": code, "coupon_type": "USAGE", "usage_limit": LIMIT},
        now=now(),
    )


def test_one_statement_claim_is_exact_and_read_then_write_is_not(
    backend: str, db: Database, tenant: TenantKeys, monkeypatch: pytest.MonkeyPatch
) -> None:
    if backend != "postgres":
        pytest.skip("SQLite serialises write transactions; the race needs PostgreSQL")
    make(db, tenant, "REAL-CLAIM")
    assert redeem_all(db, tenant, "REAL-CLAIM") == LIMIT
    make(db, tenant, "NAIVE-CLAIM")
    patched: Callable[..., Any] = naive_claim
    monkeypatch.setattr(RedemptionRepository, "claim_use", patched)
    overshoot = redeem_all(db, tenant, "NAIVE-CLAIM")
    assert overshoot > LIMIT, f"the read-then-write gave {overshoot}: the race was not exercised"


def naive_code_claim(self: RedemptionRepository, coupon_id: str, code: str, **_: Any) -> Any:
    """The same bug for a campaign code's max_uses: read its uses, decide, then write."""
    k = coupon_codes.c
    mine = (k.tenant_id == self.tenant_id, k.coupon_id == coupon_id, k.code_normalized == code)
    row = self.conn.execute(select(k.times_used, k.max_uses).where(*mine)).one()
    if row.max_uses is not None and row.times_used >= row.max_uses:
        return None
    time.sleep(0.005)
    self.conn.execute(update(coupon_codes).where(*mine).values(times_used=k.times_used + 1))
    return row.times_used + 1


def test_a_code_claim_is_exact_and_read_then_write_is_not(
    backend: str, db: Database, tenant: TenantKeys, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every buyer types the same single-use campaign code at once."""
    if backend != "postgres":
        pytest.skip("SQLite serialises write transactions; the race needs PostgreSQL")
    owner = get_tenant(db, tenant_id=tenant.tenant_id)
    for own, code in (("REAL-OWN", "REAL-CODE"), ("NAIVE-OWN", "NAIVE-CODE")):
        coupon = coupon_svc.create_coupon(
            db,
            tenant=owner,
            actor_id="t",
            doc={"code": own, "coupon_type": "USAGE"},
            now=now(),
        )
        code_svc.add_codes(
            db,
            tenant_id=tenant.tenant_id,
            coupon_id=coupon.id,
            doc={"codes": [code], "max_uses": 1},
            now=now(),
        )
    assert redeem_all(db, tenant, "REAL-CODE") == 1
    patched: Callable[..., Any] = naive_code_claim
    monkeypatch.setattr(RedemptionRepository, "claim_code_use", patched)
    overshoot = redeem_all(db, tenant, "NAIVE-CODE")
    assert overshoot > 1, f"the read-then-write gave {overshoot}: the race was not exercised"
