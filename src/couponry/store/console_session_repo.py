"""Console sessions (SPEC 12): stored by a hash of their token, read with their key and tenant."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, bindparam, delete, insert, select, update

from couponry.domain.tenants import Tenant
from couponry.store.tables import api_keys, console_sessions, tenants
from couponry.store.tenant_repo import tenant_from_columns

s = console_sessions.c

# The session, its key's role and revocation, and its tenant: one round trip per page.
_FIND = (
    select(
        s.key_id,
        s.last_seen_at,
        api_keys.c.role,
        api_keys.c.revoked_at,
        tenants.c.id,
        tenants.c.name,
        tenants.c.currency,
        tenants.c.site_urls,
        tenants.c.admins,
        tenants.c.created_at,
    )
    .join(api_keys, api_keys.c.id == s.key_id)
    .join(tenants, tenants.c.id == s.tenant_id)
    .where(s.token_hash == bindparam("token_hash"))
)


@dataclass(frozen=True)
class StoredSession:
    tenant: Tenant
    key_id: str
    role: str
    key_revoked: bool
    last_seen_at: datetime


class ConsoleSessionRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def insert(self, *, token_hash: str, tenant_id: str, key_id: str, now: datetime) -> None:
        self.conn.execute(
            insert(console_sessions).values(
                token_hash=token_hash,
                tenant_id=tenant_id,
                key_id=key_id,
                created_at=now,
                last_seen_at=now,
            )
        )

    def find(self, token_hash: str) -> StoredSession | None:
        row = self.conn.execute(_FIND, {"token_hash": token_hash}).first()
        if row is None:
            return None
        tenant = tenant_from_columns(
            tenant_id=row.id,
            name=row.name,
            currency=row.currency,
            site_urls=row.site_urls,
            admins=row.admins,
            created_at=row.created_at,
        )
        return StoredSession(
            tenant=tenant,
            key_id=row.key_id,
            role=row.role,
            key_revoked=row.revoked_at is not None,
            last_seen_at=row.last_seen_at,
        )

    def touch(self, token_hash: str, now: datetime) -> None:
        self.conn.execute(
            update(console_sessions).where(s.token_hash == token_hash).values(last_seen_at=now)
        )

    def remove(self, token_hash: str) -> None:
        self.conn.execute(delete(console_sessions).where(s.token_hash == token_hash))

    def remove_idle(self, idle_before: datetime) -> None:
        """Sessions nobody can use any more (through ix_console_sessions_last_seen_at)."""
        self.conn.execute(delete(console_sessions).where(s.last_seen_at <= idle_before))
