"""The request guard: what every request passes before a handler, and after one fails.

It sits inside the framework's outermost error middleware (Starlette's ServerErrorMiddleware),
and a second one in front of the hot routes, which are served before FastAPI (web/hot.py); a
request passes the input check once. Two reasons:

* Parameters that reach SQL are refused here, whatever the endpoint: a path or query string
  holding NUL, another control character, a lone surrogate or U+FFFE/U+FFFF answers 400
  (EduBrite: 1002) naming the parameter. PostgreSQL cannot store NUL in text and fails on it
  with an error that used to surface as a 500; SQLite would compare it; neither sees it now.
* An unexpected failure becomes one reply, and the connection lives on: ServerErrorMiddleware
  re-raises after rendering its reply, which makes the server drop a keep-alive connection
  without `Connection: close`, so a fault cost its request and the next one on the socket.
  A database that cannot be reached answers 503 with Retry-After instead of 500.
"""

from __future__ import annotations

import logging
from urllib.parse import parse_qsl

from starlette.requests import ClientDisconnect, Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from couponry import errors as e
from couponry.domain.fields import has_control_chars
from couponry.store.db import is_unavailable
from couponry.web.errors import render_error

log = logging.getLogger("couponry.web")
_CHECKED = "couponry.input_checked"  # set in the scope once the input check has passed


def unsafe_parameter(pairs: list[tuple[str, str]]) -> str | None:
    """The name of the first parameter whose name or value holds a character no store or reply
    can carry, or None."""
    for name, value in pairs:
        if has_control_chars(name) or has_control_chars(value):
            return name
    return None


class RequestGuard:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if _CHECKED not in scope:
            scope[_CHECKED] = True
            refusal = _refuse_unsafe(scope)
            if refusal is not None:
                await render_error(Request(scope), refusal)(scope, receive, send)
                return
        started = False

        async def send_tracking(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, send_tracking)
        except ClientDisconnect:
            # Nobody is left to answer; not a fault of ours, so no traceback.
            log.warning("client disconnected before the request was read", extra=_rid(scope))
        except Exception as exc:
            if started:
                raise  # part of a reply is out: only closing the connection can end it
            error: e.CouponryError
            if is_unavailable(exc):
                log.warning("database unavailable: %s", type(exc).__name__, extra=_rid(scope))
                error = e.Unavailable()
            else:
                log.error("unhandled error", exc_info=exc, extra=_rid(scope))
                error = e.CouponryError()
            await render_error(Request(scope), error)(scope, receive, send)


def _refuse_unsafe(scope: Scope) -> e.CouponryError | None:
    if has_control_chars(scope["path"]):
        return e.InvalidQuery(
            "The path holds a control character or invalid Unicode.",
            [e.FieldProblem("path", "must not contain control characters or invalid Unicode")],
        )
    query = scope.get("query_string", b"").decode("latin-1")
    name = unsafe_parameter(parse_qsl(query, keep_blank_values=True))
    if name is None:
        return None
    message = "must not contain control characters or invalid Unicode"
    # EduBrite names its parameters as sent; REST's query parameters are query problems.
    kind = e.BadParameter if scope["path"].startswith("/oltpublish/") else e.InvalidQuery
    return kind(f"{name} {message}.", [e.FieldProblem(name, message)])


def _rid(scope: Scope) -> dict[str, str]:
    return {"request_id": str(scope.get("state", {}).get("request_id", ""))}
