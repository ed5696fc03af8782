"""Validation and redemption over REST (SPEC 6.4)."""

from __future__ import annotations

import json
from collections.abc import Awaitable
from typing import Any

from fastapi import APIRouter, Header, Query
from pydantic import BaseModel, Field
from starlette.requests import Request
from starlette.responses import Response

from couponry.domain.cart import parse_cart
from couponry.domain.paging import Page
from couponry.domain.redemptions import (
    CHECKED_OUT,
    REDEEMED,
    STATUSES,
    Redemption,
    StoredOutcome,
    discount_line_view,
    lines_view,
    money_text,
    redemption_view,
)
from couponry.domain.tenants import Tenant
from couponry.errors import REFUSALS, CouponryError, FieldProblem, InvalidInput, InvalidQuery
from couponry.services import checkouts
from couponry.services import redemptions as svc
from couponry.services.tenants import Principal
from couponry.store.db import Database
from couponry.web.auth import CHECKOUT, AdminKey, Body, CheckoutKey, ReadKey, authorize
from couponry.web.errors import envelope, envelope_text, status_for, status_for_kind
from couponry.web.jsonio import decode_json_body, json_response
from couponry.web.observability import REDEMPTIONS
from couponry.web.rest import params as p
from couponry.web.rest.schemas import body_doc, errors_doc

coupon_router = APIRouter(prefix="/coupons", tags=["redemptions"])
router = APIRouter(prefix="/redemptions", tags=["redemptions"])
_AUTH = (400, 401, 403)


class CartLineDoc(BaseModel):
    line_id: str
    kind: str
    id: str
    type_id: str | None = None
    group_ids: list[str] | None = None
    program_session_id: str | None = None
    unit_price: float | str
    quantity: int


class CartDoc(BaseModel):
    code: str
    user_id: str
    membership_status: str | None = None
    lines: list[CartLineDoc]
    hold_seconds: int | None = Field(
        None, ge=60, le=86_400, description="hold it while the customer pays (SPEC 11.1)"
    )


class LineDiscountDoc(BaseModel):
    line_id: str
    discount: str


class DiscountLineDoc(BaseModel):
    product_id: str
    amount: str


class ValidationDoc(BaseModel):
    valid: bool
    coupon_id: str | None
    code: str
    discount_total: str
    lines: list[LineDiscountDoc]
    discount_line: DiscountLineDoc | None
    errors: list[dict[str, str]]


class RedemptionDoc(BaseModel):
    id: str
    coupon_id: str
    code: str
    user_id: str
    status: str
    access: str
    membership_status: str | None
    discount_total: str
    lines: list[LineDiscountDoc]
    discount_line: DiscountLineDoc | None
    idempotency_key: str | None
    approved_by: str | None
    approved_at: str | None
    created_at: str
    updated_at: str
    hold_expires_at: str | None = Field(None, description="only on a hold")
    checkout_id: str | None = Field(None, description="only on a multi-code checkout")


class ApproverDoc(BaseModel):
    approver: str


DOC_MODELS: list[type[BaseModel]] = [CartDoc, ApproverDoc]


