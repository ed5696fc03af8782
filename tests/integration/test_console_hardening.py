"""The console under hostile or odd input (a review's findings): bodies past the form's
size, cursors past 64 bits, deep JSON, forms kept for every refusal they can help with,
a second sign-in, crafted notices, and the security headers on every kind of response."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from typing import Any

import pytest

from couponry.services.coupons import get_coupon, replace_coupon
from couponry.services.tenants import get_tenant
from couponry.store.db import Database
from couponry.web.console.forms import coupon_document, values_of
from tests.conftest import TenantKeys, now, percent_coupon


@pytest.fixture
def browser(client: Any) -> Iterator[Any]:
    client.cookies.clear()
    yield client
    client.cookies.clear()


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found is not None
    return found.group(1)


def _sign_in(client: Any, key: str) -> str:
    """Signs in; the CSRF token of the session's forms."""
    form = client.get("/console/sign-in")
    reply = client.post(
        "/console/sign-in",
        data={"api_key": key, "csrf_token": _csrf(form.text)},
        follow_redirects=False,
    )
    assert reply.status_code == 303, reply.text
    return _csrf(client.get("/console/coupons/new").text)


def _coupon(api: Any, tenant: TenantKeys, **fields: object) -> dict[str, Any]:
    reply = api.post(f"/coupons/{tenant.tenant_id}", json=percent_coupon(**fields))
    assert reply.status_code == 201, reply.text
    return dict(reply.json())


def test_a_form_body_past_its_size_is_refused_before_it_is_parsed(
    browser: Any, tenant: TenantKeys
) -> None:
    form = browser.get("/console/sign-in")
    body = "api_key=" + "a" * (300 * 1024) + "&csrf_token=" + _csrf(form.text)
    reply = browser.post(
        "/console/sign-in",
        content=body,
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert reply.status_code == 413
    assert "text/html" in reply.headers["content-type"]
    assert "couponry_console=" not in reply.headers.get("set-cookie", "")


def test_cursors_past_64_bits_are_a_400_page_not_a_crash(
    api: Any, browser: Any, tenant: TenantKeys
) -> None:
    coupon = _coupon(api, tenant, code="CURSOR-1")
    _sign_in(browser, tenant.admin)
    for path in (
        "/console/coupons?before=9223372036854775808",
        "/console/redemptions?before=99999999999999999999999",
        f"/console/coupons/{coupon['id']}?codes_after=9223372036854775808",
    ):
        reply = browser.get(path)
        assert reply.status_code == 400, path
        assert "default-src 'self'" in reply.headers["content-security-policy"]
    assert browser.get("/console/coupons?before=9223372036854775807").status_code == 200


def test_forms_keep_what_was_typed_for_every_refusal_they_can_help_with(
    api: Any, browser: Any, tenant: TenantKeys, db: Database
) -> None:
    coupon = _coupon(
        api,
        tenant,
        code="FORM-KEPT",
        custom_field_values=[{"custom_field_id": "cf1", "numeric_value": 1.5}],
    )
    token = _sign_in(browser, tenant.admin)
    shown = browser.get(f"/console/coupons/{coupon['id']}/edit").text
    assert '"numeric_value": 1.5' in html.unescape(shown)  # a number, as the API wants it
    # The form's values, posted back untouched, are a document the API's checks accept.
    stored = get_coupon(db, tenant_id=tenant.tenant_id, coupon_id=coupon["id"])
    doc = coupon_document(values_of(stored))
    replaced = replace_coupon(
        db,
        tenant=get_tenant(db, tenant_id=tenant.tenant_id),
        actor_id="console",
        coupon_id=coupon["id"],
        doc=doc,
        if_match=stored.sys_version,
        now=now(),
    )
    assert replaced.data.custom_field_values == stored.data.custom_field_values

    deep = "[" * 5000 + "]" * 5000
    reply = browser.post(
        "/console/coupons/new",
        data={
            "csrf_token": token,
            "code": "DEEP-1",
            "coupon_type": "PERCENT",
            "value_percent": "150",
            "custom_field_values": deep,
        },
    )
    assert reply.status_code == 422 and "nested less deeply" in reply.text
    assert "at most 100" in reply.text  # the other fields' errors too, at once
    assert 'value="DEEP-1"' in reply.text

    locked = _coupon(api, tenant, code="LOCKED-1", sys_locked=True)
    path = f"/console/coupons/{locked['id']}/edit"
    typed = values_of(get_coupon(db, tenant_id=tenant.tenant_id, coupon_id=locked["id"]))
    typed |= {"csrf_token": token, "name": "Typed while locked"}
    reply = browser.post(path, data=typed)
    assert reply.status_code == 422 and "locked (sys_locked)" in reply.text
    assert 'value="Typed while locked"' in reply.text
    odd_version = browser.post(path, data=typed | {"sys_version": "\u00b2"})
    assert odd_version.status_code == 422  # not a crash on a digit int() cannot read


def test_signing_in_again_ends_the_browser_s_earlier_session(
    browser: Any, tenant: TenantKeys, other_tenant: TenantKeys
) -> None:
    _sign_in(browser, tenant.admin)
    earlier = browser.cookies.get("couponry_console")
    _sign_in(browser, other_tenant.admin)
    browser.cookies.clear()
    browser.cookies.set("couponry_console", earlier, path="/console")
    replayed = browser.get(
        "/console/coupons", headers={"accept": "text/html"}, follow_redirects=False
    )
    assert replayed.status_code == 303 and replayed.headers["location"] == "/console/sign-in"


def test_a_link_cannot_make_the_redemptions_page_say_anything_else(
    browser: Any, tenant: TenantKeys
) -> None:
    _sign_in(browser, tenant.admin)
    spoof = browser.get("/console/redemptions?done=0000-0000-0000-0000%20is%20now%20hacked")
    assert spoof.status_code == 200 and "hacked" not in spoof.text
    real = browser.get("/console/redemptions?done=0000-0000-0000-0000%20is%20now%20rolled_back")
    assert "0000-0000-0000-0000 is now rolled_back" in real.text


def test_every_kind_of_console_response_carries_the_security_headers(
    browser: Any, tenant: TenantKeys
) -> None:
    _sign_in(browser, tenant.admin)
    replies = {
        "redirect": browser.get("/console/", follow_redirects=False),
        "bare /console": browser.get("/console", follow_redirects=False),
        "static": browser.get("/console/static/console.css"),
        "signed out poll": browser.get("/console/jobs/0000-0000-0000-0000"),
    }
    for kind, reply in replies.items():
        assert "default-src 'self'" in reply.headers.get("content-security-policy", ""), kind
        assert reply.headers.get("x-content-type-options") == "nosniff", kind
    assert replies["bare /console"].headers["location"] == "/console/coupons"  # no Host in it
