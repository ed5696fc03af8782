"""CSRF tokens (SPEC 12): every form carries one, every POST is checked.

Signed in, the token is an HMAC of the session's token: tied to the session, never stored, and
not computable without the HttpOnly cookie. The sign-in form, before any session, carries a
random value that must match a cookie of its own (double submit); both cookies are
SameSite=Strict, so another site's form reaches us without them.
"""

from __future__ import annotations

import hashlib
import hmac

from couponry.errors import CsrfRefused

FIELD = "csrf_token"


def session_csrf(session_token: str) -> str:
    return hmac.new(session_token.encode("ascii"), b"console-csrf", hashlib.sha256).hexdigest()


def check(sent: object, expected: str | None) -> None:
    if not expected or not isinstance(sent, str) or not hmac.compare_digest(sent, expected):
        raise CsrfRefused()
