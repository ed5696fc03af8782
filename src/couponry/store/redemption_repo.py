"""Redemptions and the claims behind them: each claim is ONE conditional statement.

A use is claimed with `UPDATE coupons ... WHERE times_used < usage_limit` (and, for a credit,
`remaining_units > 0`, drawing what is left up to what the cart wants); a per-user use with an
upsert whose update only happens while `uses < max_uses_per_user`. Either changes exactly one
row or none, so no two requests can both take the last use, on SQLite or PostgreSQL, in one
process or many. Never replace these with a read followed by a write.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from functools import lru_cache
from typing import Any

from sqlalchemy import (
    BigInteger,
    Connection,
    Date,
    Integer,
    Row,
    and_,
    bindparam,
    case,
    func,
    insert,
    literal,
    select,
    text,
    update,
)

from couponry.domain.discounts import LineDiscount
from couponry.domain.money import from_units, to_units
from couponry.domain.paging import looks_like_id
from couponry.domain.redemptions import (
    HELD,
    HOLDING,
    REDEEMED,
    REFUSED,
    Redemption,
    StoredOutcome,
)
from couponry.store.tables import (
    UTCDateTime,
    coupon_user_uses,
    coupons,
    idempotency_keys,
    redemptions,
)


def _row_to_redemption(row: Row[Any]) -> Redemption:
    lines = tuple(LineDiscount(x["line_id"], Decimal(x["discount"])) for x in json.loads(row.lines))
    discount_line = None
    if row.discount_line is not None:
        raw = json.loads(row.discount_line)
        discount_line = {"product_id": raw["product_id"], "amount": Decimal(raw["amount"])}
    return Redemption(
        id=row.id,
        tenant_id=row.tenant_id,
        coupon_id=row.coupon_id,
        code=row.code,
        user_id=row.user_id,
        status=row.status,
        access=row.access,
        membership_status=row.membership_status,
        discount_total=from_units(row.discount_units),
        credit=from_units(row.credit_units),
        lines=lines,
        discount_line=discount_line,
        idempotency_key=row.idempotency_key,
        approved_by=row.approved_by,
        approved_at=row.approved_at,
        created_at=row.created_at,
        updated_at=row.updated_at,
        hold_expires_at=row.hold_expires_at,
        checkout_id=row.checkout_id,
    )


# The claims, built once (composing them per call cost more CPU than running them).
_c = coupons.c
# (Bind names may not be column names in an UPDATE: hence the b_ prefix.)
_ONE_COUPON = (_c.tenant_id == bindparam("b_tenant"), _c.id == bindparam("b_coupon"))
# A claim holds only while the coupon is as the redemption read it (its rules, limits,
# budget, code): any change bumps sys_version, and then the claim takes nothing.
_AS_READ = _c.sys_version == bindparam("b_version", type_=Integer())
_HAS_USE_LEFT = (
    _c.deleted_at.is_(None),
    _c.usage_limit.is_(None) | (_c.times_used < _c.usage_limit),
)
_given = bindparam("b_given", type_=BigInteger())
_pending = bindparam("b_pending", type_=Integer())  # 1 when the redemption waits for approval
_held = bindparam("b_held", type_=Integer())  # 1 when the redemption is a hold
_first_code_use = bindparam("b_first_code_use", type_=Integer())  # 1: a code's first use
_COUNTED_CLAIM = {
    "times_used": _c.times_used + 1,
    "redeemed": True,
    "pending_count": _c.pending_count + _pending,
    "held_count": _c.held_count + _held,
    "codes_used": _c.codes_used + _first_code_use,
}
_CLAIM = (
    update(coupons)
    .where(*_ONE_COUPON, _AS_READ, *_HAS_USE_LEFT)
    .values(**_COUNTED_CLAIM, given_units=_c.given_units + _given)
    .returning(_c.times_used)
)
_want = bindparam("want", type_=BigInteger())
# A draw takes what the cart wants, capped by the credit left (TOTAL_AMOUNT) and by the budget
# left (SPEC 10). Every SET expression reads the row as it was, so `draw` is the same in each.
_budget_left = _c.budget_units - _c.given_units
_capped = case(
    (and_(_c.budget_units.is_not(None), _budget_left < _want), _budget_left), else_=_want
)
_draw = case(
    (and_(_c.remaining_units.is_not(None), _c.remaining_units < _capped), _c.remaining_units),
    else_=_capped,
)
_CLAIM_DRAW = (
    update(coupons)
    .where(
        *_ONE_COUPON,
        _AS_READ,
        *_HAS_USE_LEFT,
        _c.remaining_units.is_(None) | (_c.remaining_units > 0),
        _c.budget_units.is_(None) | (_c.given_units < _c.budget_units),
    )
    .values(
        **_COUNTED_CLAIM,
        credit_drawn_units=_c.credit_drawn_units
        + case((_c.remaining_units.is_(None), literal(0)), else_=_draw),
        remaining_units=_c.remaining_units - _draw,  # stays NULL without a credit
        given_units=_c.given_units + _draw,
        last_draw_units=_draw,
    )
    .returning(_c.last_draw_units)
)
_credit = bindparam("credit", type_=BigInteger())
_drawn_after = _c.credit_drawn_units - _credit
_GIVE_BACK = (
    update(coupons)
    .where(*_ONE_COUPON)
    .values(
        credit_drawn_units=_c.credit_drawn_units
        + case((_c.remaining_units.is_(None), literal(0)), else_=-_credit),
        remaining_units=_c.remaining_units + _credit,
        given_units=_c.given_units - _credit,
    )
)
# Which counter a redemption in each status is counted in (applied ones are counted by
# times_used less the pending and held, so they need none).
STATUS_COUNTERS = {
    "pending_approval": "pending_count",
    "held": "held_count",
    "rolled_back": "rolled_back_count",
    "rejected": "rejected_count",
    "released": "released_count",
}


def _moved_counts(source: str | None, target: str | None) -> dict[str, Any]:
    """The SET expressions that move one redemption from `source`'s counter to `target`'s."""
    values: dict[str, Any] = {}
    if source in STATUS_COUNTERS:
        name = STATUS_COUNTERS[source]
        values[name] = _c[name] - 1
    if target in STATUS_COUNTERS:
        name = STATUS_COUNTERS[target]
        values[name] = _c[name] + 1
    return values


@lru_cache(maxsize=32)
def _release(source: str | None, target: str | None) -> Any:
    """Give a use, its credit, its discount and its code's first use back; and count the
    redemption's move (None, None: a claim undone in the transaction that made it)."""
    return (
        update(coupons)
        .where(*_ONE_COUPON)
        .values(
            times_used=_c.times_used - 1,
            credit_drawn_units=_drawn_after,
            remaining_units=case(
                (_c.remaining_units.is_(None), None),
                (_c.value_units - _drawn_after > 0, _c.value_units - _drawn_after),
                else_=literal(0),
            ),
            given_units=_c.given_units - _given,
            codes_used=_c.codes_used - bindparam("b_code_freed", type_=Integer()),
            **_moved_counts(source, target),
        )
    )


