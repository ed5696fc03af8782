"""EduBrite sessions, tenant isolation and XML safety, on both backends (SPEC 7.1-7.3, 9).

- Connecting (7.1): home.do / connect.do, GET or POST, cookies with Path=/, never the
  encryption headers; sessions live in the database, so another app instance over the same
  database accepts them; `Authorization` works instead of cookies (7.2).
- Bounds: a tenant holds at most 200 sessions (the oldest go, other tenants' stay); a session
  idle for 24 hours expires, one used within that time is kept alive.
- Isolation: with tenant A's session nothing of tenant B is read or changed, and none of B's
  strings appear in A's replies.
- XML safety (7.3): whatever a caller sends (markup, `]]>`, CDATA openers, non-ASCII, line
  breaks), every reply is well-formed UTF-8 XML and the text round-trips exactly.

Calls go through `EduBriteConnection` (the Java client's double); the raw client is used only
for what that client cannot send, and its replies are still checked to be ones the Java client
would accept.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.cookies import Morsel, SimpleCookie
from typing import Any
from xml.etree.ElementTree import Element

import httpx
import pytest
from defusedxml import ElementTree
from sqlalchemy import select, update
from starlette.testclient import TestClient

from couponry.app import create_app
from couponry.config import Settings
from couponry.services.sessions import count_sessions
from couponry.store.db import Database
from couponry.store.tables import sessions
from tests.conftest import Api, TenantKeys, make_tenant
from tests.edubrite_client import (
    AdminUser,
    EduBriteConnection,
    coupon_fields,
    messages,
    parse,
)

BASE = "http://testserver"
SERVICE = "couponService.do"
SERVICE_URL = "/oltpublish/site/couponService.do"
HOME_URL = "/oltpublish/site/home.do"
CONNECT_URL = "/oltpublish/site/connect.do"
ADMIN = AdminUser("admin")
ENCRYPTION_HEADERS = ("SER_PUB_KEY", "SER_SEC_KEY")


# --- helpers --------------------------------------------------------------------------------


@dataclass
class Reply:
    status: int
    root: Element
    body: str

    @property
    def code(self) -> int:
        return int(self.root.get("code", "-1"))

    @property
    def msgs(self) -> list[tuple[str, str]]:
        return messages(self.root)

    def coupon(self) -> dict[str, Any]:
        element = self.root.find("coupon")
        assert element is not None, self.body
        return coupon_fields(element)

    def coupons(self) -> list[dict[str, Any]]:
        return [coupon_fields(e) for e in self.root.iterfind("coupons/coupon")]


def send(conn: EduBriteConnection, params: dict[str, str], user: AdminUser | None = ADMIN) -> Reply:
    body = conn.invoke_api(SERVICE, user, params)
    return Reply(conn.last_status, parse(body), body)


def call(conn: EduBriteConnection, dispatch: str, **params: str) -> Reply:
    return send(conn, {"dispatch": dispatch, **params})


def ok(reply: Reply) -> Reply:
    assert reply.status == 200, reply.body
    assert reply.code == 0, reply.body
    return reply


def refused(reply: Reply, code: int, status: int) -> Reply:
    assert (reply.status, reply.code) == (status, code), reply.body
    assert [c for c, _ in reply.msgs] and all(c == str(code) for c, _ in reply.msgs), reply.body
    assert reply.root.find("coupon") is None and reply.root.find("coupons") is None
    return reply


def create(conn: EduBriteConnection, **params: str) -> dict[str, Any]:
    defaults = {"type": "PERCENT", "valuePercent": "10", "couponName": "Ten off"}
    return ok(call(conn, "createCoupon", **(defaults | params))).coupon()


def connection(
    client: TestClient,
    key: str,
    *,
    session_id: str | None = None,
    session_info: str | None = None,
) -> EduBriteConnection:
    key_id, secret = key.split(".")
    return EduBriteConnection(
        client,  # type: ignore[arg-type]
        BASE,
        key_id,
        secret,
        session_id=session_id,
        session_info=session_info,
    )


def connect_key(client: TestClient, key: str) -> EduBriteConnection:
    conn = connection(client, key)
    assert conn.connect()
    return conn


def set_cookies(response: httpx.Response) -> dict[str, Morsel[str]]:
    """The response's Set-Cookie headers, by cookie name."""
    found: dict[str, Morsel[str]] = {}
    for header in response.headers.get_list("set-cookie"):
        jar: SimpleCookie = SimpleCookie()
        jar.load(header)
        found.update(jar)
    return found


