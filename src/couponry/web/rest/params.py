"""Query strings and headers of the REST dialect, checked with errors that name them."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

from fastapi import Path
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from couponry.domain.coupons import ALL_VIEW_FIELDS
from couponry.domain.paging import DEFAULT_PAGE, MAX_PAGE, decode_start_key, encode_start_key
from couponry.errors import FieldProblem, InvalidFields, InvalidQuery

T = TypeVar("T")
# The tenant in every REST path, named as SPEC 4 and Rhythm's documents name it.
TenantId = Annotated[str, Path(alias="tenantId", description="The tenant's id")]
_DIGITS = re.compile("[0-9]{1,9}")  # ASCII only: str.isdigit() also accepts superscripts


async def in_thread(fn: Callable[[], T]) -> T:
    """Database work is synchronous (the plain drivers are fastest here): keep it off the loop."""
    return await run_in_threadpool(fn)


def now() -> datetime:
    return datetime.now(UTC)


def query_limit(value: str | None) -> int:
    if value is None:
        return DEFAULT_PAGE
    if not _DIGITS.fullmatch(value) or not 1 <= int(value) <= MAX_PAGE:
        raise _bad("limit", f"must be a whole number from 1 to {MAX_PAGE}")
    return int(value)


def query_start(value: str | None, header: str | None) -> int:
    token = value if value is not None else header
    return 0 if token is None else decode_start_key(token)


def query_bool(name: str, value: str | None) -> bool | None:
    if value is None:
        return None
    lowered = value.lower()
    if lowered not in ("true", "false"):
        raise _bad(name, "must be true or false")
    return lowered == "true"


def query_fields(value: str | None, allowed: tuple[str, ...] = ALL_VIEW_FIELDS) -> list[str] | None:
    if value is None:
        return None
    names = [n.strip() for n in value.split(",") if n.strip()]
    unknown = [n for n in names if n not in allowed]
    if not names or unknown:
        message = "unknown field(s): " + ", ".join(unknown) if unknown else "names no field"
        raise InvalidFields(f"fields {message}.", [FieldProblem("fields", message)])
    return names


def project(view: dict[str, Any], names: list[str] | None) -> dict[str, Any]:
    if names is None:
        return view
    return {"id": view["id"]} | {n: view[n] for n in names if n in view}


def if_match(request: Request) -> int | None:
    """`If-Match: "<sys_version>"` (W/ and bare numbers accepted; `*` matches any)."""
    raw = request.headers.get("if-match")
    if raw is None or raw.strip() == "*":
        return None
    text = raw.strip()
    if text.startswith("W/"):
        text = text[2:]
    text = text.strip('"')
    if not _DIGITS.fullmatch(text):
        raise _bad("If-Match", 'must be "<sys_version>", such as "3"')
    return int(text)


def next_page_headers(request: Request, last_seq: int | None) -> dict[str, str]:
    if last_seq is None:
        return {}
    key = encode_start_key(last_seq)
    # A relative reference (RFC 8288 resolves it against the request's URL): the Host header
    # is the client's to choose, so it never goes into a link we hand out.
    url = request.url.include_query_params(exclusiveStartKey=key)
    return {"X-Exclusive-Start-Key": key, "Link": f'<{url.path}?{url.query}>; rel="next"'}


def _bad(field: str, message: str) -> InvalidQuery:
    return InvalidQuery(f"{field} {message}.", [FieldProblem(field, message)])
