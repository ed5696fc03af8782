"""A coupon's campaign codes (SPEC 10): add a list, page through them, deactivate one.

Redemption by a campaign code, generation and import jobs, export and stats come in the next
steps of issue 10 (docs/campaigns.md).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from couponry.domain.codes import (
    CSV_HEADER,
    CampaignCode,
    code_csv_line,
    csv_line,
    parse_new_codes,
    taken_codes_refusal,
)
from couponry.domain.paging import Page
from couponry.errors import CodeNotFound, CodeTaken, CouponNotFound
from couponry.store.code_repo import CodeRepository, CodesTaken
from couponry.store.coupon_repo import CouponRepository, could_be_code
from couponry.store.db import Database


def add_codes(db: Database, *, tenant_id: str, coupon_id: str, doc: Any, now: datetime) -> int:
    """Add 1 to 1,000 campaign codes to a live coupon, all or none; how many were added."""
    new = parse_new_codes(doc)
    with db.transaction() as conn:
        # Kept from a delete until this commits: a delete cannot miss codes added meanwhile.
        if CouponRepository(conn, tenant_id).get(coupon_id, kept=True) is None:
            raise CouponNotFound()
        try:
            return CodeRepository(conn, tenant_id).add(
                coupon_id, list(new.codes), max_uses=new.max_uses, now=now
            )
        except CodesTaken as taken:
            names = ", ".join(repr(code) for code in taken.codes)
            raise CodeTaken(
                f"Codes the tenant has already: {names}.", taken_codes_refusal(taken.codes)
            ) from None


def list_codes(
    db: Database, *, tenant_id: str, coupon_id: str, after_seq: int, limit: int, used: bool | None
) -> Page[CampaignCode]:
    with db.reader() as conn:
        if CouponRepository(conn, tenant_id).get(coupon_id) is None:
            raise CouponNotFound()
        items = CodeRepository(conn, tenant_id).page(
            coupon_id, after_seq=after_seq, limit=limit, used=used
        )
    last = items[-1].seq if len(items) == limit else None
    return Page(items=items, last_seq=last)


def deactivate_code(db: Database, *, tenant_id: str, coupon_id: str, code: str) -> CampaignCode:
    with db.transaction() as conn:
        if CouponRepository(conn, tenant_id).get(coupon_id, kept=True) is None:
            raise CouponNotFound()
        found = (
            CodeRepository(conn, tenant_id).deactivate(coupon_id, code)
            if could_be_code(code)
            else None
        )
    if found is None:
        raise CodeNotFound()
    return found


EXPORT_PAGE = 5_000


def export_codes(db: Database, *, tenant_id: str, coupon_id: str) -> Iterator[list[str]]:
    """The coupon's campaign codes as CSV lines, header first, a page of lines at a time (read
    as they are asked for, so memory does not grow with the number of codes; and a stream
    pulls a page per hop to its worker thread, not a line). CouponNotFound before the first."""
    with db.reader() as conn:
        if CouponRepository(conn, tenant_id).get(coupon_id) is None:
            raise CouponNotFound()
    return _export_pages(db, tenant_id, coupon_id)


def _export_pages(db: Database, tenant_id: str, coupon_id: str) -> Iterator[list[str]]:
    yield [csv_line(CSV_HEADER)]
    after = 0
    while True:
        with db.reader() as conn:
            page = CodeRepository(conn, tenant_id).page(
                coupon_id, after_seq=after, limit=EXPORT_PAGE, used=None
            )
        if page:
            yield [code_csv_line(code) for code in page]
        if len(page) < EXPORT_PAGE:
            return
        after = page[-1].seq