def no_encryption_headers(response: httpx.Response) -> None:
    for name in ENCRYPTION_HEADERS:
        assert name not in response.headers


def java_reply(response: httpx.Response) -> Reply:
    """What the Java client would make of it: 200, or XML rooted at `response`."""
    if response.status_code != 200:
        root = ElementTree.fromstring(response.content)
        assert root.tag.lower() == "response", response.text
    return Reply(response.status_code, parse(response.text), response.text)


def raw_post(
    client: TestClient,
    data: dict[str, str],
    *,
    cookies: dict[str, str] | None = None,
    headers: dict[str, Any] | None = None,
) -> httpx.Response:
    client.cookies.clear()
    sent: dict[str, Any] = dict(headers or {})
    if cookies:
        sent["Cookie"] = "; ".join(f"{k}={v}" for k, v in cookies.items())
    return client.post(SERVICE_URL, data=data, headers=sent)


def rest_coupons(api: Api, tenant_id: str) -> list[dict[str, Any]]:
    response = api.get(f"/coupons/{tenant_id}", params={"limit": 1000})
    assert response.status_code == 200, response.text
    rows: list[dict[str, Any]] = response.json()
    return rows


def set_last_seen(db: Database, tenant_id: str, when: datetime) -> None:
    with db.transaction() as conn:
        conn.execute(
            update(sessions).where(sessions.c.tenant_id == tenant_id).values(last_seen_at=when)
        )


def last_seen(db: Database, tenant_id: str) -> list[datetime]:
    with db.reader() as conn:
        rows = conn.execute(
            select(sessions.c.last_seen_at).where(sessions.c.tenant_id == tenant_id)
        ).all()
    return [row[0] for row in rows]


@pytest.fixture
def replies(client: TestClient) -> Iterator[list[httpx.Response]]:
    """Every response the shared client receives during the test."""
    seen: list[httpx.Response] = []
    hooks = client.event_hooks
    client.event_hooks = {
        "request": list(hooks.get("request", [])),
        "response": [*hooks.get("response", []), seen.append],
    }
    try:
        yield seen
    finally:
        client.event_hooks = hooks


def assert_xml_reply(response: httpx.Response) -> Element:
    """Well-formed XML rooted at `response`, UTF-8, with an XML content type."""
    media, _, rest = response.headers["content-type"].partition(";")
    assert media.strip() in ("text/xml", "application/xml"), response.headers["content-type"]
    assert "charset=utf-8" in rest.replace(" ", "").lower()
    text = response.content.decode("utf-8")  # strict: raises on anything but UTF-8
    if text.startswith("<?xml"):
        assert "utf-8" in text.split("?>", 1)[0].lower()
    root: Element = ElementTree.fromstring(response.content)
    assert root.tag == "response"
    return root


# --- connecting (7.1) -----------------------------------------------------------------------


def test_first_home_do_without_credentials_gives_a_session_id(client: TestClient) -> None:
    for url in (HOME_URL, CONNECT_URL):
        client.cookies.clear()
        response = client.get(url)
        assert response.status_code == 200, response.text
        no_encryption_headers(response)
        cookies = set_cookies(response)
        assert "SESSION_ID" in cookies and cookies["SESSION_ID"].value
        assert cookies["SESSION_ID"]["path"] == "/"
        assert "SESSION_INFO" not in cookies
        if response.content.strip():
            java_reply(response)