@lru_cache(maxsize=32)
def _count_move(source: str, target: str) -> Any:
    return update(coupons).where(*_ONE_COUPON).values(**_moved_counts(source, target))


# A campaign code's use: one conditional statement, as the coupon's (SPEC 10).
_CLAIM_CODE = text(
    "UPDATE coupon_codes SET times_used = times_used + 1, last_used_at = :now "
    "WHERE tenant_id = :tenant_id AND code_normalized = :code AND coupon_id = :coupon_id "
    "AND NOT own AND is_active AND (max_uses IS NULL OR times_used < max_uses) "
    "RETURNING times_used"
).bindparams(bindparam("now", type_=UTCDateTime()))
_RELEASE_CODE = text(
    "UPDATE coupon_codes SET times_used = times_used - 1 "
    "WHERE tenant_id = :tenant_id AND code_normalized = :code AND coupon_id = :coupon_id "
    "AND NOT own AND times_used > 0 RETURNING times_used"
)
# Redemptions made per coupon and day, whatever becomes of them (stats).
_COUNT_DAY = text(
    "INSERT INTO coupon_days (coupon_id, day, tenant_id, redemptions, discount_units) "
    "VALUES (:coupon_id, :day, :tenant_id, 1, :units) "
    "ON CONFLICT (coupon_id, day) DO UPDATE SET redemptions = coupon_days.redemptions + 1, "
    "discount_units = coupon_days.discount_units + excluded.discount_units"
).bindparams(bindparam("day", type_=Date()))
_INSERT = insert(redemptions)
# INSERT ... ON CONFLICT is spelled the same by SQLite and PostgreSQL; as text it is also
# compiled once (SQLAlchemy cannot cache its dialect-specific upsert constructs).
_UPSERT_USE = (
    "INSERT INTO coupon_user_uses (coupon_id, user_id, tenant_id, uses) "
    "VALUES (:coupon_id, :user_id, :tenant_id, 1) "
    "ON CONFLICT (coupon_id, user_id) DO UPDATE SET uses = coupon_user_uses.uses + 1 "
)
_CLAIM_USER = text(_UPSERT_USE + "RETURNING uses")
_CLAIM_USER_LIMITED = text(_UPSERT_USE + "WHERE coupon_user_uses.uses < :limit RETURNING uses")
_RESERVE_KEY = text(
    "INSERT INTO idempotency_keys "
    "(tenant_id, key, request_hash, outcome, response_body, created_at) "
    "VALUES (:tenant_id, :key, :request_hash, 0, '', :created_at) "
    "ON CONFLICT (tenant_id, key) DO NOTHING RETURNING key"
).bindparams(bindparam("created_at", type_=UTCDateTime()))


