"""Background jobs (SPEC 10): what a job is and how it is shown."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from couponry.domain.fields import format_instant

GENERATE_CODES = "generate_codes"
IMPORT_CODES = "import_codes"
QUEUED, RUNNING, SUCCEEDED, FAILED = "queued", "running", "succeeded", "failed"


@dataclass(frozen=True)
class Job:
    seq: int
    id: str
    tenant_id: str
    kind: str
    coupon_id: str
    status: str
    total: int
    done: int
    params: dict[str, Any]
    error: Any
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


def job_view(job: Job) -> dict[str, Any]:
    return {
        "id": job.id,
        "kind": job.kind,
        "coupon_id": job.coupon_id,
        "status": job.status,
        "total": job.total,
        "done": job.done,
        "error": job.error,
        "created_at": format_instant(job.created_at),
        "started_at": format_instant(job.started_at),
        "finished_at": format_instant(job.finished_at),
    }
