"""EduBrite replies: the `<response code="...">` envelope in XML (default) or JSON (`xml=false`).

Every text a caller could influence goes in CDATA, split where it contains `]]>`, with any
character XML cannot carry shown as `\\uXXXX` (the domain refuses them in stored values, but
refusals echo parameter names and values as sent); attribute values are escaped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from xml.sax.saxutils import quoteattr

from starlette.responses import Response

from couponry.domain.coupons import Coupon
from couponry.errors import printable
from couponry.jsontext import dumps
from couponry.web.edubrite.params import edubrite_view, plain_decimal

XML_TYPE = "text/xml; charset=utf-8"
JSON_TYPE = "application/json"

CREATED = ("0222", "Coupon Created Successfully")
UPDATED = ("0223", "Coupon updated successfully")
DELETED = ("0224", "Coupon deleted successfully")


@dataclass(frozen=True)
class CouponPage:
    coupons: Sequence[Coupon]
    num_items: int
    curr_page: int
    page_size: int

    @property
    def num_pages(self) -> int:
        return (self.num_items + self.page_size - 1) // self.page_size


def cdata(text: str) -> str:
    """CDATA that survives `]]>` in the text: end the section inside it and start another.

    A carriage return goes between sections as `&#13;`: parsers turn a raw CR into LF, even
    inside CDATA, and the text must come back as it was sent.
    """
    return "&#13;".join(
        "<![CDATA[" + part.replace("]]>", "]]]]><![CDATA[>") + "]]>"
        for part in printable(text).split("\r")
    )


def _xml_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return plain_decimal(value)
    if isinstance(value, int):
        return str(value)
    return cdata(str(value))


def _coupon_xml(coupon: Coupon) -> str:
    children = "".join(
        f"<{name}>{_xml_value(value)}</{name}>" for name, value in edubrite_view(coupon)
    )
    return f"<coupon id={quoteattr(coupon.id)}>{children}</coupon>"


def _msgs_xml(msgs: Sequence[tuple[str, str]]) -> str:
    if not msgs:
        return ""
    items = "".join(
        f"<msg><code>{code}</code><value>{cdata(text)}</value></msg>" for code, text in msgs
    )
    return f"<msgs>{items}</msgs>"


def _json_value(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value


def _coupon_json(coupon: Coupon) -> dict[str, Any]:
    return {"id": coupon.id} | {name: _json_value(v) for name, v in edubrite_view(coupon)}


def reply(
    *,
    as_xml: bool,
    code: int = 0,
    status: int = 200,
    msgs: Sequence[tuple[str, str]] = (),
    coupon: Coupon | None = None,
    page: CouponPage | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    """One envelope for every reply, success or error."""
    if as_xml:
        body = _msgs_xml(msgs)
        if coupon is not None:
            body += _coupon_xml(coupon)
        if page is not None:
            items = "".join(_coupon_xml(c) for c in page.coupons)
            body += (
                f'<coupons numItems="{page.num_items}" currPage="{page.curr_page}" '
                f'numPages="{page.num_pages}" pageSize="{page.page_size}">{items}</coupons>'
            )
        text = f'<response code="{code}">{body}</response>'
        return Response(text.encode("utf-8"), status, headers=headers, media_type=XML_TYPE)
    doc: dict[str, Any] = {"code": code}
    if msgs:
        doc["msgs"] = [{"code": c, "value": v} for c, v in msgs]
    if coupon is not None:
        doc["coupon"] = _coupon_json(coupon)
    if page is not None:
        doc["coupons"] = {
            "numItems": page.num_items,
            "currPage": page.curr_page,
            "numPages": page.num_pages,
            "pageSize": page.page_size,
            "coupon": [_coupon_json(c) for c in page.coupons],
        }
    body_bytes = dumps(doc)
    return Response(body_bytes, status, headers=headers, media_type=JSON_TYPE)
