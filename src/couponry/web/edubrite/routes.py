"""The EduBrite dialect (SPEC 7): connect.do / home.do sessions and couponService.do.

Thin: parse form parameters, call the same services as REST, render the XML envelope.
Errors rise to web/errors.py, which renders them in this dialect for /oltpublish paths.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import parse_qsl

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from couponry.domain.sessions import new_token
from couponry.errors import BadParameter, FieldProblem, Forbidden, Unauthorized, UnknownDispatch
from couponry.services import coupons as svc
from couponry.services.sessions import open_session, session_principal
from couponry.services.tenants import Principal, authenticate
from couponry.store.db import Database
from couponry.web.auth import key_from_header
from couponry.web.edubrite import params as p
from couponry.web.edubrite.xml import CREATED, DELETED, UPDATED, CouponPage, reply
from couponry.web.guard import unsafe_parameter
from couponry.web.jsonio import read_body
from couponry.web.rest.params import in_thread

router = APIRouter(prefix="/oltpublish/site", include_in_schema=False)

SESSION_ID = "SESSION_ID"
SESSION_INFO = "SESSION_INFO"
FORM_TYPE = "application/x-www-form-urlencoded"


def _now() -> datetime:
    return datetime.now(UTC)


def _db(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


async def _params(request: Request) -> dict[str, str]:
    """Query and form parameters (UTF-8); a name given twice is refused."""
    request.state.edubrite_xml = request.query_params.get("xml", "true").lower() != "false"
    raw = await read_body(request)
    pairs = list(request.query_params.multi_items())
    if raw.strip():
        media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if media != FORM_TYPE:
            raise _bad("body", f"must be {FORM_TYPE}")
        try:
            pairs += parse_qsl(
                raw.decode("ascii"), keep_blank_values=True, strict_parsing=False, errors="strict"
            )
        except (UnicodeDecodeError, ValueError):
            raise _bad("body", "is not form-encoded UTF-8") from None
    unsafe = unsafe_parameter(pairs)
    if unsafe is not None:
        raise _bad(unsafe, "must not contain control characters or invalid Unicode")
    params: dict[str, str] = {}
    for name, value in pairs:
        if name in params:
            raise _bad(name, "is given more than once")
        params[name] = value
    request.state.edubrite_xml = params.get("xml", "true").strip().lower() != "false"
    return params


@dataclass(frozen=True)
class Call:
    """One authenticated couponService.do call."""

    db: Database
    who: Principal
    admin: str
    params: dict[str, str]
    as_xml: bool


def _bad(field: str, message: str) -> BadParameter:
    return BadParameter(f"{field} {message}.", [FieldProblem(field, message)])


@router.api_route("/connect.do", methods=["GET", "POST"])
@router.api_route("/home.do", methods=["GET", "POST"])
async def connect(request: Request) -> Response:
    """Without credentials: a SESSION_ID cookie. With username and password: a session."""
    params = await _params(request)
    username, password = params.get("username"), params.get("password")
    secure = request.url.scheme == "https"
    as_xml = request.state.edubrite_xml
    if not username and not password:
        response = reply(as_xml=as_xml)
        response.set_cookie(
            SESSION_ID, new_token(), path="/", httponly=True, secure=secure, samesite="lax"
        )
        return response
    if not username or not password:
        raise Unauthorized("Send both username and password.")
    session_id, session_info, _ = await in_thread(
        lambda: open_session(_db(request), username=username, password=password, now=_now())
    )
    response = reply(as_xml=as_xml)
    for name, value in ((SESSION_ID, session_id), (SESSION_INFO, session_info)):
        response.set_cookie(name, value, path="/", httponly=True, secure=secure, samesite="lax")
    return response


@router.api_route("/couponService.do", methods=["GET", "POST"])
async def coupon_service(request: Request) -> Response:
    params = await _params(request)
    as_xml: bool = request.state.edubrite_xml

    def work() -> Response:
        principal = _principal(request)
        admin = _admin_name(request, params, principal)
        dispatch = params.get("dispatch", "").strip()
        if not dispatch:
            raise BadParameter(
                "Missing parameter: dispatch.",
                [FieldProblem("dispatch", "is required", missing=True)],
            )
        handler = _HANDLERS.get(dispatch)
        if handler is None:
            raise UnknownDispatch(f"Unknown dispatch {dispatch!r}.")
        if principal.role == "checkout" or (
            principal.role == "read" and dispatch not in p.READ_DISPATCHES
        ):
            raise Forbidden(f"A {principal.role} key may not call {dispatch}.")
        p.required_for(dispatch, params)
        p.check_known(dispatch, params)
        return handler(Call(_db(request), principal, admin, params, as_xml))

    return await in_thread(work)


def session_cookies(request: Request) -> dict[str, str]:
    """Cookies from every Cookie header, whatever the installed Starlette reads.

    EduBrite's Java client (commons-httpclient 3.0, RFC 2109 policy) sends each cookie in a
    header of its own, `Cookie: $Version=0; SESSION_ID=...; $Path=/`. Attributes (`$...`)
    are not cookies; a quoted value loses its quotes.
    """
    cookies: dict[str, str] = {}
    for header in request.headers.getlist("cookie"):
        for chunk in header.split(";"):
            name, _, value = chunk.strip().partition("=")
            name, value = name.strip(), value.strip()
            if not name or name.startswith("$"):
                continue
            if len(value) >= 2 and value[0] == value[-1] == '"':
                value = value[1:-1]
            cookies.setdefault(name, value)
    return cookies


def _principal(request: Request) -> Principal:
    cookies = session_cookies(request)
    session_id = cookies.get(SESSION_ID)
    session_info = cookies.get(SESSION_INFO)
    if session_id is not None or session_info is not None:
        return session_principal(
            _db(request), session_id=session_id, session_info=session_info, now=_now()
        )
    header = request.headers.get("authorization")
    if header:
        return authenticate(_db(request), key=key_from_header(header))
    raise Unauthorized("No session: connect with home.do, or send an Authorization key.")


def _admin_name(request: Request, params: dict[str, str], principal: Principal) -> str:
    """REAL_UNAME is `username|email|full name`; its username must be a tenant admin."""
    real = request.headers.get("real_uname") or params.get("realUserName") or ""
    username = real.split("|", 1)[0].strip()
    if not username or not principal.tenant.is_admin(username):
        raise Forbidden("REAL_UNAME must name an admin of this site.")
    return username


def _create(c: Call) -> Response:
    p.require(c.params, "type")
    fields = p.coupon_fields(c.params, updating=False)
    coupon = svc.create_coupon(c.db, tenant=c.who.tenant, actor_id=c.admin, doc=fields, now=_now())
    return reply(as_xml=c.as_xml, msgs=[CREATED], coupon=coupon)


def _update(c: Call) -> Response:
    p.require(c.params, "id")
    fields = p.coupon_fields(c.params, updating=True)
    coupon = svc.update_coupon_fields(
        c.db,
        tenant=c.who.tenant,
        actor_id=c.admin,
        coupon_id=c.params["id"].strip(),
        changes=fields,
        now=_now(),
    )
    return reply(as_xml=c.as_xml, msgs=[UPDATED], coupon=coupon)


def _get(c: Call) -> Response:
    coupon_id = c.params.get("id", "").strip()
    code = c.params.get("authCode", "").strip()
    if coupon_id:  # required_for() has made sure one of the two is given
        coupon = svc.get_coupon(c.db, tenant_id=c.who.tenant.id, coupon_id=coupon_id)
    else:
        coupon = svc.get_coupon_by_code(c.db, tenant_id=c.who.tenant.id, code=code)
    return reply(as_xml=c.as_xml, coupon=coupon)


def _list(c: Call) -> Response:
    page, size, active = p.page_params(c.params)
    items, total = svc.list_coupons_by_position(
        c.db, tenant_id=c.who.tenant.id, page=page, page_size=size, is_active=active
    )
    return reply(as_xml=c.as_xml, page=CouponPage(items, total, page, size))


def _delete(c: Call) -> Response:
    p.require(c.params, "id")
    svc.delete_coupon(
        c.db,
        tenant_id=c.who.tenant.id,
        actor_id=c.admin,
        coupon_id=c.params["id"].strip(),
        now=_now(),
    )
    return reply(as_xml=c.as_xml, msgs=[DELETED])


_HANDLERS: dict[str, Callable[[Call], Response]] = {
    "createCoupon": _create,
    "updateCoupon": _update,
    "getCoupon": _get,
    "listCoupons": _list,
    "deleteCoupon": _delete,
}
