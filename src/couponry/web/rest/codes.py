"""A coupon's campaign codes over REST (SPEC 10): add, list, deactivate. Admin only."""

from __future__ import annotations

from fastapi import APIRouter, Header, Query
from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response

from couponry.domain.codes import code_view
from couponry.services import codes as svc
from couponry.store.db import Database
from couponry.web.auth import AdminKey, Body
from couponry.web.csv_stream import csv_download
from couponry.web.jsonio import decode_json_body, json_response
from couponry.web.rest import params as p
from couponry.web.rest.schemas import body_doc, errors_doc

router = APIRouter(prefix="/coupons", tags=["campaign codes"])
_AUTH = (400, 401, 403)


class NewCodesDoc(BaseModel):
    codes: list[str]
    max_uses: int | None = 1


class CodesCreatedDoc(BaseModel):
    created: int


class CodeDoc(BaseModel):
    code: str
    max_uses: int | None
    times_used: int
    is_active: bool
    created_at: str
    last_used_at: str | None


DOC_MODELS: list[type[BaseModel]] = [NewCodesDoc]


def _db(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


@router.post(
    "/{tenantId}/{coupon_id}/codes",
    status_code=201,
    response_model=None,
    responses={201: {"model": CodesCreatedDoc}, **errors_doc(*_AUTH, 404, 409, 413, 415, 422)},
    openapi_extra=body_doc(NewCodesDoc),
    summary="Add 1-1,000 campaign codes to a coupon, all or none",
)
async def add_codes(
    request: Request, tenant_id: p.TenantId, coupon_id: str, who: AdminKey, raw: Body
) -> Response:
    doc = decode_json_body(request, raw)
    created = await p.in_thread(
        lambda: svc.add_codes(
            _db(request), tenant_id=tenant_id, coupon_id=coupon_id, doc=doc, now=p.now()
        )
    )
    return json_response({"created": created}, 201)


@router.get(
    "/{tenantId}/{coupon_id}/codes",
    response_model=None,
    responses={200: {"model": list[CodeDoc]}, **errors_doc(*_AUTH, 404)},
    summary="A coupon's campaign codes, in the order they were made (keyset pages)",
)
async def list_codes(
    request: Request,
    tenant_id: p.TenantId,
    coupon_id: str,
    who: AdminKey,
    limit: str | None = Query(None, description="1-1000, default 100"),
    exclusive_start_key: str | None = Query(None, alias="exclusiveStartKey"),
    used: str | None = Query(None, description="true or false"),
    x_exclusive_start_key: str | None = Header(None),
) -> Response:
    size = p.query_limit(limit)
    after = p.query_start(exclusive_start_key, x_exclusive_start_key)
    only_used = p.query_bool("used", used)
    page = await p.in_thread(
        lambda: svc.list_codes(
            _db(request),
            tenant_id=tenant_id,
            coupon_id=coupon_id,
            after_seq=after,
            limit=size,
            used=only_used,
        )
    )
    body = [code_view(code) for code in page.items]
    return json_response(body, 200, p.next_page_headers(request, page.last_seq))


@router.get(
    "/{tenantId}/{coupon_id}/codes.csv",
    response_model=None,
    responses={
        200: {"content": {"text/csv": {}}, "description": "every campaign code, streamed"},
        **errors_doc(*_AUTH, 404),
    },
    summary="Every campaign code of a coupon as CSV, streamed",
)
async def export_codes(
    request: Request, tenant_id: p.TenantId, coupon_id: str, who: AdminKey
) -> Response:
    pages = await p.in_thread(
        lambda: svc.export_codes(_db(request), tenant_id=tenant_id, coupon_id=coupon_id)
    )
    return csv_download(pages, f"codes-{coupon_id}.csv")


@router.delete(
    "/{tenantId}/{coupon_id}/codes/{code}",
    response_model=None,
    responses={200: {"model": CodeDoc}, **errors_doc(*_AUTH, 404)},
    summary="Deactivate a campaign code (it stays taken)",
)
async def deactivate_code(
    request: Request, tenant_id: p.TenantId, coupon_id: str, code: str, who: AdminKey
) -> Response:
    found = await p.in_thread(
        lambda: svc.deactivate_code(
            _db(request), tenant_id=tenant_id, coupon_id=coupon_id, code=code
        )
    )
    return json_response(code_view(found))