@pytest.mark.parametrize(
    ("method", "url"),
    [("GET", HOME_URL), ("GET", CONNECT_URL), ("POST", HOME_URL), ("POST", CONNECT_URL)],
)
def test_connect_with_credentials_gives_both_cookies(
    client: TestClient, tenant: TenantKeys, method: str, url: str
) -> None:
    key_id, secret = tenant.admin.split(".")
    credentials = {"username": key_id, "password": secret}
    client.cookies.clear()
    anonymous = client.get(url)
    assert anonymous.status_code == 200
    if method == "GET":
        response = client.get(url, params=credentials)
    else:
        response = client.post(url, data=credentials)
    assert response.status_code == 200, response.text
    no_encryption_headers(response)
    cookies = set_cookies(response)
    for name in ("SESSION_ID", "SESSION_INFO"):
        assert name in cookies, response.headers.get_list("set-cookie")
        assert cookies[name].value
        assert cookies[name]["path"] == "/"
    assert cookies["SESSION_ID"].value != cookies["SESSION_INFO"].value
    assert secret not in cookies["SESSION_ID"].value + cookies["SESSION_INFO"].value
    if response.content.strip():
        assert java_reply(response).code == 0
    conn = connection(
        client,
        tenant.admin,
        session_id=cookies["SESSION_ID"].value,
        session_info=cookies["SESSION_INFO"].value,
    )
    made = create(conn, authCode=f"VIA-{method}-{url.rsplit('/', 1)[1].split('.')[0]}")
    assert ok(call(conn, "getCoupon", id=made["id"])).coupon() == made


def test_java_client_connects_and_no_reply_carries_encryption_headers(
    client: TestClient, tenant: TenantKeys, replies: list[httpx.Response]
) -> None:
    conn = connect_key(client, tenant.admin)
    assert conn.history == [200]
    made = create(conn)
    ok(call(conn, "getCoupon", id=made["id"]))
    ok(call(conn, "listCoupons"))
    refused(call(conn, "getCoupon", id="0000-0000-0000-0000"), 1003, 404)
    assert len(replies) >= 6
    for response in replies:
        no_encryption_headers(response)


def test_sessions_live_in_the_database(
    client: TestClient,
    edubrite: EduBriteConnection,
    api: Api,
    tenant: TenantKeys,
    settings: Settings,
) -> None:
    """A second app over the same database (its own engine) accepts the first one's session."""
    made = create(edubrite, authCode="FIRST-APP")
    with TestClient(create_app(settings), raise_server_exceptions=False) as other:
        elsewhere = connection(
            other,
            tenant.admin,
            session_id=edubrite.session_id,
            session_info=edubrite.session_info,
        )
        assert ok(call(elsewhere, "getCoupon", authCode="first-app")).coupon() == made
        second = create(elsewhere, authCode="SECOND-APP")
        # and a session opened on the second app works on the first
        opened_there = connect_key(other, tenant.admin)
    back_here = connection(
        client,
        tenant.admin,
        session_id=opened_there.session_id,
        session_info=opened_there.session_info,
    )
    assert ok(call(back_here, "getCoupon", id=second["id"])).coupon() == second
    codes = sorted(c["code"] for c in rest_coupons(api, tenant.tenant_id))
    assert codes == ["FIRST-APP", "SECOND-APP"]


@pytest.mark.parametrize("scheme", ["", "Bearer ", "bearer "])
def test_authorization_header_works_instead_of_cookies(
    client: TestClient, api: Api, tenant: TenantKeys, scheme: str
) -> None:
    headers = {"Authorization": scheme + tenant.admin, "REAL_UNAME": ADMIN.real_uname()}
    reply = java_reply(
        raw_post(client, {"dispatch": "createCoupon", "type": "USAGE"}, headers=headers)
    )
    assert (reply.status, reply.code) == (200, 0), reply.body
    coupon_id = reply.coupon()["id"]
    reply = java_reply(
        raw_post(client, {"dispatch": "getCoupon", "id": coupon_id}, headers=headers)
    )
    assert reply.coupon()["id"] == coupon_id
    assert [c["id"] for c in rest_coupons(api, tenant.tenant_id)] == [coupon_id]
    bad = {"Authorization": scheme + tenant.admin + "x", "REAL_UNAME": ADMIN.real_uname()}
    reply = java_reply(raw_post(client, {"dispatch": "listCoupons"}, headers=bad))
    refused(reply, 1009, 401)


