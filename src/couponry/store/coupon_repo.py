"""Coupon rows, always scoped to one tenant."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, and_, bindparam, delete, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from couponry.domain.codes import TypedCode
from couponry.domain.coupons import (
    Coupon,
    CouponFields,
    name_key,
    normalise_code,
    stored_coupon_view,
)
from couponry.domain.money import from_units, to_units
from couponry.domain.paging import looks_like_id
from couponry.errors import CodeTaken, FieldProblem
from couponry.store import codec
from couponry.store.tables import coupon_codes, coupons

COLUMNS = (
    coupons.c.seq,
    coupons.c.id,
    coupons.c.tenant_id,
    coupons.c.times_used,
    coupons.c.remaining_units,
    coupons.c.credit_drawn_units,
    coupons.c.budget_units,
    coupons.c.given_units,
    coupons.c.redeemed,
    coupons.c.sys_version,
    coupons.c.sys_created_at,
    coupons.c.sys_last_modified_at,
    coupons.c.sys_created_by_id,
    coupons.c.sys_last_modified_by_id,
    coupons.c.sys_deleted_by_id,
    coupons.c.body,
)


def _same(value: Any) -> Any:
    return value


def row_to_coupon(row: Any) -> Coupon:
    """A coupon from a SQLAlchemy row (its instants already aware)."""
    return coupon_from_columns(row._mapping)


def coupon_from_columns(row: Mapping[str, Any], instant: Callable[[Any], Any] = _same) -> Coupon:
    """A coupon from its columns by name; `instant` makes a driver's stored instant aware."""
    return Coupon(
        id=row["id"],
        tenant_id=row["tenant_id"],
        data=CouponFields.from_stored(codec.loads(row["body"])),
        redeemed=bool(row["redeemed"]),
        credit_drawn=from_units(row["credit_drawn_units"]),
        given=from_units(row["given_units"]),
        **_kept(row, instant),
    )


def coupon_view_from_columns(
    row: Mapping[str, Any], instant: Callable[[Any], Any] = _same
) -> dict[str, Any]:
    """The coupon's view straight from its columns (as `coupon_from_columns` reads them)."""
    budget = row["budget_units"]
    left = None if budget is None else from_units(max(0, budget - row["given_units"]))
    return stored_coupon_view(
        row["id"], codec.loads(row["body"]), budget_remaining=left, **_kept(row, instant)
    )


def _kept(row: Mapping[str, Any], instant: Callable[[Any], Any]) -> dict[str, Any]:
    """What the server keeps of a coupon, named as `Coupon` and its view name it."""
    remaining = row["remaining_units"]
    return {
        "times_used": row["times_used"],
        "remaining_amount": None if remaining is None else from_units(remaining),
        "sys_version": row["sys_version"],
        "sys_created_at": instant(row["sys_created_at"]),
        "sys_last_modified_at": instant(row["sys_last_modified_at"]),
        "sys_created_by_id": row["sys_created_by_id"],
        "sys_last_modified_by_id": row["sys_last_modified_by_id"],
        "sys_deleted_by_id": row["sys_deleted_by_id"],
    }


def _field_columns(data: CouponFields) -> dict[str, Any]:
    """The writable fields that SQL filters or counts on, copied out of the body."""
    assert data.code is not None
    return {
        "code": data.code,
        "code_normalized": normalise_code(data.code),
        "name_lower": name_key(data.name, data.code),
        "is_active": data.is_active,
        "coupon_type": data.coupon_type,
        "entity_type": data.entity_type,
        "entity_id": data.entity_id,
        "authorized_group_id": data.authorized_group_id,
        "starts_at": data.starts_at,
        "expires_at": data.expires_at,
        "usage_limit": data.usage_limit,
        "max_uses_per_user": data.max_uses_per_user,
        "value_units": None if data.value_amount is None else to_units(data.value_amount),
        "budget_units": None if data.budget_amount is None else to_units(data.budget_amount),
        "sys_locked": data.sys_locked,
        "body": codec.dumps(dataclasses.asdict(data)),
    }


