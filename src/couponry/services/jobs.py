"""Background jobs (SPEC 10): starting a generation, and running a job to its end (a generation
here, an import in services/import_job.py).

A job is taken under a lease (store/job_repo.py) by one server process. It works in batches,
each one transaction that writes its codes and counts them in `done`, and renews the lease;
a batch whose lease was lost meanwhile is rolled back. So a job whose process died is taken
up by another where its last batch left it, and ends with exactly `total` codes.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import asdict
from datetime import datetime, timedelta
from typing import Any

from couponry.domain.codegen import (
    CodeSpaceTooSmall,
    Generation,
    RandomBytes,
    generate,
    parse_generation,
)
from couponry.domain.jobs import FAILED, GENERATE_CODES, IMPORT_CODES, QUEUED, SUCCEEDED, Job
from couponry.domain.paging import Page, new_id
from couponry.errors import CodeSpaceTooSmallError, CouponNotFound, JobNotFound
from couponry.services.import_job import run_import
from couponry.store.code_repo import CodeRepository
from couponry.store.coupon_repo import CouponRepository
from couponry.store.db import Database
from couponry.store.job_repo import JobRepository

LEASE = timedelta(seconds=30)
_BARREN_BATCHES = 3


def _never() -> bool:
    return False


BATCH = 10_000
Clock = Callable[[], datetime]


def start_generation(
    db: Database, *, tenant_id: str, coupon_id: str, doc: Any, now: datetime
) -> Job:
    """A queued job that will add `count` new codes to the coupon."""
    try:
        plan = parse_generation(doc)
    except CodeSpaceTooSmall as small:
        raise CodeSpaceTooSmallError(small.count, small.space) from None
    job = Job(
        seq=0,
        id=new_id(),
        tenant_id=tenant_id,
        kind=GENERATE_CODES,
        coupon_id=coupon_id,
        status=QUEUED,
        total=plan.count,
        done=0,
        params=asdict(plan),
        error=None,
        created_at=now,
        started_at=None,
        finished_at=None,
    )
    with db.transaction() as conn:
        if CouponRepository(conn, tenant_id).get(coupon_id) is None:
            raise CouponNotFound()
        JobRepository(conn).create(job)
    return job


def get_job(db: Database, *, tenant_id: str, job_id: str) -> Job:
    with db.reader() as conn:
        job = JobRepository(conn).get(tenant_id, job_id)
    if job is None:
        raise JobNotFound()
    return job


def list_jobs(db: Database, *, tenant_id: str, before_seq: int | None, limit: int) -> Page[Job]:
    with db.reader() as conn:
        items = JobRepository(conn).page(tenant_id, before_seq=before_seq, limit=limit)
    return Page(items=items, last_seq=items[-1].seq if len(items) == limit else None)


def run_next(
    db: Database,
    *,
    owner: str,
    clock: Clock,
    random_bytes: RandomBytes = os.urandom,
    stopping: Callable[[], bool] = _never,
    lease: timedelta = LEASE,
) -> Job | None:
    """Take the next job waiting (or abandoned) and run it to its end, or until `stopping`
    says so between batches; None when no job waits."""
    with db.reader() as conn:  # a read first: an idle server takes no write lock to poll
        if not JobRepository(conn).any_waiting(now=clock()):
            return None
    with db.transaction() as conn:
        job = JobRepository(conn).take(owner=owner, now=clock(), lease=lease)
    if job is None:
        return None
    _run_taken(
        db,
        job,
        owner=owner,
        clock=clock,
        random_bytes=random_bytes,
        stopping=stopping,
        lease=lease,
    )
    return job


def run_job(
    db: Database,
    *,
    tenant_id: str,
    job_id: str,
    owner: str,
    clock: Clock,
    on_progress: Callable[[Job], None],
    lease: timedelta = LEASE,
    poll_seconds: float = 0.5,
) -> Job:
    """Run this job here if it waits (the CLI), else follow it while a server process runs
    it, and run it here after all if that process dies (its lease runs out); report its
    progress as it goes, and return it finished."""

    def progress(done: int) -> None:
        on_progress(get_job(db, tenant_id=tenant_id, job_id=job_id))

    while True:
        with db.transaction() as conn:
            taken = JobRepository(conn).take_this(job_id, owner=owner, now=clock(), lease=lease)
        if taken is not None:
            _run_taken(
                db,
                taken,
                owner=owner,
                clock=clock,
                random_bytes=os.urandom,
                stopping=_never,
                lease=lease,
                on_progress=progress,
            )
        job = get_job(db, tenant_id=tenant_id, job_id=job_id)
        on_progress(job)
        if job.status in (SUCCEEDED, FAILED):
            return job
        time.sleep(poll_seconds)


def _run_taken(
    db: Database,
    job: Job,
    *,
    owner: str,
    clock: Clock,
    random_bytes: RandomBytes,
    stopping: Callable[[], bool],
    lease: timedelta,
    on_progress: Callable[[int], None] | None = None,
) -> None:
    """Run a job this process has taken, by its kind."""
    if job.kind == GENERATE_CODES:
        _generate(
            db,
            job,
            owner=owner,
            clock=clock,
            random_bytes=random_bytes,
            stopping=stopping,
            lease=lease,
            on_progress=on_progress,
        )
    elif job.kind == IMPORT_CODES:
        run_import(
            db,
            job,
            owner=owner,
            clock=clock,
            lease=lease,
            stopping=stopping,
            on_progress=on_progress,
        )
    else:
        with db.transaction() as conn:
            error = {"reason": f"unknown kind {job.kind!r}"}
            JobRepository(conn).finish(job, owner=owner, now=clock(), error=error)


def _generate(
    db: Database,
    job: Job,
    *,
    owner: str,
    clock: Clock,
    random_bytes: RandomBytes,
    stopping: Callable[[], bool],
    lease: timedelta,
    on_progress: Callable[[int], None] | None = None,
) -> None:
    plan = Generation(**job.params)
    done = job.done
    barren = 0  # batches in a row that added almost nothing
    while done < job.total:
        if stopping():  # the server is stopping: another process takes the job up at once
            with db.transaction() as conn:
                JobRepository(conn).requeue(job, owner=owner)
            return
        wanted = min(BATCH, job.total - done)
        codes = generate(plan, wanted, random_bytes)
        try:
            with db.transaction() as conn:
                repo = JobRepository(conn)
                coupons = CouponRepository(conn, job.tenant_id)
                if coupons.get(job.coupon_id, kept=True) is None:  # not deleted meanwhile
                    error = {"reason": "the coupon was deleted"}
                    repo.finish(job, owner=owner, now=clock(), error=error)
                    return
                added = CodeRepository(conn, job.tenant_id).add_untaken(
                    job.coupon_id, codes, max_uses=plan.max_uses, now=clock()
                )
                counted = repo.progress(job, owner=owner, added=added, now=clock(), lease=lease)
                if counted is None:
                    raise _LeaseLost  # another process holds the job: this batch never was
                done = counted
                # The tenant's codes fill the pattern's space (the quarter rule counts only
                # this job): nearly every fresh code is taken already. Stop, and say so.
                barren = barren + 1 if added * 100 < wanted else 0
                if barren >= _BARREN_BATCHES and done < job.total:
                    error = {
                        "reason": "code_space_exhausted",
                        "message": f"the pattern's codes are nearly all taken; {done} made",
                    }
                    repo.finish(job, owner=owner, now=clock(), error=error)
                    return
        except _LeaseLost:
            return
        if on_progress is not None:
            on_progress(done)
    with db.transaction() as conn:
        JobRepository(conn).finish(job, owner=owner, now=clock())


class _LeaseLost(Exception):
    pass
