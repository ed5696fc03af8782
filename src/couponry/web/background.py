"""The job runner each server process runs beside its requests (ARCHITECTURE "Background
work"): it looks for a job about once a second and runs one at a time in a worker thread."""

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
from couponry.store.db import Database

log = logging.getLogger("couponry.jobs")
POLL_SECONDS = 1.0
ERROR_PAUSE_SECONDS = 5.0
SWEEP_SECONDS = 600.0  # how often an idle runner looks for imports' leftovers


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
        self._task: asyncio.Task[None] | None = None
        self._next_sweep = time.monotonic() + SWEEP_SECONDS

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        """Between two batches the running job is given back for another process to take."""
        self._stop.set()
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)

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
                await self._sweep()
                await asyncio.sleep(POLL_SECONDS)

    async def _sweep(self) -> None:
        """Imports' files and staged lines that no job will read are forgotten (their process
        died mid-upload, or between a job's end and its clean-up)."""
        if time.monotonic() < self._next_sweep:
            return
        self._next_sweep = time.monotonic() + SWEEP_SECONDS
        try:
            swept = await run_in_threadpool(import_svc.sweep_leftovers, self.db, now=_now())
        except Exception as exc:
            log.warning("upload sweep: %s: %s", type(exc).__name__, str(exc)[:200])
            return
        if swept:
            log.info("forgot the leftovers of %d import(s)", swept)
