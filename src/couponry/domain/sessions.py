"""EduBrite sessions: two random cookie values, of which only hashes are stored (SPEC 7.1)."""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import datetime, timedelta

IDLE_LIFETIME = timedelta(hours=24)
MAX_PER_TENANT = 200
# Refreshing last_seen_at on every call would turn each read into a write; a minute's slack
# on a 24-hour expiry costs nothing.
TOUCH_AFTER = timedelta(minutes=1)
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{20,100}$")


def new_token() -> str:
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("ascii")).hexdigest()


def plausible_token(token: str | None) -> bool:
    """Cookie values we could have issued; anything else is refused before any query."""
    return token is not None and _TOKEN.match(token) is not None


def is_expired(last_seen_at: datetime, now: datetime) -> bool:
    return now - last_seen_at >= IDLE_LIFETIME


def needs_touch(last_seen_at: datetime, now: datetime) -> bool:
    return now - last_seen_at >= TOUCH_AFTER
