"""The console's pages (SPEC 12): who is calling, what they sent, one service call, one render.

A form the domain refuses is shown again with what was typed and each problem beside its
field: that is the one domain error a handler here catches (`refused`); every other error is
rendered by the console's error pages (web/console/__init__.py).
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from couponry.errors import CouponryError, InvalidCredentials, RoleForbidden
from couponry.services import codes as codes_svc
from couponry.services import console_pages, coupon_lists
from couponry.services import console_sessions as sessions_svc
from couponry.services import coupons as coupons_svc
from couponry.services import jobs as jobs_svc
from couponry.services import redemptions as redemptions_svc
from couponry.web.console import csrf, pages
from couponry.web.console import session as s
from couponry.web.console.forms import (
    GENERATION_FIELDS,
    coupon_document,
    generation_document,
    shown_in_form,
    typed_values,
)
from couponry.web.console.render import page
from couponry.web.csv_stream import csv_download
from couponry.web.jsonio import json_response
from couponry.web.rest.params import in_thread

router = APIRouter()
PAGE = 50
MAX_SEQ = 2**63 - 1  # a row's position is a signed 64-bit integer on both databases
ACTIONS = {"approve", "reject", "rollback", "release"}
# What an action's redirect says (and all a link may make the redemptions page say).
A_CODE = re.compile(r"[A-Za-z0-9_-]{3,64}")
DONE = re.compile(r"[0-9a-f]{4}(-[0-9a-f]{4}){3} is now (applied|rejected|rolled_back|released)")


BACK = re.compile(r"/console/redemptions(\?[^#]*)?")


def _see(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


# --- signing in and out ---------------------------------------------------------------------


@router.get("/")
async def home() -> Response:
    return _see("/console/coupons")


@router.get("/sign-in")
async def sign_in_form(request: Request) -> Response:
    token = s.sign_in_token(request)
    response = page(request, "sign_in.html", csrf_token=token, error=None)
    s.keep_sign_in_token(response, request, token)
    return response


@router.post("/sign-in")
async def sign_in(request: Request) -> Response:
    form = await s.read_form(request)
    csrf.check(form.get(csrf.FIELD), request.cookies.get(s.SIGN_IN_COOKIE))
    key = form.get("api_key", "")
    earlier = request.cookies.get(s.COOKIE)
    try:
        token, _ = await in_thread(
            lambda: sessions_svc.sign_in(s.database(request), key=key, now=s.now())
        )
    except (InvalidCredentials, RoleForbidden) as refused:
        error = (
            "This key is not an admin key: only an admin key may sign in."
            if isinstance(refused, RoleForbidden)
            else "This API key is not valid (unknown, revoked or mistyped)."
        )
        token_again = s.sign_in_token(request)
        status = 403 if isinstance(refused, RoleForbidden) else 401
        return page(request, "sign_in.html", status, csrf_token=token_again, error=error)
    if earlier:  # signing in again ends the session this browser had
        await in_thread(lambda: sessions_svc.sign_out(s.database(request), token=earlier))
    response = _see("/console/coupons")
    s.start_session(response, request, token)
    return response


@router.post("/sign-out")
async def sign_out(request: Request, posted: s.PostedForm) -> Response:
    token = request.cookies.get(s.COOKIE)
    await in_thread(lambda: sessions_svc.sign_out(s.database(request), token=token))
    response = _see("/console/sign-in")
    s.end_session(response)
    return response


# --- coupons ----------------------------------------------------------------------------------


@router.get("/coupons")
async def coupons(
    request: Request,
    who: s.SignedIn,
    q: str = "",
    after: str | None = None,
    before: int | None = Query(None, ge=1, le=MAX_SEQ),
    deleted: str | None = None,
) -> Response:
    db, tenant_id = s.database(request), who.tenant_id
    if q.strip():
        found = await in_thread(
            lambda: coupon_lists.search_coupons(
                db, tenant_id=tenant_id, text=q, cursor=after, limit=PAGE
            )
        )
        items, next_query = found.items, ({"q": q, "after": found.next_cursor})
        more = found.next_cursor is not None
    else:
        listed = await in_thread(
            lambda: coupon_lists.list_newest_coupons(
                db, tenant_id=tenant_id, before_seq=before, limit=PAGE
            )
        )
        items, next_query = listed.items, {"before": str(listed.last_seq)}
        more = listed.last_seq is not None
    return page(
        request,
        "coupons.html",
        who=who,
        coupons=items,
        q=q,
        next_query=next_query if more else None,
        # Shown only if it could be a code: a link cannot make the page say anything else.
        deleted=deleted if deleted and A_CODE.fullmatch(deleted) else None,
        now=s.now(),
    )


@router.get("/coupons/new")
async def new_coupon_form(request: Request, who: s.SignedIn) -> Response:
    return pages.coupon_form(request, who, coupon=None)


@router.post("/coupons/new")
async def create_coupon(request: Request, posted: s.PostedForm) -> Response:
    who, typed = posted.caller, typed_values(posted.form)
    try:
        coupon = await in_thread(
            lambda: coupons_svc.create_coupon(
                s.database(request),
                tenant=who.principal.tenant,
                actor_id=who.principal.key_id,
                doc=coupon_document(typed),
                now=s.now(),
            )
        )
    except CouponryError as refused:
        if not shown_in_form(refused):
            raise
        return pages.coupon_form(request, who, coupon=None, typed=typed, error=refused)
    return _see(f"/console/coupons/{coupon.id}")


@router.get("/coupons/{coupon_id}")
async def coupon(
    request: Request,
    who: s.SignedIn,
    coupon_id: str,
    codes_after: int = Query(0, ge=0, le=MAX_SEQ),
    job: str | None = None,
) -> Response:
    found = await in_thread(
        lambda: console_pages.coupon_overview(
            s.database(request),
            tenant_id=who.tenant_id,
            coupon_id=coupon_id,
            codes_after=codes_after,
            codes_limit=PAGE,
            job_id=job,
            now=s.now(),
        )
    )
    return pages.coupon_page(request, who, found)


@router.get("/coupons/{coupon_id}/edit")
async def edit_coupon_form(request: Request, who: s.SignedIn, coupon_id: str) -> Response:
    found = await in_thread(
        lambda: coupons_svc.get_coupon(
            s.database(request), tenant_id=who.tenant_id, coupon_id=coupon_id
        )
    )
    return pages.coupon_form(request, who, coupon=found)


@router.post("/coupons/{coupon_id}/edit")
async def edit_coupon(request: Request, coupon_id: str, posted: s.PostedForm) -> Response:
    who, typed = posted.caller, typed_values(posted.form)
    version = str(posted.form.get("sys_version", ""))
    try:
        await in_thread(
            lambda: coupons_svc.replace_coupon(
                s.database(request),
                tenant=who.principal.tenant,
                actor_id=who.principal.key_id,
                coupon_id=coupon_id,
                doc=coupon_document(typed),
                if_match=int(version) if version.isascii() and version.isdigit() else None,
                now=s.now(),
            )
        )
    except CouponryError as refused:
        if not shown_in_form(refused):
            raise
        current = await in_thread(
            lambda: coupons_svc.get_coupon(
                s.database(request), tenant_id=who.tenant_id, coupon_id=coupon_id
            )
        )
        return pages.coupon_form(request, who, coupon=current, typed=typed, error=refused)
    return _see(f"/console/coupons/{coupon_id}")


@router.get("/coupons/{coupon_id}/delete")
async def delete_coupon_form(request: Request, who: s.SignedIn, coupon_id: str) -> Response:
    found = await in_thread(
        lambda: coupons_svc.get_coupon(
            s.database(request), tenant_id=who.tenant_id, coupon_id=coupon_id
        )
    )
    return page(request, "delete.html", who=who, coupon=found)


@router.post("/coupons/{coupon_id}/delete")
async def delete_coupon(request: Request, coupon_id: str, posted: s.PostedForm) -> Response:
    who = posted.caller
    await in_thread(
        lambda: coupons_svc.delete_coupon(
            s.database(request),
            tenant_id=who.tenant_id,
            actor_id=who.principal.key_id,
            coupon_id=coupon_id,
            now=s.now(),
        )
    )
    code = str(posted.form.get("code", ""))
    return _see(f"/console/coupons?{_query({'deleted': code})}")


# --- codes and their jobs ------------------------------------------------------------------


@router.post("/coupons/{coupon_id}/codes")
async def generate_codes(request: Request, coupon_id: str, posted: s.PostedForm) -> Response:
    who = posted.caller
    typed = {name: str(posted.form.get(name, "")) for name in GENERATION_FIELDS}
    doc = generation_document(typed)
    try:
        started = await in_thread(
            lambda: jobs_svc.start_generation(
                s.database(request),
                tenant_id=who.tenant_id,
                coupon_id=coupon_id,
                doc=doc,
                now=s.now(),
            )
        )
    except CouponryError as refused:
        if not shown_in_form(refused):
            raise
        found = await in_thread(
            lambda: console_pages.coupon_overview(
                s.database(request),
                tenant_id=who.tenant_id,
                coupon_id=coupon_id,
                codes_after=0,
                codes_limit=PAGE,
                job_id=None,
                now=s.now(),
            )
        )
        return pages.coupon_page(request, who, found, generate=(typed, refused))
    return _see(f"/console/coupons/{coupon_id}?job={started.id}#codes")


@router.get("/coupons/{coupon_id}/codes.csv")
async def export_codes(request: Request, who: s.SignedIn, coupon_id: str) -> Response:
    pages = await in_thread(
        lambda: codes_svc.export_codes(
            s.database(request), tenant_id=who.tenant_id, coupon_id=coupon_id
        )
    )
    return csv_download(pages, f"codes-{coupon_id}.csv")


@router.get("/jobs/{job_id}")
async def job_progress(request: Request, who: s.SignedIn, job_id: str) -> Response:
    """Polled by console.js while a job runs."""
    found = await in_thread(
        lambda: jobs_svc.get_job(s.database(request), tenant_id=who.tenant_id, job_id=job_id)
    )
    body = {"status": found.status, "done": found.done, "total": found.total}
    return json_response(body, 200, {"Cache-Control": "no-store"})


# --- redemptions and groups ------------------------------------------------------------------


@router.get("/redemptions")
async def redemptions(
    request: Request,
    who: s.SignedIn,
    status: str = "",
    code: str = "",
    before: int | None = Query(None, ge=1, le=MAX_SEQ),
    done: str | None = None,
) -> Response:
    listed = await in_thread(
        lambda: redemptions_svc.list_newest_redemptions(
            s.database(request),
            tenant_id=who.tenant_id,
            before_seq=before,
            limit=PAGE,
            status=status or None,
            code=code.strip() or None,
        )
    )
    filters = {"status": status, "code": code}
    return page(
        request,
        "redemptions.html",
        who=who,
        redemptions=listed.items,
        filters=filters,
        here=f"/console/redemptions?{_query(filters | {'before': before})}",
        next_query=filters | {"before": listed.last_seq} if listed.last_seq else None,
        done=done if done and DONE.fullmatch(done) else None,
    )


@router.post("/redemptions/{redemption_id}/{action}")
async def change_redemption(
    request: Request, redemption_id: str, action: str, posted: s.PostedForm
) -> Response:
    who = posted.caller
    if action not in ACTIONS:
        return page(request, "error.html", 404, who=who, title="Not found", message="No such page.")
    tenant = who.principal.tenant
    # The console acts as the tenant's first admin (SPEC 12: "the signed-in key's admin"):
    # a key names no person, and a tenant's admins are the approvers SPEC 6.4 knows.
    approver = tenant.admins[0] if tenant.admins else None
    changed = await in_thread(
        lambda: redemptions_svc.change_redemption(
            s.database(request),
            tenant=tenant,
            redemption_id=redemption_id,
            action=action,
            approver=approver,
            now=s.now(),
        )
    )
    back = str(posted.form.get("back", ""))
    if not BACK.fullmatch(back):  # only the redemptions page, with its filters
        back = "/console/redemptions"
    joiner = "&" if "?" in back else "?"
    return _see(f"{back}{joiner}{_query({'done': f'{changed.id} is now {changed.status}'})}")


@router.get("/groups")
async def groups(request: Request, who: s.SignedIn) -> Response:
    found = await in_thread(
        lambda: console_pages.group_overview(
            s.database(request), tenant_id=who.tenant_id, group_id=None
        )
    )
    return pages.groups_page(request, who, found)


@router.get("/groups/{group_id}")
async def group(request: Request, who: s.SignedIn, group_id: str) -> Response:
    found = await in_thread(
        lambda: console_pages.group_overview(
            s.database(request), tenant_id=who.tenant_id, group_id=group_id
        )
    )
    return pages.groups_page(request, who, found)


def _query(values: dict[str, Any]) -> str:
    return urlencode({k: v for k, v in values.items() if v not in (None, "")})
