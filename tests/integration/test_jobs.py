"""Generating codes as a job (SPEC 10): started over REST, run by a server process's runner,
taken up again when its process died, ending with exactly `count` new codes."""

from __future__ import annotations

import json
import re
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, insert, select, update

from couponry.domain.codegen import generate, parse_generation
from couponry.domain.jobs import GENERATE_CODES, RUNNING
from couponry.domain.paging import new_id
from couponry.services import jobs as job_svc
from couponry.store.code_repo import CodeRepository
from couponry.store.db import Database
from couponry.store.job_repo import JobRepository
from couponry.store.tables import coupon_codes, jobs
from tests.conftest import Api, TenantKeys, percent_coupon


def _coupon(api: Api, tenant: TenantKeys, code: str = "GEN-1") -> dict[str, Any]:
    reply = api.post(f"/coupons/{tenant.tenant_id}", json=percent_coupon(code=code))
    assert reply.status_code == 201, reply.text
    return dict(reply.json())


def _finished(api: Api, location: str, seconds: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        job = api.get(location).json()
        if job["status"] in ("succeeded", "failed"):
            return dict(job)
        time.sleep(0.2)
    raise AssertionError(f"the job did not finish: {api.get(location).text}")


def _campaign_codes(db: Database, coupon_id: str) -> list[tuple[str, int | None]]:
    with db.reader() as conn:
        rows = conn.execute(
            select(coupon_codes.c.code, coupon_codes.c.max_uses).where(
                coupon_codes.c.coupon_id == coupon_id, coupon_codes.c.own.is_(False)
            )
        )
        return [(row.code, row.max_uses) for row in rows]


def test_a_generation_ends_with_exactly_count_codes(
    api: Api, tenant: TenantKeys, db: Database
) -> None:
    coupon = _coupon(api, tenant)
    body = {"count": 2500, "pattern": "SPRING-####-####", "max_uses": 2}
    reply = api.post(f"/coupons/{tenant.tenant_id}/{coupon['id']}/codes/generate", json=body)
    assert reply.status_code == 202, reply.text
    started = reply.json()
    assert started["status"] == "queued" and started["total"] == 2500 and started["done"] == 0
    location = reply.headers["Location"]
    assert location == f"/jobs/{tenant.tenant_id}/{started['id']}"
    job = _finished(api, location)
    assert job["status"] == "succeeded" and job["done"] == 2500 and job["error"] is None
    assert job["started_at"] and job["finished_at"]
    codes = _campaign_codes(db, coupon["id"])
    assert len(codes) == 2500 and len({c.lower() for c, _ in codes}) == 2500
    assert all(re.fullmatch(r"SPRING-[A-Z2-9]{4}-[A-Z2-9]{4}", c) for c, _ in codes)
    assert {m for _, m in codes} == {2}
    listed = api.get(f"/jobs/{tenant.tenant_id}").json()
    assert listed[0]["id"] == started["id"]


def test_a_generation_is_refused_before_it_starts(
    api: Api, tenant: TenantKeys, other_tenant: TenantKeys
) -> None:
    coupon = _coupon(api, tenant)
    path = f"/coupons/{tenant.tenant_id}/{coupon['id']}/codes/generate"
    small = api.post(path, json={"count": 30, "pattern": "AB##", "charset": "numeric"})
    assert small.status_code == 422 and small.json()["error"]["code"] == "code_space_too_small"
    for body, field in (({"count": 0}, "count"), ({"count": 5, "length": 2}, "length")):
        refused = api.post(path, json=body)
        assert refused.status_code == 422
        assert field in [d["field"] for d in refused.json()["error"]["details"]]
    missing = f"/coupons/{tenant.tenant_id}/0000-0000-0000-0000/codes/generate"
    assert api.post(missing, json={"count": 5}).status_code == 404
    assert api.as_key(tenant.checkout).post(path, json={"count": 5}).status_code == 403
    assert api.get(f"/jobs/{tenant.tenant_id}").json() == []
    job = api.post(path, json={"count": 5}).json()
    elsewhere = api.as_key(other_tenant.admin).get(f"/jobs/{other_tenant.tenant_id}/{job['id']}")
    assert elsewhere.status_code == 404 and elsewhere.json()["error"]["code"] == "job_not_found"


def test_a_job_whose_process_died_is_finished_by_another_exactly(
    api: Api, tenant: TenantKeys, db: Database
) -> None:
    """A process took the job, wrote one batch, and died: its lease runs out, another process
    takes the job where that batch left it, and the job still ends with exactly `count`."""
    coupon = _coupon(api, tenant)
    plan = parse_generation({"count": 1200, "length": 12})
    now = datetime.now(UTC)
    job_id = new_id()
    with db.transaction() as conn:
        conn.execute(
            insert(jobs),
            {
                "id": job_id,
                "tenant_id": tenant.tenant_id,
                "kind": GENERATE_CODES,
                "coupon_id": coupon["id"],
                "status": RUNNING,
                "total": 1200,
                "done": 0,
                "params": json.dumps(
                    {
                        "count": 1200,
                        "template": plan.template,
                        "charset": plan.charset,
                        "max_uses": 1,
                    }
                ),
                "lease_owner": "dead-process",
                "lease_until": now + timedelta(seconds=30),
                "created_at": now,
                "started_at": now,
            },
        )
    with db.transaction() as conn:  # the dead process's one batch
        repo = JobRepository(conn)
        taken = repo.get(tenant.tenant_id, job_id)
        assert taken is not None
        added = CodeRepository(conn, tenant.tenant_id).add_untaken(
            coupon["id"], generate(plan, 500, _urandom), max_uses=1, now=now
        )
        assert (
            repo.progress(
                taken, owner="dead-process", added=added, now=now, lease=timedelta(seconds=-1)
            )
            == 500
        )  # and its lease has run out
    finished = _finished(api, f"/jobs/{tenant.tenant_id}/{job_id}")
    assert finished["status"] == "succeeded" and finished["done"] == 1200
    assert len(_campaign_codes(db, coupon["id"])) == 1200
    with db.transaction() as conn:  # the dead process wakes up: its late batch is refused
        repo = JobRepository(conn)
        late = repo.get(tenant.tenant_id, job_id)
        assert late is not None
        assert (
            repo.progress(late, owner="dead-process", added=7, now=now, lease=job_svc.LEASE) is None
        )


def test_one_job_is_taken_by_one_runner(tenant: TenantKeys, db: Database, api: Api) -> None:
    coupon = _coupon(api, tenant)
    # Queued in the past with a lease that cannot run out meanwhile, then released at once
    # to several takers racing for it.
    job = job_svc.start_generation(
        db,
        tenant_id=tenant.tenant_id,
        coupon_id=coupon["id"],
        doc={"count": 10},
        now=datetime.now(UTC),
    )
    with db.transaction() as conn:
        conn.execute(
            update(jobs)
            .where(jobs.c.id == job.id)
            .values(
                status=RUNNING, lease_owner="x", lease_until=datetime.now(UTC) + timedelta(hours=1)
            )
        )
    taken: list[str] = []
    barrier = threading.Barrier(6)

    def take(n: int) -> None:
        barrier.wait()
        with db.transaction() as conn:
            got = JobRepository(conn).take(
                owner=f"r{n}", now=datetime.now(UTC) + timedelta(hours=2), lease=job_svc.LEASE
            )
        if got is not None and got.id == job.id:
            taken.append(f"r{n}")

    threads = [threading.Thread(target=take, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(taken) == 1
    with db.reader() as conn:
        owner = conn.execute(select(jobs.c.lease_owner).where(jobs.c.id == job.id)).scalar_one()
        assert owner == taken[0]
        count = conn.execute(select(func.count()).select_from(jobs)).scalar_one()
        assert count >= 1


def _urandom(n: int) -> bytes:
    import os

    return os.urandom(n)


def test_a_generation_in_a_full_space_fails_and_lets_the_others_run(
    api: Api, tenant: TenantKeys
) -> None:
    """The tenant's codes already fill the pattern's space: the job stops, failed with the
    reason, instead of trying forever in front of every later job."""
    full = _coupon(api, tenant, "FULL-1")
    every = [f"{n:03d}" for n in range(1000)]
    added = api.post(f"/coupons/{tenant.tenant_id}/{full['id']}/codes", json={"codes": every})
    assert added.status_code == 201, added.text
    path = f"/coupons/{tenant.tenant_id}/{full['id']}/codes/generate"
    stuck = api.post(path, json={"count": 1, "pattern": "###", "charset": "numeric"})
    assert stuck.status_code == 202, stuck.text
    other = _coupon(api, tenant, "OTHER-GEN")
    later = api.post(f"/coupons/{tenant.tenant_id}/{other['id']}/codes/generate", json={"count": 5})
    failed = _finished(api, stuck.headers["Location"])
    assert failed["status"] == "failed" and failed["done"] == 0
    assert failed["error"]["reason"] == "code_space_exhausted"
    assert _finished(api, later.headers["Location"])["status"] == "succeeded"


def test_a_runner_s_name_fits_its_column_whatever_the_host(monkeypatch: Any, db: Database) -> None:
    import socket

    from couponry.web.background import JobRunner

    monkeypatch.setattr(socket, "gethostname", lambda: "pod-" + "x" * 59)  # 63, as Kubernetes
    assert len(JobRunner(db).owner) <= jobs.c.lease_owner.type.length
