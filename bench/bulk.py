"""Bulk loading through the store (one INSERT ... SELECT), and keyset start keys to scan from."""

from __future__ import annotations

import dataclasses
import random
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, Date, bindparam, cast, func, insert, select, text, update

from couponry.domain.coupons import CouponFields
from couponry.domain.paging import encode_start_key
from couponry.domain.redemptions import HOLDING
from couponry.store import codec
from couponry.store.db import Database
from couponry.store.redemption_repo import STATUS_COUNTERS
from couponry.store.tables import (
    UTCDateTime,
    coupon_days,
    coupon_user_uses,
    coupons,
    redemptions,
)

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


_REDEMPTION_COLUMNS = (
    "id, tenant_id, coupon_id, code, user_id, status, access, membership_status, "
    "discount_units, credit_units, lines, discount_line, idempotency_key, approved_by, "
    "approved_at, created_at, updated_at"
)
# Of every 100 redemptions: 1 pending approval, 1 rejected, 2 rolled back, 96 applied.
_STATUS_OF_ROW = (
    "CASE g % 100 WHEN 0 THEN 'pending_approval' WHEN 1 THEN 'rejected' "
    "WHEN 2 THEN 'rolled_back' WHEN 3 THEN 'rolled_back' ELSE 'applied' END"
)


def bulk_load_redemptions(
    database_url: str,
    *,
    tenant: str,
    coupon_id: str,
    code: str,
    count: int,
    discount_units: int,
    days: int,
    users: int = 1_000,
) -> None:
    """`count` redemptions of one coupon (by its own `code`, `discount_units` each, one cart
    line) in one statement, made evenly over the last `days` days, oldest first; then the
    coupon's counters, its days and its users' uses set from them, as the claims would have
    kept them, so `couponry check` agrees. The coupon must have had no redemptions before."""
    db = Database.from_urls(database_url)
    now = datetime.now(UTC)
    step = days * 86_400 / count  # seconds between two redemptions
    prefix = f"{random.randrange(0xA000, 0xFFFF):04x}"
    if db.sqlite:
        head = "WITH RECURSIVE seq(g) AS (SELECT 1 UNION ALL SELECT g + 1 FROM seq WHERE g < :n) "
        hexed, source = "printf('%012x', g)", "seq"
        # As SQLAlchemy stores an instant on SQLite: naive UTC text with microseconds.
        made = "strftime('%Y-%m-%d %H:%M:%S', :epoch - (:n - g) * :step, 'unixepoch') || '.000000'"
    else:
        head, hexed, source = "", "lpad(to_hex(g), 12, '0')", "generate_series(1, :n) AS g"
        made = "CAST(:now AS timestamp) - ((:n - g) * :step) * interval '1 second'"
    ident = (
        f":prefix || '-' || substr({hexed}, 1, 4) || '-' || substr({hexed}, 5, 4) || '-' "
        f"|| substr({hexed}, 9, 4)"
    )
    sql = (
        f"{head}INSERT INTO redemptions ({_REDEMPTION_COLUMNS}) "
        f"SELECT {ident}, :tenant, :coupon_id, :code, 'u-' || (g % :users), {_STATUS_OF_ROW}, "
        f"'full', NULL, :units, 0, :lines, NULL, NULL, NULL, NULL, {made}, {made} "
        f"FROM {source}"
    )
    query = text(sql)
    if not db.sqlite:
        query = query.bindparams(bindparam("now", type_=UTCDateTime()))
    amount = Decimal(discount_units) / 10_000
    with db.transaction() as conn:
        conn.execute(
            query,
            {
                "n": count,
                "prefix": prefix,
                "tenant": tenant,
                "coupon_id": coupon_id,
                "code": code,
                "users": users,
                "units": discount_units,
                "lines": f'[{{"line_id": "1", "discount": "{amount:.2f}"}}]',
                "now": now,
                "epoch": now.timestamp(),
                "step": step,
            },
        )
        _count_redemptions(conn, coupon_id, sqlite=db.sqlite)
    with db.transaction() as conn:
        conn.execute(text("ANALYZE"))
    db.dispose()


def _count_redemptions(conn: Connection, coupon_id: str, *, sqlite: bool) -> None:
    """The coupon's counters, days and users' uses from its redemptions (bulk_load_redemptions)."""
    r = redemptions.c
    mine = r.coupon_id == coupon_id
    holding = r.status.in_(HOLDING)

    def counted(*where: Any) -> Any:
        return select(func.count()).where(mine, *where).scalar_subquery()

    given = select(func.coalesce(func.sum(r.discount_units), 0)).where(mine, holding)
    conn.execute(
        update(coupons)
        .where(coupons.c.id == coupon_id)
        .values(
            times_used=counted(holding),
            given_units=given.scalar_subquery(),
            redeemed=True,
            **{column: counted(r.status == status) for status, column in STATUS_COUNTERS.items()},
        )
    )
    # The UTC day each was made, whatever its status now (as the claims count them).
    day = func.date(r.created_at) if sqlite else cast(r.created_at, Date)
    conn.execute(
        insert(coupon_days).from_select(
            ["coupon_id", "day", "tenant_id", "redemptions", "discount_units"],
            select(r.coupon_id, day, r.tenant_id, func.count(), func.sum(r.discount_units))
            .where(mine)
            .group_by(r.coupon_id, day, r.tenant_id),
        )
    )
    conn.execute(
        insert(coupon_user_uses).from_select(
            ["coupon_id", "user_id", "tenant_id", "uses"],
            select(r.coupon_id, r.user_id, r.tenant_id, func.count())
            .where(mine, holding)
            .group_by(r.coupon_id, r.user_id, r.tenant_id),
        )
    )


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
