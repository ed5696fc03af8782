"""API key -> tenant and role, and the role rules (SPEC 2, 4)."""

from __future__ import annotations

from starlette.requests import Request

from couponry.errors import RoleForbidden, Unauthorized, WrongTenant
from couponry.services.tenants import Principal, authenticate
from couponry.store.db import Database

READ, CHECKOUT, ADMIN = "read", "checkout", "admin"
# Which roles may do each kind of action.
ALLOWED: dict[str, tuple[str, ...]] = {
    READ: ("admin", "checkout", "read"),
    CHECKOUT: ("admin", "checkout"),
    ADMIN: ("admin",),
}


def key_from_header(value: str | None) -> str:
    if not value or not value.strip():
        raise Unauthorized("Send an API key in the Authorization header.")
    value = value.strip()
    if value[:7].lower() == "bearer ":
        value = value[7:].strip()
    return value


def require(request: Request, tenant_id: str, action: str) -> Principal:
    """Authenticate the request's key for this tenant and action, or refuse (401/403)."""
    db: Database = request.app.state.db
    principal = authenticate(db, key=key_from_header(request.headers.get("authorization")))
    check_access(principal, tenant_id, action)
    return principal


def check_access(principal: Principal, tenant_id: str, action: str) -> None:
    if principal.tenant.id != tenant_id:
        raise WrongTenant()
    if principal.role not in ALLOWED[action]:
        raise RoleForbidden(f"A {principal.role} key may not do this.")


__all__ = ["ADMIN", "CHECKOUT", "READ", "check_access", "key_from_header", "require"]
