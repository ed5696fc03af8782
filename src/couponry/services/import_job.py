"""The import job (SPEC 10): it checks the file whole, then writes every code of it, or none.

It reads the file (stored by services/imports.py) a part at a time, checks each line
(domain/imports.py) and stages the good ones (`import_lines`), BATCH lines a transaction that
also counts them in `done` under the job's lease. Then the database finds the lines that
repeat an earlier line or a code of the tenant, and when no line is refused, one transaction
copies the staged lines into `coupon_codes` and ends the job: the tenant's unique index is the
arbiter of a code taken meanwhile (the job fails naming it, and nothing is written). A job
taken up again after its process died starts its check afresh; only the final transaction
writes codes, so nothing is written twice.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection

from couponry.domain.imports import (
    MAX_REPORTED,
    BadFile,
    FileReader,
    ImportedCode,
    LineProblem,
    ProblemList,
    first_problems,
    refused_error,
    repeats_problem,
    taken_problem,
)
from couponry.domain.jobs import Job
from couponry.store.code_repo import CodeRepository, CodesTaken
from couponry.store.coupon_repo import CouponRepository
from couponry.store.db import Database, is_unavailable
from couponry.store.import_repo import ImportRepository, ProblemLine
from couponry.store.job_repo import JobRepository

BATCH = 10_000  # lines checked and staged a transaction
Clock = Callable[[], datetime]


def _never() -> bool:
    return False


class _Stop(Exception):
    """The job left this process (its lease lost, or given back): nothing more to do here."""


@dataclass
class Checked:
    """The file read whole: its lines refused by the line checks (the rest are staged)."""

    refused: ProblemList
    code_lines: int


def run_import(
    db: Database,
    job: Job,
    *,
    owner: str,
    clock: Clock,
    lease: timedelta,
    stopping: Callable[[], bool] = _never,
    on_progress: Callable[[int], None] | None = None,
) -> None:
    """Run a taken import job to its end (succeeded, or failed with the lines refused), or
    until its lease is lost or `stopping` says so between batches (then it is given back)."""
    try:
        checked = check_import(
            db,
            job,
            owner=owner,
            clock=clock,
            lease=lease,
            stopping=stopping,
            on_progress=on_progress,
        )
        if checked is not None:
            copy_import(db, job, checked, owner=owner, clock=clock, lease=lease)
    except Exception as exc:
        # A fault of ours, not the database away: end the job, or every process would take it
        # up and fail on it again, forever. The runner logs the fault.
        if not is_unavailable(exc):
            with contextlib.suppress(Exception):
                _fail(db, job, owner, clock, _internal())
        raise


def check_import(
    db: Database,
    job: Job,
    *,
    owner: str,
    clock: Clock,
    lease: timedelta,
    stopping: Callable[[], bool] = _never,
    on_progress: Callable[[int], None] | None = None,
) -> Checked | None:
    """Check every line of the file and stage the good ones, from the start (a job taken up
    again forgets what it staged before); None when the job failed on the way (an empty
    file, a bad header, no code line, its coupon deleted, its file incomplete) or left this
    process (its lease lost, or given back as the server stops)."""
    try:
        return _check(db, job, owner, clock, lease, stopping, on_progress)
    except _Stop:
        return None


def _check(
    db: Database,
    job: Job,
    owner: str,
    clock: Clock,
    lease: timedelta,
    stopping: Callable[[], bool],
    on_progress: Callable[[int], None] | None,
) -> Checked | None:
    with db.transaction() as conn:
        if not JobRepository(conn).restart(job, owner=owner, now=clock(), lease=lease):
            raise _Stop
        ImportRepository(conn).clear_lines(job.id)
    with db.reader() as conn:
        live = CouponRepository(conn, job.tenant_id).get(job.coupon_id) is not None
        stored = ImportRepository(conn).parts(job.id)
    if not live:
        _fail(db, job, owner, clock, _coupon_deleted())
        return None
    if stored != (job.params["parts"], job.params["bytes"]):
        _fail(db, job, owner, clock, _incomplete())
        return None
    reader = FileReader()
    batches = _Batches(db, job, owner, clock, lease, stopping, on_progress)
    try:
        for part in range(job.params["parts"]):
            with db.reader() as conn:
                data = ImportRepository(conn).part(job.id, part)
            if data is None:  # taken away meanwhile: see sweep_leftovers
                _fail(db, job, owner, clock, _incomplete())
                return None
            batches.take(reader.feed(data))
        batches.take(reader.end())
    except BadFile as bad:
        _fail(db, job, owner, clock, refused_error([bad.problem], 1))
        return None
    batches.save()
    return Checked(batches.refused, reader.code_lines)


class _Batches:
    """Checked lines, counted in `done` and the good ones staged, BATCH lines a transaction
    under the job's lease."""

    def __init__(
        self,
        db: Database,
        job: Job,
        owner: str,
        clock: Clock,
        lease: timedelta,
        stopping: Callable[[], bool],
        on_progress: Callable[[int], None] | None,
    ) -> None:
        self.db, self.job, self.owner, self.clock, self.lease = db, job, owner, clock, lease
        self.stopping = stopping
        self.on_progress = on_progress
        self.refused = ProblemList([])
        self.checked = 0  # lines since the last batch
        self.good: list[ImportedCode] = []

    def take(self, lines: list[ImportedCode | LineProblem]) -> None:
        for line in lines:
            if isinstance(line, LineProblem):
                self.refused.add(line)
            else:
                self.good.append(line)
            self.checked += 1
            if self.checked >= BATCH:
                self.save()

    def save(self) -> None:
        if self.stopping():  # the server is stopping: another process takes the job up
            with self.db.transaction() as conn:
                JobRepository(conn).requeue(self.job, owner=self.owner)
            raise _Stop
        with self.db.transaction() as conn:
            done = JobRepository(conn).progress(
                self.job, owner=self.owner, added=self.checked, now=self.clock(), lease=self.lease
            )
            if done is None:
                raise _Stop  # another process holds the job: this batch never was
            ImportRepository(conn).add_lines(self.job.id, self.good)
        self.checked = 0
        self.good = []
        if self.on_progress is not None:
            self.on_progress(done)