# --- the bound of 200 sessions per tenant ---------------------------------------------------


def test_a_tenant_holds_at_most_200_sessions(client: TestClient, db: Database) -> None:
    mine = make_tenant(db, prefix="cap")
    theirs = make_tenant(db, prefix="oth")
    their_sessions = [connect_key(client, theirs.admin) for _ in range(3)]
    logins = [connect_key(client, mine.admin) for _ in range(205)]
    assert count_sessions(db, tenant_id=mine.tenant_id) == 200
    for oldest in logins[:5]:
        refused(call(oldest, "listCoupons"), 1009, 401)
    for newer in logins[5:]:
        ok(call(newer, "listCoupons"))
    assert count_sessions(db, tenant_id=mine.tenant_id) == 200
    # another tenant's sessions are not trimmed by this one's logins
    assert count_sessions(db, tenant_id=theirs.tenant_id) == 3
    for session in their_sessions:
        ok(call(session, "listCoupons"))
    # one more login drops exactly the oldest remaining one
    logins.append(connect_key(client, mine.admin))
    assert count_sessions(db, tenant_id=mine.tenant_id) == 200
    refused(call(logins[5], "listCoupons"), 1009, 401)
    ok(call(logins[6], "listCoupons"))
    ok(call(logins[-1], "listCoupons"))


# --- idle expiry ----------------------------------------------------------------------------


def test_a_session_used_within_24_hours_stays_alive(
    edubrite: EduBriteConnection, db: Database, tenant: TenantKeys
) -> None:
    before = datetime.now(UTC)
    set_last_seen(db, tenant.tenant_id, before - timedelta(hours=23))
    ok(call(edubrite, "listCoupons"))
    (seen,) = last_seen(db, tenant.tenant_id)
    assert seen >= before - timedelta(seconds=5), "last_seen_at is refreshed by use"
    # expiry counts idle time, not age: an old session that keeps being used lives on
    with db.transaction() as conn:
        conn.execute(
            update(sessions)
            .where(sessions.c.tenant_id == tenant.tenant_id)
            .values(created_at=before - timedelta(hours=47))
        )
    set_last_seen(db, tenant.tenant_id, before - timedelta(hours=23, minutes=59))
    ok(call(edubrite, "createCoupon", type="USAGE"))
    (seen,) = last_seen(db, tenant.tenant_id)
    assert seen >= before - timedelta(seconds=5)
    assert count_sessions(db, tenant_id=tenant.tenant_id) == 1


def test_a_session_idle_for_25_hours_is_gone(
    edubrite: EduBriteConnection, db: Database, tenant: TenantKeys, api: Api
) -> None:
    set_last_seen(db, tenant.tenant_id, datetime.now(UTC) - timedelta(hours=25))
    reply = call(edubrite, "createCoupon", type="USAGE")
    refused(reply, 1009, 401)
    assert rest_coupons(api, tenant.tenant_id) == []
    assert count_sessions(db, tenant_id=tenant.tenant_id) == 0
    assert last_seen(db, tenant.tenant_id) == []
    refused(call(edubrite, "listCoupons"), 1009, 401)
    assert edubrite.connect()
    ok(call(edubrite, "listCoupons"))


# --- tenant isolation -----------------------------------------------------------------------


