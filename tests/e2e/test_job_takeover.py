"""A generation or an import survives the death of the process running it (SPEC 10, issue
10): the server is killed with SIGKILL mid-job, started again, and the job still ends with
exactly `count` codes, none twice."""

from __future__ import annotations

import os
import signal
import time
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from couponry.services.coupons import create_coupon
from couponry.services.tenants import get_tenant
from couponry.store.db import Database
from couponry.store.tables import coupon_codes, import_lines, job_payloads, jobs
from tests.conftest import make_tenant, now, percent_coupon
from tests.e2e.server import cli_env, running_server

pytestmark = pytest.mark.slow
COUNT = 150_000  # 15 batches


def _job(db: Database, job_id: str) -> Any:
    with db.reader() as conn:
        return conn.execute(select(jobs).where(jobs.c.id == job_id)).one()


def test_a_generation_ends_exactly_after_its_process_is_killed(
    db: Database, database_url: str
) -> None:
    keys = make_tenant(db, prefix="kill")
    owner = get_tenant(db, tenant_id=keys.tenant_id)
    coupon = create_coupon(db, tenant=owner, actor_id="t", doc=percent_coupon(), now=now())
    env = cli_env(database_url, COUPONRY_JOB_LEASE_SECONDS="3", COUPONRY_LOG_LEVEL="warning")
    headers = {"Authorization": keys.admin}
    with running_server(env, workers=1) as first:  # one process: the pid is the worker's
        reply = httpx.post(
            f"{first.base}/coupons/{keys.tenant_id}/{coupon.id}/codes/generate",
            json={"count": COUNT, "length": 12},
            headers=headers,
            timeout=30,
        )
        assert reply.status_code == 202, reply.text
        job_id = reply.json()["id"]
        deadline = time.monotonic() + 60
        while _job(db, job_id).done == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        os.kill(first.pid, signal.SIGKILL)  # mid-job: no goodbye, the lease stays behind
        killed = _job(db, job_id)
    assert 0 < killed.done < COUNT and killed.status == "running", (killed.done, killed.status)
    with running_server(env, workers=1) as second:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            state = httpx.get(f"{second.base}/jobs/{keys.tenant_id}/{job_id}", headers=headers)
            if state.json()["status"] in ("succeeded", "failed"):
                break
            time.sleep(0.2)
        assert state.json()["status"] == "succeeded", state.text
        assert state.json()["done"] == COUNT
    with db.reader() as conn:
        made = conn.execute(
            select(func.count(), func.count(func.distinct(coupon_codes.c.code_normalized))).where(
                coupon_codes.c.coupon_id == coupon.id, coupon_codes.c.own.is_(False)
            )
        ).one()
    assert tuple(made) == (COUNT, COUNT)


IMPORTED = 150_000


@pytest.mark.parametrize("phase", ["checking", "writing"])
def test_an_import_ends_exactly_once_after_its_process_is_killed(
    db: Database, database_url: str, phase: str
) -> None:
    """The server running an import is killed with SIGKILL while it checks the file, or while
    it writes the codes (its one final transaction); after a restart the job checks the file
    afresh and ends with every code written once."""
    keys = make_tenant(db, prefix="kill")
    owner = get_tenant(db, tenant_id=keys.tenant_id)
    coupon = create_coupon(db, tenant=owner, actor_id="t", doc=percent_coupon(), now=now())
    env = cli_env(database_url, COUPONRY_JOB_LEASE_SECONDS="3", COUPONRY_LOG_LEVEL="warning")
    headers = {"Authorization": keys.admin, "Content-Type": "text/csv"}
    body = "code\n" + "".join(f"KILLED-{n:07d}\n" for n in range(IMPORTED))
    with running_server(env, workers=1) as first:
        reply = httpx.post(
            f"{first.base}/coupons/{keys.tenant_id}/{coupon.id}/codes/import",
            content=body.encode(),
            headers=headers,
            timeout=60,
        )
        assert reply.status_code == 202, reply.text
        job_id = reply.json()["id"]
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            state = _job(db, job_id)
            if state.done > 0 if phase == "checking" else state.done == IMPORTED:
                break
            time.sleep(0.01)
        os.kill(first.pid, signal.SIGKILL)
        killed = _job(db, job_id)
    assert killed.status == "running", (killed.status, killed.done)
    assert 0 < killed.done < IMPORTED if phase == "checking" else killed.done == IMPORTED
    assert _imported(db, coupon.id) == (0, 0)  # nothing before the final transaction
    with running_server(env, workers=1) as second:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            state = httpx.get(f"{second.base}/jobs/{keys.tenant_id}/{job_id}", headers=headers)
            if state.json()["status"] in ("succeeded", "failed"):
                break
            time.sleep(0.2)
        assert state.json()["status"] == "succeeded", state.text
        assert state.json()["done"] == IMPORTED
    assert _imported(db, coupon.id) == (IMPORTED, IMPORTED)
    with db.reader() as conn:
        staged = conn.execute(
            select(func.count()).where(import_lines.c.job_id == job_id)
        ).scalar_one()
        parts = conn.execute(
            select(func.count()).where(job_payloads.c.job_id == job_id)
        ).scalar_one()
    assert (staged, parts) == (0, 0)


def _imported(db: Database, coupon_id: str) -> tuple[int, int]:
    with db.reader() as conn:
        made = conn.execute(
            select(func.count(), func.count(func.distinct(coupon_codes.c.code_normalized))).where(
                coupon_codes.c.coupon_id == coupon_id, coupon_codes.c.own.is_(False)
            )
        ).one()
    return int(made[0]), int(made[1])
