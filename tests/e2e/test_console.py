"""The console (SPEC 12) in a real browser: Playwright drives Debian's Chromium against a real
`couponry serve` on SQLite, and asserts what a user sees.

Set COUPONRY_SCREENSHOTS=1 to also write docs/console/*.png (docs/console.md shows them).
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from tests.e2e.server import Server, cli, cli_env, running_server

playwright_sync = pytest.importorskip("playwright.sync_api")
Browser = playwright_sync.Browser
Page = playwright_sync.Page
expect = playwright_sync.expect

pytestmark = pytest.mark.slow
CHROMIUM = "/usr/bin/chromium"
SHOTS = Path(__file__).resolve().parents[2] / "docs" / "console"
XSS = "<img src=x onerror=alert(1)>"


@dataclass(frozen=True)
class Site:
    server: Server
    env: dict[str, str]
    tenant: str
    admin: str
    read: str
    coupons: dict[str, dict[str, Any]]
    other_coupon: str
    redemptions: dict[str, str]
    group: str

    @property
    def base(self) -> str:
        return self.server.base


def _tenant(env: dict[str, str], name: str) -> tuple[str, str, str]:
    tenant = f"{name}-{secrets.token_hex(3)}"
    cli("tenant", "create", tenant, "--name", f"{name} Org", "--admin", "boss", env=env)
    admin = cli("key", "create", tenant, "--role", "admin", env=env).stdout.strip()
    read = cli("key", "create", tenant, "--role", "read", env=env).stdout.strip()
    return tenant, admin, read


def _post(base: str, key: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
    reply = httpx.post(f"{base}{path}", json=body, headers={"Authorization": key}, timeout=30)
    assert reply.status_code in (200, 201), reply.text
    return dict(reply.json())


def _cart(code: str, user: str, **extra: Any) -> dict[str, Any]:
    line = {"line_id": "1", "kind": "event", "id": "e", "unit_price": "100.00", "quantity": 1}
    return {"code": code, "user_id": user, "lines": [line], **extra}


def _seed(
    base: str, tenant: str, key: str
) -> tuple[dict[str, dict[str, Any]], dict[str, str], str]:
    def coupon(**body: Any) -> dict[str, Any]:
        return _post(base, key, f"/coupons/{tenant}", body)

    group = _post(base, key, f"/groups/{tenant}", {"name": "Members"})["id"]
    child = _post(base, key, f"/groups/{tenant}", {"name": "Gold members", "parent_id": group})
    for group_id, user in ((child["id"], "ann"), (group, "pat"), (group, "quinn")):
        httpx.put(
            f"{base}/groups/{tenant}/{group_id}/members/{user}",
            json={"role": "member"},
            headers={"Authorization": key},
        ).raise_for_status()
    made = {
        "plain": coupon(
            code="SUMMER10", name="Summer sale", coupon_type="PERCENT", value_percent=10
        ),
        "xss": coupon(code="XSS-1", name=XSS, coupon_type="PERCENT", value_percent=5),
        "approval": coupon(
            code="VIP-APPROVE",
            name="Needs approval",
            coupon_type="PERCENT",
            value_percent=20,
            authorized_group_id=group,
            require_approval=True,
        ),
        "codes": coupon(code="CAMPAIGN", name="Campaign", coupon_type="PERCENT", value_percent=15),
    }
    redeem = f"/redemptions/{tenant}"
    found = {
        "pending": _post(base, key, redeem, _cart("VIP-APPROVE", "pat"))["id"],
        "pending2": _post(base, key, redeem, _cart("VIP-APPROVE", "quinn"))["id"],
        "applied": _post(base, key, redeem, _cart("SUMMER10", "ann"))["id"],
        "held": _post(base, key, redeem, _cart("SUMMER10", "bob", hold_seconds=600))["id"],
    }
    return made, found, group


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    if not os.access(CHROMIUM, os.X_OK):
        pytest.skip("Chromium is not installed (make chromium)")
    url = f"sqlite:///{tmp_path_factory.mktemp('console') / 'console.db'}"
    env = cli_env(url)
    tenant, admin, read = _tenant(env, "shop")
    other, other_admin, _ = _tenant(env, "other")
    with running_server(env, workers=1) as server:
        made, found, group = _seed(server.base, tenant, admin)
        theirs = _post(
            server.base,
            other_admin,
            f"/coupons/{other}",
            {"code": "THEIRS", "coupon_type": "PERCENT", "value_percent": 1},
        )
        yield Site(server, env, tenant, admin, read, made, theirs["id"], found, group)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with playwright_sync.sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1200, "height": 900}, accept_downloads=True)
    opened = context.new_page()
    yield opened
    context.close()


def sign_in(page: Page, site: Site, key: str | None = None) -> None:
    page.goto(f"{site.base}/console/sign-in")
    page.get_by_label("API key").fill(key or site.admin)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Coupons")).to_be_visible()


def shot(page: Page, name: str) -> None:
    if os.environ.get("COUPONRY_SCREENSHOTS"):
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def open_coupon(page: Page, site: Site, which: str) -> None:
    page.goto(f"{site.base}/console/coupons/{site.coupons[which]['id']}")


def test_sign_in_refuses_a_bad_key_and_a_non_admin_key(page: Page, site: Site) -> None:
    page.goto(f"{site.base}/console/coupons")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()  # sent to sign in
    shot(page, "sign-in")
    page.get_by_label("API key").fill("knotakey.nonsense")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("not valid")
    page.get_by_label("API key").fill(site.read)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("not an admin key")
    assert not any(c["name"] == "couponry_console" for c in page.context.cookies())
    page.goto(f"{site.base}/console/coupons")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()


def test_session_cookie_and_sign_out(page: Page, site: Site) -> None:
    sign_in(page, site)
    cookie = next(c for c in page.context.cookies() if c["name"] == "couponry_console")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["path"] == "/console"
    assert not cookie["secure"]  # plain HTTP here; tests/integration covers https
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    # The old cookie, sent again by hand, names no session any more.
    page.context.add_cookies([cookie])  # type: ignore[list-item]
    page.goto(f"{site.base}/console/coupons")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()


def test_list_search_escaping_and_no_other_host(page: Page, site: Site) -> None:
    requests: list[str] = []
    dialogs: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    sign_in(page, site)
    table = page.get_by_role("table")
    for column in ("Code", "Name", "Type", "Used", "Limit", "Status"):
        expect(table.get_by_role("columnheader", name=column, exact=True)).to_be_visible()
    expect(table.get_by_role("link", name="SUMMER10")).to_be_visible()
    expect(table.get_by_role("cell", name=XSS)).to_be_visible()  # the name shown as text
    assert page.locator("table img").count() == 0
    shot(page, "coupons")
    page.get_by_label("Search").fill("summ")
    page.get_by_role("button", name="Search").click()
    expect(table.get_by_role("link", name="SUMMER10")).to_be_visible()
    expect(table.get_by_role("link", name="CAMPAIGN")).to_have_count(0)
    page.get_by_label("Search").fill("<img")  # a name prefix
    page.get_by_role("button", name="Search").click()
    expect(table.get_by_role("link", name="XSS-1")).to_be_visible()
    expect(table.get_by_role("row")).to_have_count(2)
    open_coupon(page, site, "xss")
    expect(page.get_by_role("heading", name="XSS-1", exact=True)).to_be_visible()
    expect(page.get_by_text(XSS).first).to_be_visible()
    page.goto(f"{site.base}/docs")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("couponry")
    assert dialogs == []
    host = urlsplit(site.base).netloc
    assert requests and all(urlsplit(u).netloc == host for u in requests), [
        u for u in requests if urlsplit(u).netloc != host
    ]


def test_console_pages_carry_a_strict_content_security_policy(site: Site) -> None:
    reply = httpx.get(f"{site.base}/console/sign-in")
    policy = reply.headers["content-security-policy"]
    assert "default-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert "unsafe-inline" not in policy and "http" not in policy
    assert reply.headers["x-frame-options"] == "DENY"


def test_create_with_a_field_error_keeps_what_was_typed_then_edit_and_delete(
    page: Page, site: Site
) -> None:
    sign_in(page, site)
    page.get_by_role("link", name="New coupon").click()
    page.get_by_label("Code", exact=True).fill("SPRING-24")
    page.get_by_label("Name", exact=True).fill("Spring <b>sale</b>")
    page.get_by_label("Coupon type").select_option("PERCENT")
    page.get_by_label("Value percent").fill("150")
    page.get_by_label("Usage limit").fill("40")
    page.get_by_role("button", name="Create coupon").click()
    percent = page.get_by_label("Value percent")
    expect(percent).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#e-value_percent")).to_contain_text("at most 100")
    expect(percent).to_have_value("150")
    expect(page.get_by_label("Name", exact=True)).to_have_value("Spring <b>sale</b>")
    expect(page.get_by_label("Usage limit")).to_have_value("40")
    shot(page, "coupon-form-error")
    percent.fill("15")
    page.get_by_role("button", name="Create coupon").click()
    expect(page.get_by_role("heading", name="SPRING-24", exact=True)).to_be_visible()

    page.get_by_role("link", name="Edit").click()
    page.get_by_label("Name", exact=True).fill("Spring sale")
    page.get_by_label("Usage limit").fill("50")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("heading", name="SPRING-24", exact=True)).to_be_visible()
    expect(page.get_by_text("Spring sale").first).to_be_visible()
    expect(page.locator(".figures")).to_contain_text("0 of 50")

    page.get_by_role("link", name="Delete").click()
    expect(page.get_by_role("heading", name="Delete SPRING-24?")).to_be_visible()
    page.get_by_role("button", name="Delete").click()
    expect(page.get_by_role("status")).to_contain_text("SPRING-24 deleted")
    expect(page.get_by_role("link", name="SPRING-24")).to_have_count(0)


def test_generate_codes_shows_progress_then_export_csv(page: Page, site: Site) -> None:
    sign_in(page, site)
    open_coupon(page, site, "codes")
    page.get_by_label("Count").fill("abc")
    page.get_by_role("button", name="Generate codes").click()
    expect(page.locator("#ge-count")).to_contain_text("whole number")
    expect(page.get_by_label("Count")).to_have_value("abc")
    page.get_by_label("Count").fill("3000")
    page.get_by_label("Pattern").fill("CMP-#######")
    page.get_by_role("button", name="Generate codes").click()
    expect(page.get_by_label("Generating codes")).to_be_visible()
    expect(page.locator(".job-text")).to_contain_text("succeeded: 3000 of 3000", timeout=30_000)
    expect(page.get_by_role("cell", name=re.compile(r"^CMP-")).first).to_be_visible()
    expect(page.locator(".figures")).to_contain_text("3000 (3000 active, 0 used)")
    shot(page, "coupon-codes")
    with page.expect_download() as download:
        page.get_by_role("link", name="Export CSV").click()
    lines = Path(download.value.path()).read_text().splitlines()
    assert lines[0].startswith("code") and len(lines) == 3001
    assert all(line.startswith("CMP-") for line in lines[1:])


def test_redemptions_approve_reject_roll_back_and_release(page: Page, site: Site) -> None:
    sign_in(page, site)
    page.get_by_role("link", name="Redemptions").click()
    expect(page.get_by_role("heading", name="Redemptions")).to_be_visible()
    rows = page.get_by_role("row")
    users = [rows.nth(i).get_by_role("cell").nth(2).inner_text() for i in range(1, 5)]
    assert users == ["bob", "ann", "quinn", "pat"]  # newest first
    shot(page, "redemptions")

    page.get_by_label("Status").select_option("pending_approval")
    page.get_by_role("button", name="Filter").click()
    expect(rows).to_have_count(3)
    page.get_by_role("button", name="Approve VIP-APPROVE for pat").click()
    expect(page.get_by_role("status")).to_contain_text("is now applied")
    page.get_by_role("button", name="Reject VIP-APPROVE for quinn").click()
    expect(page.get_by_role("status")).to_contain_text("is now rejected")
    expect(page.get_by_role("cell", name="No redemptions match these filters.")).to_be_visible()

    page.get_by_label("Status").select_option("")
    page.get_by_label("Code").fill("summer10")
    page.get_by_role("button", name="Filter").click()
    expect(rows).to_have_count(3)
    page.get_by_role("button", name="Roll back SUMMER10 for ann").click()
    expect(page.get_by_role("status")).to_contain_text("is now rolled_back")
    page.get_by_role("button", name="Release SUMMER10 for bob").click()
    expect(page.get_by_role("status")).to_contain_text("is now released")
    expect(page.get_by_role("button", name=re.compile("Roll back|Release"))).to_have_count(0)
    reply = httpx.get(
        f"{site.base}/redemptions/{site.tenant}/{site.redemptions['pending']}",
        headers={"Authorization": site.admin},
    )
    assert reply.json()["status"] == "applied" and reply.json()["approved_by"] == "boss"
    open_coupon(page, site, "approval")
    expect(page.get_by_role("img", name=re.compile("Redemptions per day"))).to_be_visible()
    assert page.locator("svg rect").count() == 1  # today's bar: pat's and quinn's redemptions
    shot(page, "coupon-stats")


def test_a_post_without_the_csrf_token_is_refused_and_changes_nothing(
    page: Page, site: Site
) -> None:
    sign_in(page, site)
    coupon = site.coupons["plain"]
    url = f"{site.base}/console/coupons/{coupon['id']}/delete"
    for form in ({}, {"csrf_token": "0" * 64}):
        reply = page.request.post(url, form=form, max_redirects=0)
        assert reply.status == 403
        assert "security token" in reply.text()
    page.set_content(reply.text())
    expect(page.get_by_role("heading", name="Refused")).to_be_visible()
    open_coupon(page, site, "plain")
    expect(page.get_by_role("heading", name="SUMMER10", exact=True)).to_be_visible()


def test_another_tenants_coupon_is_not_found(page: Page, site: Site) -> None:
    sign_in(page, site)
    reply = page.goto(f"{site.base}/console/coupons/{site.other_coupon}")
    assert reply is not None and reply.status == 404
    expect(page.get_by_role("heading", name="Not found")).to_be_visible()
    page.goto(f"{site.base}/console/coupons/{site.other_coupon}/codes.csv")
    expect(page.get_by_role("heading", name="Not found")).to_be_visible()


def test_revoking_the_key_ends_its_sessions(page: Page, site: Site) -> None:
    key = cli("key", "create", site.tenant, "--role", "admin", env=site.env).stdout.strip()
    sign_in(page, site, key)
    cli("key", "revoke", key.split(".")[0], env=site.env)
    page.reload()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()


def test_groups_show_the_tree_and_members(page: Page, site: Site) -> None:
    sign_in(page, site)
    page.get_by_role("link", name="Groups").click()
    tree = page.get_by_role("navigation", name="Group tree")
    expect(tree.get_by_role("link", name="Members", exact=True)).to_be_visible()
    tree.get_by_role("link", name="Gold members").click()
    expect(page.get_by_role("heading", name="Gold members")).to_be_visible()
    expect(page.get_by_role("cell", name="ann")).to_be_visible()
    shot(page, "groups")


def test_a_phone_sized_screen_never_scrolls_sideways(browser: Browser, site: Site) -> None:
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    page = context.new_page()
    sign_in(page, site)
    paths = [
        "/console/coupons",
        f"/console/coupons/{site.coupons['codes']['id']}",
        f"/console/coupons/{site.coupons['plain']['id']}/edit",
        "/console/coupons/new",
        "/console/redemptions",
        f"/console/groups/{site.group}",
    ]
    for path in paths:
        page.goto(f"{site.base}{path}")
        wide = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert wide <= 0, f"{path} is {wide}px wider than the screen"
    page.goto(f"{site.base}/console/coupons")
    shot(page, "coupons-phone")
    context.close()