@dataclass(frozen=True)
class KeyRecord:
    """An Idempotency-Key's row: its first request's hash, and what that request came to."""

    request_hash: str
    stored: StoredOutcome  # IN_PROGRESS until the first request's transaction commits


_LEGACY_ENVELOPE = ('{"error":', "}")


def stored_outcome(outcome: int, body: str) -> StoredOutcome:
    """A row's outcome and document as the StoredOutcome they record.

    Rows written before migration 0004 held the HTTP reply itself: an HTTP status (>= 100)
    where `outcome` now is, and the body as it was sent: 201 with the redemption's view, or a
    refusal's status with `{"error":<document>}`. They read as REDEEMED with the view, or
    REFUSED with the document inside the envelope, which the web layer wraps again
    (web/errors.py: envelope_text) with the status of its code: the same status and bytes.
    Keys are kept 48 hours, so no such row outlives the upgrade by more than that.
    """
    if outcome < 100:
        return StoredOutcome(outcome, body)
    if outcome == 201:
        return StoredOutcome(REDEEMED, body)
    head, tail = _LEGACY_ENVELOPE
    if not (body.startswith(head) and body.endswith(tail)):
        raise ValueError(f"an idempotency key's stored reply has an unknown shape ({outcome})")
    return StoredOutcome(REFUSED, body[len(head) : -len(tail)])


def redemption_row(r: Redemption, tenant_id: str) -> dict[str, Any]:
    """A redemption as its row (instants aware: each driver's path stores them naive UTC)."""
    discount_line = (
        None
        if r.discount_line is None
        else json.dumps(
            {"product_id": r.discount_line["product_id"], "amount": str(r.discount_line["amount"])}
        )
    )
    return {
        "id": r.id,
        "tenant_id": tenant_id,
        "coupon_id": r.coupon_id,
        "code": r.code,
        "user_id": r.user_id,
        "status": r.status,
        "access": r.access,
        "membership_status": r.membership_status,
        "discount_units": to_units(r.discount_total),
        "credit_units": to_units(r.credit),
        "lines": json.dumps([{"line_id": x.line_id, "discount": str(x.discount)} for x in r.lines]),
        "discount_line": discount_line,
        "idempotency_key": r.idempotency_key,
        "approved_by": r.approved_by,
        "approved_at": r.approved_at,
        "created_at": r.created_at,
        "updated_at": r.updated_at,
        "hold_expires_at": r.hold_expires_at,
        "checkout_id": r.checkout_id,
    }