def test_a_session_never_reaches_another_tenant(
    client: TestClient,
    db: Database,
    edubrite: EduBriteConnection,
    tenant: TenantKeys,
    other_tenant: TenantKeys,
    replies: list[httpx.Response],
) -> None:
    token = secrets.token_hex(4)
    as_b = Api(client, other_tenant.admin)
    group = as_b.post(f"/groups/{other_tenant.tenant_id}", json={"name": f"B-group-{token}"})
    assert group.status_code == 201, group.text
    b_group = group.json()["id"]
    made = as_b.post(
        f"/coupons/{other_tenant.tenant_id}",
        json={
            "coupon_type": "PERCENT",
            "value_percent": 15,
            "name": f"B-secret-name-{token}",
            "code": f"BSECRET{token}",
            "comment": f"B-secret-comment-{token}",
            "authorized_group_id": b_group,
        },
    )
    assert made.status_code == 201, made.text
    b_coupon = made.json()
    b_before = rest_coupons(as_b, other_tenant.tenant_id)

    mine = [create(edubrite, couponName=f"A-{i}") for i in range(3)]
    checks: list[tuple[Reply, set[str]]] = []  # each reply with what its request sent

    def expect(reply: Reply, code: int, status: int, sent: set[str]) -> None:
        refused(reply, code, status)
        checks.append((reply, sent))

    b_id, b_code = b_coupon["id"], b_coupon["code"]
    expect(call(edubrite, "getCoupon", id=b_id), 1003, 404, {b_id})
    for code in (b_code, b_code.lower(), b_code.upper()):
        expect(call(edubrite, "getCoupon", authCode=code), 1003, 404, {code})
    expect(call(edubrite, "updateCoupon", id=b_id, couponName="Stolen"), 1003, 404, {b_id})
    expect(call(edubrite, "updateCoupon", id=b_id, valueCount="1"), 1003, 404, {b_id})
    expect(call(edubrite, "deleteCoupon", id=b_id), 1003, 404, {b_id})
    # B's group is not A's: neither by id nor by path
    expect(
        call(edubrite, "createCoupon", type="USAGE", authorizedGroup=b_group), 1004, 404, {b_group}
    )
    path = f'{{name:"B-group-{token}"}}'
    expect(
        call(edubrite, "createCoupon", type="USAGE", entityType="GROUP", entityId=path),
        1004,
        404,
        {path, f"B-group-{token}"},
    )
    expect(
        call(edubrite, "updateCoupon", id=mine[0]["id"], authorizedGroup=b_group),
        1004,
        404,
        {b_group},
    )
    # listCoupons shows A's coupons only, whatever the page or filter
    for params in (
        {},
        {"pageSize": "100"},
        {"status": "ACTIVE"},
        {"currPage": "1", "pageSize": "1"},
    ):
        listed = ok(call(edubrite, "listCoupons", **params))
        assert {c["id"] for c in listed.coupons()} <= {c["id"] for c in mine}
        checks.append((listed, set()))
    everything = ok(call(edubrite, "listCoupons", pageSize="100")).coupons()
    assert [c["id"] for c in everything] == [c["id"] for c in mine]
    assert ok(call(edubrite, "listCoupons")).root.find("coupons").get("numItems") == "3"  # type: ignore[union-attr]

    # an admin name of another tenant only is not an admin here
    make_tenant(db, prefix="bob", admins=("bob",))
    for params in ({"dispatch": "listCoupons"}, {"dispatch": "createCoupon", "type": "USAGE"}):
        reply = send(edubrite, params, AdminUser("bob"))
        expect(reply, 1008, 403, set())

    # codes are unique per tenant: A may use B's code, and then finds its own coupon by it
    own = create(edubrite, authCode=b_code)
    assert ok(call(edubrite, "getCoupon", authCode=b_code)).coupon()["id"] == own["id"]

    # B is untouched, to the version and timestamp
    assert rest_coupons(as_b, other_tenant.tenant_id) == b_before
    fetched = as_b.get(f"/coupons/{other_tenant.tenant_id}/{b_id}")
    assert fetched.json() == b_coupon

    # no string of B's that A did not send itself appears in any of A's EduBrite replies
    secrets_of_b = {
        b_coupon["name"],
        b_coupon["comment"],
        b_id,
        b_code,
        b_group,
        f"B-group-{token}",
    }
    for reply, sent in checks:
        for value in secrets_of_b - sent:
            assert value.lower() not in reply.body.lower(), (value, reply.body)
    for response in replies:
        if response.request.url.path.startswith("/oltpublish/") and response.status_code != 200:
            assert b_coupon["name"] not in response.text
            assert b_coupon["comment"] not in response.text


