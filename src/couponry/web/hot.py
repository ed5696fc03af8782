"""The hot paths, served in front of FastAPI by plain Starlette routes.

Measured in-process on this machine: FastAPI 0.16x's router walks its route table with several
match passes per request; a `/healthz` behind it cost 176 us, mostly in routing. `HotRoutes`
wraps the FastAPI app (inside the observability layer and the request guard, which refuses bad
input and answers failures): a request whose method and path match one of a few plain routes
is served there, without FastAPI's own middleware stack, its router, or Starlette's per-route
wrappers; every other request goes on to FastAPI, which also declares these routes, so
`/openapi.json` still documents them (and a bare FastAPI app still serves them).

An endpoint here renders its own domain errors (there is no FastAPI exception layer in front of
it) and names its route template for the metrics and the access log.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from couponry.domain.cart import Cart, parse_cart
from couponry.domain.coupons import coupon_view
from couponry.errors import CouponChanged, CouponNotFound, CouponryError
from couponry.services import coupons as svc
from couponry.services import redemptions as redemption_svc
from couponry.store.async_db import AsyncDatabase
from couponry.store.db import Database
from couponry.web.auth import CHECKOUT, READ, check_access, key_from_header
from couponry.web.errors import error_response
from couponry.web.jsonio import decode_json_body, json_response, read_body
from couponry.web.rest import params as p
from couponry.web.rest import redemptions as rest_redemptions

HEALTHZ_BODY = b'{"status":"ok"}'
Endpoint = Callable[[Request], Awaitable[Response]]


@dataclass(frozen=True)
class RouteName:
    """What observability reads as the route template (`scope["route"].path`)."""

    path: str


def _named(template: str, endpoint: Endpoint) -> Endpoint:
    name = RouteName(template)

    async def serve(request: Request) -> Response:
        request.scope["route"] = name
        try:
            return await endpoint(request)
        except CouponryError as error:
            return error_response(error)

    return serve


async def healthz(request: Request) -> Response:
    return Response(HEALTHZ_BODY, media_type="application/json")


async def get_coupon(request: Request) -> Response:
    """GET /coupons/{tenantId}/{coupon_id}: the key, its tenant and the coupon in one read."""
    tenant_id: str = request.path_params["tenantId"]
    coupon_id: str = request.path_params["coupon_id"]
    adb: AsyncDatabase = request.app.state.adb
    principal, view = await svc.read_coupon_view(
        adb,
        key=key_from_header(request.headers.get("authorization")),
        tenant_id=tenant_id,
        coupon_id=coupon_id,
    )
    check_access(principal, tenant_id, READ)
    names: list[str] | None = None
    if request.scope["query_string"]:
        query = request.query_params
        names = p.query_fields(query.get("fields"))
        db: Database = request.app.state.db
        if p.query_bool("consistentRead", query.get("consistentRead")) is False and db.replica:
            # An eventually consistent read goes to the replica (not a hot path).
            coupon = await p.in_thread(
                lambda: svc.get_coupon(
                    db, tenant_id=tenant_id, coupon_id=coupon_id, consistent=False
                )
            )
            view = None if coupon is None else coupon_view(coupon)
    if view is None:
        raise CouponNotFound()
    return json_response(p.project(view, names), 200, {"ETag": f'"{view["sys_version"]}"'})


async def redeem(request: Request) -> Response:
    """POST /redemptions/{tenantId}: the key and the coupon by code in one read, then, for the
    common coupon (no credit, group or approval), the claims and the record on the async
    database (asyncpg; SQLite's writer, store/async_db.py).
    Everything else goes the synchronous way, with the same refusals in the same order."""
    tenant_id: str = request.path_params["tenantId"]
    idempotency_key = request.headers.get("idempotency-key")
    raw = await read_body(request)  # 413 before anything else
    adb: AsyncDatabase = request.app.state.adb
    api_key = key_from_header(request.headers.get("authorization"))
    doc: Any = None
    cart: Cart | None = None
    held: CouponryError | None = None
    try:  # refused only once the key is known to be good (401/403 come first)
        doc = decode_json_body(request, raw)
        cart = parse_cart(doc)
    except CouponryError as error:
        held = error
    principal, coupon, code = await redemption_svc.read_for_redeem(
        adb, key=api_key, tenant_id=tenant_id, code=cart.code if cart else ""
    )
    check_access(principal, tenant_id, CHECKOUT)
    if held is not None:
        raise held
    assert cart is not None
    if coupon is None or code is None or not redemption_svc.takes_hot_path(coupon):
        return await rest_redemptions.redeem_in_thread(request, tenant_id, raw, idempotency_key)
    try:
        outcome = await rest_redemptions.counted(
            redemption_svc.redeem_hot(
                adb,
                tenant=principal.tenant,
                coupon=coupon,
                code=code,
                cart=cart,
                doc=doc,
                idempotency_key=idempotency_key,
                now=p.now(),
            )
        )
    except CouponChanged:  # changed since it was read: nothing kept; decide again, afresh
        return await rest_redemptions.redeem_in_thread(request, tenant_id, raw, idempotency_key)
    return rest_redemptions.outcome_response(outcome, principal.tenant.currency)


HOT_ROUTES = [
    Route("/healthz", _named("/healthz", healthz), methods=["GET"]),
    Route(
        "/coupons/{tenantId}/{coupon_id}",
        _named("/coupons/{tenantId}/{coupon_id}", get_coupon),
        methods=["GET"],
    ),
    Route("/redemptions/{tenantId}", _named("/redemptions/{tenantId}", redeem), methods=["POST"]),
]


class HotRoutes:
    """Serves the hot routes; passes everything else (other paths or methods) on to `app`,
    the FastAPI app whose state (databases, settings) the hot endpoints read."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            for route, endpoint in _SERVED:
                match, child = route.matches(scope)
                if match is Match.FULL:
                    scope.update(child)
                    scope.setdefault("app", self.app)
                    response = await endpoint(Request(scope, receive))
                    await response(scope, receive, send)
                    return
        await self.app(scope, receive, send)


# (route, endpoint): the route only matches (and reads path parameters); the endpoint is
# called directly, without Starlette's per-route wrappers.
_SERVED = [(route, route.endpoint) for route in HOT_ROUTES]
