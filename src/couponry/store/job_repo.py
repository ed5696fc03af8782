"""Jobs and their leases. A batch of work counts its progress in the transaction that does
it (`progress`), so a resumed job neither loses nor repeats a batch."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, and_, insert, or_, select, update

from couponry.domain.jobs import FAILED, QUEUED, RUNNING, SUCCEEDED, Job
from couponry.store.tables import jobs


def _job(row: Any) -> Job:
    return Job(
        seq=row.seq,
        id=row.id,
        tenant_id=row.tenant_id,
        kind=row.kind,
        coupon_id=row.coupon_id,
        status=row.status,
        total=row.total,
        done=row.done,
        params=json.loads(row.params),
        error=None if row.error is None else json.loads(row.error),
        created_at=row.created_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
    )


def _waiting(now: datetime) -> Any:
    """Queued, or running under a lease that ran out (its process died)."""
    return or_(jobs.c.status == QUEUED, and_(jobs.c.status == RUNNING, jobs.c.lease_until < now))


class JobRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def create(self, job: Job) -> None:
        self.conn.execute(
            insert(jobs),
            {
                "id": job.id,
                "tenant_id": job.tenant_id,
                "kind": job.kind,
                "coupon_id": job.coupon_id,
                "status": job.status,
                "total": job.total,
                "done": job.done,
                "params": json.dumps(job.params),
                "created_at": job.created_at,
            },
        )

    def get(self, tenant_id: str, job_id: str) -> Job | None:
        query = select(jobs).where(jobs.c.tenant_id == tenant_id, jobs.c.id == job_id)
        row = self.conn.execute(query).first()
        return None if row is None else _job(row)

    def statuses(self, job_ids: list[str]) -> dict[str, str]:
        """The status of each of these jobs that exists."""
        if not job_ids:
            return {}
        query = select(jobs.c.id, jobs.c.status).where(jobs.c.id.in_(job_ids))
        return {row.id: row.status for row in self.conn.execute(query)}

    def page(self, tenant_id: str, *, before_seq: int | None, limit: int) -> list[Job]:
        """Newest first."""
        query = select(jobs).where(jobs.c.tenant_id == tenant_id)
        if before_seq is not None:
            query = query.where(jobs.c.seq < before_seq)
        query = query.order_by(jobs.c.seq.desc()).limit(limit)
        return [_job(row) for row in self.conn.execute(query)]

    def any_waiting(self, *, now: datetime) -> bool:
        query = select(jobs.c.seq).where(_waiting(now)).limit(1)
        return self.conn.execute(query).first() is not None

    def requeue(self, job: Job, *, owner: str) -> None:
        """Give a job back before its lease runs out (this process is stopping)."""
        self.conn.execute(
            update(jobs)
            .where(jobs.c.seq == job.seq, jobs.c.lease_owner == owner)
            .values(status=QUEUED, lease_owner=None, lease_until=None)
        )

    def take_this(self, job_id: str, *, owner: str, now: datetime, lease: timedelta) -> Job | None:
        """This job, if it waits (see `take`), leased to `owner`; None if another runs it or
        it has ended."""
        return self._lease(
            select(jobs).where(jobs.c.id == job_id, _waiting(now)), owner, now, lease
        )

    def take(self, *, owner: str, now: datetime, lease: timedelta) -> Job | None:
        """The oldest job waiting, or running under a lease that ran out (its process died),
        leased to `owner`. Inside the caller's write transaction: on PostgreSQL the row is
        skipped by other takers while locked; SQLite's write transaction is serial."""
        query = select(jobs).where(_waiting(now)).order_by(jobs.c.seq).limit(1)
        return self._lease(query, owner, now, lease)

    def _lease(self, query: Any, owner: str, now: datetime, lease: timedelta) -> Job | None:
        if self.conn.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        row = self.conn.execute(query).first()
        if row is None:
            return None
        self.conn.execute(
            update(jobs)
            .where(jobs.c.seq == row.seq)
            .values(
                status=RUNNING,
                lease_owner=owner,
                lease_until=now + lease,
                started_at=row.started_at or now,
            )
        )
        return _job(row)

    def progress(
        self, job: Job, *, owner: str, added: int, now: datetime, lease: timedelta
    ) -> int | None:
        """Count `added` to the job and renew its lease, if `owner` still holds it; the job's
        `done` after, or None when the lease was lost (the caller rolls its batch back)."""
        statement = (
            update(jobs)
            .where(jobs.c.seq == job.seq, jobs.c.lease_owner == owner, jobs.c.status == RUNNING)
            .values(done=jobs.c.done + added, lease_until=now + lease)
            .returning(jobs.c.done)
        )
        row = self.conn.execute(statement).first()
        return None if row is None else int(row.done)

    def restart(self, job: Job, *, owner: str, now: datetime, lease: timedelta) -> bool:
        """Count the job's work from nothing again and renew its lease, if `owner` holds it (an
        import taken up again checks its file afresh)."""
        statement = (
            update(jobs)
            .where(jobs.c.seq == job.seq, jobs.c.lease_owner == owner, jobs.c.status == RUNNING)
            .values(done=0, lease_until=now + lease)
        )
        return bool(self.conn.execute(statement).rowcount)

    def finish(self, job: Job, *, owner: str, now: datetime, error: Any = None) -> bool:
        """End the job, succeeded or (with an error) failed, if `owner` still holds it."""
        result = self.conn.execute(
            update(jobs)
            .where(jobs.c.seq == job.seq, jobs.c.lease_owner == owner)
            .values(
                status=FAILED if error is not None else SUCCEEDED,
                error=None if error is None else json.dumps(error),
                finished_at=now,
                lease_owner=None,
                lease_until=None,
            )
        )
        return bool(result.rowcount)