# --- XML safety -----------------------------------------------------------------------------

NASTY = [
    "<b>bold</b> & &amp; &lt; &#60; \"double\" 'single'",
    "]]>",
    "]]]]>",
    "<![CDATA[",
    "a]]>b]]]]>c<![CDATA[d]]>e]]",
    "]]>" * 66,
    "<?xml version='1.0'?><!DOCTYPE x [<!ENTITY e SYSTEM 'file:///etc/passwd'>]>&e;",
    "é ü ß — 中文 日本語 😀 🎉 \u202eevil",
    "line one\nline two\n\tindented\tand\ttabbed\nend",
    "100% + %2B & a=b; c?d#e",
    "</value></msg></msgs><coupon id='x'>",
]


def _name(text: str) -> str:
    return text[:200]


@pytest.mark.parametrize("text", NASTY, ids=[f"nasty-{i}" for i in range(len(NASTY))])
def test_text_round_trips_through_every_reply(
    client: TestClient,
    edubrite: EduBriteConnection,
    api: Api,
    tenant: TenantKeys,
    replies: list[httpx.Response],
    text: str,
) -> None:
    name = _name(text)
    comment = f"{text}\n-- and again --\n{text}"
    made = ok(call(edubrite, "createCoupon", type="USAGE", couponName=name, comment=comment))
    assert made.msgs == [("0222", "Coupon Created Successfully")]
    coupon = made.coupon()
    assert (coupon["couponName"], coupon["comment"]) == (name, comment)
    by_id = ok(call(edubrite, "getCoupon", id=coupon["id"])).coupon()
    by_code = ok(call(edubrite, "getCoupon", authCode=coupon["authCode"])).coupon()
    listed = ok(call(edubrite, "listCoupons", pageSize="100")).coupons()
    assert by_id == by_code == coupon
    assert listed == [coupon]
    rest = api.get(f"/coupons/{tenant.tenant_id}/{coupon['id']}").json()
    assert (rest["name"], rest["comment"]) == (name, comment)
    # an update with the same text, and one that makes it the name's only content
    updated = ok(call(edubrite, "updateCoupon", id=coupon["id"], comment=text)).coupon()
    assert updated["comment"] == text and updated["couponName"] == name
    # the JSON form carries the same text
    cookies = {"SESSION_ID": edubrite.session_id or "", "SESSION_INFO": edubrite.session_info or ""}
    as_json = raw_post(
        client,
        {"dispatch": "getCoupon", "id": coupon["id"], "xml": "false"},
        cookies=cookies,
        headers={"REAL_UNAME": ADMIN.real_uname()},
    )
    assert as_json.status_code == 200
    doc = json.loads(as_json.content.decode("utf-8"))
    assert (doc["coupon"]["couponName"], doc["coupon"]["comment"]) == (name, text)
    service_replies = [
        r
        for r in replies
        if r.request.url.path == SERVICE_URL and "xml=false" not in r.request.content.decode()
    ]
    assert len(service_replies) >= 5
    for response in service_replies:
        assert_xml_reply(response)


