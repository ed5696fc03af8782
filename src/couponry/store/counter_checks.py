"""For `couponry check`: the counters SPEC 10 adds, set beside the rows they count.

Each query returns only the rows where a counter and its rows disagree (or a limit is passed),
so a healthy database of millions of codes returns nothing.
"""

from __future__ import annotations

from sqlalchemy import Connection, and_, case, cast, func, or_, select

from couponry.domain.redemptions import HOLDING
from couponry.store.tables import coupon_codes, coupon_days, coupons, redemptions


def code_use_problems(conn: Connection, tenant_id: str | None) -> list[str]:
    """Campaign codes whose uses differ from the redemptions holding a use through them, or
    pass their max_uses."""
    r, k = redemptions.c, coupon_codes.c
    # The cast gives the lowered code the type (SQLite: the affinity) of the column it is
    # joined to, so SQLite can index the grouped rows by (coupon, code) instead of scanning a
    # coupon's used codes for each of its codes (minutes for a million).
    code_key = cast(func.lower(r.code), coupon_codes.c.code_normalized.type)
    held_query = select(
        r.coupon_id, code_key.label("code_normalized"), func.count().label("uses")
    ).where(r.status.in_(HOLDING))
    if tenant_id is not None:
        held_query = held_query.where(r.tenant_id == tenant_id)
    held = held_query.group_by(r.coupon_id, code_key).subquery()
    uses = func.coalesce(held.c.uses, 0)
    query = (
        select(k.coupon_id, k.code, k.times_used, k.max_uses, uses.label("held_uses"))
        .select_from(
            coupon_codes.outerjoin(
                held,
                and_(held.c.coupon_id == k.coupon_id, held.c.code_normalized == k.code_normalized),
            )
        )
        .where(
            k.own.is_(False),
            or_(k.times_used != uses, and_(k.max_uses.is_not(None), k.times_used > k.max_uses)),
        )
    )
    if tenant_id is not None:
        query = query.where(k.tenant_id == tenant_id)
    problems = []
    for row in conn.execute(query):
        where = f"coupon {row.coupon_id} code {row.code!r}"
        if row.times_used != row.held_uses:
            problems.append(
                f"{where}: counter says {row.times_used} uses, redemptions say {row.held_uses}"
            )
        if row.max_uses is not None and row.times_used > row.max_uses:
            problems.append(f"{where}: {row.times_used} uses exceed max_uses {row.max_uses}")
    return problems


def code_count_problems(conn: Connection, tenant_id: str | None) -> list[str]:
    """Live coupons whose counts of campaign codes (total, active, used) differ from their
    codes."""
    k, c = coupon_codes.c, coupons.c
    counted = (
        select(
            k.coupon_id,
            func.count().label("total"),
            func.sum(case((k.is_active.is_(True), 1), else_=0)).label("active"),
            func.sum(case((k.times_used > 0, 1), else_=0)).label("used"),
        )
        .where(k.own.is_(False))
        .group_by(k.coupon_id)
        .subquery()
    )
    kinds = ("total", "active", "used")
    counts = {kind: func.coalesce(counted.c[kind], 0).label(kind) for kind in kinds}
    query = (
        select(c.id, c.codes_total, c.codes_active, c.codes_used, *counts.values())
        .select_from(coupons.outerjoin(counted, counted.c.coupon_id == c.id))
        .where(
            c.deleted_at.is_(None),
            or_(*(c[f"codes_{kind}"] != counts[kind] for kind in kinds)),
        )
    )
    if tenant_id is not None:
        query = query.where(c.tenant_id == tenant_id)
    problems = []
    for row in conn.execute(query):
        for kind in kinds:
            kept, found = getattr(row, f"codes_{kind}"), getattr(row, kind)
            if kept != found:
                problems.append(f"coupon {row.id}: codes {kind} counted {kept}, codes say {found}")
    return problems


def day_count_problems(conn: Connection, tenant_id: str | None) -> list[str]:
    """Per coupon and UTC day: the count kept for stats against the redemptions made that
    day, both ways (a day counted without redemptions, redemptions of a day not counted)."""
    r, d = redemptions.c, coupon_days.c
    made_query = select(
        r.coupon_id,
        func.date(r.created_at).label("day"),
        func.count().label("made"),
        func.sum(r.discount_units).label("units"),
    )
    if tenant_id is not None:
        made_query = made_query.where(r.tenant_id == tenant_id)
    made = {
        (row.coupon_id, str(row.day)): (row.made, row.units)
        for row in conn.execute(made_query.group_by(r.coupon_id, func.date(r.created_at)))
    }
    kept_query = select(d.coupon_id, d.day, d.redemptions, d.discount_units)
    if tenant_id is not None:
        kept_query = kept_query.where(d.tenant_id == tenant_id)
    kept = {
        (row.coupon_id, row.day.isoformat()): (row.redemptions, row.discount_units)
        for row in conn.execute(kept_query)
    }
    problems = []
    for key in sorted(made.keys() | kept.keys()):
        if made.get(key, (0, 0)) != kept.get(key, (0, 0)):
            coupon_id, day = key
            problems.append(
                f"coupon {coupon_id} on {day}: counted (redemptions, discount units) "
                f"{kept.get(key, (0, 0))}, redemptions say {made.get(key, (0, 0))}"
            )
    return problems