def own_code_problems(conn: Connection, tenant_id: str | None) -> list[str]:
    """Live coupons whose own code is not in `coupon_codes` as theirs, and codes of no live
    coupon (`couponry check`)."""
    c, k = coupons, coupon_codes
    joined = and_(k.c.coupon_id == c.c.id, k.c.own.is_(True))
    missing = (
        select(c.c.id, c.c.code)
        .select_from(c.outerjoin(k, joined))
        .where(c.c.deleted_at.is_(None), or_(k.c.seq.is_(None), k.c.code != c.c.code))
    )
    orphans = (
        select(k.c.coupon_id, k.c.code, k.c.own)
        .select_from(k.outerjoin(c, and_(c.c.id == k.c.coupon_id, c.c.deleted_at.is_(None))))
        .where(c.c.id.is_(None))
    )
    if tenant_id is not None:
        missing = missing.where(c.c.tenant_id == tenant_id)
        orphans = orphans.where(k.c.tenant_id == tenant_id)
    problems = [
        f"coupon {row.id}: its code {row.code!r} is not in the tenant's codes as its own"
        for row in conn.execute(missing)
    ]
    problems += [
        f"code {row.code!r}: held as {'the own' if row.own else 'a campaign'} code of "
        f"{row.coupon_id}, which is not a live coupon"
        for row in conn.execute(orphans)
    ]
    return problems


def code_taken(code: str) -> CodeTaken:
    message = f"{code!r} is already the code of another coupon"
    return CodeTaken(f"The code {code!r} is already used.", [FieldProblem("code", message)])


def could_be_code(text: str) -> bool:
    """Only codes we could have stored reach the database (no NUL or stray Unicode in SQL)."""
    return 0 < len(text) <= 64 and text.isascii() and all(c.isalnum() or c in "_-" for c in text)


def _units(amount: Decimal | None) -> int | None:
    return None if amount is None else to_units(amount)


# The hot reads, built once: composing a select() per call costs more CPU than the query.
_LIVE = and_(coupons.c.tenant_id == bindparam("tenant_id"), coupons.c.deleted_at.is_(None))
_GET = select(*COLUMNS).where(_LIVE, coupons.c.id == bindparam("coupon_id"))
_GET_FOR_UPDATE = _GET.with_for_update()
_GET_KEPT = _GET.with_for_update(read=True, key_share=True)  # FOR KEY SHARE
_GET_BY_CODE = select(*COLUMNS).where(_LIVE, coupons.c.code_normalized == bindparam("code"))
_k = coupon_codes.c
# The live coupon that has this code, its own or a campaign code, with that code's state.
TYPED_CODE_COLUMNS = (
    _k.code.label("typed_code"),
    _k.own.label("typed_own"),
    _k.is_active.label("typed_active"),
    _k.max_uses.label("typed_max_uses"),
    _k.times_used.label("typed_uses"),
)
_GET_BY_ANY_CODE = (
    select(*COLUMNS, *TYPED_CODE_COLUMNS)
    .select_from(coupon_codes.join(coupons, and_(coupons.c.id == _k.coupon_id, _LIVE)))
    .where(_k.tenant_id == bindparam("tenant_id"), _k.code_normalized == bindparam("code"))
)


def typed_code(row: Any) -> TypedCode:
    """The code a cart named, from a row read with TYPED_CODE_COLUMNS."""
    return TypedCode(
        code=row["typed_code"],
        own=bool(row["typed_own"]),
        is_active=bool(row["typed_active"]),
        max_uses=row["typed_max_uses"],
        times_used=row["typed_uses"],
    )


def _scan_query(by_code: bool, by_active: bool) -> Any:
    query = select(*COLUMNS).where(_LIVE, coupons.c.seq > bindparam("after_seq"))
    if by_code:
        query = query.where(coupons.c.code_normalized == bindparam("code"))
    if by_active:
        query = query.where(coupons.c.is_active == bindparam("is_active"))
    return query.order_by(coupons.c.seq).limit(bindparam("limit"))


_INSERT = insert(coupons)
_INSERT_OWN_CODE = insert(coupon_codes)
_SCANS = {(c, a): _scan_query(c, a) for c in (False, True) for a in (False, True)}


