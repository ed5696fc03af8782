"""A coupon's stats (SPEC 10): what its counters say, as the REST dialect shows them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from couponry.domain.redemptions import money_text

DAYS = 90  # by_day covers the last 90 days in UTC, today included


@dataclass(frozen=True)
class Day:
    day: date
    redemptions: int
    discount_total: Decimal


@dataclass(frozen=True)
class CouponStats:
    times_used: int  # redemptions that hold a use: applied, pending and held
    discount_total: Decimal  # what those redemptions were given
    pending: int
    held: int
    rolled_back: int
    rejected: int
    released: int
    codes_total: int
    codes_active: int
    codes_used: int
    days: tuple[Day, ...]  # oldest first; only days that had redemptions


def first_day(today: date) -> date:
    """The oldest day `by_day` covers."""
    return today - timedelta(days=DAYS - 1)


def stats_view(stats: CouponStats, currency: str) -> dict[str, Any]:
    applied = stats.times_used - stats.pending - stats.held
    return {
        "times_used": stats.times_used,
        "discount_total": money_text(stats.discount_total, currency),
        "redemptions": {
            "applied": applied,
            "pending_approval": stats.pending,
            "held": stats.held,
            "rolled_back": stats.rolled_back,
            "rejected": stats.rejected,
            "released": stats.released,
        },
        "codes": {
            "total": stats.codes_total,
            "active": stats.codes_active,
            "used": stats.codes_used,
        },
        "by_day": [
            {
                "date": d.day.isoformat(),
                "redemptions": d.redemptions,
                "discount_total": money_text(d.discount_total, currency),
            }
            for d in stats.days
        ],
    }
