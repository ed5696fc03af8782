"""Importing campaign codes from CSV (SPEC 10): receiving the file, which becomes a queued job
(the job itself: services/import_job.py), and sweeping what no job will read.

The file is stored as it arrives, a part of about 1 MiB at a time (`job_payloads`), each part
its own short transaction, so no process holds it whole and any server process can run the
job; the job's row is written last, once the whole file is stored.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta

from couponry.domain.imports import CodeLineCounter
from couponry.domain.jobs import FAILED, IMPORT_CODES, QUEUED, SUCCEEDED, Job
from couponry.domain.paging import new_id
from couponry.errors import CouponNotFound, PayloadTooLarge
from couponry.store.coupon_repo import CouponRepository
from couponry.store.db import Database
from couponry.store.import_repo import ImportRepository
from couponry.store.job_repo import JobRepository

PART_BYTES = 1024 * 1024
MAX_BYTES = 100 * 1024 * 1024
ABANDONED_AFTER = timedelta(hours=1)  # an upload without a part received for so long
Clock = Callable[[], datetime]


# --- receiving the file ---------------------------------------------------------------------


def start_import(
    db: Database,
    *,
    tenant_id: str,
    coupon_id: str,
    pieces: Iterable[bytes],
    clock: Clock,
    max_bytes: int = MAX_BYTES,
) -> Job:
    """A queued import job for the coupon, with the file read from `pieces` (of any size):
    see `open_upload`."""
    upload = open_upload(
        db, tenant_id=tenant_id, coupon_id=coupon_id, clock=clock, max_bytes=max_bytes
    )
    try:
        for piece in pieces:
            upload.add(piece)
        return upload.finish()
    except BaseException:
        upload.abandon()
        raise


def open_upload(
    db: Database, *, tenant_id: str, coupon_id: str, clock: Clock, max_bytes: int = MAX_BYTES
) -> Upload:
    """A file on its way in for an import to the coupon: `add` it a piece at a time (it is
    stored a part of PART_BYTES at a time, never held whole), then `finish` queues its job;
    `abandon` forgets it when the file cannot be had whole. CouponNotFound before anything is
    stored; PayloadTooLarge past `max_bytes` (then abandon it: nothing is kept)."""
    with db.reader() as conn:
        if CouponRepository(conn, tenant_id).get(coupon_id) is None:
            raise CouponNotFound()
    return Upload(db, tenant_id, coupon_id, max_bytes, clock)


class Upload:
    """See `open_upload`."""

    def __init__(
        self, db: Database, tenant_id: str, coupon_id: str, max_bytes: int, clock: Clock
    ) -> None:
        self.db = db
        self.tenant_id = tenant_id
        self.coupon_id = coupon_id
        self.max_bytes = max_bytes
        self.clock = clock
        self.job_id = new_id()
        self.size = 0
        self.parts = 0
        self.buffer = bytearray()
        self.lines = CodeLineCounter()

    def add(self, piece: bytes) -> None:
        self.size += len(piece)
        if self.size > self.max_bytes:
            raise PayloadTooLarge(f"The file is larger than {self.max_bytes} bytes.")
        self.lines.feed(piece)
        self.buffer += piece
        while len(self.buffer) >= PART_BYTES:
            self._store(bytes(self.buffer[:PART_BYTES]))
            del self.buffer[:PART_BYTES]

    def _store(self, data: bytes) -> None:
        with self.db.transaction() as conn:
            ImportRepository(conn).add_part(self.job_id, self.parts, data, now=self.clock())
        self.parts += 1

    def finish(self) -> Job:
        if self.buffer:
            self._store(bytes(self.buffer))
            self.buffer.clear()
        now = self.clock()
        job = Job(
            seq=0,
            id=self.job_id,
            tenant_id=self.tenant_id,
            kind=IMPORT_CODES,
            coupon_id=self.coupon_id,
            status=QUEUED,
            total=self.lines.end(),
            done=0,
            params={"parts": self.parts, "bytes": self.size},
            error=None,
            created_at=now,
            started_at=None,
            finished_at=None,
        )
        with self.db.transaction() as conn:
            if CouponRepository(conn, self.tenant_id).get(self.coupon_id, kept=True) is None:
                raise CouponNotFound()  # deleted while the file came in
            JobRepository(conn).create(job)
        return job

    def abandon(self) -> None:
        # Best effort: the request already failed; what a failure here leaves behind, the
        # runners sweep (sweep_leftovers).
        with contextlib.suppress(Exception), self.db.transaction() as conn:
            ImportRepository(conn).drop(self.job_id)


def sweep_leftovers(db: Database, *, now: datetime) -> int:
    """Forget what no job will read: the files and staged lines of jobs that have ended (their
    process died before it dropped them), and the files of uploads cut short (no job, and no
    part received for an hour). How many jobs' or uploads' rows were dropped."""
    with db.reader() as conn:
        imports = ImportRepository(conn)
        uploads = imports.uploads()
        staged = imports.staged_jobs()
        if not uploads and not staged:
            return 0
        status = JobRepository(conn).statuses([*uploads, *staged])
    cut_short = now - ABANDONED_AFTER
    leftovers = [
        job_id
        for job_id in {*uploads, *staged}
        if status.get(job_id) in (SUCCEEDED, FAILED)
        or (job_id not in status and (job_id in staged or uploads[job_id] < cut_short))
    ]
    for job_id in leftovers:
        with db.transaction() as conn:
            ImportRepository(conn).drop(job_id)
    return len(leftovers)
