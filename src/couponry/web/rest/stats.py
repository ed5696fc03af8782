"""A coupon's stats over REST (SPEC 10). Any role."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response

from couponry.domain.stats import stats_view
from couponry.services import stats as svc
from couponry.store.db import Database
from couponry.web.auth import ReadKey
from couponry.web.jsonio import json_response
from couponry.web.rest import params as p
from couponry.web.rest.schemas import errors_doc

router = APIRouter(prefix="/coupons", tags=["campaign codes"])


class RedemptionCountsDoc(BaseModel):
    applied: int
    pending_approval: int
    held: int
    rolled_back: int
    rejected: int
    released: int


class CodeCountsDoc(BaseModel):
    total: int
    active: int
    used: int


class DayDoc(BaseModel):
    date: str
    redemptions: int
    discount_total: str


class StatsDoc(BaseModel):
    times_used: int
    discount_total: str
    redemptions: RedemptionCountsDoc
    codes: CodeCountsDoc
    by_day: list[DayDoc]


@router.get(
    "/{tenantId}/{coupon_id}/stats",
    response_model=None,
    responses={200: {"model": StatsDoc}, **errors_doc(400, 401, 403, 404)},
    summary="A coupon's uses, discounts, codes and last 90 days, from its counters",
)
async def get_stats(
    request: Request, tenant_id: p.TenantId, coupon_id: str, who: ReadKey
) -> Response:
    db: Database = request.app.state.db
    stats = await p.in_thread(
        lambda: svc.get_stats(db, tenant_id=tenant_id, coupon_id=coupon_id, now=p.now())
    )
    return json_response(stats_view(stats, who.tenant.currency))