class RedemptionRepository:
    def __init__(self, conn: Connection, tenant_id: str) -> None:
        self.conn = conn
        self.tenant_id = tenant_id

    # --- claims ----------------------------------------------------------------------------

    def claim_use(
        self,
        coupon_id: str,
        *,
        version: int,
        want_units: int | None,
        given_units: int = 0,
        pending: bool = False,
        held: bool = False,
        first_code_use: bool = False,
    ) -> int | None:
        """Take one use and count what it gives. With `want_units` (a coupon with a credit or
        a budget) draw up to that much of what is left, and count the draw as given; else
        count `given_units`.

        Returns what was drawn (0 without a draw), or None when nothing was claimed.
        """
        params: dict[str, Any] = {
            "b_tenant": self.tenant_id,
            "b_coupon": coupon_id,
            "b_version": version,
            "b_pending": int(pending),
            "b_held": int(held),
            "b_first_code_use": int(first_code_use),
        }
        if want_units is None:
            claimed = self.conn.execute(_CLAIM, params | {"b_given": given_units}).first()
            return 0 if claimed is not None else None
        row = self.conn.execute(_CLAIM_DRAW, params | {"want": want_units}).first()
        return None if row is None else int(row.last_draw_units or 0)

    def release_use(
        self,
        coupon_id: str,
        *,
        credit_units: int,
        given_units: int,
        code_freed: bool = False,
        moved: tuple[str, str] | None = None,
    ) -> None:
        """Give a use, its credit and what it gave back (reject, rollback, or a claim undone:
        `moved` is the redemption's change of status, None for a claim undone)."""
        params = {
            "b_tenant": self.tenant_id,
            "b_coupon": coupon_id,
            "credit": credit_units,
            "b_given": given_units,
            "b_code_freed": int(code_freed),
        }
        source, target = moved if moved is not None else (None, None)
        self.conn.execute(_release(source, target), params)

    def count_move(self, coupon_id: str, source: str, target: str) -> None:
        """Count a change of status that gives nothing back (an approval)."""
        if _moved_counts(source, target):
            params = {"b_tenant": self.tenant_id, "b_coupon": coupon_id}
            self.conn.execute(_count_move(source, target), params)

    def give_back_credit(self, coupon_id: str, units: int) -> None:
        """Return part of a draw the cart could not use (rounding to the minor unit)."""
        params = {"b_tenant": self.tenant_id, "b_coupon": coupon_id, "credit": units}
        self.conn.execute(_GIVE_BACK, params)

    def claim_code_use(self, coupon_id: str, code: str, *, now: datetime) -> int | None:
        """One use of a campaign code (normalised), unless it is used up or deactivated: its
        uses after the claim, or None when nothing was claimed."""
        params = {"tenant_id": self.tenant_id, "coupon_id": coupon_id, "code": code, "now": now}
        row = self.conn.execute(_CLAIM_CODE, params).first()
        return None if row is None else int(row.times_used)

    def release_code_use(self, coupon_id: str, code: str) -> bool:
        """Give a campaign code's use back; True when that was its last use (it is unused
        again). A code deleted with its coupon has nothing to give back."""
        params = {"tenant_id": self.tenant_id, "coupon_id": coupon_id, "code": code}
        row = self.conn.execute(_RELEASE_CODE, params).first()
        return row is not None and int(row.times_used) == 0

    def count_day(self, r: Redemption) -> None:
        """Count a redemption on the UTC day it is made (stats)."""
        params = {
            "coupon_id": r.coupon_id,
            "day": r.created_at.astimezone(UTC).date(),
            "tenant_id": self.tenant_id,
            "units": to_units(r.discount_total),
        }
        self.conn.execute(_COUNT_DAY, params)

    def claim_user_use(self, coupon_id: str, user_id: str, *, limit: int | None) -> bool:
        """One more use for this user, unless that would pass `limit`."""
        if limit is not None and limit < 1:
            return False
        statement = _CLAIM_USER if limit is None else _CLAIM_USER_LIMITED
        params: dict[str, Any] = {
            "coupon_id": coupon_id,
            "user_id": user_id,
            "tenant_id": self.tenant_id,
        }
        if limit is not None:
            params["limit"] = limit
        return self.conn.execute(statement, params).first() is not None

    def release_user_use(self, coupon_id: str, user_id: str) -> None:
        u = coupon_user_uses.c
        self.conn.execute(
            update(coupon_user_uses)
            .where(u.coupon_id == coupon_id, u.user_id == user_id, u.uses > 0)
            .values(uses=u.uses - 1)
        )

    def most_uses_by_a_user(self, coupon_id: str) -> int:
        u = coupon_user_uses.c
        found = self.conn.execute(select(func.max(u.uses)).where(u.coupon_id == coupon_id)).scalar()
        return int(found or 0)

    def user_uses(self, coupon_id: str, user_id: str) -> int:
        u = coupon_user_uses.c
        row = self.conn.execute(
            select(u.uses).where(u.coupon_id == coupon_id, u.user_id == user_id)
        ).first()
        return int(row.uses) if row else 0

    # --- records ---------------------------------------------------------------------------

    def insert(self, r: Redemption) -> None:
        self.conn.execute(_INSERT, redemption_row(r, self.tenant_id))

    def get(self, redemption_id: str, *, for_update: bool = False) -> Redemption | None:
        if not looks_like_id(redemption_id):
            return None
        query = select(redemptions).where(
            redemptions.c.tenant_id == self.tenant_id, redemptions.c.id == redemption_id
        )
        if for_update:
            query = query.with_for_update()
        row = self.conn.execute(query).first()
        return _row_to_redemption(row) if row else None

    def by_checkout(self, checkout_id: str, *, for_update: bool = False) -> list[Redemption]:
        """A checkout's redemptions, in the order they were made (locked in that order)."""
        if not looks_like_id(checkout_id):
            return []
        query = (
            select(redemptions)
            .where(redemptions.c.tenant_id == self.tenant_id)
            .where(redemptions.c.checkout_id == checkout_id)
            .order_by(redemptions.c.seq)
        )
        if for_update:
            query = query.with_for_update()
        return [_row_to_redemption(row) for row in self.conn.execute(query)]

    def page(
        self,
        *,
        after_seq: int,
        limit: int,
        coupon_id: str | None = None,
        user_id: str | None = None,
        status: str | None = None,
        code: str | None = None,
    ) -> list[tuple[int, Redemption]]:
        r = redemptions.c
        if coupon_id is not None and not looks_like_id(coupon_id):
            return []
        query = select(redemptions).where(r.tenant_id == self.tenant_id, r.seq > after_seq)
        if coupon_id is not None:
            query = query.where(r.coupon_id == coupon_id)
        if user_id is not None:
            query = query.where(r.user_id == user_id)
        if status is not None:
            query = query.where(r.status == status)
        if code is not None:
            query = query.where(r.code == code)
        rows = self.conn.execute(query.order_by(r.seq).limit(limit))
        return [(row.seq, _row_to_redemption(row)) for row in rows]

    def newest_page(
        self, *, before_seq: int | None, limit: int, status: str | None, code: str | None
    ) -> list[tuple[int, Redemption]]:
        """Newest first (the console): by (tenant, code, seq) or (tenant, status, seq) when
        filtered, else by (tenant, seq), each read backwards from the cursor."""
        r = redemptions.c
        query = select(redemptions).where(r.tenant_id == self.tenant_id)
        if before_seq is not None:
            query = query.where(r.seq < before_seq)
        if status is not None:
            query = query.where(r.status == status)
        if code is not None:
            query = query.where(r.code == code)
        rows = self.conn.execute(query.order_by(r.seq.desc()).limit(limit))
        return [(row.seq, _row_to_redemption(row)) for row in rows]

    def move(
        self,
        redemption_id: str,
        *,
        source: str,
        target: str,
        now: datetime,
        approved_by: str | None = None,
    ) -> bool:
        """Change status only from `source`: of two racing transitions, one wins."""
        r = redemptions.c
        values: dict[str, Any] = {"status": target, "updated_at": now}
        if approved_by is not None:
            values |= {"approved_by": approved_by, "approved_at": now}
        result = self.conn.execute(
            update(redemptions)
            .where(r.tenant_id == self.tenant_id, r.id == redemption_id, r.status == source)
            .values(**values)
        )
        return result.rowcount == 1

    # --- idempotency keys ------------------------------------------------------------------

    def reserve_key(self, key: str, request_hash: str, now: datetime) -> bool:
        """Claim the key for this request; False when it already has a first request.

        On PostgreSQL a second request blocks here until the first one's transaction ends, then
        finds its stored reply; on SQLite the write lock serialises them the same way.
        """
        params = {"tenant_id": self.tenant_id, "key": key, "request_hash": request_hash}
        return self.conn.execute(_RESERVE_KEY, params | {"created_at": now}).first() is not None

    def key_record(self, key: str) -> KeyRecord | None:
        k = idempotency_keys.c
        row = self.conn.execute(
            select(k.request_hash, k.outcome, k.response_body).where(
                k.tenant_id == self.tenant_id, k.key == key
            )
        ).first()
        if row is None:
            return None
        return KeyRecord(row.request_hash, stored_outcome(row.outcome, row.response_body))

    def store_outcome(self, key: str, stored: StoredOutcome) -> None:
        k = idempotency_keys.c
        self.conn.execute(
            update(idempotency_keys)
            .where(k.tenant_id == self.tenant_id, k.key == key)
            .values(outcome=stored.outcome, response_body=stored.document)
        )

    def purge_keys(self, *, before: datetime) -> None:
        """Keys are kept at least 24 hours; older ones go, a few at a time."""
        k = idempotency_keys.c
        old = select(k.key).where(k.tenant_id == self.tenant_id, k.created_at < before).limit(50)
        keys = [row.key for row in self.conn.execute(old)]
        if keys:
            self.conn.execute(
                idempotency_keys.delete().where(
                    and_(k.tenant_id == self.tenant_id, k.key.in_(keys))
                )
            )


