"""The Rhythm-style coupon endpoints: the caller (web/auth.py), parse, call one service
function, render."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Header, Query
from starlette.requests import Request
from starlette.responses import Response

from couponry.domain.coupons import Coupon, coupon_view
from couponry.domain.paging import Page
from couponry.services import coupons as svc
from couponry.store.db import Database
from couponry.web.auth import AdminKey, Body, ReadKey
from couponry.web.errors import status_for
from couponry.web.jsonio import PATCH_TYPES, decode_json_body, json_response, require_object
from couponry.web.rest import params as p
from couponry.web.rest.schemas import (
    BatchRequest,
    BatchResponse,
    CouponPartial,
    CouponRead,
    CouponWrite,
    body_doc,
    errors_doc,
    patch_doc,
)

router = APIRouter(prefix="/coupons", tags=["coupons"])
_AUTH_ERRORS = (400, 401, 403)


def _db(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


def _coupon_reply(coupon: Coupon, status: int = 200) -> Response:
    return json_response(coupon_view(coupon), status, {"ETag": f'"{coupon.sys_version}"'})


@router.post(
    "/{tenantId}",
    status_code=201,
    response_model=None,
    responses={201: {"model": CouponRead}, **errors_doc(*_AUTH_ERRORS, 404, 409, 413, 415, 422)},
    openapi_extra=body_doc(CouponWrite),
    summary="Create a coupon",
)
async def create_coupon(
    request: Request, tenant_id: p.TenantId, who: AdminKey, raw: Body
) -> Response:
    doc = require_object(decode_json_body(request, raw))
    coupon = await p.in_thread(
        lambda: svc.create_coupon(
            _db(request), tenant=who.tenant, actor_id=who.key_id, doc=doc, now=p.now()
        )
    )
    return _coupon_reply(coupon, 201)


@router.get(
    "/{tenantId}",
    response_model=None,
    responses={200: {"model": list[CouponPartial]}, **errors_doc(*_AUTH_ERRORS)},
    summary="Scan coupons, oldest first (keyset pages)",
)
async def scan_coupons(
    request: Request,
    tenant_id: p.TenantId,
    who: ReadKey,
    limit: str | None = Query(None, description="1-1000, default 100"),
    exclusive_start_key: str | None = Query(None, alias="exclusiveStartKey"),
    fields: str | None = Query(None, description="comma-separated top-level fields"),
    code: str | None = Query(None, description="exact code, any case"),
    is_active: str | None = Query(None, description="true or false"),
    consistent_read: str | None = Query(None, alias="consistentRead"),
    x_exclusive_start_key: str | None = Header(None),
) -> Response:
    size = p.query_limit(limit)
    after = p.query_start(exclusive_start_key, x_exclusive_start_key)
    names = p.query_fields(fields)
    active = p.query_bool("is_active", is_active)
    consistent = p.query_bool("consistentRead", consistent_read)
    page: Page[Coupon] = await p.in_thread(
        lambda: svc.scan_coupons(
            _db(request),
            tenant_id=tenant_id,
            after_seq=after,
            limit=size,
            code=code,
            is_active=active,
            consistent=consistent is not False,
        )
    )
    body = [p.project(coupon_view(c), names) for c in page.items]
    return json_response(body, 200, p.next_page_headers(request, page.last_seq))


@router.post(
    "/{tenantId}/batch",
    response_model=None,
    responses={200: {"model": BatchResponse}, **errors_doc(*_AUTH_ERRORS, 413, 415, 422)},
    openapi_extra=body_doc(BatchRequest),
    summary="Run 1-100 independent operations",
)
async def batch(request: Request, tenant_id: p.TenantId, who: AdminKey, raw: Body) -> Response:
    body = decode_json_body(request, raw)
    results = await p.in_thread(
        lambda: svc.run_batch(
            _db(request), tenant=who.tenant, actor_id=who.key_id, body=body, now=p.now()
        )
    )
    items = [_batch_item(r) for r in results]
    ok = sum(1 for item in items if item["outcome"] == "success")
    return json_response({"success_count": ok, "error_count": len(items) - ok, "results": items})


def _batch_item(result: svc.BatchResult) -> dict[str, Any]:
    error = result.error
    if error is not None and status_for(error) == 500:
        message = "Something went wrong on our side; it has been logged."
    elif error is not None:
        problems = "; ".join(f"{d.field}: {d.message}" for d in error.details)
        message = f"{error.message} ({problems})" if problems else error.message
    return {
        "operation": result.operation,
        "id": result.id,
        "outcome": "error" if error else "success",
        "error_code": error.code if error else None,
        "error_message": message if error else None,
        "object": coupon_view(result.coupon) if result.coupon else None,
    }


@router.get(
    "/{tenantId}/{coupon_id}",
    response_model=None,
    responses={200: {"model": CouponRead}, **errors_doc(*_AUTH_ERRORS, 404)},
    summary="Get one coupon",
)
async def get_coupon(
    request: Request,
    tenant_id: p.TenantId,
    coupon_id: str,
    fields: str | None = Query(None),
    consistent_read: str | None = Query(None, alias="consistentRead"),
) -> Response:
    # Served by web/hot.py before FastAPI's router; declared here for /openapi.json.
    from couponry.web import hot

    return await hot.get_coupon(request)


@router.put(
    "/{tenantId}/{coupon_id}",
    response_model=None,
    responses={200: {"model": CouponRead}, **errors_doc(*_AUTH_ERRORS, 404, 409, 413, 415, 422)},
    openapi_extra=body_doc(CouponWrite),
    summary="Replace a coupon's writable fields",
)
async def put_coupon(
    request: Request, tenant_id: p.TenantId, coupon_id: str, who: AdminKey, raw: Body
) -> Response:
    expected = p.if_match(request)
    doc = require_object(decode_json_body(request, raw))
    coupon = await p.in_thread(
        lambda: svc.replace_coupon(
            _db(request),
            tenant=who.tenant,
            actor_id=who.key_id,
            coupon_id=coupon_id,
            doc=doc,
            if_match=expected,
            now=p.now(),
        )
    )
    return _coupon_reply(coupon)


@router.patch(
    "/{tenantId}/{coupon_id}",
    response_model=None,
    responses={200: {"model": CouponRead}, **errors_doc(*_AUTH_ERRORS, 404, 409, 413, 415, 422)},
    openapi_extra=patch_doc(),
    summary="Apply an RFC 6902 JSON Patch atomically",
)
async def patch_coupon(
    request: Request, tenant_id: p.TenantId, coupon_id: str, who: AdminKey, raw: Body
) -> Response:
    expected = p.if_match(request)
    operations = decode_json_body(request, raw, PATCH_TYPES)
    coupon = await p.in_thread(
        lambda: svc.patch_coupon(
            _db(request),
            tenant=who.tenant,
            actor_id=who.key_id,
            coupon_id=coupon_id,
            operations=operations,
            if_match=expected,
            now=p.now(),
        )
    )
    return _coupon_reply(coupon)


@router.delete(
    "/{tenantId}/{coupon_id}",
    response_model=None,
    responses={200: {"model": str}, **errors_doc(*_AUTH_ERRORS, 404, 409)},
    summary="Soft-delete a coupon",
)
async def delete_coupon(
    request: Request, tenant_id: p.TenantId, coupon_id: str, who: AdminKey
) -> Response:
    await p.in_thread(
        lambda: svc.delete_coupon(
            _db(request), tenant_id=tenant_id, actor_id=who.key_id, coupon_id=coupon_id, now=p.now()
        )
    )
    return json_response(coupon_id)
