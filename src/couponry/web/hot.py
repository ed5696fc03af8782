"""The hot paths, served before FastAPI's router by plain Starlette routes.

Measured in-process on this machine: FastAPI 0.16x's router walks its route table with several
match passes per request; a `/healthz` behind it cost 176 us, mostly in routing. `HotRoutes`
is a middleware inside the app (after the request guard, before FastAPI's exception layer and
router): a request whose method and path match one of a few plain Starlette routes is served
there; every other request goes on to FastAPI, which also declares these routes, so
`/openapi.json` still documents them.

An endpoint here renders its own domain errors (there is no FastAPI exception layer in front of
it) and names its route template for the metrics and the access log.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from couponry.domain.coupons import coupon_view
from couponry.errors import CouponNotFound, CouponryError
from couponry.services import coupons as svc
from couponry.store.async_db import AsyncDatabase
from couponry.store.db import Database
from couponry.web.auth import READ, check_access, key_from_header
from couponry.web.errors import error_response
from couponry.web.jsonio import json_response
from couponry.web.rest import params as p

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
    principal, coupon = await svc.read_coupon(
        adb,
        key=key_from_header(request.headers.get("authorization")),
        tenant_id=tenant_id,
        coupon_id=coupon_id,
    )
    check_access(principal, tenant_id, READ)
    query = request.query_params
    names = p.query_fields(query.get("fields"))
    db: Database = request.app.state.db
    if p.query_bool("consistentRead", query.get("consistentRead")) is False and db.replica:
        # An eventually consistent read goes to the replica (not a hot path).
        coupon = await p.in_thread(
            lambda: svc.get_coupon(db, tenant_id=tenant_id, coupon_id=coupon_id, consistent=False)
        )
    if coupon is None:
        raise CouponNotFound()
    body = p.project(coupon_view(coupon), names)
    return json_response(body, 200, {"ETag": f'"{coupon.sys_version}"'})


HOT_ROUTES = [
    Route("/healthz", _named("/healthz", healthz), methods=["GET"]),
    Route(
        "/coupons/{tenantId}/{coupon_id}",
        _named("/coupons/{tenantId}/{coupon_id}", get_coupon),
        methods=["GET"],
    ),
]


class HotRoutes:
    """Serves the hot routes; passes everything else (other paths or methods) on."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            for route in HOT_ROUTES:
                match, child = route.matches(scope)
                if match is Match.FULL:
                    scope.update(child)
                    await route.handle(scope, receive, send)
                    return
        await self.app(scope, receive, send)
