"""The stats chart: redemptions per day over SPEC 10's 90 days, as bars for inline SVG.

Drawn on the server so the page needs no script and no chart library.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from couponry.domain.stats import DAYS, CouponStats, first_day

WIDTH, HEIGHT = 720, 160  # the viewBox; the SVG scales to its box
_BOTTOM, _TOP = 20, 14  # room for the date labels below and the top value above
_GAP = 1


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    day: date
    count: int


@dataclass(frozen=True)
class Chart:
    bars: tuple[Bar, ...]  # only the days with redemptions
    peak: int
    first: date
    last: date
    width: int = WIDTH
    height: int = HEIGHT
    baseline: int = HEIGHT - _BOTTOM


def redemptions_chart(stats: CouponStats, today: date) -> Chart:
    start = first_day(today)
    slot = WIDTH / DAYS
    peak = max((d.redemptions for d in stats.days), default=0)
    room = HEIGHT - _BOTTOM - _TOP
    bars = []
    for day in stats.days:
        index = (day.day - start).days
        if not 0 <= index < DAYS or day.redemptions <= 0:
            continue
        height = max(1.0, room * day.redemptions / peak)
        bars.append(
            Bar(
                x=round(index * slot + _GAP / 2, 2),
                y=round(HEIGHT - _BOTTOM - height, 2),
                width=round(slot - _GAP, 2),
                height=round(height, 2),
                day=day.day,
                count=day.redemptions,
            )
        )
    return Chart(tuple(bars), peak, start, start + timedelta(days=DAYS - 1))
