"""The web console (SPEC 12), a FastAPI app of its own mounted at /console.

Being its own app, it has its own error renderer (HTML pages) without looking at paths, and
stays out of /openapi.json. Its templates and static files ship in the package.
"""

from __future__ import annotations

import logging
from pathlib import Path

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from couponry import errors as e
from couponry.store.db import Database
from couponry.web.console.render import SECURITY_HEADERS, page
from couponry.web.console.routes import router
from couponry.web.errors import status_for

log = logging.getLogger("couponry.web.console")
STATIC = Path(__file__).with_name("static")


class ConsoleGuard:
    """Around every console response: the security headers (redirects, static files, the
    job poll and downloads too), and the console's own 500 page for an unexpected error,
    sent before Starlette's error middleware would answer in plain text and re-raise."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    if name not in headers:
                        headers[name] = value
            await send(message)

        try:
            await self.app(scope, receive, guarded_send)
        except Exception:
            if started:
                raise
            log.exception("console error")
            request = Request(scope)
            reply = _error_page(request, 500, "Something went wrong", "It has been logged.")
            await reply(scope, receive, send)


def create_console(db: Database) -> FastAPI:
    console = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    console.state.db = db
    console.include_router(router)
    console.mount("/static", StaticFiles(directory=STATIC), name="static")
    console.add_middleware(ConsoleGuard)
    console.add_exception_handler(e.CouponryError, _domain_error)  # type: ignore[arg-type]
    console.add_exception_handler(HTTPException, _http_error)  # type: ignore[arg-type]
    console.add_exception_handler(RequestValidationError, _bad_request)  # type: ignore[arg-type]
    return console


def _domain_error(request: Request, error: e.CouponryError) -> Response:
    if isinstance(error, e.SessionEnded):
        if "text/html" not in request.headers.get("accept", ""):
            return Response(status_code=401)  # console.js polling a job: no page to go to
        return RedirectResponse("/console/sign-in", status_code=303)
    status = status_for(error)
    if status == 500:
        log.exception("console error", exc_info=error)
        return _error_page(request, 500, "Something went wrong", "It has been logged.")
    titles = {403: "Refused", 404: "Not found", 409: "Not possible now"}
    return _error_page(request, status, titles.get(status, "Not possible"), error.message)


def _http_error(request: Request, error: HTTPException) -> Response:
    title = "Not found" if error.status_code == 404 else "Not possible"
    return _error_page(request, error.status_code, title, str(error.detail))


def _bad_request(request: Request, error: RequestValidationError) -> Response:
    return _error_page(request, 400, "Not possible", "The address is not one this console makes.")


def _error_page(request: Request, status: int, title: str, message: str) -> Response:
    return page(request, "error.html", status, who=None, title=title, message=message)


__all__ = ["create_console"]
