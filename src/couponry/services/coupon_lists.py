"""The console's coupon lists (SPEC 12): newest first, or a search by code or name prefix."""

from __future__ import annotations

from dataclasses import dataclass

from couponry.domain.coupons import Coupon
from couponry.domain.paging import Page
from couponry.domain.search import MAX_SEARCH, SearchCursor, code_prefix
from couponry.store import coupon_lists
from couponry.store.db import Database


@dataclass(frozen=True)
class SearchPage:
    items: list[Coupon]
    next_cursor: str | None  # None when nothing remains


def list_newest_coupons(
    db: Database, *, tenant_id: str, before_seq: int | None, limit: int
) -> Page[Coupon]:
    """A page of live coupons, newest first; `last_seq` is where the next page ends above."""
    with db.reader() as conn:
        rows = coupon_lists.newest(conn, tenant_id, before_seq=before_seq, limit=limit + 1)
    return Page.from_rows(rows, limit)


def search_coupons(
    db: Database, *, tenant_id: str, text: str, cursor: str | None, limit: int
) -> SearchPage:
    """Coupons whose code starts with `text` (by code), then those whose name does (by name).

    InvalidStartKey when `cursor` is not one this function gave out.
    """
    text = text.strip()[:MAX_SEARCH]
    after = SearchCursor.decode(cursor)
    code = code_prefix(text)
    found: list[tuple[SearchCursor, Coupon]] = []
    with db.reader() as conn:
        if code is not None and (after is None or after.code is not None):
            found = coupon_lists.by_code_prefix(
                conn, tenant_id, code, after=after.code if after else None, limit=limit + 1
            )
        name = text.lower()
        if len(found) <= limit and name:
            found += coupon_lists.by_name_prefix(
                conn,
                tenant_id,
                name,
                code_prefix=code,
                after=after if after is not None and after.name is not None else None,
                limit=limit + 1 - len(found),
            )
    more = len(found) > limit
    page = found[:limit]
    return SearchPage(
        items=[coupon for _, coupon in page],
        next_cursor=page[-1][0].encode() if more and page else None,
    )
