"""A coupon's campaign codes: rows of `coupon_codes` that are not its own code."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Connection,
    Integer,
    and_,
    bindparam,
    false,
    insert,
    literal,
    select,
    text,
    true,
    type_coerce,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.types import NullType

from couponry.domain.codes import CampaignCode
from couponry.domain.coupons import normalise_code
from couponry.store.hot_reads import aware as aware_instant
from couponry.store.tables import UTCDateTime, coupon_codes, coupons, import_lines

_CODE_COLUMNS = (  # in this order: page() unpacks _PAGE_COLUMNS by position
    coupon_codes.c.seq,
    coupon_codes.c.coupon_id,
    coupon_codes.c.code,
    coupon_codes.c.max_uses,
    coupon_codes.c.times_used,
    coupon_codes.c.is_active,
    coupon_codes.c.created_at,
    coupon_codes.c.last_used_at,
)


# The same, with the instants as the driver gives them (naive UTC; SQLite: text), for page().
_PAGE_COLUMNS = (
    *_CODE_COLUMNS[:-2],
    type_coerce(coupon_codes.c.created_at, NullType()),
    type_coerce(coupon_codes.c.last_used_at, NullType()),
)
_NEW_CODE_COLUMNS = (
    "tenant_id, coupon_id, code, code_normalized, own, max_uses, times_used, is_active, created_at"
)
_NEW_CODE_TYPES = (bindparam("now", type_=UTCDateTime()), bindparam("max_uses", type_=Integer()))
# A generated batch (add_untaken) in one statement whatever its size, its codes in one
# parameter: a JSON array of [code, normalised code] pairs, unpacked in order by the database.
# (Inserting thousands of rows with a parameter per value spent more time building and parsing
# that statement's SQL text in SQLAlchemy and psycopg than the database spent inserting them.)
_ADD_UNTAKEN = {
    "postgresql": text(
        f"INSERT INTO coupon_codes ({_NEW_CODE_COLUMNS}) "
        "SELECT :tenant_id, :coupon_id, b.pair ->> 0, b.pair ->> 1, false, "
        "CAST(:max_uses AS integer), 0, true, :now "
        "FROM json_array_elements(CAST(:batch AS json)) WITH ORDINALITY AS b(pair, n) "
        "ORDER BY b.n "
        "ON CONFLICT (tenant_id, code_normalized) DO NOTHING RETURNING seq"
    ).bindparams(*_NEW_CODE_TYPES),
    # `WHERE true` lets SQLite tell the upsert's ON from a join's.
    "sqlite": text(
        f"INSERT INTO coupon_codes ({_NEW_CODE_COLUMNS}) "
        "SELECT :tenant_id, :coupon_id, json_extract(b.value, '$[0]'), "
        "json_extract(b.value, '$[1]'), 0, :max_uses, 0, 1, :now "
        "FROM json_each(:batch) AS b WHERE true ORDER BY b.key "
        "ON CONFLICT (tenant_id, code_normalized) DO NOTHING RETURNING seq"
    ).bindparams(*_NEW_CODE_TYPES),
}


class CodesTaken(Exception):
    """Some of the codes are the tenant's already (as given, in the order given)."""

    def __init__(self, codes: list[str]) -> None:
        super().__init__(", ".join(codes))
        self.codes = codes


def _campaign_code(row: Any) -> CampaignCode:
    return CampaignCode(
        seq=row.seq,
        coupon_id=row.coupon_id,
        code=row.code,
        max_uses=row.max_uses,
        times_used=row.times_used,
        is_active=bool(row.is_active),
        created_at=row.created_at,
        last_used_at=row.last_used_at,
    )


