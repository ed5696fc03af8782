"""Renders of the console's richer pages: the coupon form, the coupon, the groups' tree."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response

from couponry.domain.coupons import Coupon
from couponry.domain.groups import Group
from couponry.errors import CouponryError
from couponry.services.console_pages import MEMBERS_SHOWN, CouponOverview, GroupOverview
from couponry.web.console.chart import redemptions_chart
from couponry.web.console.forms import COUPON_FORM, field_errors, values_of
from couponry.web.console.render import page
from couponry.web.console.session import Caller, now

_GENERATE_FIELDS = ("count", "pattern")


def coupon_form(
    request: Request,
    who: Caller,
    *,
    coupon: Coupon | None,
    typed: Mapping[str, str] | None = None,
    error: CouponryError | None = None,
) -> Response:
    """New (coupon None) or Edit; after a refusal, `typed` is shown as it was typed."""
    errors, general = field_errors(error) if error is not None else ({}, [])
    return page(
        request,
        "coupon_form.html",
        422 if error is not None else 200,
        who=who,
        coupon=coupon,
        fields=COUPON_FORM,
        values=typed if typed is not None else values_of(coupon),
        errors=errors,
        general=general,
    )


def coupon_page(
    request: Request,
    who: Caller,
    found: CouponOverview,
    generate: tuple[Mapping[str, str], CouponryError] | None = None,
) -> Response:
    typed, error = generate if generate is not None else ({}, None)
    errors, general = field_errors(error, _GENERATE_FIELDS) if error is not None else ({}, [])
    today = now().date()
    job = found.job
    return page(
        request,
        "coupon.html",
        422 if error is not None else 200,
        who=who,
        coupon=found.coupon,
        stats=found.stats,
        applied=found.stats.times_used - found.stats.pending - found.stats.held,
        chart=redemptions_chart(found.stats, today),
        codes=found.codes,
        job=job,
        job_running=job is not None and job.status in ("queued", "running"),
        fields=[f for f in COUPON_FORM],
        view=values_of(found.coupon),
        generate_values=typed,
        generate_errors=errors,
        generate_general=general,
        now=now(),
    )


@dataclass(frozen=True)
class Node:
    group: Group
    depth: int


def _tree(groups: list[Group]) -> list[Node]:
    """Depth first, each group under its parent (a group whose parent is not among those
    read is shown at the top)."""
    ids = {g.id for g in groups}
    children: dict[str | None, list[Group]] = {}
    for g in groups:
        parent = g.parent_id if g.parent_id in ids else None
        children.setdefault(parent, []).append(g)
    out: list[Node] = []
    stack = [(g, 0) for g in reversed(children.get(None, []))]
    while stack:
        g, depth = stack.pop()
        out.append(Node(g, depth))
        stack.extend((c, depth + 1) for c in reversed(children.get(g.id, [])))
    return out


def groups_page(request: Request, who: Caller, found: GroupOverview) -> Response:
    return page(
        request,
        "groups.html",
        who=who,
        tree=_tree(found.groups),
        more=found.more,
        selected=found.selected,
        members=found.members,
        more_members=found.more_members,
        members_shown=MEMBERS_SHOWN,
        now=now(),
    )
