"""Jobs over REST (SPEC 10): start a generation of codes, follow a job. Admin only."""

from __future__ import annotations

from fastapi import APIRouter, Header, Query
from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response

from couponry.domain.jobs import job_view
from couponry.services import jobs as svc
from couponry.store.db import Database
from couponry.web.auth import AdminKey, Body
from couponry.web.jsonio import decode_json_body, json_response
from couponry.web.rest import params as p
from couponry.web.rest.schemas import body_doc, errors_doc

router = APIRouter(tags=["jobs"])
_AUTH = (400, 401, 403)


class GenerateDoc(BaseModel):
    count: int
    pattern: str | None = None
    length: int = 10
    charset: str = "alphanumeric"
    prefix: str | None = None
    suffix: str | None = None
    max_uses: int | None = 1


class JobDoc(BaseModel):
    id: str
    kind: str
    coupon_id: str
    status: str
    total: int
    done: int
    error: object | None
    created_at: str
    started_at: str | None
    finished_at: str | None


DOC_MODELS: list[type[BaseModel]] = [GenerateDoc]


def _db(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


@router.post(
    "/coupons/{tenantId}/{coupon_id}/codes/generate",
    status_code=202,
    response_model=None,
    responses={202: {"model": JobDoc}, **errors_doc(*_AUTH, 404, 413, 415, 422)},
    openapi_extra=body_doc(GenerateDoc),
    summary="Generate up to 1,000,000 unique codes for a coupon, as a job",
)
async def generate_codes(
    request: Request, tenant_id: p.TenantId, coupon_id: str, who: AdminKey, raw: Body
) -> Response:
    doc = decode_json_body(request, raw)
    job = await p.in_thread(
        lambda: svc.start_generation(
            _db(request), tenant_id=tenant_id, coupon_id=coupon_id, doc=doc, now=p.now()
        )
    )
    return json_response(job_view(job), 202, {"Location": f"/jobs/{tenant_id}/{job.id}"})


@router.get(
    "/jobs/{tenantId}/{job_id}",
    response_model=None,
    responses={200: {"model": JobDoc}, **errors_doc(*_AUTH, 404)},
    summary="One job: its status and progress",
)
async def get_job(request: Request, tenant_id: p.TenantId, job_id: str, who: AdminKey) -> Response:
    job = await p.in_thread(lambda: svc.get_job(_db(request), tenant_id=tenant_id, job_id=job_id))
    return json_response(job_view(job))


@router.get(
    "/jobs/{tenantId}",
    response_model=None,
    responses={200: {"model": list[JobDoc]}, **errors_doc(*_AUTH)},
    summary="The tenant's jobs, newest first (keyset pages)",
)
async def list_jobs(
    request: Request,
    tenant_id: p.TenantId,
    who: AdminKey,
    limit: str | None = Query(None, description="1-1000, default 100"),
    exclusive_start_key: str | None = Query(None, alias="exclusiveStartKey"),
    x_exclusive_start_key: str | None = Header(None),
) -> Response:
    size = p.query_limit(limit)
    start = p.query_start(exclusive_start_key, x_exclusive_start_key)
    page = await p.in_thread(
        lambda: svc.list_jobs(
            _db(request), tenant_id=tenant_id, before_seq=start or None, limit=size
        )
    )
    body = [job_view(job) for job in page.items]
    return json_response(body, 200, p.next_page_headers(request, page.last_seq))
