"""A coupon's stats, read from its counters and its days (never from its redemptions)."""

from __future__ import annotations

from datetime import date

from sqlalchemy import Connection, bindparam, select

from couponry.domain.money import from_units
from couponry.domain.paging import looks_like_id
from couponry.domain.stats import CouponStats, Day
from couponry.store.tables import coupon_days, coupons

_c, _d = coupons.c, coupon_days.c
_COUNTERS = select(
    _c.times_used,
    _c.given_units,
    _c.pending_count,
    _c.held_count,
    _c.rolled_back_count,
    _c.rejected_count,
    _c.released_count,
    _c.codes_total,
    _c.codes_active,
    _c.codes_used,
).where(
    _c.tenant_id == bindparam("tenant_id"),
    _c.id == bindparam("coupon_id"),
    _c.deleted_at.is_(None),
)
# The primary key (coupon_id, day) serves it: at most 90 rows.
_DAYS = (
    select(_d.day, _d.redemptions, _d.discount_units)
    .where(
        _d.coupon_id == bindparam("coupon_id"),
        _d.tenant_id == bindparam("tenant_id"),
        _d.day >= bindparam("since"),
    )
    .order_by(_d.day)
)


def coupon_stats(
    conn: Connection, tenant_id: str, coupon_id: str, since: date
) -> CouponStats | None:
    """The live coupon's stats, with its days from `since` on; None when there is none."""
    if not looks_like_id(coupon_id):
        return None
    params = {"tenant_id": tenant_id, "coupon_id": coupon_id}
    row = conn.execute(_COUNTERS, params).first()
    if row is None:
        return None
    days = tuple(
        Day(d.day, d.redemptions, from_units(d.discount_units))
        for d in conn.execute(_DAYS, params | {"since": since})
    )
    return CouponStats(
        times_used=row.times_used,
        discount_total=from_units(row.given_units),
        pending=row.pending_count,
        held=row.held_count,
        rolled_back=row.rolled_back_count,
        rejected=row.rejected_count,
        released=row.released_count,
        codes_total=row.codes_total,
        codes_active=row.codes_active,
        codes_used=row.codes_used,
        days=days,
    )