class CouponRepository:
    def __init__(self, conn: Connection, tenant_id: str) -> None:
        self.conn = conn
        self.tenant_id = tenant_id

    def _live(self) -> Any:
        return and_(coupons.c.tenant_id == self.tenant_id, coupons.c.deleted_at.is_(None))

    def get(self, coupon_id: str, *, for_update: bool = False, kept: bool = False) -> Coupon | None:
        """`for_update` locks the row against every change; `kept` only against a delete (and
        changes of its key), so redemptions, which update its counters, go on meanwhile."""
        if not looks_like_id(coupon_id):
            return None
        query = _GET_FOR_UPDATE if for_update else _GET_KEPT if kept else _GET
        row = self.conn.execute(
            query, {"tenant_id": self.tenant_id, "coupon_id": coupon_id}
        ).first()
        return row_to_coupon(row) if row else None

    def get_including_deleted(self, coupon_id: str) -> Coupon | None:
        """A redemption outlives its coupon; approving it still needs the coupon's rules."""
        query = select(*COLUMNS).where(
            coupons.c.tenant_id == self.tenant_id, coupons.c.id == coupon_id
        )
        row = self.conn.execute(query).first()
        return row_to_coupon(row) if row else None

    def get_by_code(self, code: str) -> Coupon | None:
        if not could_be_code(code):
            return None
        params = {"tenant_id": self.tenant_id, "code": normalise_code(code)}
        row = self.conn.execute(_GET_BY_CODE, params).first()
        return row_to_coupon(row) if row else None

    def get_by_any_code(self, code: str) -> tuple[Coupon, TypedCode] | None:
        """The live coupon with this code (its own or a campaign code, ignoring case), and
        the code as the tenant holds it."""
        if not could_be_code(code):
            return None
        params = {"tenant_id": self.tenant_id, "code": normalise_code(code)}
        row = self.conn.execute(_GET_BY_ANY_CODE, params).first()
        return None if row is None else (row_to_coupon(row), typed_code(row._mapping))

    def code_in_use(self, code: str, *, except_id: str | None = None) -> bool:
        """Is this code a live coupon's or one of its campaign codes (but not `except_id`'s
        own)?"""
        query = select(coupon_codes.c.coupon_id, coupon_codes.c.own).where(
            coupon_codes.c.tenant_id == self.tenant_id,
            coupon_codes.c.code_normalized == normalise_code(code),
        )
        row = self.conn.execute(query).first()
        return row is not None and not (row.own and row.coupon_id == except_id)

    def scan(
        self,
        *,
        after_seq: int,
        limit: int,
        code: str | None = None,
        is_active: bool | None = None,
    ) -> list[tuple[int, Coupon]]:
        """Oldest first, from just after `after_seq` (keyset: the same cost on any page)."""
        if code is not None and not could_be_code(code):
            return []
        params: dict[str, Any] = {
            "tenant_id": self.tenant_id,
            "after_seq": after_seq,
            "limit": limit,
            "code": normalise_code(code) if code is not None else None,
            "is_active": is_active,
        }
        query = _SCANS[(code is not None, is_active is not None)]
        return [(row.seq, row_to_coupon(row)) for row in self.conn.execute(query, params)]

    def insert(self, coupon: Coupon) -> None:
        # A failed statement ends the unit of work; the service's transaction rolls back whole.
        try:
            self.conn.execute(_INSERT, self._row(coupon))
            self.conn.execute(_INSERT_OWN_CODE, self._own_code(coupon))
        except IntegrityError as exc:
            raise code_taken(coupon.code) from exc

    def insert_many(self, items: list[Coupon]) -> None:
        """Several new coupons in one statement (a batch's run of creates)."""
        try:
            self.conn.execute(_INSERT, [self._row(c) for c in items])
            self.conn.execute(_INSERT_OWN_CODE, [self._own_code(c) for c in items])
        except IntegrityError as exc:
            raise code_taken(items[0].code if len(items) == 1 else "one of these") from exc

    def _own_code(self, coupon: Coupon) -> dict[str, Any]:
        return {
            "tenant_id": self.tenant_id,
            "coupon_id": coupon.id,
            "code": coupon.code,
            "code_normalized": normalise_code(coupon.code),
            "own": True,
            "times_used": 0,
            "is_active": True,
            "created_at": coupon.sys_created_at,
        }

    def codes_in_use(self, codes: list[str]) -> set[str]:
        """Which of these (normalised) codes the tenant already has (a coupon's or a campaign
        code)."""
        if not codes:
            return set()
        query = select(coupon_codes.c.code_normalized).where(
            coupon_codes.c.tenant_id == self.tenant_id,
            coupon_codes.c.code_normalized.in_(codes),
        )
        return {row.code_normalized for row in self.conn.execute(query)}

    def _row(self, coupon: Coupon) -> dict[str, Any]:
        return _field_columns(coupon.data) | {
            "id": coupon.id,
            "tenant_id": self.tenant_id,
            "times_used": coupon.times_used,
            "remaining_units": _units(coupon.remaining_amount),
            "redeemed": False,
            "sys_version": coupon.sys_version,
            "sys_created_at": coupon.sys_created_at,
            "sys_last_modified_at": coupon.sys_last_modified_at,
            "sys_created_by_id": coupon.sys_created_by_id,
            "sys_last_modified_by_id": coupon.sys_last_modified_by_id,
        }

    def replace(self, coupon: Coupon, *, expected_version: int) -> bool:
        """Write the new state if the row is still at `expected_version`."""
        values = _field_columns(coupon.data) | {
            "remaining_units": _units(coupon.remaining_amount),
            "sys_version": coupon.sys_version,
            "sys_last_modified_at": coupon.sys_last_modified_at,
            "sys_last_modified_by_id": coupon.sys_last_modified_by_id,
        }
        statement = (
            update(coupons)
            .where(
                self._live(),
                coupons.c.id == coupon.id,
                coupons.c.sys_version == expected_version,
            )
            .values(**values)
        )
        try:
            result = self.conn.execute(statement)
            if result.rowcount == 1:
                self.conn.execute(
                    update(coupon_codes)
                    .where(
                        coupon_codes.c.tenant_id == self.tenant_id,
                        coupon_codes.c.coupon_id == coupon.id,
                        coupon_codes.c.own.is_(True),
                        coupon_codes.c.code != coupon.code,
                    )
                    .values(code=coupon.code, code_normalized=normalise_code(coupon.code))
                )
        except IntegrityError as exc:
            raise code_taken(coupon.code) from exc
        return result.rowcount == 1

    def soft_delete(self, coupon_id: str, *, by: str | None, now: datetime) -> bool:
        """Delete a live, unlocked coupon; False (and the caller must roll back: its codes
        are gone) when there is none."""
        # Its codes, its own and its campaign codes, are free for other coupons again. They
        # go first: a redemption takes a code's row before its coupon's, and so does this.
        self.conn.execute(
            delete(coupon_codes).where(
                coupon_codes.c.tenant_id == self.tenant_id, coupon_codes.c.coupon_id == coupon_id
            )
        )
        statement = (
            update(coupons)
            .where(self._live(), coupons.c.id == coupon_id, coupons.c.sys_locked.is_(False))
            .values(deleted_at=now, sys_deleted_by_id=by, sys_last_modified_at=now)
        )
        return bool(self.conn.execute(statement).rowcount == 1)

    def count_live(self, *, is_active: bool | None = None) -> int:
        query = select(func.count()).select_from(coupons).where(self._live())
        if is_active is not None:
            query = query.where(coupons.c.is_active == is_active)
        return int(self.conn.execute(query).scalar_one())

    def page_by_position(
        self, *, offset: int, limit: int, is_active: bool | None = None
    ) -> list[Coupon]:
        """EduBrite's listCoupons pages by position (its cost grows with the page number)."""
        query = select(*COLUMNS).where(self._live())
        if is_active is not None:
            query = query.where(coupons.c.is_active == is_active)
        query = query.order_by(coupons.c.seq).offset(offset).limit(limit)
        return [row_to_coupon(row) for row in self.conn.execute(query)]

    def active_using_group(self, group_ids: Sequence[str]) -> bool:
        """Is an active, live coupon scoped to or authorised by one of these groups?"""
        query = select(coupons.c.id).where(
            self._live(),
            coupons.c.is_active.is_(True),
            (coupons.c.authorized_group_id.in_(group_ids))
            | (and_(coupons.c.entity_type == "GROUP", coupons.c.entity_id.in_(group_ids))),
        )
        return self.conn.execute(query.limit(1)).first() is not None
