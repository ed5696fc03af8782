"""Tenants and API keys."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError

from couponry.domain.tenants import ApiKeyRecord, Tenant
from couponry.errors import TenantExists
from couponry.store.tables import api_keys, tenants


def tenant_from_columns(
    *, tenant_id: str, name: str, currency: str, site_urls: str, admins: str, created_at: datetime
) -> Tenant:
    return Tenant(
        id=tenant_id,
        name=name,
        currency=currency,
        site_urls=tuple(json.loads(site_urls)),
        admins=tuple(json.loads(admins)),
        created_at=created_at,
    )


def _row_to_tenant(row: Row[Any]) -> Tenant:
    return tenant_from_columns(
        tenant_id=row.id,
        name=row.name,
        currency=row.currency,
        site_urls=row.site_urls,
        admins=row.admins,
        created_at=row.created_at,
    )


class TenantRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def insert(self, tenant: Tenant) -> None:
        try:
            self.conn.execute(
                insert(tenants).values(
                    id=tenant.id,
                    name=tenant.name,
                    currency=tenant.currency,
                    site_urls=json.dumps(list(tenant.site_urls)),
                    admins=json.dumps(list(tenant.admins)),
                    created_at=tenant.created_at,
                )
            )
        except IntegrityError as exc:
            raise TenantExists(f"Tenant {tenant.id!r} already exists.") from exc

    def get(self, tenant_id: str) -> Tenant | None:
        row = self.conn.execute(select(tenants).where(tenants.c.id == tenant_id)).first()
        return _row_to_tenant(row) if row else None

    def all(self) -> list[Tenant]:
        rows = self.conn.execute(select(tenants).order_by(tenants.c.id))
        return [_row_to_tenant(row) for row in rows]

    def count(self) -> int:
        return len(self.conn.execute(select(tenants.c.id).limit(1)).all())


_KEY_WITH_TENANT = (
    select(
        api_keys.c.id.label("key_id"),
        api_keys.c.tenant_id,
        api_keys.c.role,
        api_keys.c.secret_hash,
        api_keys.c.created_at.label("key_created_at"),
        api_keys.c.revoked_at,
        tenants,
    )
    .join(tenants, tenants.c.id == api_keys.c.tenant_id)
    .where(api_keys.c.id == bindparam("key_id"))
)


class KeyRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def insert(self, key: ApiKeyRecord) -> None:
        self.conn.execute(
            insert(api_keys).values(
                id=key.id,
                tenant_id=key.tenant_id,
                role=key.role,
                secret_hash=key.secret_hash,
                created_at=key.created_at,
                revoked_at=None,
            )
        )

    def get_with_tenant(self, key_id: str) -> tuple[ApiKeyRecord, Tenant] | None:
        """The key and its tenant in one round trip (every authenticated request does this)."""
        row = self.conn.execute(_KEY_WITH_TENANT, {"key_id": key_id}).first()
        if row is None:
            return None
        key = ApiKeyRecord(
            id=row.key_id,
            tenant_id=row.tenant_id,
            role=row.role,
            secret_hash=row.secret_hash,
            created_at=row.key_created_at,
            revoked_at=row.revoked_at,
        )
        return key, _row_to_tenant(row)

    def for_tenant(self, tenant_id: str) -> list[ApiKeyRecord]:
        rows = self.conn.execute(
            select(api_keys)
            .where(api_keys.c.tenant_id == tenant_id)
            .order_by(api_keys.c.created_at)
        )
        return [
            ApiKeyRecord(
                id=r.id,
                tenant_id=r.tenant_id,
                role=r.role,
                secret_hash=r.secret_hash,
                created_at=r.created_at,
                revoked_at=r.revoked_at,
            )
            for r in rows
        ]

    def revoke(self, key_id: str, *, now: datetime) -> bool:
        result = self.conn.execute(
            update(api_keys)
            .where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
            .values(revoked_at=now)
        )
        return result.rowcount == 1

    def exists(self, key_id: str) -> bool:
        return (
            self.conn.execute(select(api_keys.c.id).where(api_keys.c.id == key_id)).first()
            is not None
        )
