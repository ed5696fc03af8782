"""The reads on the hot paths, each one statement through `AsyncDatabase`.

A GET reads the caller's key, its tenant and the coupon in one round trip: measured on this
machine, a second statement (and a second pool checkout) was a third of a GET's time. Every
other REST request reads the key and its tenant alone, in one statement, before its handler.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from couponry.domain.coupons import Coupon
from couponry.domain.paging import looks_like_id
from couponry.domain.tenants import ApiKeyRecord, Tenant
from couponry.store.async_db import AsyncDatabase, Query
from couponry.store.coupon_repo import COLUMNS, coupon_from_columns, coupon_view_from_columns

# The columns a coupon is read from, named once (in coupon_repo).
COUPON_COLUMNS = tuple(column.name for column in COLUMNS)
_INSTANTS = frozenset(
    {
        "sys_created_at",
        "sys_last_modified_at",
        "revoked_at",
        "key_created_at",
        "tenant_created_at",
        "deleted_at",
    }
)


# The key's and its tenant's columns, as `key_and_tenant` reads them.
_KEY_AND_TENANT_COLUMNS = """
        k.tenant_id AS key_tenant_id, k.role, k.secret_hash, k.revoked_at,
        k.created_at AS key_created_at,
        t.name AS tenant_name, t.currency, t.site_urls, t.admins,
        t.created_at AS tenant_created_at"""


def key_and_coupon(coupon_match: str) -> Query:
    """The caller's key, its tenant and one live coupon (`coupon_match`, e.g. by id) at once.

    The coupon joins on the key's own tenant *and* the tenant in the path: a key of another
    tenant gets its 403 and never a row of the path's tenant.
    """
    return Query(
        f"""
        SELECT {_KEY_AND_TENANT_COLUMNS},
               {", ".join(f"c.{name}" for name in COUPON_COLUMNS)}
        FROM api_keys k
        JOIN tenants t ON t.id = k.tenant_id
        LEFT JOIN coupons c
          ON c.tenant_id = k.tenant_id AND c.tenant_id = :tenant_id
         AND {coupon_match} AND c.deleted_at IS NULL
        WHERE k.id = :key_id
        """
    )


def key_and_coupon_by_code() -> Query:
    """The caller's key, its tenant, and the live coupon that has the code `:code`
    (normalised) among the tenant's codes (its own or a campaign code), with that code's
    state (`coupon_repo.typed_code`), in one statement: every live code of a tenant is a row
    of `coupon_codes` (docs/campaigns.md)."""
    return Query(
        f"""
        SELECT {_KEY_AND_TENANT_COLUMNS},
               {", ".join(f"c.{name}" for name in COUPON_COLUMNS)},
               cc.code AS typed_code, cc.own AS typed_own, cc.is_active AS typed_active,
               cc.max_uses AS typed_max_uses, cc.times_used AS typed_uses
        FROM api_keys k
        JOIN tenants t ON t.id = k.tenant_id
        LEFT JOIN coupon_codes cc
          ON cc.tenant_id = k.tenant_id AND cc.tenant_id = :tenant_id
         AND cc.code_normalized = :code
        LEFT JOIN coupons c
          ON c.id = cc.coupon_id AND c.tenant_id = cc.tenant_id AND c.deleted_at IS NULL
        WHERE k.id = :key_id
        """
    )


KEY_AND_COUPON = key_and_coupon("c.id = :coupon_id")
# Read on every request (no cache): a revoked key is refused on the very next one.
KEY_AND_TENANT = Query(
    f"""
    SELECT {_KEY_AND_TENANT_COLUMNS}
    FROM api_keys k
    JOIN tenants t ON t.id = k.tenant_id
    WHERE k.id = :key_id
    """
)


def instant(value: Any) -> datetime | None:
    """Naive UTC as stored (SQLite hands back text) -> aware UTC, as the tables' type does."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    assert isinstance(value, datetime)
    return value.replace(tzinfo=UTC)


@lru_cache(maxsize=256)
def _text_list(stored: str) -> tuple[str, ...]:
    """A tenant's stored JSON list (its site URLs, its admins), read once per text: every
    request reads its tenant, and tenants rarely change."""
    return tuple(json.loads(stored))


def aware(value: Any) -> datetime:
    """`instant` of a column that is never NULL."""
    made = instant(value)
    assert made is not None
    return made


class Columns:
    """Attribute access over a driver's row, with instants made aware."""

    __slots__ = ("_row",)

    def __init__(self, row: Any) -> None:
        self._row = row

    def __getattr__(self, name: str) -> Any:
        value = self._row[name]
        return instant(value) if name in _INSTANTS else value


async def key_with_coupon_view(
    adb: AsyncDatabase, *, key_id: str, tenant_id: str, coupon_id: str
) -> tuple[ApiKeyRecord, Tenant, dict[str, Any] | None] | None:
    """The key, its tenant, and the live coupon's view (None when there is none) in one
    statement; None for an unknown key id."""
    params = {
        "key_id": key_id,
        "tenant_id": tenant_id,
        # An id we could not have made names nothing: match no row rather than send it.
        "coupon_id": coupon_id if looks_like_id(coupon_id) else "",
    }
    row = await adb.fetchrow(KEY_AND_COUPON, params)
    if row is None:
        return None
    key, tenant = key_and_tenant(key_id, row)
    view = coupon_view_from_columns(row, instant) if row["id"] is not None else None
    return key, tenant, view


async def key_with_tenant(adb: AsyncDatabase, *, key_id: str) -> tuple[ApiKeyRecord, Tenant] | None:
    """The key and its tenant in one statement, or None for an unknown key id."""
    row = await adb.fetchrow(KEY_AND_TENANT, {"key_id": key_id})
    return None if row is None else key_and_tenant(key_id, row)


def key_tenant_coupon(key_id: str, row: Any) -> tuple[ApiKeyRecord, Tenant, Coupon | None]:
    """The key, its tenant and the coupon (None when the join found none) of one row."""
    key, tenant = key_and_tenant(key_id, row)
    coupon = coupon_from_columns(row, instant) if row["id"] is not None else None
    return key, tenant, coupon


def key_and_tenant(key_id: str, row: Any) -> tuple[ApiKeyRecord, Tenant]:
    """The key and its tenant of one row (read with `_KEY_AND_TENANT_COLUMNS`)."""
    tenant_id = row["key_tenant_id"]
    key = ApiKeyRecord(
        id=key_id,
        tenant_id=tenant_id,
        role=row["role"],
        secret_hash=row["secret_hash"],
        created_at=aware(row["key_created_at"]),
        revoked_at=instant(row["revoked_at"]),
    )
    tenant = Tenant(
        id=tenant_id,
        name=row["tenant_name"],
        currency=row["currency"],
        site_urls=_text_list(row["site_urls"]),
        admins=_text_list(row["admins"]),
        created_at=aware(row["tenant_created_at"]),
    )
    return key, tenant
