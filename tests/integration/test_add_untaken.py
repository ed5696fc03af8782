"""A generated batch's insert (CodeRepository.add_untaken), one statement on both databases:
only the codes the tenant does not have go in, each once, in the order given, with the
batch's max_uses and instant; it counts what went in, on the coupon too."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select, text

from couponry.store.code_repo import CodeRepository
from couponry.store.db import Database
from couponry.store.tables import coupon_codes, coupons
from tests.conftest import Api, TenantKeys, percent_coupon


def _coupon(api: Api, tenant: TenantKeys, code: str) -> str:
    reply = api.as_key(tenant.admin).post(
        f"/coupons/{tenant.tenant_id}", json=percent_coupon(code=code)
    )
    assert reply.status_code == 201, reply.text
    return str(reply.json()["id"])


def test_only_untaken_codes_go_in_once_each_in_order(
    api: Api, tenant: TenantKeys, other_tenant: TenantKeys, db: Database
) -> None:
    mine = _coupon(api, tenant, "GEN-ADD")
    _coupon(api, tenant, "OWN-TAKEN")  # another coupon's own code
    elsewhere = _coupon(api, other_tenant, "FREE-HERE")  # another tenant's: no conflict
    now = datetime(2030, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)
    with db.transaction() as conn:
        first = CodeRepository(conn, tenant.tenant_id).add_untaken(
            mine, ["Zeta-1", "alpha-2"], max_uses=None, now=now
        )
    batch = ["b-3", "own-taken", "ZETA-1", "Free-Here", "b-3", "B-3", "c_4"]
    with db.transaction() as conn:
        second = CodeRepository(conn, tenant.tenant_id).add_untaken(
            mine, batch, max_uses=3, now=now
        )
    assert (first, second) == (2, 3)  # b-3 (once, in any case), Free-Here, c_4
    k = coupon_codes.c
    with db.reader() as conn:
        rows = conn.execute(
            select(k.code, k.code_normalized, k.max_uses, k.times_used, k.is_active, k.created_at)
            .where(k.coupon_id == mine, k.own.is_(False))
            .order_by(k.seq)
        ).all()
        counted = conn.execute(
            select(coupons.c.codes_total, coupons.c.codes_active).where(coupons.c.id == mine)
        ).one()
        other = conn.execute(select(k.code).where(k.coupon_id == elsewhere)).scalars().all()
    assert [(r.code, r.code_normalized, r.max_uses) for r in rows] == [
        ("Zeta-1", "zeta-1", None),
        ("alpha-2", "alpha-2", None),
        ("B-3", "b-3", 3),  # the last spelling of a repeat, at its first place
        ("Free-Here", "free-here", 3),
        ("c_4", "c_4", 3),
    ]
    assert all(r.times_used == 0 and r.is_active and r.created_at == now for r in rows)
    assert tuple(counted) == (5, 5)
    assert other == ["FREE-HERE"]


def test_an_empty_or_wholly_taken_batch_adds_nothing(
    api: Api, tenant: TenantKeys, db: Database
) -> None:
    mine = _coupon(api, tenant, "GEN-NONE")
    now = datetime.now(UTC)
    with db.transaction() as conn:
        repo = CodeRepository(conn, tenant.tenant_id)
        assert repo.add_untaken(mine, [], max_uses=1, now=now) == 0
        assert repo.add_untaken(mine, ["gen-none", "GEN-NONE"], max_uses=1, now=now) == 0


def test_the_batch_s_cached_plans_end_with_its_transaction(
    api: Api, tenant: TenantKeys, db: Database
) -> None:
    """On PostgreSQL a batch plans with the cache for speed; the reads after it must still be
    planned afresh (db.py), so the setting must not outlive the batch's transaction."""
    if db.primary.dialect.name != "postgresql":
        pytest.skip("PostgreSQL's plan cache")
    mine = _coupon(api, tenant, "GEN-PLANS")
    show = text("SELECT current_setting('plan_cache_mode')")
    with db.primary.connect() as conn:  # one session, two transactions
        with conn.begin():
            CodeRepository(conn, tenant.tenant_id).add_untaken(
                mine, ["plans-1"], max_uses=None, now=datetime.now(UTC)
            )
            assert conn.execute(show).scalar() == "auto"
        with conn.begin():
            assert conn.execute(show).scalar() == "force_custom_plan"
            assert conn.execute(
                select(coupon_codes.c.code).where(
                    coupon_codes.c.coupon_id == mine, coupon_codes.c.own.is_(False)
                )
            ).scalars().all() == ["plans-1"]