def counts_by_coupon(conn: Connection, tenant_id: str | None) -> list[Row[Any]]:
    """For `couponry check`: each coupon's counters beside what its redemptions say."""
    r = redemptions.c
    holding = r.status.in_(HOLDING)
    by_status = [
        func.sum(case((r.status == status, 1), else_=0)).label(f"n_{status}")
        for status in STATUS_COUNTERS
    ]
    held = (
        select(
            r.coupon_id,
            func.sum(case((holding, 1), else_=0)).label("uses"),
            func.sum(case((holding, r.credit_units), else_=0)).label("credit"),
            func.sum(case((holding, r.discount_units), else_=0)).label("given"),
            *by_status,
        )
        .group_by(r.coupon_id)
        .subquery()
    )
    c = coupons.c
    query = select(
        c.id,
        c.tenant_id,
        c.code,
        c.times_used,
        c.usage_limit,
        c.value_units,
        c.remaining_units,
        c.credit_drawn_units,
        c.coupon_type,
        c.budget_units,
        c.given_units,
        *(c[name] for name in STATUS_COUNTERS.values()),
        func.coalesce(held.c.uses, 0).label("held_uses"),
        func.coalesce(held.c.credit, 0).label("held_credit"),
        func.coalesce(held.c.given, 0).label("held_given"),
        *(
            func.coalesce(held.c[f"n_{status}"], 0).label(f"n_{status}")
            for status in STATUS_COUNTERS
        ),
    ).select_from(coupons.outerjoin(held, held.c.coupon_id == c.id))
    if tenant_id is not None:
        query = query.where(c.tenant_id == tenant_id)
    return list(conn.execute(query.order_by(c.seq)))


