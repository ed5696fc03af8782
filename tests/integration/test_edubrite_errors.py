"""The EduBrite dialect's whole error table (SPEC 7.3), on both backends.

Every call goes through `EduBriteConnection`, the test double of EduBrite's Java client, except
the few that client cannot produce (no cookies, a forged cookie, a parameter given twice,
`xml=false`, odd paths); those use the raw test client and still check that the Java client
would take the reply as an API answer (status 200, or a non-200 whose body is XML rooted at
`response`).

Each refusal checks the HTTP status, `<response code>`, the `<msg><code>` values, that the
message names the offending parameter by its EduBrite name (never the REST name), and that
nothing was written: the tenant's REST scan, `sys_version` included, is the same afterwards.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from xml.etree.ElementTree import Element

import pytest
from defusedxml import ElementTree
from sqlalchemy import update
from starlette.testclient import TestClient

from couponry.services.sessions import count_sessions
from couponry.services.tenants import create_key, revoke_key
from couponry.store.db import Database
from couponry.store.tables import coupons, sessions
from tests.conftest import Api, TenantKeys, percent_coupon
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
ADMIN = AdminUser("admin")
FORM = "application/x-www-form-urlencoded"

# SPEC 7.3: code -> HTTP status.
STATUS = {
    1001: 400,
    1002: 400,
    1003: 404,
    1004: 404,
    1005: 409,
    1006: 409,
    1007: 409,
    1008: 403,
    1009: 401,
    1010: 400,
    1011: 409,
}

# REST names of the fields that have an EduBrite parameter (SPEC 3): an EduBrite message must
# never use them. (`name`, `code` and `comment` are ordinary words, so they are not listed.)
REST_NAMES = (
    "coupon_type",
    "entity_type",
    "entity_id",
    "value_amount",
    "value_percent",
    "usage_limit",
    "times_used",
    "remaining_amount",
    "starts_at",
    "expires_at",
    "authorized_group_id",
    "set_membership_expiration",
    "add_user_to_coupons_group",
    "require_approval",
    "preview_access_only",
    "is_active",
)


# --- calling, reading replies ---------------------------------------------------------------


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

    @property
    def text(self) -> str:
        return "\n".join(value for _, value in self.msgs)

    def coupon(self) -> dict[str, Any]:
        element = self.root.find("coupon")
        assert element is not None, self.body
        return coupon_fields(element)


def send(conn: EduBriteConnection, params: dict[str, str], user: AdminUser | None = ADMIN) -> Reply:
    """One call as the Java client makes it (it raises if the reply is not an API answer)."""
    body = conn.invoke_api(SERVICE, user, params)
    return Reply(conn.last_status, parse(body), body)


def call(conn: EduBriteConnection, dispatch: str, **params: str) -> Reply:
    return send(conn, {"dispatch": dispatch, **params})


def ok(reply: Reply) -> Reply:
    assert reply.status == 200, reply.body
    assert reply.code == 0, reply.body
    return reply


def create(conn: EduBriteConnection, **params: str) -> dict[str, Any]:
    defaults = {"type": "PERCENT", "valuePercent": "10", "couponName": "Ten off"}
    return ok(call(conn, "createCoupon", **(defaults | params))).coupon()


def connect_key(client: TestClient, key: str) -> EduBriteConnection:
    key_id, secret = key.split(".")
    conn = EduBriteConnection(client, BASE, key_id, secret)  # type: ignore[arg-type]
    assert conn.connect()
    return conn


def assert_refused(
    reply: Reply,
    code: int,
    *,
    names: tuple[str, ...] = (),
    msg_codes: list[str] | None = None,
) -> None:
    """The error envelope of SPEC 7.3, naming `names` (EduBrite parameter names)."""
    assert reply.status == STATUS[code], reply.body
    assert reply.code == code, reply.body
    codes = [c for c, _ in reply.msgs]
    assert codes, reply.body
    assert codes == (msg_codes if msg_codes is not None else [str(code)] * len(codes)), reply.body
    assert reply.root.find("coupon") is None and reply.root.find("coupons") is None
    for name in names:
        assert name in reply.text, f"{name!r} not named in {reply.text!r}"
    for rest_name in REST_NAMES:
        if rest_name not in names:  # unless the caller itself sent that (unknown) name
            assert rest_name not in reply.text, f"REST name {rest_name!r} in {reply.text!r}"


def snapshot(api: Api, tenant_id: str) -> list[dict[str, Any]]:
    response = api.get(f"/coupons/{tenant_id}", params={"limit": 1000})
    assert response.status_code == 200, response.text
    rows: list[dict[str, Any]] = response.json()
    return rows


@contextmanager
def nothing_written(api: Api, tenant_id: str) -> Iterator[None]:
    before = snapshot(api, tenant_id)
    yield
    assert snapshot(api, tenant_id) == before


# --- the raw client, for what the Java client cannot send ------------------------------------


def raw_post(
    client: TestClient,
    body: str | dict[str, str],
    *,
    cookies: dict[str, str] | None = None,
    real_uname: str | bytes | None = "admin|admin@example.org|Site Admin",
    authorization: str | None = None,
    url: str = SERVICE_URL,
) -> Any:
    client.cookies.clear()
    headers: dict[str, Any] = {}
    if cookies:
        headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in cookies.items())
    if real_uname is not None:
        headers["REAL_UNAME"] = real_uname
    if authorization is not None:
        headers["Authorization"] = authorization
    if isinstance(body, str):
        headers["Content-Type"] = FORM
        return client.post(url, content=body.encode("utf-8"), headers=headers)
    return client.post(url, data=body, headers=headers)


def java_reply(response: Any) -> Reply:
    """What the Java client would make of it: 200, or XML rooted at `response`."""
    if response.status_code != 200:
        root = ElementTree.fromstring(response.content)
        assert root.tag.lower() == "response", response.text
    return Reply(response.status_code, parse(response.text), response.text)


def session_cookies(conn: EduBriteConnection) -> dict[str, str]:
    assert conn.session_id and conn.session_info
    return {"SESSION_ID": conn.session_id, "SESSION_INFO": conn.session_info}


# --- 1001: a required parameter is missing --------------------------------------------------

MISSING = [
    pytest.param(
        {"dispatch": "createCoupon", "couponName": "No type", "valuePercent": "10"},
        ("type",),
        id="create-without-type",
    ),
    pytest.param(
        {"dispatch": "createCoupon", "type": "", "valuePercent": "10"},
        ("type",),
        id="create-with-empty-type",
    ),
    pytest.param({"dispatch": "updateCoupon", "couponName": "x"}, ("id",), id="update-without-id"),
    pytest.param(
        {"dispatch": "updateCoupon", "id": " ", "couponName": "x"}, ("id",), id="update-blank-id"
    ),
    pytest.param({"dispatch": "deleteCoupon"}, ("id",), id="delete-without-id"),
    pytest.param({"dispatch": "getCoupon"}, ("id", "authCode"), id="get-without-id-or-code"),
    pytest.param({"couponName": "x"}, ("dispatch",), id="no-dispatch"),
    pytest.param({}, ("dispatch",), id="no-parameters-at-all"),
    pytest.param(
        {"dispatch": "createCoupon", "type": "USAGE", "entityType": "GROUP"},
        ("entityId",),
        id="group-without-entityId",
    ),
    pytest.param(
        {"dispatch": "createCoupon", "type": "USAGE", "entityType": "COURSE_SESSION"},
        ("entityId",),
        id="course-session-without-entityId",
    ),
    pytest.param(
        {"dispatch": "createCoupon", "type": "AMOUNT"}, ("valueAmount",), id="amount-no-value"
    ),
    pytest.param(
        {"dispatch": "createCoupon", "type": "TOTAL_AMOUNT"},
        ("valueAmount",),
        id="total-amount-no-value",
    ),
    pytest.param(
        {"dispatch": "createCoupon", "type": "PERCENT"}, ("valuePercent",), id="percent-no-value"
    ),
]


@pytest.mark.parametrize(("params", "names"), MISSING)
def test_missing_parameter_is_1001(
    edubrite: EduBriteConnection,
    api: Api,
    tenant: TenantKeys,
    params: dict[str, str],
    names: tuple[str, ...],
) -> None:
    create(edubrite, couponName="Existing")
    with nothing_written(api, tenant.tenant_id):
        reply = send(edubrite, params)
    assert_refused(reply, 1001, names=names)


MISSING_AND_BAD = [
    pytest.param(
        {"dispatch": "createCoupon", "valueCount": "abc", "valuePercent": "10"},
        "type",
        id="no-type-and-bad-valueCount",
    ),
    pytest.param(
        {"dispatch": "createCoupon", "valueCount": "abc", "foo": "1"},
        "type",
        id="no-type-and-unknown-parameter",
    ),
    pytest.param(
        {"dispatch": "updateCoupon", "valueCount": "abc"}, "id", id="no-id-and-bad-valueCount"
    ),
    pytest.param(
        {"dispatch": "createCoupon", "type": "AMOUNT", "valueCount": "abc"},
        "valueAmount",
        id="amount-without-valueAmount-and-bad-valueCount",
    ),
    pytest.param(
        {"dispatch": "createCoupon", "type": "USAGE", "entityType": "GROUP", "status": "ON"},
        "entityId",
        id="group-without-entityId-and-bad-status",
    ),
]


@pytest.mark.parametrize(("params", "missing"), MISSING_AND_BAD)
def test_missing_parameter_is_reported_before_a_bad_value(
    edubrite: EduBriteConnection, api: Api, tenant: TenantKeys, params: dict[str, str], missing: str
) -> None:
    """SPEC 7.2: when several things are wrong, 1001 comes before 1002."""
    with nothing_written(api, tenant.tenant_id):
        reply = send(edubrite, params)
    assert reply.status == 400, reply.body
    assert reply.code == 1001, reply.body
    codes = [c for c, _ in reply.msgs]
    assert codes and codes[0] == "1001", reply.body
    assert codes == sorted(codes), "every 1001 message comes before any 1002 message"
    assert missing in reply.msgs[0][1]
    for rest_name in REST_NAMES:
        assert rest_name not in reply.text


# --- 1002: a parameter has a bad value ------------------------------------------------------

CREATE = {"dispatch": "createCoupon", "type": "PERCENT", "valuePercent": "10", "couponName": "C"}
AMOUNT = {"dispatch": "createCoupon", "type": "AMOUNT", "couponName": "A"}


def _bad(label: str, changes: dict[str, str], name: str, base: dict[str, str] = CREATE) -> Any:
    return pytest.param(base | changes, name, id=label)


BAD_VALUES = [
    *(
        _bad(f"valueCount={v}", {"valueCount": v}, "valueCount")
        for v in ("abc", "0", "-3", "1.5", "1e3", "99999999999")
    ),
    *(
        _bad(f"previewAccessOnly={v}", {"previewAccessOnly": v}, "previewAccessOnly")
        for v in ("yes", "1", "on", "truee", "t")
    ),
    _bad("requireApproval=no", {"requireApproval": "no"}, "requireApproval"),
    _bad("setMembershipExpiration=0", {"setMembershipExpiration": "0"}, "setMembershipExpiration"),
    _bad("addUserToCouponsGroup=Y", {"addUserToCouponsGroup": "Y"}, "addUserToCouponsGroup"),
    *(
        _bad(f"startDate={v}", {"startDate": v}, "startDate")
        for v in ("2026-05-01", "2026-05-01T00:00:00Z", "abc", "1.7e12", "1700000000000.5")
    ),
    *(
        _bad(f"expDate={v}", {"expDate": v}, "expDate")
        for v in ("2026-05-01", "tomorrow", "0x10", "12:00")
    ),
    _bad(
        "expDate-before-startDate",
        {"startDate": "1800000000000", "expDate": "1700000000000"},
        "expDate",
    ),
    _bad(
        "expDate-equal-startDate",
        {"startDate": "1800000000000", "expDate": "1800000000000"},
        "expDate",
    ),
    *(_bad(f"status={v}", {"status": v}, "status") for v in ("ENABLED", "true", "1", "ACTIVEX")),
    *(_bad(f"type={v}", {"type": v}, "type") for v in ("FREE", "DISCOUNT", "PERCENTAGE")),
    *(
        _bad(f"entityType={v}", {"entityType": v, "entityId": "x1"}, "entityType")
        for v in ("COURSE", "USER", "SITES")
    ),
    *(
        _bad(f"valuePercent={v}", {"valuePercent": v}, "valuePercent")
        for v in ("0", "150", "-5", "abc", "100.0001", "NaN")
    ),
    *(
        _bad(f"valueAmount={v}", {"valueAmount": v}, "valueAmount", AMOUNT)
        for v in ("-5", "1.23456", "abc", "0", "Infinity", "1,5")
    ),
    _bad("valueAmount-on-PERCENT", {"valueAmount": "5"}, "valueAmount"),
    _bad(
        "valuePercent-on-AMOUNT", {"valueAmount": "5", "valuePercent": "5"}, "valuePercent", AMOUNT
    ),
    _bad("couponName-201-chars", {"couponName": "x" * 201}, "couponName"),
    *(
        _bad(f"authCode={v!r}", {"authCode": v}, "authCode")
        for v in ("AB CD", "ab", "x" * 65, "héllo", "a;b", "a.b")
    ),
    *(
        _bad(f"couponName-control-{ord(c):02x}", {"couponName": f"a{c}b"}, "couponName")
        for c in ("\x00", "\x01", "\x1b", "\x7f", "\x85")
    ),
    *(
        _bad(f"comment-control-{ord(c):02x}", {"comment": f"x{c}y"}, "comment")
        for c in ("\x07", "\x0b", "\x0c", "\x1f")
    ),
    *(
        _bad(f"unknown-parameter-{n}", {n: "1"}, n)
        for n in ("usedCount", "authorizedGroupId", "foo", "remainingAmount", "id", "value_amount")
    ),
    *(
        _bad(f"malformed-path-{i}", {"authorizedGroup": v}, "authorizedGroup")
        for i, v in enumerate(('{name:"x"', '{nme:"x"}', '{name:"x"}/', "*/*/", "{name:x}"))
    ),
    _bad(
        "malformed-path-entityId",
        {"entityType": "GROUP", "entityId": '{name:"Training"'},
        "entityId",
        {"dispatch": "createCoupon", "type": "USAGE"},
    ),
    *(
        _bad(f"listCoupons-pageSize={v}", {"pageSize": v}, "pageSize", {"dispatch": "listCoupons"})
        for v in ("0", "101", "abc", "-1", "20.5")
    ),
    *(
        _bad(f"listCoupons-currPage={v}", {"currPage": v}, "currPage", {"dispatch": "listCoupons"})
        for v in ("-1", "abc")
    ),
    _bad("listCoupons-status=ON", {"status": "ON"}, "status", {"dispatch": "listCoupons"}),
    _bad("listCoupons-unknown", {"usedCount": "1"}, "usedCount", {"dispatch": "listCoupons"}),
    _bad("getCoupon-unknown", {"id": "x", "foo": "1"}, "foo", {"dispatch": "getCoupon"}),
]


@pytest.mark.parametrize(("params", "name"), BAD_VALUES)
def test_bad_value_is_1002(
    edubrite: EduBriteConnection, api: Api, tenant: TenantKeys, params: dict[str, str], name: str
) -> None:
    create(edubrite, couponName="Existing")
    with nothing_written(api, tenant.tenant_id):
        reply = send(edubrite, params)
    assert_refused(reply, 1002, names=(name,))


def test_several_bad_values_are_all_named(
    edubrite: EduBriteConnection, api: Api, tenant: TenantKeys
) -> None:
    with nothing_written(api, tenant.tenant_id):
        reply = call(
            edubrite,
            "createCoupon",
            type="PERCENT",
            valuePercent="10",
            valueCount="abc",
            status="ON",
            startDate="yesterday",
            previewAccessOnly="maybe",
        )
    names = ("valueCount", "status", "startDate", "previewAccessOnly")
    assert_refused(reply, 1002, names=names)
    assert len(reply.msgs) == len(names)


@pytest.mark.parametrize(
    ("params", "name"),
    [
        pytest.param({"valueCount": "abc"}, "valueCount", id="valueCount"),
        pytest.param({"valuePercent": "0"}, "valuePercent", id="valuePercent"),
        pytest.param({"requireApproval": "maybe"}, "requireApproval", id="boolean"),
        pytest.param({"expDate": "1000"}, "expDate", id="expDate-before-startDate"),
        pytest.param({"usedCount": "3"}, "usedCount", id="usedCount-is-read-only"),
        pytest.param({"couponName": ""}, "couponName", id="clear-couponName"),
        pytest.param({"couponName": "   "}, "couponName", id="clear-couponName-blank"),
        pytest.param({"type": ""}, "type", id="clear-type"),
        pytest.param({"authCode": ""}, "authCode", id="clear-authCode"),
    ],
)
def test_bad_value_on_update_is_1002(
    edubrite: EduBriteConnection, api: Api, tenant: TenantKeys, params: dict[str, str], name: str
) -> None:
    coupon = create(edubrite, authCode="KEEP-ME", startDate="1800000000000")
    with nothing_written(api, tenant.tenant_id):
        reply = call(edubrite, "updateCoupon", id=coupon["id"], **params)
    assert_refused(reply, 1002, names=(name,))
    after = ok(call(edubrite, "getCoupon", id=coupon["id"])).coupon()
    assert after == coupon


def test_booleans_accept_any_case(edubrite: EduBriteConnection) -> None:
    coupon = create(edubrite, previewAccessOnly="TRUE")
    assert coupon["previewAccessOnly"] == "true"
    updated = ok(call(edubrite, "updateCoupon", id=coupon["id"], previewAccessOnly="False"))
    assert updated.coupon()["previewAccessOnly"] == "false"
    updated = ok(call(edubrite, "updateCoupon", id=coupon["id"], previewAccessOnly="tRuE"))
    assert updated.coupon()["previewAccessOnly"] == "true"
    fetched = ok(call(edubrite, "getCoupon", id=coupon["id"])).coupon()
    assert fetched["previewAccessOnly"] == "true"


def test_parameter_given_twice_is_1002(
    client: TestClient, edubrite: EduBriteConnection, api: Api, tenant: TenantKeys
) -> None:
    """A form with a repeated name (the Java client's map cannot send one)."""
    cookies = session_cookies(edubrite)
    with nothing_written(api, tenant.tenant_id):
        reply = java_reply(
            raw_post(
                client,
                "dispatch=createCoupon&type=PERCENT&valuePercent=10&couponName=a&couponName=b",
                cookies=cookies,
            )
        )
        assert_refused(reply, 1002, names=("couponName",))
        reply = java_reply(
            raw_post(
                client,
                "dispatch=createCoupon&type=PERCENT&valuePercent=10&valuePercent=10",
                cookies=cookies,
            )
        )
        assert_refused(reply, 1002, names=("valuePercent",))
        # the same name in the query string and in the form body
        reply = java_reply(
            raw_post(
                client,
                "dispatch=createCoupon&type=PERCENT&valuePercent=10",
                cookies=cookies,
                url=SERVICE_URL + "?type=USAGE",
            )
        )
        assert_refused(reply, 1002, names=("type",))


# --- 1003: no such coupon -------------------------------------------------------------------


def test_unknown_coupon_is_1003(edubrite: EduBriteConnection, api: Api, tenant: TenantKeys) -> None:
    create(edubrite, authCode="REAL-ONE")
    with nothing_written(api, tenant.tenant_id):
        for unknown in ("0000-0000-0000-0000", "ffff-ffff-ffff-ffff", "not-an-id", "x" * 300):
            assert_refused(call(edubrite, "getCoupon", id=unknown), 1003)
            assert_refused(call(edubrite, "updateCoupon", id=unknown, couponName="New"), 1003)
            assert_refused(call(edubrite, "deleteCoupon", id=unknown), 1003)
        for code in ("NO-SUCH-CODE", "REAL-ON", "REAL-ONE-"):
            assert_refused(call(edubrite, "getCoupon", authCode=code), 1003)


def test_deleted_coupon_is_1003(edubrite: EduBriteConnection, api: Api, tenant: TenantKeys) -> None:
    coupon = create(edubrite, authCode="GONE-SOON")
    reply = ok(call(edubrite, "deleteCoupon", id=coupon["id"]))
    assert reply.msgs == [("0224", "Coupon deleted successfully")]
    with nothing_written(api, tenant.tenant_id):
        assert_refused(call(edubrite, "getCoupon", id=coupon["id"]), 1003)
        assert_refused(call(edubrite, "getCoupon", authCode="GONE-SOON"), 1003)
        assert_refused(call(edubrite, "getCoupon", authCode="gone-soon"), 1003)
        assert_refused(call(edubrite, "updateCoupon", id=coupon["id"], couponName="Back"), 1003)
        assert_refused(call(edubrite, "deleteCoupon", id=coupon["id"]), 1003)


# --- 1004 / 1005: group references ----------------------------------------------------------


def _group(api: Api, tenant_id: str, name: str, parent: str | None = None) -> str:
    body: dict[str, Any] = {"name": name}
    if parent is not None:
        body["parent_id"] = parent
    response = api.post(f"/groups/{tenant_id}", json=body)
    assert response.status_code == 201, response.text
    group_id: str = response.json()["id"]
    return group_id


NO_GROUP_REFS = (
    "0000-0000-0000-0000",
    "nosuchgroup",
    '{name:"Nowhere"}',
    '{name:"Training"}/{name:"Nowhere"}',
    '{code:"NOPE"}',
    '{name:"Training"}/*',
)


@pytest.mark.parametrize("ref", NO_GROUP_REFS)
def test_group_reference_matching_nothing_is_1004(
    edubrite: EduBriteConnection, api: Api, tenant: TenantKeys, ref: str
) -> None:
    _group(api, tenant.tenant_id, "Training")  # a root group without children
    coupon = create(edubrite, type="USAGE", valuePercent="")
    attempts = [
        ({"dispatch": "createCoupon", "type": "USAGE", "authorizedGroup": ref}, "authorizedGroup"),
        (
            {"dispatch": "createCoupon", "type": "USAGE", "entityType": "GROUP", "entityId": ref},
            "entityId",
        ),
        (
            {"dispatch": "updateCoupon", "id": coupon["id"], "authorizedGroup": ref},
            "authorizedGroup",
        ),
        (
            {
                "dispatch": "updateCoupon",
                "id": coupon["id"],
                "entityType": "GROUP",
                "entityId": ref,
            },
            "entityId",
        ),
    ]
    with nothing_written(api, tenant.tenant_id):
        for params, name in attempts:
            reply = send(edubrite, params)
            assert_refused(reply, 1004, names=(name,))
            # where the message quotes the path, it quotes it as sent: `name` and `code` are
            # path keys there, not the coupon's couponName / authCode
            assert "couponName" not in reply.text and "authCode" not in reply.text, reply.text


def test_group_path_matching_several_is_1005(
    edubrite: EduBriteConnection, api: Api, tenant: TenantKeys
) -> None:
    _group(api, tenant.tenant_id, "Dup")
    _group(api, tenant.tenant_id, "DUP")
    _group(api, tenant.tenant_id, "Other")
    coupon = create(edubrite)
    with nothing_written(api, tenant.tenant_id):
        reply = call(edubrite, "createCoupon", type="USAGE", authorizedGroup='{name:"Dup"}')
        assert_refused(reply, 1005, names=("authorizedGroup", "2"))
        reply = call(edubrite, "createCoupon", type="USAGE", authorizedGroup="*")
        assert_refused(reply, 1005, names=("authorizedGroup", "3"))
        reply = call(
            edubrite, "createCoupon", type="USAGE", entityType="GROUP", entityId='{name:"DUP"}'
        )
        assert_refused(reply, 1005, names=("entityId", "2"))
        reply = call(edubrite, "updateCoupon", id=coupon["id"], authorizedGroup='{name:"dup"}')
        assert_refused(reply, 1005, names=("authorizedGroup", "2"))
    # a path that matches exactly one group works, and the reply shows the resolved id
    other = _group(api, tenant.tenant_id, "Unique")
    made = create(edubrite, authorizedGroup='{name:"unique"}')
    assert made["authorizedGroupId"] == other


# --- 1006: valueCount below the used count --------------------------------------------------


def _set_times_used(db: Database, coupon_id: str, used: int) -> None:
    with db.transaction() as conn:
        conn.execute(update(coupons).where(coupons.c.id == coupon_id).values(times_used=used))


def test_value_count_below_used_is_1006(
    edubrite: EduBriteConnection, api: Api, tenant: TenantKeys, db: Database
) -> None:
    coupon = create(edubrite, valueCount="5")
    _set_times_used(db, coupon["id"], 3)
    assert ok(call(edubrite, "getCoupon", id=coupon["id"])).coupon()["usedCount"] == "3"
    with nothing_written(api, tenant.tenant_id):
        for below in ("2", "1"):
            reply = call(edubrite, "updateCoupon", id=coupon["id"], valueCount=below)
            assert_refused(reply, 1006, names=("valueCount",))
        reply = call(
            edubrite, "updateCoupon", id=coupon["id"], valueCount="2", couponName="Renamed"
        )
        assert_refused(reply, 1006, names=("valueCount",))
    updated = ok(call(edubrite, "updateCoupon", id=coupon["id"], valueCount="3")).coupon()
    assert (updated["valueCount"], updated["usedCount"]) == ("3", "3")
    rest = api.get(f"/coupons/{tenant.tenant_id}/{coupon['id']}").json()
    assert (rest["usage_limit"], rest["times_used"], rest["sys_version"]) == (3, 3, 2)


# --- 1007: code already taken ---------------------------------------------------------------


def test_code_taken_is_1007_case_insensitively(
    edubrite: EduBriteConnection, api: Api, tenant: TenantKeys
) -> None:
    first = create(edubrite, authCode="SPRING-25")
    second = create(edubrite, authCode="SUMMER-25")
    rest_made = api.post(f"/coupons/{tenant.tenant_id}", json=percent_coupon(code="Rest_Code"))
    assert rest_made.status_code == 201, rest_made.text
    with nothing_written(api, tenant.tenant_id):
        for code in ("SPRING-25", "spring-25", "Spring-25", "rest_code", "REST_CODE"):
            reply = call(edubrite, "createCoupon", type="USAGE", authCode=code)
            assert_refused(reply, 1007, names=("authCode",))
        reply = call(edubrite, "updateCoupon", id=second["id"], authCode="sPrInG-25")
        assert_refused(reply, 1007, names=("authCode",))
    # the code is free again once its coupon is deleted
    ok(call(edubrite, "deleteCoupon", id=first["id"]))
    again = create(edubrite, authCode="spring-25")
    assert again["authCode"] == "spring-25"
    # ...and taken again by the new one
    reply = call(edubrite, "updateCoupon", id=second["id"], authCode="SPRING-25")
    assert_refused(reply, 1007, names=("authCode",))


# --- 1008: REAL_UNAME and roles -------------------------------------------------------------


@pytest.mark.parametrize(
    "user",
    [
        AdminUser("bob"),
        AdminUser("admin2"),
        AdminUser(" "),
        AdminUser("", "admin", "admin"),
        AdminUser("checkout"),
    ],
    ids=["bob", "prefix", "blank", "empty-username", "role-name"],
)
def test_real_uname_not_an_admin_is_1008(
    edubrite: EduBriteConnection, api: Api, tenant: TenantKeys, user: AdminUser
) -> None:
    coupon = create(edubrite)
    with nothing_written(api, tenant.tenant_id):
        for params in (
            {"dispatch": "createCoupon", "type": "USAGE"},
            {"dispatch": "updateCoupon", "id": coupon["id"], "couponName": "Hacked"},
            {"dispatch": "deleteCoupon", "id": coupon["id"]},
            {"dispatch": "getCoupon", "id": coupon["id"]},
            {"dispatch": "listCoupons"},
        ):
            assert_refused(send(edubrite, params, user), 1008)


def test_missing_admin_name_is_1008(
    edubrite: EduBriteConnection, api: Api, tenant: TenantKeys
) -> None:
    coupon = create(edubrite)
    with nothing_written(api, tenant.tenant_id):
        for params in (
            {"dispatch": "createCoupon", "type": "USAGE"},
            {"dispatch": "deleteCoupon", "id": coupon["id"]},
            {"dispatch": "getCoupon", "id": coupon["id"]},
            {"dispatch": "createCoupon", "type": "USAGE", "realUserName": "bob"},
            {"dispatch": "createCoupon", "type": "USAGE", "realUserName": ""},
        ):
            assert_refused(send(edubrite, params, None), 1008)


def test_real_user_name_parameter_is_used_when_the_header_is_missing(
    edubrite: EduBriteConnection, api: Api, tenant: TenantKeys
) -> None:
    params = {"dispatch": "createCoupon", "type": "USAGE", "realUserName": "admin"}
    reply = ok(send(edubrite, params, None))
    assert reply.msgs == [("0222", "Coupon Created Successfully")]
    coupon_id = reply.coupon()["id"]
    rest = api.get(f"/coupons/{tenant.tenant_id}/{coupon_id}").json()
    assert rest["sys_created_by_id"] == "admin"
    full = {"dispatch": "getCoupon", "id": coupon_id, "realUserName": "admin|a@b.org|A B"}
    assert ok(send(edubrite, full, None)).coupon()["id"] == coupon_id


def test_read_key_may_only_get_and_list(
    client: TestClient, edubrite: EduBriteConnection, api: Api, tenant: TenantKeys
) -> None:
    coupon = create(edubrite, authCode="READ-ME")
    reader = connect_key(client, tenant.read)
    assert ok(send(reader, {"dispatch": "getCoupon", "id": coupon["id"]})).coupon() == coupon
    assert ok(send(reader, {"dispatch": "getCoupon", "authCode": "read-me"})).coupon() == coupon
    listed = ok(send(reader, {"dispatch": "listCoupons"}))
    assert [c.get("id") for c in listed.root.iterfind("coupons/coupon")] == [coupon["id"]]
    with nothing_written(api, tenant.tenant_id):
        for params in (
            {"dispatch": "createCoupon", "type": "USAGE"},
            {"dispatch": "updateCoupon", "id": coupon["id"], "couponName": "Nope"},
            {"dispatch": "deleteCoupon", "id": coupon["id"]},
        ):
            assert_refused(send(reader, params), 1008)


def test_checkout_key_may_call_nothing(
    client: TestClient, edubrite: EduBriteConnection, api: Api, tenant: TenantKeys
) -> None:
    coupon = create(edubrite, authCode="CHECK-OUT")
    checkout = connect_key(client, tenant.checkout)
    all_dispatches = (
        {"dispatch": "createCoupon", "type": "USAGE"},
        {"dispatch": "updateCoupon", "id": coupon["id"], "couponName": "Nope"},
        {"dispatch": "deleteCoupon", "id": coupon["id"]},
        {"dispatch": "getCoupon", "id": coupon["id"]},
        {"dispatch": "getCoupon", "authCode": "CHECK-OUT"},
        {"dispatch": "listCoupons"},
    )
    with nothing_written(api, tenant.tenant_id):
        for params in all_dispatches:
            reply = send(checkout, params)
            assert_refused(reply, 1008)
            assert "CHECK-OUT" not in reply.body or "CHECK-OUT" in params.values()
        # the same key as Authorization instead of a session
        for params in all_dispatches:
            reply = java_reply(raw_post(client, params, authorization=tenant.checkout))
            assert_refused(reply, 1008)


# --- 1009: no session, an expired one, bad credentials --------------------------------------


def test_no_cookies_is_1009(client: TestClient, api: Api, tenant: TenantKeys) -> None:
    with nothing_written(api, tenant.tenant_id):
        for params in (
            {"dispatch": "createCoupon", "type": "USAGE"},
            {"dispatch": "listCoupons"},
        ):
            assert_refused(java_reply(raw_post(client, params)), 1009)
            assert_refused(java_reply(raw_post(client, params, real_uname=None)), 1009)


def test_only_the_anonymous_session_id_is_1009(
    client: TestClient, api: Api, tenant: TenantKeys
) -> None:
    client.cookies.clear()
    first = client.get(HOME_URL)
    assert first.status_code == 200
    anonymous = first.cookies.get("SESSION_ID")
    assert anonymous
    with nothing_written(api, tenant.tenant_id):
        reply = java_reply(
            raw_post(
                client,
                {"dispatch": "createCoupon", "type": "USAGE"},
                cookies={"SESSION_ID": anonymous},
            )
        )
        assert_refused(reply, 1009)


@pytest.mark.parametrize(
    "forge",
    ["random-info", "info-is-id", "swapped", "only-info", "garbage", "long", "other-session"],
)
def test_forged_cookies_are_1009(
    client: TestClient,
    edubrite: EduBriteConnection,
    api: Api,
    tenant: TenantKeys,
    forge: str,
) -> None:
    real = session_cookies(edubrite)
    other = session_cookies(connect_key(client, tenant.admin))
    forged = {
        "random-info": {
            "SESSION_ID": real["SESSION_ID"],
            "SESSION_INFO": secrets.token_urlsafe(32),
        },
        "info-is-id": {"SESSION_ID": real["SESSION_ID"], "SESSION_INFO": real["SESSION_ID"]},
        "swapped": {"SESSION_ID": real["SESSION_INFO"], "SESSION_INFO": real["SESSION_ID"]},
        "only-info": {"SESSION_INFO": real["SESSION_INFO"]},
        "garbage": {"SESSION_ID": "abc<x>]]>", "SESSION_INFO": "%00%ff"},
        "long": {"SESSION_ID": "A" * 5000, "SESSION_INFO": "B" * 5000},
        "other-session": {"SESSION_ID": real["SESSION_ID"], "SESSION_INFO": other["SESSION_INFO"]},
    }[forge]
    with nothing_written(api, tenant.tenant_id):
        reply = java_reply(
            raw_post(client, {"dispatch": "createCoupon", "type": "USAGE"}, cookies=forged)
        )
        assert_refused(reply, 1009)
    # the genuine session still works
    assert ok(call(edubrite, "listCoupons")).code == 0


def test_expired_session_is_1009(
    edubrite: EduBriteConnection, api: Api, tenant: TenantKeys, db: Database
) -> None:
    create(edubrite)
    with db.transaction() as conn:
        conn.execute(
            update(sessions)
            .where(sessions.c.tenant_id == tenant.tenant_id)
            .values(last_seen_at=datetime.now(UTC) - timedelta(hours=25))
        )
    with nothing_written(api, tenant.tenant_id):
        assert_refused(call(edubrite, "createCoupon", type="USAGE"), 1009)
        assert_refused(call(edubrite, "listCoupons"), 1009)
    assert edubrite.connect()
    ok(call(edubrite, "listCoupons"))


def test_session_of_a_revoked_key_is_1009(
    client: TestClient, api: Api, tenant: TenantKeys, db: Database
) -> None:
    key = create_key(db, tenant_id=tenant.tenant_id, role="admin", now=datetime.now(UTC))
    conn = connect_key(client, key)
    coupon = create(conn)
    revoke_key(db, key_id=key.split(".")[0], now=datetime.now(UTC))
    with nothing_written(api, tenant.tenant_id):
        assert_refused(call(conn, "updateCoupon", id=coupon["id"], couponName="Late"), 1009)
        assert_refused(call(conn, "deleteCoupon", id=coupon["id"]), 1009)
        assert_refused(call(conn, "getCoupon", id=coupon["id"]), 1009)
    assert not conn.connect()
    assert conn.last_status == 401


@pytest.mark.parametrize("how", ["wrong-password", "unknown-key", "password-only", "user-only"])
def test_bad_credentials_at_connect_are_401_with_xml(
    client: TestClient, db: Database, tenant: TenantKeys, how: str
) -> None:
    key_id, secret = tenant.admin.split(".")
    params = {
        "wrong-password": {"username": key_id, "password": secret + "x"},
        "unknown-key": {"username": "k0000000000000000", "password": secret},
        "password-only": {"password": secret},
        "user-only": {"username": key_id},
    }[how]
    sessions_before = count_sessions(db, tenant_id=tenant.tenant_id)
    for method, url in (("GET", HOME_URL), ("POST", "/oltpublish/site/connect.do")):
        client.cookies.clear()
        if method == "GET":
            response = client.get(url, params=params)
        else:
            response = client.post(url, data=params)
        assert response.status_code == 401, response.text
        assert "SESSION_INFO" not in response.cookies
        reply = java_reply(response)
        assert_refused(reply, 1009)
        assert secret not in reply.body
    bad = EduBriteConnection(client, BASE, params.get("username", ""), params.get("password", ""))  # type: ignore[arg-type]
    assert not bad.connect()
    assert bad.last_status == 401
    assert count_sessions(db, tenant_id=tenant.tenant_id) == sessions_before


# --- 1010: unknown dispatch -----------------------------------------------------------------


@pytest.mark.parametrize(
    "dispatch",
    ["fooCoupon", "createcoupon", "CREATECOUPON", "getCoupons", "redeemCoupon", "x" * 500],
)
def test_unknown_dispatch_is_1010(
    edubrite: EduBriteConnection, api: Api, tenant: TenantKeys, dispatch: str
) -> None:
    with nothing_written(api, tenant.tenant_id):
        reply = call(edubrite, dispatch, type="USAGE")
    assert_refused(reply, 1010, names=("dispatch",))


# --- 1011: the coupon is locked -------------------------------------------------------------


def _lock(api: Api, tenant_id: str, coupon_id: str, locked: bool) -> None:
    patch = [{"op": "replace", "path": "/sys_locked", "value": locked}]
    response = api.patch(f"/coupons/{tenant_id}/{coupon_id}", json=patch)
    assert response.status_code == 200, response.text
    assert response.json()["sys_locked"] is locked


def test_locked_coupon_is_1011_until_unlocked(
    edubrite: EduBriteConnection, api: Api, tenant: TenantKeys
) -> None:
    coupon = create(edubrite, couponName="Locked one", valueCount="5")
    _lock(api, tenant.tenant_id, coupon["id"], True)
    with nothing_written(api, tenant.tenant_id):
        for changes in (
            {"couponName": "Changed"},
            {"status": "INACTIVE"},
            {"valueCount": ""},
            {"comment": "note"},
        ):
            assert_refused(call(edubrite, "updateCoupon", id=coupon["id"], **changes), 1011)
        assert_refused(call(edubrite, "deleteCoupon", id=coupon["id"]), 1011)
    # reads still work
    assert ok(call(edubrite, "getCoupon", id=coupon["id"])).coupon() == coupon
    _lock(api, tenant.tenant_id, coupon["id"], False)
    updated = ok(call(edubrite, "updateCoupon", id=coupon["id"], couponName="Changed"))
    assert updated.msgs == [("0223", "Coupon updated successfully")]
    assert updated.coupon()["couponName"] == "Changed"
    ok(call(edubrite, "deleteCoupon", id=coupon["id"]))
    assert_refused(call(edubrite, "getCoupon", id=coupon["id"]), 1003)


# --- xml=false: the same errors as JSON -----------------------------------------------------


@dataclass(frozen=True)
class JsonCase:
    code: int
    params: dict[str, str]
    session: bool = True
    real_uname: str | None = "admin|admin@example.org|Site Admin"


JSON_CASES = {
    "1001": JsonCase(1001, {"dispatch": "createCoupon", "valueCount": "abc"}),
    "1002": JsonCase(1002, {"dispatch": "createCoupon", "type": "PERCENT", "valuePercent": "150"}),
    "1002-unknown": JsonCase(1002, {"dispatch": "createCoupon", "type": "USAGE", "usedCount": "1"}),
    "1003": JsonCase(1003, {"dispatch": "getCoupon", "id": "0000-0000-0000-0000"}),
    "1004": JsonCase(
        1004, {"dispatch": "createCoupon", "type": "USAGE", "authorizedGroup": '{name:"No"}'}
    ),
    "1007": JsonCase(1007, {"dispatch": "createCoupon", "type": "USAGE", "authCode": "taken"}),
    "1008": JsonCase(1008, {"dispatch": "listCoupons"}, real_uname="bob|b@b|Bob"),
    "1009": JsonCase(1009, {"dispatch": "listCoupons"}, session=False),
    "1010": JsonCase(1010, {"dispatch": "nope"}),
}


@pytest.mark.parametrize("case", list(JSON_CASES.values()), ids=list(JSON_CASES))
def test_xml_false_gives_the_same_errors_as_json(
    client: TestClient, edubrite: EduBriteConnection, api: Api, tenant: TenantKeys, case: JsonCase
) -> None:
    create(edubrite, authCode="TAKEN")
    cookies = session_cookies(edubrite) if case.session else None
    with nothing_written(api, tenant.tenant_id):
        as_xml = raw_post(
            client, case.params | {"xml": "true"}, cookies=cookies, real_uname=case.real_uname
        )
        as_json = raw_post(
            client, case.params | {"xml": "false"}, cookies=cookies, real_uname=case.real_uname
        )
    xml_reply = java_reply(as_xml)
    assert xml_reply.code == case.code, xml_reply.body
    assert as_json.status_code == as_xml.status_code == STATUS[case.code]
    assert as_json.headers["content-type"].startswith("application/json")
    doc = json.loads(as_json.content.decode("utf-8"))
    assert set(doc) == {"code", "msgs"}, doc
    assert type(doc["code"]) is int and doc["code"] == case.code
    assert isinstance(doc["msgs"], list) and doc["msgs"]
    for msg in doc["msgs"]:
        assert set(msg) == {"code", "value"}
        assert isinstance(msg["code"], str) and isinstance(msg["value"], str)
    assert [(m["code"], m["value"]) for m in doc["msgs"]] == xml_reply.msgs
    for rest_name in REST_NAMES:
        assert rest_name not in as_json.text


def test_xml_false_locked_and_below_used(
    client: TestClient, edubrite: EduBriteConnection, api: Api, tenant: TenantKeys, db: Database
) -> None:
    cookies = session_cookies(edubrite)
    coupon = create(edubrite, valueCount="5")
    _set_times_used(db, coupon["id"], 4)
    below = {"dispatch": "updateCoupon", "id": coupon["id"], "valueCount": "2", "xml": "false"}
    response = raw_post(client, below, cookies=cookies)
    assert response.status_code == 409
    doc = response.json()
    assert doc["code"] == 1006 and doc["msgs"][0]["code"] == "1006"
    assert "valueCount" in doc["msgs"][0]["value"]
    _lock(api, tenant.tenant_id, coupon["id"], True)
    delete = {"dispatch": "deleteCoupon", "id": coupon["id"], "xml": "FALSE"}
    response = raw_post(client, delete, cookies=cookies)
    assert response.status_code == 409
    assert response.json()["code"] == 1011
    assert response.json()["msgs"][0]["code"] == "1011"


# --- paths the dialect does not have --------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/oltpublish/site/nothing.do"),
        ("POST", "/oltpublish/site/nothing.do"),
        ("POST", "/oltpublish/site/couponService"),
        ("POST", "/oltpublish/site/couponservice.do"),
        ("GET", "/oltpublish/site/"),
        ("GET", "/oltpublish/site/a/b/c.do"),
        ("POST", "/oltpublish/site/%3Cx%3E%5D%5D%3E.do"),
        ("PUT", "/oltpublish/site/couponService.do"),
        ("DELETE", "/oltpublish/site/couponService.do"),
        ("PATCH", "/oltpublish/site/home.do"),
    ],
)
def test_unexpected_paths_answer_with_an_xml_response(
    client: TestClient, edubrite: EduBriteConnection, method: str, path: str
) -> None:
    client.cookies.clear()
    response = client.request(
        method,
        path,
        headers={
            "Cookie": "; ".join(f"{k}={v}" for k, v in session_cookies(edubrite).items()),
            "REAL_UNAME": ADMIN.real_uname(),
        },
    )
    assert response.status_code != 200
    assert response.headers["content-type"].split(";")[0].strip() in ("text/xml", "application/xml")
    assert not response.text.lstrip().lower().startswith(("<!doctype", "<html", "{"))
    reply = java_reply(response)
    assert reply.code != 0
    assert reply.msgs and all(c.isdigit() and c != "0" for c, _ in reply.msgs)
    assert "error" not in {child.tag for child in reply.root}
