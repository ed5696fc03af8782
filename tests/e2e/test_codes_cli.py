"""`couponry codes generate` (SPEC 10): the job run by the command itself, with a progress bar,
talking to the database as the other commands do; a refusal exits non-zero."""

from __future__ import annotations

import re
from typing import Any

import pytest
from sqlalchemy import func, select

from couponry.services.coupons import create_coupon
from couponry.services.tenants import get_tenant
from couponry.store.db import Database
from couponry.store.tables import coupon_codes
from tests.conftest import make_tenant, now, percent_coupon
from tests.e2e.server import cli, cli_env

pytestmark = pytest.mark.slow


def test_codes_generate_runs_the_job_and_shows_its_progress(
    db: Database, database_url: str
) -> None:
    keys = make_tenant(db, prefix="cli")
    owner = get_tenant(db, tenant_id=keys.tenant_id)
    coupon = create_coupon(db, tenant=owner, actor_id="t", doc=percent_coupon(), now=now())
    env = cli_env(database_url)
    done = cli(
        "codes",
        "generate",
        keys.tenant_id,
        coupon.id,
        "--count",
        "25000",
        "--pattern",
        "CLI-######",
        "--charset",
        "numeric",
        "--max-uses",
        "3",
        env=env,
    )
    assert "25000 codes generated" in done.stdout
    assert "25000/25000" in done.stdout  # the bar, at its end
    with db.reader() as conn:
        rows = conn.execute(
            select(coupon_codes.c.code, coupon_codes.c.max_uses).where(
                coupon_codes.c.coupon_id == coupon.id, coupon_codes.c.own.is_(False)
            )
        ).all()
        distinct = conn.execute(
            select(func.count(func.distinct(coupon_codes.c.code_normalized))).where(
                coupon_codes.c.coupon_id == coupon.id, coupon_codes.c.own.is_(False)
            )
        ).scalar_one()
    assert len(rows) == 25000 and distinct == 25000
    assert all(re.fullmatch(r"CLI-\d{6}", code) and uses == 3 for code, uses in rows)
    quiet = cli("codes", "generate", keys.tenant_id, coupon.id, "--count", "10", "--quiet", env=env)
    assert quiet.stdout.strip().startswith("10 codes generated")


def test_codes_generate_refusals_exit_non_zero(db: Database, database_url: str) -> None:
    keys = make_tenant(db, prefix="cli")
    owner = get_tenant(db, tenant_id=keys.tenant_id)
    coupon = create_coupon(db, tenant=owner, actor_id="t", doc=percent_coupon(), now=now())
    env = cli_env(database_url)
    small = cli(
        "codes",
        "generate",
        keys.tenant_id,
        coupon.id,
        "--count",
        "30",
        "--pattern",
        "AB##",
        "--charset",
        "numeric",
        env=env,
        check=False,
    )
    assert small.returncode == 1 and "quarter" in small.stderr
    missing = cli(
        "codes",
        "generate",
        keys.tenant_id,
        "0000-0000-0000-0000",
        "--count",
        "5",
        env=env,
        check=False,
    )
    assert missing.returncode == 1 and "coupon" in missing.stderr.lower()


def test_codes_export_writes_every_code(db: Database, database_url: str, tmp_path: Any) -> None:
    keys = make_tenant(db, prefix="cli")
    owner = get_tenant(db, tenant_id=keys.tenant_id)
    coupon = create_coupon(db, tenant=owner, actor_id="t", doc=percent_coupon(), now=now())
    env = cli_env(database_url)
    cli("codes", "generate", keys.tenant_id, coupon.id, "--count", "1200", "--quiet", env=env)
    target = tmp_path / "codes.csv"
    written = cli("codes", "export", keys.tenant_id, coupon.id, "-o", str(target), env=env)
    assert "1200 codes written" in written.stderr
    lines = target.read_text().splitlines()
    assert lines[0] == "code,max_uses,times_used,is_active,created_at,last_used_at"
    assert len(lines) == 1201
    to_stdout = cli("codes", "export", keys.tenant_id, coupon.id, env=env)
    assert to_stdout.stdout.splitlines() == lines
    missing = cli("codes", "export", keys.tenant_id, "0000-0000-0000-0000", env=env, check=False)
    assert missing.returncode == 1
