"""Who is signed in to the console: the session cookie, read on every request.

The cookie is HttpOnly (no script reads it), SameSite=Strict (no other site's request carries
it), Secure when the request came over TLS (uvicorn sets the scheme from X-Forwarded-Proto for
the proxies it trusts), and scoped to /console. It holds a random token of which the database
keeps only a hash (services/console_sessions.py).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import parse_qsl

from fastapi import Depends
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from couponry.errors import InvalidInput
from couponry.services import console_sessions as svc
from couponry.services.tenants import Principal
from couponry.store.db import Database
from couponry.web.console import csrf
from couponry.web.jsonio import read_body

COOKIE = "couponry_console"
SIGN_IN_COOKIE = "couponry_console_sign_in"  # the sign-in form's own CSRF value
PATH = "/console"
_URLENCODED = "application/x-www-form-urlencoded"


def now() -> datetime:
    return datetime.now(UTC)


def database(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


@dataclass(frozen=True)
class Caller:
    """The signed-in admin: the key's principal and the session's CSRF token."""

    principal: Principal
    csrf_token: str

    @property
    def tenant_id(self) -> str:
        return self.principal.tenant.id


async def signed_in(request: Request) -> Caller:
    """The caller; SessionEnded (the console sends the browser to sign in) otherwise."""
    token = request.cookies.get(COOKIE)
    principal = await run_in_threadpool(
        lambda: svc.session_principal(database(request), token=token, now=now())
    )
    assert token is not None
    return Caller(principal, csrf.session_csrf(token))


SignedIn = Annotated[Caller, Depends(signed_in)]


@dataclass(frozen=True)
class Posted:
    """A signed-in caller's form, its CSRF token checked."""

    caller: Caller
    form: dict[str, Any]


# A console form is a few kilobytes; a body past this is refused before it is parsed (parsing
# time grows faster than the body: 120 MiB held a worker for a minute).
MAX_FORM_BYTES = 256 * 1024
MAX_FORM_FIELDS = 200


async def read_form(request: Request) -> dict[str, str]:
    """The posted form's fields (the last value of a repeated one). PayloadTooLarge past
    MAX_FORM_BYTES; InvalidInput for too many fields. The console's forms are URL-encoded:
    any other body reads as no fields, so its CSRF check fails."""
    body = await read_body(request, limit=MAX_FORM_BYTES)
    if request.headers.get("content-type", "").split(";")[0].strip() != _URLENCODED:
        return {}
    try:
        pairs = parse_qsl(
            body.decode("utf-8", errors="replace"),
            keep_blank_values=True,
            max_num_fields=MAX_FORM_FIELDS,
        )
    except ValueError:
        raise InvalidInput("The form has too many fields.") from None
    return dict(pairs)


async def posted(request: Request, caller: SignedIn) -> Posted:
    values = await read_form(request)
    csrf.check(values.get(csrf.FIELD), caller.csrf_token)
    return Posted(caller, values)


PostedForm = Annotated[Posted, Depends(posted)]


def _cookie(
    response: Response, request: Request, name: str, value: str, max_age: int | None
) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path=PATH,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


def start_session(response: Response, request: Request, token: str) -> None:
    # A cookie for the browser's session, without an age: the server ends a session after 12
    # idle hours, and an age set here would end a busy one 12 hours after it began.
    _cookie(response, request, COOKIE, token, None)
    response.delete_cookie(SIGN_IN_COOKIE, path=PATH)


def end_session(response: Response) -> None:
    response.delete_cookie(COOKIE, path=PATH, httponly=True, samesite="strict")


def sign_in_token(request: Request) -> str:
    """The sign-in form's CSRF value: the one its cookie holds, or a new one."""
    return request.cookies.get(SIGN_IN_COOKIE) or secrets.token_urlsafe(32)


def keep_sign_in_token(response: Response, request: Request, token: str) -> None:
    _cookie(response, request, SIGN_IN_COOKIE, token, 3600)
