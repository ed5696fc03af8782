"""API key -> tenant and role, and the role rules (SPEC 2, 4).

Every REST handler is handed its caller by one dependency per kind of action (`ReadKey`,
`CheckoutKey`, `AdminKey`): the key and its tenant are read in one statement on the async
database, the tenant in the path and the role are checked, and the handler gets a `Principal`.
The key comes from the request's headers, not from a declared parameter, so /openapi.json
documents the endpoints as before (the API's description says how to send a key).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends
from starlette.requests import Request

from couponry.errors import RoleForbidden, Unauthorized, WrongTenant
from couponry.services.tenants import Principal, read_principal
from couponry.store.async_db import AsyncDatabase
from couponry.web.jsonio import read_body

READ, CHECKOUT, ADMIN = "read", "checkout", "admin"
# Which roles may do each kind of action.
ALLOWED: dict[str, tuple[str, ...]] = {
    READ: ("admin", "checkout", "read"),
    CHECKOUT: ("admin", "checkout"),
    ADMIN: ("admin",),
}
_NO_BODY = frozenset({"GET", "HEAD", "DELETE"})  # no REST endpoint reads a body for these


def key_from_header(value: str | None) -> str:
    if not value or not value.strip():
        raise Unauthorized("Send an API key in the Authorization header.")
    value = value.strip()
    if value[:7].lower() == "bearer ":
        value = value[7:].strip()
    return value


def check_access(principal: Principal, tenant_id: str, action: str) -> None:
    if principal.tenant.id != tenant_id:
        raise WrongTenant()
    if principal.role not in ALLOWED[action]:
        raise RoleForbidden(f"A {principal.role} key may not do this.")


async def authorize(request: Request, tenant_id: str, action: str) -> Principal:
    """The caller, if its key is good (401) and may do `action` in this tenant (403)."""
    adb: AsyncDatabase = request.app.state.adb
    principal = await read_principal(adb, key=key_from_header(request.headers.get("authorization")))
    check_access(principal, tenant_id, action)
    return principal


async def request_body(request: Request) -> bytes:
    """The body, at most 1 MiB (413). Read before the key is checked, so an oversized body
    is refused first, whatever the key; the handler's own checks (415, 400, 422) come after
    authentication. FastAPI hands the handler the same bytes (a dependency runs once)."""
    if request.method in _NO_BODY:
        return b""
    return await read_body(request)


Body = Annotated[bytes, Depends(request_body)]


def _caller(action: str) -> Callable[[Request, bytes], Awaitable[Principal]]:
    async def caller(request: Request, _body: Body) -> Principal:
        return await authorize(request, request.path_params["tenantId"], action)

    caller.__name__ = f"{action}_key"
    return caller


async def _admin_before_body(request: Request) -> Principal:
    return await authorize(request, request.path_params["tenantId"], ADMIN)


# The caller of a REST endpoint under /{tenantId}, allowed to do this kind of action there.
ReadKey = Annotated[Principal, Depends(_caller(READ))]
CheckoutKey = Annotated[Principal, Depends(_caller(CHECKOUT))]
AdminKey = Annotated[Principal, Depends(_caller(ADMIN))]
# An admin of an endpoint that streams its own body (a code import: up to 100 MiB, never read
# whole): the key is checked before the body is read, which the handler then reads itself.
AdminKeyBodyUnread = Annotated[Principal, Depends(_admin_before_body)]


__all__ = [
    "ADMIN",
    "CHECKOUT",
    "READ",
    "AdminKey",
    "AdminKeyBodyUnread",
    "Body",
    "CheckoutKey",
    "ReadKey",
    "authorize",
    "check_access",
    "key_from_header",
    "request_body",
]
