"""The console's sessions, CSRF checks, cookies and search, without a browser (SPEC 12).

The browser tests (tests/e2e/test_console.py) drive the pages; these pin what a browser does
not show: what is stored, the cookie's flags under TLS, the idle limit, the search's pages.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from couponry.domain.search import SearchCursor, code_prefix, upper_bound
from couponry.errors import InvalidStartKey, RoleForbidden, SessionEnded
from couponry.services import console_sessions as sessions
from couponry.services import coupon_lists
from couponry.store.db import Database
from couponry.store.tables import console_sessions
from tests.conftest import TenantKeys, now, percent_coupon


@pytest.fixture
def browser(client: Any) -> Iterator[Any]:
    """The shared in-process client, its cookies emptied before and after."""
    client.cookies.clear()
    yield client
    client.cookies.clear()


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found is not None
    return found.group(1)


def _sign_in(client: Any, key: str, base: str = "") -> Any:
    form = client.get(f"{base}/console/sign-in")
    return client.post(
        f"{base}/console/sign-in",
        data={"api_key": key, "csrf_token": _csrf(form.text)},
        follow_redirects=False,
    )


def test_only_a_hash_of_the_token_is_stored(db: Database, tenant: TenantKeys) -> None:
    token, principal = sessions.sign_in(db, key=tenant.admin, now=now())
    assert principal.role == "admin"
    with db.reader() as conn:
        stored = [row.token_hash for row in conn.execute(select(console_sessions.c.token_hash))]
    assert token not in stored and len(stored[0]) == 64
    with pytest.raises(RoleForbidden):
        sessions.sign_in(db, key=tenant.read, now=now())


def test_a_session_ends_after_twelve_idle_hours(db: Database, tenant: TenantKeys) -> None:
    start = now()
    token, _ = sessions.sign_in(db, key=tenant.admin, now=start)
    later = start + timedelta(hours=11, minutes=59)
    assert sessions.session_principal(db, token=token, now=later).tenant.id == tenant.tenant_id
    # Used at `later`, so idle only from then on.
    still = later + timedelta(hours=11)
    assert sessions.session_principal(db, token=token, now=still).key_id
    with pytest.raises(SessionEnded):
        sessions.session_principal(db, token=token, now=still + timedelta(hours=12))
    with pytest.raises(SessionEnded):  # and it is gone, not only refused
        sessions.session_principal(db, token=token, now=still)


def test_cookie_flags_and_secure_under_tls(browser: Any, tenant: TenantKeys) -> None:
    plain = _sign_in(browser, tenant.admin)
    assert plain.status_code == 303
    cookie = plain.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/console" in cookie
    assert "Secure" not in cookie
    [session] = [
        c for c in plain.headers.get_list("set-cookie") if c.startswith("couponry_console=")
    ]
    # No age: the server ends a session after 12 idle hours, not the browser 12 hours in.
    assert "max-age" not in session.lower() and "expires" not in session.lower()
    browser.cookies.clear()
    tls = _sign_in(browser, tenant.admin, base="https://testserver")
    assert tls.status_code == 303 and "Secure" in tls.headers["set-cookie"]


def test_sign_in_without_its_form_token_is_refused(browser: Any, tenant: TenantKeys) -> None:
    reply = browser.post("/console/sign-in", data={"api_key": tenant.admin}, follow_redirects=False)
    assert reply.status_code == 403 and "couponry_console=" not in reply.headers.get(
        "set-cookie", ""
    )


def test_every_post_needs_the_sessions_csrf_token(
    browser: Any, api: Any, tenant: TenantKeys
) -> None:
    coupon = api.post(f"/coupons/{tenant.tenant_id}", json=percent_coupon(code="KEEP-ME")).json()
    assert _sign_in(browser, tenant.admin).status_code == 303
    page = browser.get(f"/console/coupons/{coupon['id']}/delete")
    token = _csrf(page.text)
    url = f"/console/coupons/{coupon['id']}/delete"
    wrong = token[:-1] + ("1" if token.endswith("0") else "0")  # differs from it, always
    for form in ({}, {"csrf_token": wrong}, {"csrf_token": ""}):
        assert browser.post(url, data=form, follow_redirects=False).status_code == 403
    assert api.get(f"/coupons/{tenant.tenant_id}/{coupon['id']}").status_code == 200
    assert browser.post(url, data={"csrf_token": token}, follow_redirects=False).status_code == 303
    assert api.get(f"/coupons/{tenant.tenant_id}/{coupon['id']}").status_code == 404


def test_pages_have_the_security_headers(browser: Any, tenant: TenantKeys) -> None:
    _sign_in(browser, tenant.admin)
    for path in ("/console/sign-in", "/console/coupons", "/console/redemptions"):
        reply = browser.get(path)
        assert reply.status_code == 200
        policy = reply.headers["content-security-policy"]
        assert "script-src 'self'" in policy and "unsafe" not in policy
        assert reply.headers["x-frame-options"] == "DENY"


def test_the_api_docs_load_their_files_from_this_server(browser: Any) -> None:
    page = browser.get("/docs")
    assert '"validatorUrl": null' in page.text  # nothing sent to swagger.io
    assert page.status_code == 200
    sources = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert sources and all(s.startswith("/") for s in sources), sources
    for source in sources:
        assert browser.get(source).status_code == 200, source


@pytest.mark.parametrize(
    ("prefix", "bound"),
    [
        ("abc", "abd"),
        ("a-", "a."),
        ("z\U0010ffff", "{"),
        ("\U0010ffff", None),
        ("\ud7ff", "\ue000"),
    ],
)
def test_upper_bound(prefix: str, bound: str | None) -> None:
    assert upper_bound(prefix) == bound


def test_code_prefix_and_cursors() -> None:
    assert code_prefix("SuM") == "sum" and code_prefix("<img") is None
    for cursor in (SearchCursor(code="abc"), SearchCursor(name="a:b", seq=7)):
        assert SearchCursor.decode(cursor.encode()) == cursor
    with pytest.raises(InvalidStartKey):
        SearchCursor.decode("x:1")


def test_search_by_code_then_by_name_in_pages(db: Database, api: Any, tenant: TenantKeys) -> None:
    for code, name in [
        ("SAVE-1", "Spring"),
        ("SAVE-2", "Autumn"),
        ("SAVE-3", "Save more"),
        ("OTHER-1", "Saver's deal"),
        ("OTHER-2", "saved É"),
        ("NOPE", "Winter"),
    ]:
        made = api.post(f"/coupons/{tenant.tenant_id}", json=percent_coupon(code=code, name=name))
        assert made.status_code == 201, made.text
    seen: list[str] = []
    cursor = None
    while True:
        found = coupon_lists.search_coupons(
            db, tenant_id=tenant.tenant_id, text="sAv", cursor=cursor, limit=2
        )
        seen += [c.code for c in found.items]
        cursor = found.next_cursor
        if cursor is None:
            break
    # Codes first, by code; then names (whose code does not match), by name.
    assert seen == ["SAVE-1", "SAVE-2", "SAVE-3", "OTHER-2", "OTHER-1"]
    accented = coupon_lists.search_coupons(
        db, tenant_id=tenant.tenant_id, text="SAVED é", cursor=None, limit=10
    )
    assert [c.code for c in accented.items] == ["OTHER-2"]
    newest = coupon_lists.list_newest_coupons(
        db, tenant_id=tenant.tenant_id, before_seq=None, limit=4
    )
    assert [c.code for c in newest.items] == ["NOPE", "OTHER-2", "OTHER-1", "SAVE-3"]
    rest = coupon_lists.list_newest_coupons(
        db, tenant_id=tenant.tenant_id, before_seq=newest.last_seq, limit=4
    )
    assert [c.code for c in rest.items] == ["SAVE-2", "SAVE-1"] and rest.last_seq is None


def test_a_group_page_shows_its_first_members_and_says_so(
    api: Any, tenant: TenantKeys, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    from couponry.services import console_pages

    monkeypatch.setattr(console_pages, "MEMBERS_SHOWN", 2)
    group = api.post(f"/groups/{tenant.tenant_id}", json={"name": "Big group"}).json()
    for user in ("u-1", "u-2", "u-3"):
        path = f"/groups/{tenant.tenant_id}/{group['id']}/members/{user}"
        assert api.put(path, json={}).status_code == 201
    found = console_pages.group_overview(db, tenant_id=tenant.tenant_id, group_id=group["id"])
    assert [m.user_id for m in found.members] == ["u-1", "u-2"] and found.more_members
    monkeypatch.setattr(console_pages, "MEMBERS_SHOWN", 3)
    found = console_pages.group_overview(db, tenant_id=tenant.tenant_id, group_id=group["id"])
    assert len(found.members) == 3 and not found.more_members