def user_counts(conn: Connection, tenant_id: str | None) -> list[Row[Any]]:
    """Per (coupon, user): the counter, what the redemptions say, and the coupon's limit.

    A FULL JOIN in two halves (SQLite before 3.39 has none): counters with their redemption
    counts, then redemption groups that have no counter at all.
    """
    r = redemptions.c
    u = coupon_user_uses.c
    held_query = select(r.coupon_id, r.user_id, func.count().label("uses")).where(
        r.status.in_(HOLDING)
    )
    if tenant_id is not None:
        held_query = held_query.where(r.tenant_id == tenant_id)
    held = held_query.group_by(r.coupon_id, r.user_id).subquery()
    counters = select(
        u.coupon_id,
        u.user_id,
        u.uses,
        func.coalesce(held.c.uses, 0).label("held_uses"),
        coupons.c.max_uses_per_user,
    ).select_from(
        coupon_user_uses.outerjoin(
            held, and_(held.c.coupon_id == u.coupon_id, held.c.user_id == u.user_id)
        ).join(coupons, coupons.c.id == u.coupon_id)
    )
    if tenant_id is not None:
        counters = counters.where(u.tenant_id == tenant_id)
    orphans = (
        select(
            held.c.coupon_id,
            held.c.user_id,
            literal(0).label("uses"),
            held.c.uses.label("held_uses"),
            literal(None).label("max_uses_per_user"),
        )
        .select_from(
            held.outerjoin(
                coupon_user_uses,
                and_(u.coupon_id == held.c.coupon_id, u.user_id == held.c.user_id),
            )
        )
        .where(u.coupon_id.is_(None))
    )
    return list(conn.execute(counters)) + list(conn.execute(orphans))


def expired_holds(conn: Connection, now: datetime, limit: int) -> list[tuple[str, str]]:
    """(tenant_id, id) of held redemptions whose hold ended by `now`, soonest first: read by
    every server process's sweep (the index on (status, hold_expires_at) serves it)."""
    r = redemptions.c
    query = (
        select(r.tenant_id, r.id)
        .where(r.status == HELD, r.hold_expires_at <= now)
        .order_by(r.hold_expires_at)
        .limit(limit)
    )
    return [(row.tenant_id, row.id) for row in conn.execute(query)]
