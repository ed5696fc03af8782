"""What the console's pages that show several things at once read (SPEC 12), each from the
services the API uses."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from couponry.domain.codes import CampaignCode
from couponry.domain.coupons import Coupon
from couponry.domain.groups import Group, Member
from couponry.domain.jobs import Job
from couponry.domain.paging import Page
from couponry.domain.stats import CouponStats
from couponry.errors import JobNotFound
from couponry.services.codes import list_codes
from couponry.services.coupons import get_coupon
from couponry.services.groups import get_group, list_groups, list_members
from couponry.services.jobs import get_job
from couponry.services.stats import get_stats
from couponry.store.db import Database

GROUPS_SHOWN = 500
MEMBERS_SHOWN = 500


@dataclass(frozen=True)
class CouponOverview:
    coupon: Coupon
    stats: CouponStats
    codes: Page[CampaignCode]
    job: Job | None  # the generation just started, while the page follows it


def coupon_overview(
    db: Database,
    *,
    tenant_id: str,
    coupon_id: str,
    codes_after: int,
    codes_limit: int,
    job_id: str | None,
    now: datetime,
) -> CouponOverview:
    """A coupon, its stats, a page of its codes and the job it follows; CouponNotFound."""
    coupon = get_coupon(db, tenant_id=tenant_id, coupon_id=coupon_id)
    stats = get_stats(db, tenant_id=tenant_id, coupon_id=coupon_id, now=now)
    codes = list_codes(
        db,
        tenant_id=tenant_id,
        coupon_id=coupon_id,
        after_seq=codes_after,
        limit=codes_limit,
        used=None,
    )
    job = None
    if job_id:
        try:
            job = get_job(db, tenant_id=tenant_id, job_id=job_id)
        except JobNotFound:
            job = None  # an old link: the page shows the coupon as it is
        if job is not None and job.coupon_id != coupon_id:
            job = None
    return CouponOverview(coupon, stats, codes, job)


@dataclass(frozen=True)
class GroupOverview:
    groups: list[Group]  # the tenant's groups, oldest first (the page draws the tree)
    more: bool
    selected: Group | None
    members: list[Member]  # the first MEMBERS_SHOWN, oldest first
    more_members: bool


def group_overview(db: Database, *, tenant_id: str, group_id: str | None) -> GroupOverview:
    """The tenant's groups (the first GROUPS_SHOWN), and one group's members (the first
    MEMBERS_SHOWN); GroupNotFound."""
    selected = get_group(db, tenant_id=tenant_id, group_id=group_id) if group_id else None
    listed = list_groups(db, tenant_id=tenant_id, after_seq=0, limit=GROUPS_SHOWN, parent_id=None)
    members = (
        list_members(db, tenant_id=tenant_id, group_id=group_id, limit=MEMBERS_SHOWN + 1)
        if group_id
        else []
    )
    return GroupOverview(
        listed.items,
        listed.last_seq is not None,
        selected,
        members[:MEMBERS_SHOWN],
        len(members) > MEMBERS_SHOWN,
    )
