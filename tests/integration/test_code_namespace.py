"""One namespace of codes per tenant (SPEC 10, docs/campaigns.md): every live code, a coupon's
own and its campaign codes, is a row of `coupon_codes`, whose unique index refuses a code the
tenant already has, whatever the concurrency; a delete frees a coupon's codes."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, text

from couponry.services.check import check_invariants
from couponry.store.code_repo import CodeRepository
from couponry.store.db import Database
from couponry.store.migrate import upgrade
from couponry.store.tables import coupon_codes
from tests.conftest import (
    Api,
    TenantKeys,
    percent_coupon,
)


def _create(api: Api, tenant: TenantKeys, code: str) -> Any:
    return api.post(f"/coupons/{tenant.tenant_id}", json=percent_coupon(code=code))


def _campaign_code(db: Database, tenant: TenantKeys, coupon_id: str, code: str) -> None:
    """A campaign code, written as POST .../codes writes it."""
    with db.transaction() as conn:
        CodeRepository(conn, tenant.tenant_id).add(
            coupon_id, [code], max_uses=1, now=datetime.now(UTC)
        )


def _codes(db: Database, tenant: TenantKeys) -> set[tuple[str, bool]]:
    with db.reader() as conn:
        rows = conn.execute(
            select(coupon_codes.c.code, coupon_codes.c.own).where(
                coupon_codes.c.tenant_id == tenant.tenant_id
            )
        )
        return {(row.code, row.own) for row in rows}


def test_a_coupon_s_code_is_its_own_row(api: Api, tenant: TenantKeys, db: Database) -> None:
    assert _create(api, tenant, "Spring-1").status_code == 201
    batch = {"operations": [{"operation": "create", "object": percent_coupon(code="Batch-1")}]}
    assert api.post(f"/coupons/{tenant.tenant_id}/batch", json=batch).status_code == 200
    assert _codes(db, tenant) == {("Spring-1", True), ("Batch-1", True)}
    assert check_invariants(db, tenant_id=tenant.tenant_id).ok


def test_no_coupon_may_take_a_campaign_code(api: Api, tenant: TenantKeys, db: Database) -> None:
    owner = _create(api, tenant, "OWNER-1").json()
    _campaign_code(db, tenant, owner["id"], "CAMP-0001")
    clash = _create(api, tenant, "camp-0001")  # any case
    assert clash.status_code == 409, clash.text
    assert clash.json()["error"]["code"] == "code_taken"
    other = _create(api, tenant, "OTHER-1").json()
    put = api.put(
        f"/coupons/{tenant.tenant_id}/{other['id']}", json=percent_coupon(code="Camp-0001")
    )
    assert put.status_code == 409, put.text
    assert api.get(f"/coupons/{tenant.tenant_id}/{other['id']}").json()["code"] == "OTHER-1"
    assert check_invariants(db, tenant_id=tenant.tenant_id).ok


def test_a_new_code_frees_the_old_one(api: Api, tenant: TenantKeys, db: Database) -> None:
    first = _create(api, tenant, "OLD-CODE").json()
    path = f"/coupons/{tenant.tenant_id}/{first['id']}"
    assert api.put(path, json=percent_coupon(code="NEW-CODE")).status_code == 200
    assert _create(api, tenant, "old-code").status_code == 201
    assert ("NEW-CODE", True) in _codes(db, tenant)
    assert check_invariants(db, tenant_id=tenant.tenant_id).ok


def test_a_delete_frees_the_coupon_s_codes(api: Api, tenant: TenantKeys, db: Database) -> None:
    gone = _create(api, tenant, "GONE-1").json()
    _campaign_code(db, tenant, gone["id"], "GONE-CAMP")
    assert api.request("DELETE", f"/coupons/{tenant.tenant_id}/{gone['id']}").status_code in (
        200,
        204,
    )
    assert _codes(db, tenant) == set()
    assert _create(api, tenant, "GONE-1").status_code == 201
    assert _create(api, tenant, "gone-camp").status_code == 201
    assert check_invariants(db, tenant_id=tenant.tenant_id).ok


def test_racing_creates_of_one_code_give_it_to_one(api: Api, tenant: TenantKeys) -> None:
    from starlette.testclient import TestClient

    results: list[int] = []
    barrier = threading.Barrier(8)

    def create() -> None:
        own = Api(TestClient(api.client.app, raise_server_exceptions=False), tenant.admin)
        barrier.wait()
        results.append(_create(own, tenant, "RACE-1").status_code)

    threads = [threading.Thread(target=create) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(results) == [201] + [409] * 7


def test_check_finds_a_coupon_without_its_own_row(
    api: Api, tenant: TenantKeys, db: Database
) -> None:
    coupon = _create(api, tenant, "LOST-1").json()
    with db.transaction() as conn:
        conn.execute(text("DELETE FROM coupon_codes WHERE coupon_id = :id"), {"id": coupon["id"]})
    report = check_invariants(db, tenant_id=tenant.tenant_id)
    assert [p for p in report.problems if coupon["id"] in p and "LOST-1" in p]


def test_0005_gives_every_live_coupon_its_own_row(empty_url: str) -> None:
    db = Database.from_urls(empty_url)
    try:
        upgrade(db.primary, "0004")
        now = datetime(2026, 1, 1, 12, 0, 0)
        with db.primary.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO tenants (id, name, currency, site_urls, admins, created_at) "
                    "VALUES ('t1', 'T', 'USD', '[]', '[]', :now)"
                ),
                {"now": now},
            )
            for n, deleted in ((1, None), (2, now)):
                conn.execute(
                    text(
                        "INSERT INTO coupons (id, tenant_id, code, code_normalized, is_active, "
                        "times_used, redeemed, sys_locked, sys_version, sys_created_at, "
                        "sys_last_modified_at, deleted_at, body) VALUES (:id, 't1', :code, "
                        ":norm, true, 0, false, false, 1, :now, :now, :deleted, '{}')"
                    ),
                    {
                        "id": f"0000-0000-0000-000{n}",
                        "code": f"Code-{n}",
                        "norm": f"code-{n}",
                        "now": now,
                        "deleted": deleted,
                    },
                )
        upgrade(db.primary)
        with db.reader() as conn:
            rows = conn.execute(select(coupon_codes.c.coupon_id, coupon_codes.c.code)).all()
        assert [(r.coupon_id, r.code) for r in rows] == [("0000-0000-0000-0001", "Code-1")]
    finally:
        db.dispose()