class CodeRepository:
    def __init__(self, conn: Connection, tenant_id: str) -> None:
        self.conn = conn
        self.tenant_id = tenant_id

    def taken(self, codes: Iterable[str]) -> list[str]:
        """Which of these codes (as given) the tenant has already, a coupon's or a campaign's."""
        given = {normalise_code(code): code for code in codes}
        if not given:
            return []
        query = select(coupon_codes.c.code_normalized).where(
            coupon_codes.c.tenant_id == self.tenant_id,
            coupon_codes.c.code_normalized.in_(list(given)),
        )
        found = {row.code_normalized for row in self.conn.execute(query)}
        return [code for key, code in given.items() if key in found]

    def spelling(self, code: str) -> str | None:
        """How the tenant's codes spell this code (any case), if it is one of them."""
        query = select(coupon_codes.c.code).where(
            coupon_codes.c.tenant_id == self.tenant_id,
            coupon_codes.c.code_normalized == normalise_code(code),
        )
        return self.conn.execute(query).scalar()

    def add(self, coupon_id: str, codes: list[str], *, max_uses: int | None, now: datetime) -> int:
        """All of them or none: CodesTaken names those the tenant has already, whether they
        were found first or a concurrent request took one meanwhile (the unique index)."""
        taken = self.taken(codes)
        if taken:
            raise CodesTaken(taken)
        rows = [self._row(coupon_id, code, max_uses, now) for code in codes]
        try:
            with self.conn.begin_nested():  # a savepoint: the unit of work survives a refusal
                self.conn.execute(insert(coupon_codes), rows)
        except IntegrityError as exc:
            # Another request took one meanwhile: say which, as the check above would have.
            raise CodesTaken(self.taken(codes) or codes) from exc
        self.count_new(coupon_id, len(rows))
        return len(rows)

    def count_new(self, coupon_id: str, added: int) -> None:
        """Count new active codes on their coupon (stats). Run last in its transaction: it
        locks the coupon's row, which redemptions update, until the commit."""
        if added:
            c = coupons.c
            self.conn.execute(
                update(coupons)
                .where(c.tenant_id == self.tenant_id, c.id == coupon_id)
                .values(codes_total=c.codes_total + added, codes_active=c.codes_active + added)
            )

    def add_untaken(
        self, coupon_id: str, codes: list[str], *, max_uses: int | None, now: datetime
    ) -> int:
        """Insert those of the codes the tenant does not have yet (a generated batch), in the
        order given; how many went in. One statement whatever the batch's size."""
        batch = {normalise_code(code): code for code in codes}  # a repeat goes in once
        params = {
            "tenant_id": self.tenant_id,
            "coupon_id": coupon_id,
            "max_uses": max_uses,
            "now": now,
            "batch": json.dumps([[code, key] for key, code in batch.items()]),
        }
        dialect = self.conn.dialect.name
        if dialect == "postgresql":
            # The pool plans every statement afresh (db.py) for the hot reads, which would
            # make PostgreSQL re-plan the foreign-key check of each inserted row: half the
            # database's time in a big batch. Cached plans for this transaction only.
            self.conn.execute(text("SELECT set_config('plan_cache_mode', 'auto', true)"))
        added = len(self.conn.execute(_ADD_UNTAKEN[dialect], params).all())
        self.count_new(coupon_id, added)
        return added

    def add_imported(self, coupon_id: str, job_id: str, *, now: datetime) -> int:
        """Copy an import's staged lines, in the order of the file, all or none: CodesTaken
        (naming no code) when the unique index refuses one, which a concurrent request took
        after the import's check. How many went in."""
        staged = (
            select(
                literal(self.tenant_id),
                literal(coupon_id),
                import_lines.c.code,
                import_lines.c.code_normalized,
                false(),
                import_lines.c.max_uses,
                literal(0),
                true(),
                literal(now, coupon_codes.c.created_at.type),
            )
            .where(import_lines.c.job_id == job_id)
            .order_by(import_lines.c.line)
        )
        columns = [
            "tenant_id",
            "coupon_id",
            "code",
            "code_normalized",
            "own",
            "max_uses",
            "times_used",
            "is_active",
            "created_at",
        ]
        try:
            with self.conn.begin_nested():  # the caller's transaction lives on to say why
                result = self.conn.execute(insert(coupon_codes).from_select(columns, staged))
        except IntegrityError as exc:
            raise CodesTaken([]) from exc
        added = int(result.rowcount)
        self.count_new(coupon_id, added)
        return added

    def _row(
        self, coupon_id: str, code: str, max_uses: int | None, now: datetime
    ) -> dict[str, Any]:
        return {
            "tenant_id": self.tenant_id,
            "coupon_id": coupon_id,
            "code": code,
            "code_normalized": normalise_code(code),
            "own": False,
            "max_uses": max_uses,
            "times_used": 0,
            "is_active": True,
            "created_at": now,
        }

    def page(
        self, coupon_id: str, *, after_seq: int, limit: int, used: bool | None
    ) -> list[CampaignCode]:
        """The coupon's campaign codes in the order they were made, after `after_seq`."""
        k = coupon_codes.c
        if used is None:
            # The page's positions first, from (coupon_id, seq) alone (an index-only scan),
            # then their rows. Asked in one, PostgreSQL walked the primary key in seq order
            # and filtered by coupon: 110-160 ms for a first page when the coupon's codes come
            # after a million others, 0.15 ms this way (measured). One more than asked: the
            # coupon's own code may be among them.
            positions = (
                select(k.seq)
                .where(k.coupon_id == coupon_id, k.seq > after_seq)
                .order_by(k.seq)
                .limit(limit + 1)
                .subquery("positions")
            )
            query = (
                select(*_PAGE_COLUMNS)
                .select_from(positions.join(coupon_codes, k.seq == positions.c.seq))
                .where(self._campaign(coupon_id))
                .order_by(positions.c.seq)
                .limit(limit)
            )
        else:
            query = select(*_PAGE_COLUMNS).where(self._campaign(coupon_id), k.seq > after_seq)
            query = query.where(k.times_used > 0 if used else k.times_used == 0)
            query = query.order_by(k.seq).limit(limit)
        # The export reads a million codes this way: the whole page in one fetch, each row
        # unpacked by position, and each stored instant made aware once (a generated batch of
        # thousands shares one): a third (PostgreSQL) to a half (SQLite) of the CPU of a fetch
        # per row, attribute lookups and a conversion per value.
        made: dict[Any, datetime] = {}

        def aware(stored: Any) -> datetime:
            found = made.get(stored)
            if found is None:
                found = made[stored] = aware_instant(stored)
            return found

        return [
            CampaignCode(
                seq,
                coupon,
                code,
                max_uses,
                uses,
                bool(active),
                aware(created),
                None if last_used is None else aware(last_used),
            )
            for seq, coupon, code, max_uses, uses, active, created, last_used in (
                self.conn.execute(query).all()
            )
        ]

    def deactivate(self, coupon_id: str, code: str) -> CampaignCode | None:
        """The code can no longer be redeemed; it stays taken. None if it is not theirs."""
        where = and_(
            self._campaign(coupon_id), coupon_codes.c.code_normalized == normalise_code(code)
        )
        active = and_(where, coupon_codes.c.is_active.is_(True))
        if self.conn.execute(update(coupon_codes).where(active).values(is_active=False)).rowcount:
            c = coupons.c
            self.conn.execute(
                update(coupons)
                .where(c.tenant_id == self.tenant_id, c.id == coupon_id)
                .values(codes_active=c.codes_active - 1)
            )
        row = self.conn.execute(select(*_CODE_COLUMNS).where(where)).first()
        return None if row is None else _campaign_code(row)

    def _campaign(self, coupon_id: str) -> Any:
        return and_(
            coupon_codes.c.tenant_id == self.tenant_id,
            coupon_codes.c.coupon_id == coupon_id,
            coupon_codes.c.own.is_(False),
        )