def test_rest_text_comes_back_intact_through_get_coupon(
    edubrite: EduBriteConnection, api: Api, tenant: TenantKeys, replies: list[httpx.Response]
) -> None:
    comment = "\n".join(NASTY)[:2000]
    html = "<script>alert('x')</script>]]><![CDATA[<img src=x onerror=alert(1)>]]]]>&amp;"
    made = api.post(
        f"/coupons/{tenant.tenant_id}",
        json={
            "coupon_type": "USAGE",
            "name": _name(NASTY[4]),
            "code": "REST-MADE",
            "comment": comment,
            "code_generation_html": html,
        },
    )
    assert made.status_code == 201, made.text
    coupon_id = made.json()["id"]
    for reply in (
        ok(call(edubrite, "getCoupon", id=coupon_id)),
        ok(call(edubrite, "getCoupon", authCode="rest-made")),
    ):
        coupon = reply.coupon()
        assert coupon["comment"] == comment
        assert coupon["couponName"] == _name(NASTY[4])
        assert not list(reply.root.iter("script")) and not list(reply.root.iter("img"))
    listed = ok(call(edubrite, "listCoupons")).coupons()
    assert [c["comment"] for c in listed] == [comment]
    # an EduBrite update leaves the REST-only fields as they were
    ok(call(edubrite, "updateCoupon", id=coupon_id, couponName="Renamed"))
    rest = api.get(f"/coupons/{tenant.tenant_id}/{coupon_id}").json()
    assert (rest["comment"], rest["code_generation_html"]) == (comment, html)
    for response in replies:
        if response.request.url.path == SERVICE_URL:
            assert_xml_reply(response)


def test_real_uname_with_odd_characters(
    client: TestClient, edubrite: EduBriteConnection, api: Api, tenant: TenantKeys
) -> None:
    odd = AdminUser("admin", email='<x>&"]]>@example.org', full_name="O'Brien <b>]]> & co")
    reply = ok(send(edubrite, {"dispatch": "createCoupon", "type": "USAGE"}, odd))
    coupon_id = reply.coupon()["id"]
    rest = api.get(f"/coupons/{tenant.tenant_id}/{coupon_id}").json()
    assert rest["sys_created_by_id"] == "admin"
    for user in (
        AdminUser('<evil>]]>&"'),
        AdminUser("]]>", "]]>", "]]>"),
        AdminUser("admin]]><x/>"),
    ):
        refused(send(edubrite, {"dispatch": "listCoupons"}, user), 1008, 403)
    # non-ASCII in the header (the Java client may send UTF-8 or Latin-1 bytes)
    cookies = {"SESSION_ID": edubrite.session_id or "", "SESSION_INFO": edubrite.session_info or ""}
    for header in (
        "admin|zoë@example.org|Zoë 中文 😀".encode(),
        "admin|zoe@example.org|Zoë Ünal".encode("latin-1"),
    ):
        response = raw_post(
            client, {"dispatch": "listCoupons"}, cookies=cookies, headers={"REAL_UNAME": header}
        )
        assert_xml_reply(response)
        assert java_reply(response).code == 0
    for header in ("zoë|z@x|Zoë".encode(), "中文|x|y".encode(), b"\xff\xfe|x|y"):
        response = raw_post(
            client, {"dispatch": "listCoupons"}, cookies=cookies, headers={"REAL_UNAME": header}
        )
        assert_xml_reply(response)
        refused(java_reply(response), 1008, 403)


@pytest.mark.parametrize(
    "dispatch",
    [
        "x]]><evil/>",
        "]]>",
        "<![CDATA[",
        "a]]]]>b",
        "é中文😀]]>",
        "</value>",
        "name",
        '{code:"x"} comment',
    ],
)
def test_error_messages_quote_caller_text_literally(
    edubrite: EduBriteConnection, replies: list[httpx.Response], dispatch: str
) -> None:
    reply = refused(call(edubrite, dispatch), 1010, 400)
    assert dispatch in reply.msgs[0][1]
    assert not list(reply.root.iter("evil"))
    unknown = f"p{dispatch}"
    reply = refused(call(edubrite, "createCoupon", type="USAGE", **{unknown: "1"}), 1002, 400)
    assert any(unknown in value for _, value in reply.msgs), reply.msgs
    for response in replies:
        if response.request.url.path == SERVICE_URL:
            assert_xml_reply(response)
