"""A coupon's stats (SPEC 10): any role may read them."""

from __future__ import annotations

from datetime import UTC, datetime

from couponry.domain.stats import CouponStats, first_day
from couponry.errors import CouponNotFound
from couponry.store.db import Database
from couponry.store.stats_repo import coupon_stats


def get_stats(db: Database, *, tenant_id: str, coupon_id: str, now: datetime) -> CouponStats:
    since = first_day(now.astimezone(UTC).date())
    with db.reader() as conn:
        found = coupon_stats(conn, tenant_id, coupon_id, since)
    if found is None:
        raise CouponNotFound()
    return found
