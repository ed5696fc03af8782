"""Console sessions (SPEC 12): an admin key signs in once; the browser then holds a token.

Only a hash of the token is stored. Every page reads the session with its key, so a revoked
key ends its sessions at once; a session idle for 12 hours ends too.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from couponry.domain.sessions import needs_touch, new_token, plausible_token, token_hash
from couponry.errors import RoleForbidden, SessionEnded
from couponry.services.tenants import Principal, authenticate
from couponry.store.console_session_repo import ConsoleSessionRepository
from couponry.store.db import Database

IDLE_LIFETIME = timedelta(hours=12)


def sign_in(db: Database, *, key: str, now: datetime) -> tuple[str, Principal]:
    """A new session's token (shown only now) for an admin key.

    InvalidCredentials for a bad, unknown or revoked key; RoleForbidden for another role.
    """
    principal = authenticate(db, key=key.strip())
    if principal.role != "admin":
        raise RoleForbidden("Only an admin key may sign in to the console.")
    token = new_token()
    with db.transaction() as conn:
        repo = ConsoleSessionRepository(conn)
        repo.remove_idle(now - IDLE_LIFETIME)
        repo.insert(
            token_hash=token_hash(token),
            tenant_id=principal.tenant.id,
            key_id=principal.key_id,
            now=now,
        )
    return token, principal


def session_principal(db: Database, *, token: str | None, now: datetime) -> Principal:
    """Who holds this session token; SessionEnded when there is no live session behind it."""
    if token is None or not plausible_token(token):
        raise SessionEnded()
    digest = token_hash(token)
    with db.reader() as conn:
        found = ConsoleSessionRepository(conn).find(digest)
    if found is None:
        raise SessionEnded()
    if found.key_revoked or now - found.last_seen_at >= IDLE_LIFETIME:
        with db.transaction() as conn:
            ConsoleSessionRepository(conn).remove(digest)
        raise SessionEnded()
    if needs_touch(found.last_seen_at, now):
        # Once a minute at most: a page view is a read, not a write.
        with db.transaction() as conn:
            ConsoleSessionRepository(conn).touch(digest, now)
    return Principal(tenant=found.tenant, role=found.role, key_id=found.key_id)


def sign_out(db: Database, *, token: str | None) -> None:
    """End the session (nothing happens for a token that names none)."""
    if token is None or not plausible_token(token):
        return
    with db.transaction() as conn:
        ConsoleSessionRepository(conn).remove(token_hash(token))
