"""Tenants, API keys and authentication: used by the CLI and by every request."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from couponry.domain.tenants import (
    ROLES,
    ApiKeyRecord,
    Tenant,
    check_tenant,
    hash_secret,
    new_key_secret,
    secret_matches,
    split_key,
    valid_key_id,
)
from couponry.errors import (
    FieldProblem,
    InvalidCredentials,
    InvalidInput,
    KeyNotFound,
    TenantNotFound,
)
from couponry.store.async_db import AsyncDatabase
from couponry.store.db import Database
from couponry.store.hot_reads import key_with_tenant
from couponry.store.tenant_repo import KeyRepository, TenantRepository


@dataclass(frozen=True)
class Principal:
    """Who is calling: a key of one tenant, with one role."""

    tenant: Tenant
    role: str
    key_id: str


def create_tenant(
    db: Database,
    *,
    tenant_id: str,
    name: str,
    site_urls: list[str],
    admins: list[str],
    currency: str,
    now: datetime,
) -> Tenant:
    """Create a tenant; TenantExists if the id is taken."""
    clean_name, hosts, admin_names, code = check_tenant(
        tenant_id=tenant_id, name=name, site_urls=site_urls, admins=admins, currency=currency
    )
    tenant = Tenant(tenant_id, clean_name, code, hosts, admin_names, now)
    with db.transaction() as conn:
        TenantRepository(conn).insert(tenant)
    return tenant


def list_tenants(db: Database) -> list[Tenant]:
    """Every tenant, by id."""
    with db.reader() as conn:
        return TenantRepository(conn).all()


def get_tenant(db: Database, *, tenant_id: str) -> Tenant:
    with db.reader() as conn:
        tenant = TenantRepository(conn).get(tenant_id)
    if tenant is None:
        raise TenantNotFound(f"No tenant {tenant_id!r}.")
    return tenant


def create_key(db: Database, *, tenant_id: str, role: str, now: datetime) -> str:
    """Create a key and return it whole (`<key_id>.<secret>`): the only time it is shown."""
    if role not in ROLES:
        raise InvalidInput(
            "Unknown role.", [FieldProblem("role", "must be one of: " + ", ".join(ROLES))]
        )
    key_id, secret = new_key_secret()
    with db.transaction() as conn:
        if TenantRepository(conn).get(tenant_id) is None:
            raise TenantNotFound(f"No tenant {tenant_id!r}.")
        KeyRepository(conn).insert(ApiKeyRecord(key_id, tenant_id, role, hash_secret(secret), now))
    return f"{key_id}.{secret}"


def list_keys(db: Database, *, tenant_id: str) -> list[ApiKeyRecord]:
    with db.reader() as conn:
        if TenantRepository(conn).get(tenant_id) is None:
            raise TenantNotFound(f"No tenant {tenant_id!r}.")
        return KeyRepository(conn).for_tenant(tenant_id)


def revoke_key(db: Database, *, key_id: str, now: datetime) -> None:
    """Revoke at once: the next request with this key is refused."""
    with db.transaction() as conn:
        repo = KeyRepository(conn)
        if not repo.exists(key_id):
            raise KeyNotFound(f"No key {key_id!r}.")
        repo.revoke(key_id, now=now)


def authenticate(db: Database, *, key: str) -> Principal:
    """The principal behind `<key_id>.<secret>`; InvalidCredentials if unknown or revoked."""
    parts = split_key(key)
    if parts is None:
        raise InvalidCredentials("The API key is malformed.")
    return authenticate_parts(db, key_id=parts[0], secret=parts[1])


async def read_principal(adb: AsyncDatabase, *, key: str) -> Principal:
    """`authenticate` in one statement on the async database, as every REST request does.

    Nothing is cached: a key revoked a moment ago is refused by every process.
    """
    parts = split_key(key)
    if parts is None:
        raise InvalidCredentials("The API key is malformed.")
    found = await key_with_tenant(adb, key_id=parts[0])
    if found is None:
        raise InvalidCredentials("Unknown API key.")
    return principal_of(*found, secret=parts[1])


def authenticate_parts(db: Database, *, key_id: str, secret: str) -> Principal:
    """The principal for a key given as its two halves (the EduBrite username and password)."""
    if not valid_key_id(key_id):
        raise InvalidCredentials("Unknown API key.")
    with db.reader() as conn:
        found = KeyRepository(conn).get_with_tenant(key_id)
    if found is None:
        raise InvalidCredentials("Unknown API key.")
    return principal_of(*found, secret=secret)


def principal_of(record: ApiKeyRecord, tenant: Tenant, *, secret: str) -> Principal:
    """The principal of a key record found by id, once the secret matches and it is live."""
    if record.revoked_at is not None or not secret_matches(secret, record.secret_hash):
        raise InvalidCredentials("Unknown or revoked API key.")
    return Principal(tenant=tenant, role=record.role, key_id=record.id)


def ensure_demo_tenant(db: Database, *, now: datetime) -> str | None:
    """On an empty database, create tenant `demo` (admin `admin`) and return an admin key."""
    with db.reader() as conn:
        if TenantRepository(conn).count() > 0:
            return None
    create_tenant(
        db,
        tenant_id="demo",
        name="Demo",
        site_urls=["demo.localhost"],
        admins=["admin"],
        currency="USD",
        now=now,
    )
    return create_key(db, tenant_id="demo", role="admin", now=now)
