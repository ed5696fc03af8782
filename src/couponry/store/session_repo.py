"""EduBrite sessions: stored by hash, bounded per tenant."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, delete, insert, select, update

from couponry.store.tables import api_keys, sessions


class SessionRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def insert(
        self, *, id_hash: str, info_hash: str, tenant_id: str, key_id: str, now: datetime
    ) -> None:
        self.conn.execute(
            insert(sessions).values(
                id_hash=id_hash,
                info_hash=info_hash,
                tenant_id=tenant_id,
                key_id=key_id,
                created_at=now,
                last_seen_at=now,
            )
        )

    def find(self, id_hash: str) -> Row[Any] | None:
        """The session with its key's role and revocation, in one round trip."""
        query = (
            select(
                sessions.c.seq,
                sessions.c.info_hash,
                sessions.c.tenant_id,
                sessions.c.key_id,
                sessions.c.last_seen_at,
                api_keys.c.role,
                api_keys.c.revoked_at,
            )
            .join(api_keys, api_keys.c.id == sessions.c.key_id)
            .where(sessions.c.id_hash == id_hash)
        )
        return self.conn.execute(query).first()

    def touch(self, seq: int, now: datetime) -> None:
        self.conn.execute(update(sessions).where(sessions.c.seq == seq).values(last_seen_at=now))

    def remove(self, seq: int) -> None:
        self.conn.execute(delete(sessions).where(sessions.c.seq == seq))

    def trim(self, tenant_id: str, *, keep: int, idle_before: datetime) -> None:
        """Drop expired sessions, then the oldest beyond `keep`."""
        self.conn.execute(
            delete(sessions).where(
                sessions.c.tenant_id == tenant_id, sessions.c.last_seen_at <= idle_before
            )
        )
        newest = (
            select(sessions.c.seq)
            .where(sessions.c.tenant_id == tenant_id)
            .order_by(sessions.c.seq.desc())
            .limit(1)
            .offset(keep - 1)
        )
        cutoff = self.conn.execute(newest).scalar()
        if cutoff is not None:
            self.conn.execute(
                delete(sessions).where(sessions.c.tenant_id == tenant_id, sessions.c.seq < cutoff)
            )

    def count(self, tenant_id: str) -> int:
        rows = self.conn.execute(select(sessions.c.seq).where(sessions.c.tenant_id == tenant_id))
        return len(rows.all())
