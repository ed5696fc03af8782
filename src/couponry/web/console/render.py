"""Pages from the package's Jinja2 templates, every value escaped, with the console's headers."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from functools import cache
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined
from starlette.requests import Request
from starlette.responses import HTMLResponse

from couponry.domain.coupons import Coupon
from couponry.domain.fields import format_instant

# Scripts, styles and images only from couponry itself: no inline script, no other host. The
# chart is inline SVG drawn with presentation attributes, which need no 'unsafe-inline'.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


@cache
def environment() -> Environment:
    env = Environment(
        loader=PackageLoader("couponry.web.console", "templates"),
        autoescape=True,  # every value shown is escaped (SPEC 12), whatever the file's name
        undefined=StrictUndefined,  # a misspelt name fails the test, not the page quietly
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["instant"] = _instant
    env.filters["money"] = _money
    env.globals["coupon_status"] = coupon_status
    return env


def _instant(value: datetime | None) -> str:
    # To the second: a person reads these; the API shows the whole instant.
    text = format_instant(value.replace(microsecond=0) if value else None)
    return "" if text is None else text.replace("T", " ").replace("Z", " UTC")


def _money(value: Decimal | None) -> str:
    return "" if value is None else f"{value:.2f}"


def coupon_status(coupon: Coupon, now: datetime) -> str:
    data = coupon.data
    if data.sys_locked:
        return "Locked"
    if not data.is_active:
        return "Inactive"
    if data.expires_at is not None and data.expires_at <= now:
        return "Expired"
    if data.starts_at is not None and data.starts_at > now:
        return "Scheduled"
    if data.usage_limit is not None and coupon.times_used >= data.usage_limit:
        return "Used up"
    return "Active"


def page(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    context.setdefault("who", None)  # signed out: the layout shows no navigation
    html = environment().get_template(template).render(request=request, **context)
    return HTMLResponse(html, status, headers=SECURITY_HEADERS)
