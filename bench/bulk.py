"""Bulk loading through the store (one INSERT ... SELECT), and keyset start keys to scan from."""

from __future__ import annotations

import dataclasses
import random
from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import bindparam, select, text

from couponry.domain.coupons import CouponFields
from couponry.domain.paging import encode_start_key
from couponry.store import codec
from couponry.store.db import Database
from couponry.store.tables import UTCDateTime, coupons

_PLACEHOLDER = "@@CODE@@"

_COLUMNS = (
    "id, tenant_id, code, code_normalized, is_active, coupon_type, entity_type, entity_id, "
    "times_used, redeemed, sys_locked, sys_version, sys_created_at, sys_last_modified_at, "
    "sys_created_by_id, sys_last_modified_by_id, body, credit_drawn_units"
)


def _body_template(tenant: str) -> str:
    fields = CouponFields(
        name=_PLACEHOLDER,
        code=_PLACEHOLDER,
        coupon_type="PERCENT",
        value_percent=Decimal(10),
        entity_type="SITE",
        entity_id=tenant,
    )
    return codec.dumps(dataclasses.asdict(fields))


def bulk_load_coupons(database_url: str, tenant: str, count: int) -> None:
    """`count` valid coupons in one statement; ids and codes derived from a row number."""
    db = Database.from_urls(database_url)
    prefix = f"{random.randrange(0xA000, 0xFFFF):04x}"
    code = "'S' || g"
    if db.sqlite:
        head = "WITH RECURSIVE seq(g) AS (SELECT 1 UNION ALL SELECT g + 1 FROM seq WHERE g < :n) "
        hexed, source = "printf('%012x', g)", "seq"
    else:
        head, hexed, source = "", "lpad(to_hex(g), 12, '0')", "generate_series(1, :n) AS g"
    ident = (
        f":prefix || '-' || substr({hexed}, 1, 4) || '-' || substr({hexed}, 5, 4) || '-' "
        f"|| substr({hexed}, 9, 4)"
    )
    sql = (
        f"{head}INSERT INTO coupons ({_COLUMNS}) "
        f"SELECT {ident}, :tenant, {code}, lower({code}), true, 'PERCENT', 'SITE', :tenant, "
        f"0, false, false, 1, :now, :now, 'bulk', 'bulk', replace(:body, :placeholder, {code}), 0 "
        f"FROM {source}"
    )
    query = text(sql).bindparams(bindparam("now", type_=UTCDateTime()))
    with db.transaction() as conn:
        conn.execute(
            query,
            {
                "n": count,
                "prefix": prefix,
                "tenant": tenant,
                "now": datetime.now(UTC),
                "body": _body_template(tenant),
                "placeholder": _PLACEHOLDER,
            },
        )
        # Each coupon's code in the tenant's namespace of codes, as the API writes it.
        conn.execute(
            text(
                "INSERT INTO coupon_codes (tenant_id, coupon_id, code, code_normalized, own, "
                "created_at) SELECT c.tenant_id, c.id, c.code, c.code_normalized, true, "
                "c.sys_created_at FROM coupons c WHERE c.tenant_id = :tenant AND NOT EXISTS "
                "(SELECT 1 FROM coupon_codes k WHERE k.coupon_id = c.id)"
            ),
            {"tenant": tenant},
        )
    with db.transaction() as conn:
        conn.execute(text("ANALYZE"))
    db.dispose()


def scan_keys(database_url: str, tenant: str, count: int) -> list[str]:
    """Start keys spread over the whole tenant, so pages come from everywhere in the table."""
    db = Database.from_urls(database_url)
    with db.reader() as conn:
        seqs = [
            row.seq
            for row in conn.execute(
                select(coupons.c.seq).where(coupons.c.tenant_id == tenant).order_by(coupons.c.seq)
            )
        ]
    db.dispose()
    if not seqs:
        return []
    picks = [random.choice(seqs) for _ in range(count)]
    return [encode_start_key(seq) for seq in picks]