def copy_import(
    db: Database, job: Job, checked: Checked, *, owner: str, clock: Clock, lease: timedelta
) -> None:
    """End a checked import: failed, naming the first lines refused, when any line was (by the
    line checks, or as a repeat or a code the tenant has); else every staged code copied to
    the coupon in one transaction, which also ends the job. A code taken meanwhile by another
    request fails the job, naming it, and nothing is written. Nothing is done when the job is
    no longer this process's."""
    with contextlib.suppress(_Stop):
        _copy(db, job, checked, owner, clock, lease)


def _copy(
    db: Database, job: Job, checked: Checked, owner: str, clock: Clock, lease: timedelta
) -> None:
    with db.transaction() as conn:  # renewed: the look below may take a while
        _hold(conn, job, owner, clock, lease)
    with db.reader() as conn:
        found = _problem_lines(ImportRepository(conn), job)
    if checked.refused.count or found[1]:
        problems = first_problems(checked.refused.items, found[0])
        _fail(db, job, owner, clock, refused_error(problems, checked.refused.count + found[1]))
        return
    with db.transaction() as conn:
        # First: on PostgreSQL this locks the job's row, so no other process takes the job
        # while its codes are copied.
        _hold(conn, job, owner, clock, lease)
        _end(conn, job, owner, clock, _write_codes(conn, job, clock))
    _forget(db, job)


def _write_codes(conn: Connection, job: Job, clock: Clock) -> dict[str, Any] | None:
    """Copy every staged code to the coupon; the job's error when none could be."""
    if CouponRepository(conn, job.tenant_id).get(job.coupon_id, kept=True) is None:
        return _coupon_deleted()
    try:
        CodeRepository(conn, job.tenant_id).add_imported(job.coupon_id, job.id, now=clock())
    except CodesTaken:
        # Taken after the look before, by a request that has committed since: say which.
        problems, count = _problem_lines(ImportRepository(conn), job)
        return refused_error(problems, count) if count else _raced()
    return None


def _problem_lines(repo: ImportRepository, job: Job) -> tuple[list[LineProblem], int]:
    rows = repo.problem_lines(job.tenant_id, job.id, limit=MAX_REPORTED)
    count = len(rows)
    if count == MAX_REPORTED:
        count = repo.count_problem_lines(job.tenant_id, job.id)
    return [_line_problem(row) for row in rows], count


def _line_problem(row: ProblemLine) -> LineProblem:
    if row.taken_by is not None:  # before a repeat: the earlier line is refused as well
        return taken_problem(row.line, row.code, row.taken_by, row.own)
    assert row.first_line is not None
    return repeats_problem(row.line, row.code, row.first_line)


def _fail(db: Database, job: Job, owner: str, clock: Clock, error: dict[str, Any]) -> None:
    with db.transaction() as conn:
        _end(conn, job, owner, clock, error)
    _forget(db, job)


def _hold(conn: Connection, job: Job, owner: str, clock: Clock, lease: timedelta) -> None:
    """Renew the job's lease, or stop here if this process no longer holds it."""
    if JobRepository(conn).progress(job, owner=owner, added=0, now=clock(), lease=lease) is None:
        raise _Stop


def _end(
    conn: Connection, job: Job, owner: str, clock: Clock, error: dict[str, Any] | None
) -> None:
    """End the job in the caller's transaction; if the job is no longer this process's, roll
    it all back."""
    if not JobRepository(conn).finish(job, owner=owner, now=clock(), error=error):
        raise _Stop


def _forget(db: Database, job: Job) -> None:
    """Drop an ended job's file and staged lines: in a transaction of its own, so the one that
    writes the codes stays short (SQLite's other writers wait for it). What a process that
    dies in between leaves, the runners sweep (sweep_leftovers)."""
    with db.transaction() as conn:
        ImportRepository(conn).drop(job.id)


def _coupon_deleted() -> dict[str, Any]:
    return {
        "reason": "coupon_deleted",
        "message": "The coupon was deleted before its codes were imported; nothing was imported.",
    }


def _incomplete() -> dict[str, Any]:
    return {
        "reason": "file_incomplete",
        "message": "Part of the uploaded file is missing; send it again. Nothing was imported.",
    }


def _internal() -> dict[str, Any]:
    return {
        "reason": "internal_error",
        "message": "The import failed on our side (it has been logged); nothing was imported.",
    }


def _raced() -> dict[str, Any]:
    return {
        "reason": "code_taken_meanwhile",
        "message": "A code of the file was taken by another request while the import ran; "
        "nothing was imported. Run the import again to see which.",
    }
