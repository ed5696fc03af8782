"""EduBrite sessions: sign in with a key's two halves, then call with the two cookies."""

from __future__ import annotations

import hmac
from datetime import datetime

from couponry.domain.sessions import (
    IDLE_LIFETIME,
    MAX_PER_TENANT,
    is_expired,
    needs_touch,
    new_token,
    plausible_token,
    token_hash,
)
from couponry.errors import InvalidCredentials
from couponry.services.tenants import Principal, authenticate_parts
from couponry.store.db import Database
from couponry.store.session_repo import SessionRepository
from couponry.store.tenant_repo import TenantRepository


def open_session(
    db: Database, *, username: str, password: str, now: datetime
) -> tuple[str, str, Principal]:
    """Check the key (`username` = key id, `password` = secret) and start a session.

    Returns the SESSION_ID and SESSION_INFO cookie values (shown only now) and the principal.
    """
    principal = authenticate_parts(db, key_id=username.strip(), secret=password.strip())
    session_id, session_info = new_token(), new_token()
    with db.transaction() as conn:
        repo = SessionRepository(conn)
        repo.insert(
            id_hash=token_hash(session_id),
            info_hash=token_hash(session_info),
            tenant_id=principal.tenant.id,
            key_id=principal.key_id,
            now=now,
        )
        repo.trim(principal.tenant.id, keep=MAX_PER_TENANT, idle_before=now - IDLE_LIFETIME)
    return session_id, session_info, principal


def session_principal(
    db: Database, *, session_id: str | None, session_info: str | None, now: datetime
) -> Principal:
    """Who holds these cookies; InvalidCredentials when missing, unknown, expired or revoked."""
    if not plausible_token(session_id) or not plausible_token(session_info):
        raise InvalidCredentials("No session: connect with home.do first.")
    assert session_id is not None and session_info is not None
    with db.reader() as conn:
        row = SessionRepository(conn).find(token_hash(session_id))
        tenant = TenantRepository(conn).get(row.tenant_id) if row is not None else None
    if row is None or tenant is None:
        raise InvalidCredentials("Unknown session: connect again.")
    if not hmac.compare_digest(row.info_hash, token_hash(session_info)):
        raise InvalidCredentials("Unknown session: connect again.")
    if row.revoked_at is not None:
        raise InvalidCredentials("The key behind this session was revoked.")
    if is_expired(row.last_seen_at, now):
        with db.transaction() as conn:
            SessionRepository(conn).remove(row.seq)
        raise InvalidCredentials("The session expired: connect again.")
    if needs_touch(row.last_seen_at, now):
        with db.transaction() as conn:
            SessionRepository(conn).touch(row.seq, now)
    return Principal(tenant=tenant, role=row.role, key_id=row.key_id)


def count_sessions(db: Database, *, tenant_id: str) -> int:
    with db.reader() as conn:
        return SessionRepository(conn).count(tenant_id)