def _db(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


@coupon_router.post(
    "/{tenantId}/validate",
    response_model=None,
    responses={200: {"model": ValidationDoc}, **errors_doc(*_AUTH, 413, 415, 422)},
    openapi_extra=body_doc(CartDoc),
    summary="What a code takes off a cart, changing nothing",
)
async def validate(
    request: Request, tenant_id: p.TenantId, who: CheckoutKey, raw: Body
) -> Response:
    doc = decode_json_body(request, raw)
    cart = parse_cart(doc)
    if cart.several:
        found, stacked = await p.in_thread(
            lambda: checkouts.validate_checkout(
                _db(request), tenant=who.tenant, cart=cart, now=p.now()
            )
        )
        return json_response(checkouts.validation_view(found, stacked, who.tenant.currency))
    result = await p.in_thread(
        lambda: svc.validate_cart(_db(request), tenant=who.tenant, doc=doc, now=p.now())
    )
    return json_response(_validation_view(result, who.tenant, doc))


def _validation_view(result: svc.Validation, tenant: Tenant, doc: Any) -> dict[str, Any]:
    currency = tenant.currency
    coupon = result.coupon
    line = None
    if result.valid and coupon and coupon.data.discount_method == "discount line item":
        line = {"product_id": coupon.data.discount_product_id, "amount": result.quote.total}
    return {
        "valid": result.valid,
        "coupon_id": coupon.id if coupon else None,
        "code": result.code if result.code is not None else str(doc.get("code")),
        "discount_total": money_text(result.quote.total, currency),
        "lines": lines_view(result.quote.lines, currency),
        "discount_line": discount_line_view(line, currency),
        "errors": [{"code": e.code, "message": e.message} for e in result.errors],
    }


@router.post(
    "/{tenantId}",
    status_code=201,
    response_model=None,
    responses={201: {"model": RedemptionDoc}, **errors_doc(*_AUTH, 404, 409, 413, 415, 422)},
    openapi_extra=body_doc(CartDoc),
    summary="Redeem a code for a cart, exactly once (Idempotency-Key recommended)",
)
async def redeem(
    request: Request,
    tenant_id: p.TenantId,
    idempotency_key: str | None = Header(None, alias="Idempotency-Key"),
) -> Response:
    # Served by web/hot.py before FastAPI's router; declared here for /openapi.json.
    from couponry.web import hot

    return await hot.redeem(request)


async def redeem_in_thread(
    request: Request, tenant_id: str, raw: bytes, idempotency_key: str | None
) -> Response:
    """Any redemption, through the synchronous engine in a worker thread. web/hot.py calls
    this before it has read the key (on SQLite), so the caller is authenticated here."""
    who = await authorize(request, tenant_id, CHECKOUT)
    doc = decode_json_body(request, raw)
    outcome = await counted(
        p.in_thread(
            lambda: svc.redeem(
                _db(request),
                tenant=who.tenant,
                doc=doc,
                idempotency_key=idempotency_key,
                now=p.now(),
            )
        )
    )
    return outcome_response(outcome, who.tenant.currency)


async def counted(redeeming: Awaitable[svc.Outcome]) -> svc.Outcome:
    """The outcome, counted in the redemptions metric (a refusal that rose, by its code)."""
    try:
        outcome = await redeeming
    except CouponryError as error:
        REDEMPTIONS.labels(outcome=error.code).inc()
        raise
    REDEMPTIONS.labels(outcome=outcome_label(outcome)).inc()
    return outcome


def outcome_label(outcome: svc.Outcome) -> str:
    if outcome.replayed is not None:
        return "replayed"
    if outcome.refusal is not None:
        return outcome.refusal.code
    if outcome.checkout is not None:
        return "checkout"
    assert outcome.redemption is not None
    return outcome.redemption.status


def outcome_response(outcome: svc.Outcome, currency: str) -> Response:
    """A redemption is 201 and its view; a refusal its status and envelope; a replay the
    first reply again, byte for byte, marked Idempotent-Replayed."""
    if outcome.replayed is not None:
        return replayed_response(outcome.replayed)
    if outcome.refusal is not None:
        error = outcome.refusal
        return json_response(envelope(error.code, error.message, error.details), status_for(error))
    if outcome.checkout is not None:
        return json_response(checkouts.checkout_view(outcome.checkout, currency), 201)
    assert outcome.redemption is not None
    return json_response(redemption_view(outcome.redemption, currency), 201)


def replayed_response(stored: StoredOutcome) -> Response:
    """The first reply rebuilt from its stored outcome: a redemption's view as stored, or a
    refusal's document in its envelope with the status of its code. The document was written
    by the same `dumps` as the first reply, so the bytes are the same."""
    if stored.outcome in (REDEEMED, CHECKED_OUT):
        status, body = 201, stored.document
    else:
        status = status_for_kind(REFUSALS[json.loads(stored.document)["code"]])
        body = envelope_text(stored.document)
    headers = {"Idempotent-Replayed": "true"}
    return Response(body, status, headers=headers, media_type="application/json")


@router.get(
    "/{tenantId}",
    response_model=None,
    responses={200: {"model": list[RedemptionDoc]}, **errors_doc(*_AUTH)},
    summary="Redemptions, oldest first (keyset pages)",
)
async def list_redemptions(
    request: Request,
    tenant_id: p.TenantId,
    who: ReadKey,
    limit: str | None = Query(None),
    exclusive_start_key: str | None = Query(None, alias="exclusiveStartKey"),
    coupon_id: str | None = Query(None),
    user_id: str | None = Query(None),
    status: str | None = Query(None),
    code: str | None = Query(None, description="the code redeemed (any case)"),
    x_exclusive_start_key: str | None = Header(None),
) -> Response:
    size = p.query_limit(limit)
    after = p.query_start(exclusive_start_key, x_exclusive_start_key)
    if status is not None and status not in STATUSES:
        message = "must be one of: " + ", ".join(STATUSES)
        raise InvalidQuery(f"status {message}.", [FieldProblem("status", message)])
    filters = {"coupon_id": coupon_id, "user_id": user_id, "status": status, "code": code}
    page: Page[Redemption] = await p.in_thread(
        lambda: svc.list_redemptions(
            _db(request), tenant_id=tenant_id, after_seq=after, limit=size, filters=filters
        )
    )
    body = [redemption_view(r, who.tenant.currency) for r in page.items]
    return json_response(body, 200, p.next_page_headers(request, page.last_seq))


@router.get(
    "/{tenantId}/{redemption_id}",
    response_model=None,
    responses={200: {"model": RedemptionDoc}, **errors_doc(*_AUTH, 404)},
    summary="One redemption",
)
async def get_redemption(
    request: Request, tenant_id: p.TenantId, redemption_id: str, who: ReadKey
) -> Response:
    found = await p.in_thread(
        lambda: svc.get_redemption(_db(request), tenant_id=tenant_id, redemption_id=redemption_id)
    )
    return json_response(redemption_view(found, who.tenant.currency))


async def _transition(
    request: Request, who: Principal, raw: bytes, redemption_id: str, action: str
) -> Response:
    approver = None
    if action in ("approve", "reject"):
        approver = _approver(decode_json_body(request, raw))
    changed = await p.in_thread(
        lambda: svc.change_redemption(
            _db(request),
            tenant=who.tenant,
            redemption_id=redemption_id,
            action=action,
            approver=approver,
            now=p.now(),
        )
    )
    return json_response(redemption_view(changed, who.tenant.currency))


def _approver(doc: Any) -> str:
    if not isinstance(doc, dict) or set(doc) - {"approver"}:
        raise InvalidInput(
            'The body is {"approver": "<username>"}.',
            [FieldProblem("body", "must be an object with only `approver`")],
        )
    approver = doc.get("approver")
    if not isinstance(approver, str) or not approver.strip() or len(approver) > 200:
        raise InvalidInput(
            "approver is required.", [FieldProblem("approver", "must be a username", missing=True)]
        )
    return approver.strip()


@router.post(
    "/{tenantId}/{redemption_id}/approve",
    response_model=None,
    responses={200: {"model": RedemptionDoc}, **errors_doc(*_AUTH, 404, 409, 413, 415, 422)},
    openapi_extra=body_doc(ApproverDoc),
    summary="pending_approval -> applied (group effects happen now)",
)
async def approve(
    request: Request, tenant_id: p.TenantId, redemption_id: str, who: AdminKey, raw: Body
) -> Response:
    return await _transition(request, who, raw, redemption_id, "approve")


@router.post(
    "/{tenantId}/{redemption_id}/reject",
    response_model=None,
    responses={200: {"model": RedemptionDoc}, **errors_doc(*_AUTH, 404, 409, 413, 415, 422)},
    openapi_extra=body_doc(ApproverDoc),
    summary="pending_approval -> rejected (use and credit released)",
)
async def reject(
    request: Request, tenant_id: p.TenantId, redemption_id: str, who: AdminKey, raw: Body
) -> Response:
    return await _transition(request, who, raw, redemption_id, "reject")


@router.post(
    "/{tenantId}/{redemption_id}/rollback",
    response_model=None,
    responses={200: {"model": RedemptionDoc}, **errors_doc(*_AUTH, 404, 409)},
    summary="applied -> rolled_back (use and credit come back)",
)
async def rollback(
    request: Request, tenant_id: p.TenantId, redemption_id: str, who: CheckoutKey, raw: Body
) -> Response:
    return await _transition(request, who, raw, redemption_id, "rollback")


@router.post(
    "/{tenantId}/{redemption_id}/confirm",
    response_model=None,
    responses={200: {"model": RedemptionDoc}, **errors_doc(*_AUTH, 404, 409)},
    summary="held -> applied (or pending_approval); 409 hold_expired after its end",
)
async def confirm(
    request: Request, tenant_id: p.TenantId, redemption_id: str, who: CheckoutKey, raw: Body
) -> Response:
    return await _transition(request, who, raw, redemption_id, "confirm")


@router.post(
    "/{tenantId}/{redemption_id}/release",
    response_model=None,
    responses={200: {"model": RedemptionDoc}, **errors_doc(*_AUTH, 404, 409)},
    summary="held -> released (every claim is given back)",
)
async def release(
    request: Request, tenant_id: p.TenantId, redemption_id: str, who: CheckoutKey, raw: Body
) -> Response:
    return await _transition(request, who, raw, redemption_id, "release")


async def _checkout_transition(
    request: Request, who: Principal, checkout_id: str, action: str
) -> Response:
    changed = await p.in_thread(
        lambda: checkouts.change_checkout(
            _db(request), tenant=who.tenant, checkout_id=checkout_id, action=action, now=p.now()
        )
    )
    currency = who.tenant.currency
    return json_response(checkouts.checkout_transition_view(checkout_id, changed, currency))


class CheckoutRedemptionsDoc(BaseModel):
    checkout_id: str
    redemptions: list[RedemptionDoc]


@router.post(
    "/{tenantId}/checkouts/{checkout_id}/confirm",
    response_model=None,
    responses={200: {"model": CheckoutRedemptionsDoc}, **errors_doc(*_AUTH, 404, 409)},
    summary="Confirm every held redemption of a checkout (all or nothing)",
)
async def confirm_checkout(
    request: Request, tenant_id: p.TenantId, checkout_id: str, who: CheckoutKey, raw: Body
) -> Response:
    return await _checkout_transition(request, who, checkout_id, "confirm")


@router.post(
    "/{tenantId}/checkouts/{checkout_id}/release",
    response_model=None,
    responses={200: {"model": CheckoutRedemptionsDoc}, **errors_doc(*_AUTH, 404, 409)},
    summary="Release every held redemption of a checkout (all or nothing)",
)
async def release_checkout(
    request: Request, tenant_id: p.TenantId, checkout_id: str, who: CheckoutKey, raw: Body
) -> Response:
    return await _checkout_transition(request, who, checkout_id, "release")


@router.post(
    "/{tenantId}/checkouts/{checkout_id}/rollback",
    response_model=None,
    responses={200: {"model": CheckoutRedemptionsDoc}, **errors_doc(*_AUTH, 404, 409)},
    summary="Roll back every applied redemption of a checkout (all or nothing)",
)
async def rollback_checkout(
    request: Request, tenant_id: p.TenantId, checkout_id: str, who: CheckoutKey, raw: Body
) -> Response:
    return await _checkout_transition(request, who, checkout_id, "rollback")
