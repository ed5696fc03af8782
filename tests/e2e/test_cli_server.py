"""End to end: the CLI makes a tenant and a key, `couponry serve` runs, HTTP drives it."""

from __future__ import annotations

import secrets
import threading
from pathlib import Path

import httpx
import pytest

from tests.conftest import percent_coupon
from tests.e2e.server import cli, cli_env, running_server

pytestmark = pytest.mark.slow


def test_a_user_session_end_to_end(database_url: str) -> None:
    env = cli_env(database_url)
    tenant = f"e2e-{secrets.token_hex(4)}"
    created = cli(
        "tenant",
        "create",
        tenant,
        "--name",
        "E2E Org",
        "--admin",
        "boss",
        "--site-url",
        "learn.example.org",
        env=env,
    )
    assert created.stdout.strip() == tenant
    key = cli("key", "create", tenant, "--role", "admin", env=env).stdout
    assert key.count("\n") == 1 and "." in key  # only the key on stdout
    key = key.strip()
    read_key = cli("key", "create", tenant, "--role", "read", env=env).stdout.strip()
    assert tenant in cli("tenant", "list", env=env).stdout
    listed = cli("key", "list", tenant, env=env).stdout
    assert key.split(".")[0] in listed and key.split(".")[1] not in listed

    with running_server(env, workers=2) as server:
        base = server.base
        h = {"Authorization": key}
        made = httpx.post(
            f"{base}/coupons/{tenant}",
            json=percent_coupon(code="E2E-1", entity_id="learn.example.org"),
            headers=h,
        )
        assert made.status_code == 201, made.text
        coupon = made.json()
        assert coupon["entity_id"] == tenant
        url = f"{base}/coupons/{tenant}/{coupon['id']}"
        assert httpx.get(url, headers={"Authorization": read_key}).json() == coupon
        assert httpx.get(f"{base}/coupons/{tenant}", headers=h).json() == [coupon]
        assert "x-request-id" in made.headers

        # writers from one version, spread over both worker processes: one winner
        statuses: list[int] = []
        barrier = threading.Barrier(12)

        def writer(i: int) -> None:
            barrier.wait()
            r = httpx.put(
                url,
                json=percent_coupon(comment=f"w{i}"),
                headers={**h, "If-Match": '"1"'},
                timeout=30,
            )
            statuses.append(r.status_code)

        threads = [threading.Thread(target=writer, args=(i,)) for i in range(12)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(statuses) == [200] + [409] * 11
        assert httpx.get(url, headers=h).json()["sys_version"] == 2

        assert httpx.delete(url, headers=h).status_code == 200
        assert httpx.get(url, headers=h).status_code == 404

        cli("key", "revoke", key.split(".")[0], env=env)
        refused = httpx.get(f"{base}/coupons/{tenant}", headers=h)
        assert refused.status_code == 401
        assert refused.json()["error"]["code"] == "invalid_credentials"
        metrics = httpx.get(f"{base}/metrics").text
        route = 'route="/coupons/{tenantId}/{coupon_id}"'
        assert f'couponry_http_requests_total{{method="PUT",{route},status="409"}} 11.0' in metrics


def test_cli_errors_go_to_stderr(database_url: str) -> None:
    env = cli_env(database_url)
    missing = cli("key", "create", "no-such-tenant", "--role", "admin", env=env, check=False)
    assert missing.returncode == 1 and missing.stdout == ""
    assert "no-such-tenant" in missing.stderr
    bad = cli("tenant", "create", "Bad_Id", "--name", "x", env=env, check=False)
    assert bad.returncode == 1 and "id" in bad.stderr
    role = cli("key", "create", "x", "--role", "owner", env=env, check=False)
    assert role.returncode == 1 and "role" in role.stderr


def test_demo_bootstrap_on_an_empty_database(tmp_path: Path) -> None:
    env = cli_env(f"sqlite:///{tmp_path / 'var' / 'couponry.db'}")
    with running_server(env, workers=1, extra_args=("--demo",)) as server:
        base = server.base
        printed = server.output()
        key = next(w for w in printed.split() if w.count(".") == 1 and w.startswith("k"))
        assert f"curl -s {base}/coupons/demo -H 'Authorization: {key}'" in printed
        assert httpx.get(f"{base}/coupons/demo", headers={"Authorization": key}).json() == []
        tenants = cli("tenant", "list", env=env).stdout
        assert tenants.startswith("demo\tUSD")
        keys = cli("key", "list", "demo", env=env).stdout.strip().splitlines()
        assert len(keys) == 1 and "\tadmin\t" in keys[0]
        assert httpx.get(f"{base}/healthz").json() == {"status": "ok"}


def test_check_reports_disagreements(database_url: str, db: object) -> None:
    """`couponry check` recomputes counters from records and exits 1 when they disagree."""
    from sqlalchemy import update

    from couponry.services import coupons as coupon_svc
    from couponry.services import redemptions as redemption_svc
    from couponry.services.tenants import get_tenant
    from couponry.store.db import Database
    from couponry.store.tables import coupon_user_uses, coupons
    from tests.conftest import make_tenant, now

    assert isinstance(db, Database)
    keys = make_tenant(db, prefix="chk")
    owner = get_tenant(db, tenant_id=keys.tenant_id)
    coupon = coupon_svc.create_coupon(
        db,
        tenant=owner,
        actor_id="t",
        doc={"code": "CHECK-ME", "coupon_type": "TOTAL_AMOUNT", "value_amount": "50"},
        now=now(),
    )
    cart = {
        "code": "check-me",
        "user_id": "u1",
        "lines": [{"line_id": "1", "kind": "event", "id": "e", "unit_price": "20", "quantity": 1}],
    }
    for _ in range(2):
        redemption_svc.redeem(db, tenant=owner, doc=cart, idempotency_key=None, now=now())
    env = cli_env(database_url)
    good = cli("check", keys.tenant_id, env=env, check=False)
    assert good.returncode == 0 and good.stdout.startswith("ok: 1 coupons, 2 redemptions")

    with db.transaction() as conn:  # a lost update, as a buggy claim would leave it
        conn.execute(update(coupons).where(coupons.c.id == coupon.id).values(times_used=1))
        conn.execute(
            update(coupon_user_uses).where(coupon_user_uses.c.coupon_id == coupon.id).values(uses=5)
        )
        conn.execute(
            update(coupons).where(coupons.c.id == coupon.id).values(remaining_units=200000)
        )
    bad = cli("check", keys.tenant_id, env=env, check=False)
    assert bad.returncode == 1
    report = bad.stdout
    assert "times_used 1, redemptions holding a use 2" in report
    assert "counter says 5 uses, redemptions say 2" in report
    assert "remaining 200000 units, value less drawn is 100000" in report
    assert "3 disagreement(s)" in bad.stderr
