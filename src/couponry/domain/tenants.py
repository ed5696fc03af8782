"""Tenants and API keys: identifiers, roles and the key format (SPEC 2)."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime

from couponry.domain.fields import Problems, check_text

TENANT_ID = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}$")
ROLES = ("admin", "checkout", "read")
_HOST = re.compile(
    r"^(?=.{1,253}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*(:\d{1,5})?$"
)
_CURRENCY = re.compile(r"^[A-Z]{3}$")
_USERNAME_MAX = 200
_KEY_ID = re.compile(r"^k[0-9a-f]{16}$")


@dataclass(frozen=True)
class Tenant:
    id: str
    name: str
    currency: str
    site_urls: tuple[str, ...]
    admins: tuple[str, ...]
    created_at: datetime

    def is_admin(self, username: str) -> bool:
        return username in self.admins


@dataclass(frozen=True)
class ApiKeyRecord:
    id: str
    tenant_id: str
    role: str
    secret_hash: str
    created_at: datetime
    revoked_at: datetime | None = None


def normalise_site_url(value: str) -> str:
    """`https://Example.org/path` and `example.org` name the same site: keep the host."""
    text = value.strip().lower()
    if "://" in text:
        text = text.split("://", 1)[1]
    return text.split("/", 1)[0]


def check_tenant(
    *, tenant_id: str, name: str, site_urls: list[str], admins: list[str], currency: str
) -> tuple[str, tuple[str, ...], tuple[str, ...], str]:
    """Validate a new tenant; returns (name, site_urls, admins, currency) cleaned."""
    problems = Problems()
    if not TENANT_ID.match(tenant_id):
        problems.add("id", "must match ^[a-z0-9][a-z0-9-]{1,62}$")
    clean_name = check_text(name, "name", problems, max_len=200, min_len=1)
    hosts = []
    for index, url in enumerate(site_urls):
        host = normalise_site_url(url)
        if not _HOST.match(host):
            problems.add(f"site_urls[{index}]", "must be a host name such as example.org")
        hosts.append(host)
    for index, admin in enumerate(admins):
        if not admin or "|" in admin:
            problems.add(f"admins[{index}]", "must be a non-empty username without '|'")
        else:
            check_text(admin, f"admins[{index}]", problems, max_len=_USERNAME_MAX, min_len=1)
    code = currency.upper()
    if not _CURRENCY.match(code):
        problems.add("currency", "must be an ISO 4217 code such as USD")
    problems.raise_if_any()
    assert clean_name is not None
    return clean_name, tuple(dict.fromkeys(hosts)), tuple(dict.fromkeys(admins)), code


def new_key_secret() -> tuple[str, str]:
    """A key id and a secret; the key a client uses is `<key_id>.<secret>`."""
    return "k" + secrets.token_hex(8), secrets.token_urlsafe(32)


def hash_secret(secret: str) -> str:
    """Secrets are 256 random bits, so one SHA-256 is enough (no password stretching needed)."""
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def secret_matches(secret: str, secret_hash: str) -> bool:
    return hmac.compare_digest(hash_secret(secret), secret_hash)


def valid_key_id(key_id: str) -> bool:
    return _KEY_ID.match(key_id) is not None


def split_key(key: str) -> tuple[str, str] | None:
    """`<key_id>.<secret>` or None when it is not shaped like a key."""
    key_id, dot, secret = key.strip().partition(".")
    if not dot or not valid_key_id(key_id) or not secret or len(key) > 200:
        return None
    return key_id, secret
