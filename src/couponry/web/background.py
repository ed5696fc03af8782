"""The background work each server process runs beside its requests (ARCHITECTURE
"Background work"): the job runner looks for a job about once a second and runs one at a time
in a worker thread; the hold sweeper releases expired holds (SPEC 11.1) every few seconds, in
its own task, so a long job does not delay them."""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
import threading
import time
from datetime import UTC, datetime, timedelta

from starlette.concurrency import run_in_threadpool

from couponry.services import imports as import_svc
from couponry.services import jobs as job_svc
from couponry.services import redemptions as redemption_svc
from couponry.store.db import Database

log = logging.getLogger("couponry.jobs")
POLL_SECONDS = 1.0
ERROR_PAUSE_SECONDS = 5.0
# SPEC 11.1 allows 60 s after a hold's end; every process sweeps, so this is the worst case.
SWEEP_SECONDS = 2.0
IMPORT_SWEEP_SECONDS = 600.0  # how often an idle runner looks for imports' leftovers


def _now() -> datetime:
    return datetime.now(UTC)


class JobRunner:
    def __init__(self, db: Database, *, lease: timedelta = job_svc.LEASE) -> None:
        self.db = db
        self.lease = lease
        # Who holds a lease: this process, recognisable in the table.
        # At most 49 characters (the column holds 64): a pod's hostname can be 63.
        self.owner = f"{socket.gethostname()[:32]}:{os.getpid()}:{secrets.token_hex(4)}"
        self._stop = threading.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._next_import_sweep = time.monotonic() + IMPORT_SWEEP_SECONDS

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._run()), loop.create_task(self._sweep_holds())]

    async def stop(self) -> None:
        """Between two batches the running job is given back for another process to take."""
        self._stop.set()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _sweep_holds(self) -> None:
        while not self._stop.is_set():
            try:
                await run_in_threadpool(redemption_svc.release_expired_holds, self.db, now=_now())
            except Exception as exc:  # the database away, say: the next sweep tries again
                log.warning("hold sweeper: %s: %s", type(exc).__name__, str(exc)[:200])
                await asyncio.sleep(ERROR_PAUSE_SECONDS)
                continue
            await asyncio.sleep(SWEEP_SECONDS)

    async def _run(self) -> None:
        while not self._stop.is_set():
            try:
                job = await run_in_threadpool(
                    job_svc.run_next,
                    self.db,
                    owner=self.owner,
                    clock=_now,
                    lease=self.lease,
                    stopping=self._stop.is_set,
                )
            except Exception as exc:  # the database away, say: try again, less often
                log.warning("job runner: %s: %s", type(exc).__name__, str(exc)[:200])
                await asyncio.sleep(ERROR_PAUSE_SECONDS)
                continue
            if job is None:
                await self._sweep_imports()
                await asyncio.sleep(POLL_SECONDS)

    async def _sweep_imports(self) -> None:
        """Imports' files and staged lines that no job will read are forgotten (their process
        died mid-upload, or between a job's end and its clean-up)."""
        if time.monotonic() < self._next_import_sweep:
            return
        self._next_import_sweep = time.monotonic() + IMPORT_SWEEP_SECONDS
        try:
            swept = await run_in_threadpool(import_svc.sweep_leftovers, self.db, now=_now())
        except Exception as exc:
            log.warning("upload sweep: %s: %s", type(exc).__name__, str(exc)[:200])
            return
        if swept:
            log.info("forgot the leftovers of %d import(s)", swept)
