"""THE table from error class to HTTP status, and the JSON error envelope (SPEC 4.3)."""

from __future__ import annotations

import logging

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from couponry import errors as e
from couponry.web.edubrite.params import in_edubrite_terms, param_name
from couponry.web.edubrite.xml import reply
from couponry.web.jsonio import json_response

log = logging.getLogger("couponry.web")

STATUS_BY_KIND: dict[type[e.CouponryError], int] = {
    e.BadRequest: 400,
    e.Unauthorized: 401,
    e.Forbidden: 403,
    e.NotFound: 404,
    e.Conflict: 409,
    e.PayloadTooLarge: 413,
    e.Unavailable: 503,
    e.UnsupportedMediaType: 415,
    e.InvalidInput: 422,
    e.Rejected: 422,
}


# The EduBrite dialect's second column (SPEC 7.3): the most specific class wins.
EDUBRITE_BY_KIND: dict[type[e.CouponryError], int] = {
    e.BadRequest: 1002,
    e.InvalidInput: 1002,
    e.Rejected: 1002,
    e.PayloadTooLarge: 1002,
    e.UnsupportedMediaType: 1002,
    e.CodeFrozen: 1002,
    e.NotFound: 1003,
    e.CouponNotFound: 1003,
    e.GroupNotFound: 1004,
    e.GroupPathNoMatch: 1004,
    e.GroupPathAmbiguous: 1005,
    e.UsageLimitBelowUsed: 1006,
    e.CodeTaken: 1007,
    e.Forbidden: 1008,
    e.Unauthorized: 1009,
    e.UnknownDispatch: 1010,
    e.CouponLocked: 1011,
    e.Conflict: 1002,
}
EDUBRITE_STATUS = {
    1001: 400,
    1002: 400,
    1003: 404,
    1004: 404,
    1005: 409,
    1006: 409,
    1007: 409,
    1008: 403,
    1009: 401,
    1010: 400,
    1011: 409,
}
EDUBRITE_INTERNAL = 1000  # not in SPEC's table: an unexpected failure, shown without internals
RETRY_AFTER = {"Retry-After": "1"}  # with every 503: the database is expected back soon


def edubrite_code_for(error: e.CouponryError) -> int:
    """The EduBrite code; a refusal naming missing parameters is 1001 (before bad values)."""
    if any(d.missing for d in error.details):
        return 1001
    for cls in type(error).__mro__:
        code = EDUBRITE_BY_KIND.get(cls)
        if code is not None:
            return code
    return EDUBRITE_INTERNAL


def status_for(error: e.CouponryError) -> int:
    return status_for_kind(type(error))


def status_for_kind(kind: type[e.CouponryError]) -> int:
    for cls in kind.__mro__:
        status = STATUS_BY_KIND.get(cls)
        if status is not None:
            return status
    return 500


def envelope(code: str, message: str, details: list[e.FieldProblem]) -> dict[str, object]:
    return {"error": e.error_document(code, message, details)}


def envelope_text(document: str) -> str:
    """The envelope around an error's document already written as compact JSON: the bytes
    `dumps(envelope(...))` gives for it."""
    return '{"error":' + document + "}"


def error_response(error: e.CouponryError) -> Response:
    status = status_for(error)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    if status == 503:
        headers = RETRY_AFTER
    if status == 500:
        return internal_error_response()
    return json_response(envelope(error.code, error.message, error.details), status, headers)


def internal_error_response() -> Response:
    # Never the exception text: it may hold SQL or another tenant's data.
    return json_response(
        envelope("internal_error", "Something went wrong on our side; it has been logged.", []),
        500,
    )


def render_error(request: Request, error: e.CouponryError) -> Response:
    """The error in the request's dialect."""
    if _edubrite(request):
        return edubrite_error_response(request, error)
    return error_response(error)


def _edubrite(request: Request) -> bool:
    return request.url.path.startswith("/oltpublish/")


def edubrite_error_response(request: Request, error: e.CouponryError) -> Response:
    """The EduBrite envelope: missing parameters first, each problem its own message."""
    code = edubrite_code_for(error)
    status = EDUBRITE_STATUS.get(code, 500)
    headers = None
    if isinstance(error, e.Unavailable):
        status, headers, msgs = 503, RETRY_AFTER, [(str(code), error.message)]
    elif code == EDUBRITE_INTERNAL:
        msgs = [(str(code), "Something went wrong on our side; it has been logged.")]
    elif error.details:
        ordered = sorted(error.details, key=lambda d: not d.missing)
        own_terms = isinstance(error, e.BadParameter)  # the adapter's names are parameters
        msgs = [
            (
                "1001" if d.missing else str(code if code != 1001 else 1002),
                f"{d.field if own_terms else param_name(d.field)}: "
                f"{d.message if own_terms else in_edubrite_terms(d.message)}",
            )
            for d in ordered
        ]
    else:
        msgs = [(str(code), error.message)]
    as_xml = getattr(request.state, "edubrite_xml", True)
    return reply(as_xml=as_xml, code=code, status=status, msgs=msgs, headers=headers)


async def _on_domain_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, e.CouponryError)
    if status_for(exc) == 500:
        log.error("unexpected domain error", exc_info=exc, extra=_rid(request))
    return render_error(request, exc)


async def _on_http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if _edubrite(request):
        return edubrite_error_response(
            request, e.UnknownDispatch(f"No such service: {request.url.path}")
        )
    codes = {404: "not_found", 405: "method_not_allowed"}
    code = codes.get(exc.status_code, "http_error")
    message = {404: "No such resource.", 405: "This method is not allowed here."}.get(
        exc.status_code, str(exc.detail)
    )
    return json_response(envelope(code, message, []), exc.status_code, dict(exc.headers or {}))


async def _on_validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    details = [
        e.FieldProblem(".".join(str(p) for p in err.get("loc", ()) if p != "query"), err["msg"])
        for err in exc.errors()
    ]
    return json_response(envelope("invalid_query", "The request is malformed.", details), 400)


def _rid(request: Request) -> dict[str, str]:
    return {"request_id": str(getattr(request.state, "request_id", ""))}


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(e.CouponryError, _on_domain_error)
    app.add_exception_handler(HTTPException, _on_http_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
