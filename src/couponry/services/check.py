"""`couponry check`: prove that counters and redemption records agree (SPEC 6.4's guarantee)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import select

from couponry.domain.money import to_units
from couponry.store.counter_checks import (
    code_count_problems,
    code_use_problems,
    day_count_problems,
)
from couponry.store.coupon_repo import own_code_problems
from couponry.store.db import Database
from couponry.store.redemption_repo import STATUS_COUNTERS, counts_by_coupon, user_counts
from couponry.store.tables import redemptions


@dataclass
class CheckReport:
    coupons: int = 0
    redemptions: int = 0
    user_counters: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def check_invariants(db: Database, *, tenant_id: str | None = None) -> CheckReport:
    """Every coupon's counters (uses, credit, budget, redemptions by status and by day, its
    campaign codes) and per-user counters against the rows they count, every campaign code's
    uses against its redemptions, and every code in the tenant's namespace of codes."""
    report = CheckReport()
    with db.reader() as conn:
        for row in counts_by_coupon(conn, tenant_id):
            report.coupons += 1
            _check_coupon(row, report)
        for row in user_counts(conn, tenant_id):
            report.user_counters += 1
            where = f"coupon {row.coupon_id} user {row.user_id!r}"
            if row.uses != row.held_uses:
                report.problems.append(
                    f"{where}: counter says {row.uses} uses, redemptions say {row.held_uses}"
                )
            if row.max_uses_per_user is not None and row.uses > row.max_uses_per_user:
                report.problems.append(
                    f"{where}: {row.uses} uses exceed max_uses_per_user {row.max_uses_per_user}"
                )
        for problems in (
            own_code_problems,
            code_use_problems,
            code_count_problems,
            day_count_problems,
        ):
            report.problems += problems(conn, tenant_id)
        query = select(
            redemptions.c.id,
            redemptions.c.discount_units,
            redemptions.c.credit_units,
            redemptions.c.lines,
        )
        if tenant_id is not None:
            query = query.where(redemptions.c.tenant_id == tenant_id)
        for r in conn.execute(query):
            report.redemptions += 1
            lines = sum(to_units(Decimal(x["discount"])) for x in json.loads(r.lines))
            if lines != r.discount_units:
                report.problems.append(f"redemption {r.id}: lines add up to {lines}, not the total")
            if r.credit_units > r.discount_units:
                report.problems.append(f"redemption {r.id}: drew more credit than it discounted")
    return report


def _check_coupon(c: Any, report: CheckReport) -> None:
    where = f"coupon {c.id} ({c.tenant_id}/{c.code})"
    times_used, held = c.times_used, c.held_uses
    if times_used != held:
        report.problems.append(
            f"{where}: times_used {times_used}, redemptions holding a use {held}"
        )
    limit = c.usage_limit
    if limit is not None and times_used > limit:
        report.problems.append(f"{where}: times_used {times_used} exceeds usage_limit {limit}")
    drawn, held_credit = c.credit_drawn_units, int(c.held_credit)
    if drawn != held_credit:
        report.problems.append(f"{where}: credit drawn {drawn}, redemptions hold {held_credit}")
    remaining, value = c.remaining_units, c.value_units
    if remaining is not None:
        if remaining < 0:
            report.problems.append(f"{where}: remaining credit is negative ({remaining})")
        expected = max(0, (value or 0) - drawn)
        if remaining != expected:
            report.problems.append(
                f"{where}: remaining {remaining} units, value less drawn is {expected}"
            )
    given, held_given, budget = c.given_units, int(c.held_given), c.budget_units
    if given != held_given:
        report.problems.append(
            f"{where}: gave {given} units, redemptions holding hold {held_given}"
        )
    if budget is not None and given > budget:
        report.problems.append(f"{where}: gave {given} units, above its budget {budget}")
    for status, counter in STATUS_COUNTERS.items():
        kept, found = getattr(c, counter), int(getattr(c, f"n_{status}"))
        if kept != found:
            report.problems.append(f"{where}: {kept} {status} counted, redemptions say {found}")
