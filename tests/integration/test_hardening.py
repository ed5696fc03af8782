"""What a hostile tester broke (issue 8), one test per class of bug, on SQLite and PostgreSQL.

Each test states the attack as it was sent, then the answer a careful client expects: a clean
4xx naming the field, a reply that parses in its dialect, and nothing written.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import pytest
from defusedxml import ElementTree
from starlette.testclient import TestClient

from couponry.app import create_fastapi
from couponry.config import Settings
from couponry.store.db import Database
from tests.conftest import Api, TenantKeys, percent_coupon

SERVICE_URL = "/oltpublish/site/couponService.do"
JSON = {"Content-Type": "application/json"}


def coupons(tenant: TenantKeys) -> str:
    return f"/coupons/{tenant.tenant_id}"


def scan(api: Api, tenant: TenantKeys) -> list[dict[str, Any]]:
    reply = api.get(coupons(tenant), params={"limit": 1000})
    assert reply.status_code == 200, reply.text
    rows: list[dict[str, Any]] = reply.json()
    return rows


def error_of(reply: Any, status: int) -> dict[str, Any]:
    assert reply.status_code == status, reply.text
    assert reply.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = json.loads(reply.content.decode("utf-8"))  # strict UTF-8
    return body["error"]  # type: ignore[no-any-return]


def cart(price: str = "100.00", qty: int = 1, code: str = "SAVE10", **extra: Any) -> dict[str, Any]:
    line = {"line_id": "1", "kind": "event", "id": "ev-1", "unit_price": price, "quantity": qty}
    return {"code": code, "user_id": "u-1", "lines": [line], **extra}


# --- 1. JSON Patch amplification ----------------------------------------------------------------


def self_copies(count: int) -> list[dict[str, str]]:
    return [
        {"op": "copy", "from": "/custom_field_values", "path": "/custom_field_values/-"}
        for _ in range(count)
    ]


def test_a_2kb_patch_of_self_copies_is_refused_at_once(api: Api, tenant: TenantKeys) -> None:
    created = api.post(
        coupons(tenant),
        json=percent_coupon(custom_field_values=[{"custom_field_id": "f", "string_value": "x"}]),
    ).json()
    ops = self_copies(28)  # 23 took 13 s and 1 GB; 28 would have taken tens of GB
    assert len(json.dumps(ops)) < 2600
    started = time.perf_counter()
    reply = api.patch(f"{coupons(tenant)}/{created['id']}", json=ops)
    elapsed = time.perf_counter() - started
    error = error_of(reply, 422)
    assert error["details"][0]["field"].startswith("patch[")
    assert elapsed < 1.0, elapsed
    after = api.get(f"{coupons(tenant)}/{created['id']}").json()
    assert after["sys_version"] == created["sys_version"]
    assert after["custom_field_values"] == created["custom_field_values"]


def test_a_patch_growing_a_string_past_1_mib_is_refused(api: Api, tenant: TenantKeys) -> None:
    created = api.post(coupons(tenant), json=percent_coupon()).json()
    # Each copy doubles what the custom fields hold: 2 KB, 4 KB, ... 1 MiB after 9 copies.
    ops: list[dict[str, Any]] = [
        {"op": "add", "path": "/custom_field_values/-", "value": {"list_value": ["y" * 1900]}}
    ]
    ops += self_copies(12)
    reply = api.patch(f"{coupons(tenant)}/{created['id']}", json=ops)
    error = error_of(reply, 422)
    assert error["details"][0]["field"].startswith("patch[")
    assert api.get(f"{coupons(tenant)}/{created['id']}").json()["sys_version"] == 1


def test_custom_fields_past_100_are_refused_by_the_operation_that_adds_them(
    api: Api, tenant: TenantKeys
) -> None:
    fields = [{"custom_field_id": f"f{i}"} for i in range(60)]
    created = api.post(coupons(tenant), json=percent_coupon(custom_field_values=fields)).json()
    ops = [
        {"op": "copy", "from": f"/custom_field_values/{i}", "path": "/custom_field_values/-"}
        for i in range(50)
    ]
    error = error_of(api.patch(f"{coupons(tenant)}/{created['id']}", json=ops), 422)
    assert error["code"] == "validation_failed"
    assert error["details"] == [
        {"field": "custom_field_values", "message": "must have at most 100 entries"}
    ]
    assert "patch[40]" in error["message"]  # the 41st copy makes the 101st entry


def test_a_batch_of_100_amplifying_patches_is_bounded(api: Api, tenant: TenantKeys) -> None:
    created = api.post(
        coupons(tenant),
        json=percent_coupon(custom_field_values=[{"custom_field_id": "f", "string_value": "x"}]),
    ).json()
    operations = [
        {"operation": "patch", "id": created["id"], "patch_directives": self_copies(28)}
        for _ in range(100)
    ]
    started = time.perf_counter()
    reply = api.post(f"{coupons(tenant)}/batch", json={"operations": operations})
    elapsed = time.perf_counter() - started
    assert reply.status_code == 200, reply.text
    results = reply.json()["results"] if isinstance(reply.json(), dict) else reply.json()
    assert len(results) == 100
    assert all("error" in str(result) for result in results)
    assert elapsed < 10, elapsed
    assert api.get(f"{coupons(tenant)}/{created['id']}").json()["sys_version"] == 1


# --- 2. lone surrogates in JSON keys ------------------------------------------------------------

SURROGATE_KEY = '"\\ud800": 1'


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/coupons/{t}", '{"coupon_type": "USAGE", ' + SURROGATE_KEY + "}"),
        ("/groups/{t}", '{"name": "G", ' + SURROGATE_KEY + "}"),
        (
            "/coupons/{t}/validate",
            '{"code": "X", "user_id": "u", "lines": [], ' + SURROGATE_KEY + "}",
        ),
        (
            "/redemptions/{t}",
            '{"code": "X", "user_id": "u", "lines": [{"line_id": "1", "kind": "event", '
            '"id": "e", "unit_price": "1", "quantity": 1, ' + SURROGATE_KEY + "}]}",
        ),
        ("/coupons/{t}", '{"coupon_type": "USAGE", "name": "\\udfff"}'),
        ("/coupons/{t}", '{"\\u0000": 1, "coupon_type": "USAGE"}'),
    ],
    ids=["coupon", "group", "validate", "redemption-line", "surrogate-value", "nul-key"],
)
def test_a_lone_surrogate_key_is_refused_cleanly(
    api: Api, tenant: TenantKeys, path: str, body: str
) -> None:
    reply = api.post(path.format(t=tenant.tenant_id), content=body.encode(), headers=JSON)
    error = error_of(reply, 422)
    assert error["details"], error
    for problem in error["details"]:
        assert "\ud800" not in problem["field"] and "\x00" not in problem["field"]
    assert scan(api, tenant) == []
    groups = api.get(f"/groups/{tenant.tenant_id}").json()
    assert groups == []


def test_a_batch_answers_a_surrogate_key_in_its_own_result(api: Api, tenant: TenantKeys) -> None:
    body = (
        '{"operations": ['
        '{"operation": "create", "object": {"coupon_type": "USAGE", ' + SURROGATE_KEY + "}},"
        '{"operation": "create", "object": {"coupon_type": "USAGE", "code": "GOOD-ONE"}}'
        "]}"
    )
    reply = api.post(f"{coupons(tenant)}/batch", content=body.encode(), headers=JSON)
    assert reply.status_code == 200, reply.text
    json.loads(reply.content.decode("utf-8"))
    assert [c["code"] for c in scan(api, tenant)] == ["GOOD-ONE"]


# --- 3. EduBrite replies stay XML whatever the parameter names -------------------------------


@pytest.mark.parametrize("char", ["\x01", "\x0c", "\x00", "\uffff", "\ud800"])
@pytest.mark.parametrize("where", ["name", "value", "query-name"])
def test_edubrite_replies_parse_as_xml_whatever_the_parameters(
    client: TestClient, tenant: TenantKeys, char: str, where: str
) -> None:
    client.cookies.clear()
    headers = {"Authorization": tenant.admin, "REAL_UNAME": "admin|a@example.org|A"}
    params = {"dispatch": "getCoupon", "id": "x"}
    if where == "name":
        body = "&".join(f"{k}={v}" for k, v in params.items()) + f"&bad{_pct(char)}name=1"
        reply = client.post(
            SERVICE_URL,
            content=body.encode(),
            headers={**headers, "Content-Type": "application/x-www-form-urlencoded"},
        )
    elif where == "value":
        body = f"dispatch=createCoupon&type=PERCENT&authCode=A{_pct(char)}B"
        reply = client.post(
            SERVICE_URL,
            content=body.encode(),
            headers={**headers, "Content-Type": "application/x-www-form-urlencoded"},
        )
    else:
        reply = client.get(
            f"{SERVICE_URL}?dispatch=getCoupon&id=x&n{_pct(char)}=1", headers=headers
        )
    assert reply.status_code == 400, reply.text
    root = ElementTree.fromstring(reply.content)
    assert root.tag == "response"
    assert root.get("code") == "1002"


def _pct(char: str) -> str:
    # Percent-encode as UTF-8, keeping a lone surrogate as the bytes a lenient sender emits.
    return "".join(f"%{b:02X}" for b in char.encode("utf-8", "surrogatepass"))


# --- 4. instants past year 9999 ----------------------------------------------------------------


@pytest.mark.parametrize(
    "value", ["9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+23:59", "9999-12-31T23:59:59Z"]
)
def test_instants_out_of_range_are_refused(api: Api, tenant: TenantKeys, value: str) -> None:
    error = error_of(api.post(coupons(tenant), json=percent_coupon(expires_at=value)), 422)
    assert [d["field"] for d in error["details"]] == ["expires_at"]
    assert scan(api, tenant) == []


@pytest.mark.parametrize(
    ("param", "value"),
    [
        ("expDate", "999999999999999"),
        ("expDate", "-999999999999999"),
        ("startDate", "253402300800000"),
    ],
)
def test_edubrite_instants_out_of_range_are_1002(
    client: TestClient, tenant: TenantKeys, api: Api, param: str, value: str
) -> None:
    client.cookies.clear()
    reply = client.post(
        SERVICE_URL,
        data={"dispatch": "createCoupon", "type": "PERCENT", "valuePercent": "10", param: value},
        headers={"Authorization": tenant.admin, "REAL_UNAME": "admin|a@example.org|A"},
    )
    assert reply.status_code == 400, reply.text
    root = ElementTree.fromstring(reply.content)
    assert root.get("code") == "1002"
    assert param in reply.text
    assert scan(api, tenant) == []


# --- 5. money too large to store -------------------------------------------------------------


def usage_coupon(api: Api, tenant: TenantKeys) -> dict[str, Any]:
    reply = api.post(coupons(tenant), json={"coupon_type": "USAGE", "code": "SAVE10"})
    assert reply.status_code == 201, reply.text
    return reply.json()  # type: ignore[no-any-return]


@pytest.mark.parametrize("endpoint", ["validate", "redeem"])
def test_a_line_total_too_large_is_refused_by_validate_and_redeem_alike(
    api: Api, tenant: TenantKeys, endpoint: str
) -> None:
    usage_coupon(api, tenant)
    path = (
        f"{coupons(tenant)}/validate"
        if endpoint == "validate"
        else f"/redemptions/{tenant.tenant_id}"
    )
    error = error_of(api.post(path, json=cart("9999999999.99", 100_000)), 422)
    assert [d["field"] for d in error["details"]] == ["lines[0].quantity"]
    assert api.get(f"/redemptions/{tenant.tenant_id}").json() == []


@pytest.mark.parametrize("endpoint", ["validate", "redeem"])
def test_a_cart_total_too_large_is_refused(api: Api, tenant: TenantKeys, endpoint: str) -> None:
    usage_coupon(api, tenant)
    body = cart("6000000000", 1)
    body["lines"].append({**body["lines"][0], "line_id": "2"})
    path = (
        f"{coupons(tenant)}/validate"
        if endpoint == "validate"
        else f"/redemptions/{tenant.tenant_id}"
    )
    error = error_of(api.post(path, json=body), 422)
    assert [d["field"] for d in error["details"]] == ["lines"]


def test_the_largest_cart_is_validated_and_redeemed_alike(api: Api, tenant: TenantKeys) -> None:
    api.post(coupons(tenant), json=percent_coupon(code="SAVE10", value_percent=100))
    body = cart("99999.9999", 99_999)  # 9,999,899,990.0001: just under the limit
    validated = api.post(f"{coupons(tenant)}/validate", json=body)
    assert validated.status_code == 200, validated.text
    redeemed = api.post(f"/redemptions/{tenant.tenant_id}", json=body)
    assert redeemed.status_code == 201, redeemed.text
    assert redeemed.json()["discount_total"] == validated.json()["discount_total"]
    stored = api.get(f"/redemptions/{tenant.tenant_id}/{redeemed.json()['id']}").json()
    assert stored["discount_total"] == validated.json()["discount_total"]


# --- 6. NUL and other controls in parameters that reach SQL ---------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "/redemptions/{t}?user_id=%00",
        "/redemptions/{t}?coupon_id=a%00b",
        "/redemptions/{t}?status=%01",
        "/coupons/{t}?code=A%00",
        "/coupons/{t}?fields=name%00",
        "/groups/{t}?parent_id=%00",
        "/groups/{t}/resolve?path=%00",
        "/coupons/{t}/ab%00cd",
        "/redemptions/{t}/r%00",
        "/coupons/{t}?na%00me=1",
    ],
)
def test_nul_in_any_parameter_is_a_400(api: Api, tenant: TenantKeys, url: str) -> None:
    error = error_of(api.get(url.format(t=tenant.tenant_id)), 400)
    assert error["code"] == "invalid_query"
    assert error["details"][0]["field"]


# --- 7. an unexpected failure costs one request, not the connection --------------------------


def test_an_unexpected_failure_is_answered_without_re_raising(
    db: Database, database_url: str
) -> None:
    app = create_fastapi(Settings(database_url=database_url), db)

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("secret internals: SELECT * FROM tenants")

    # raise_server_exceptions=True: a handler that re-raised after replying would fail here.
    with TestClient(app, raise_server_exceptions=True) as local:
        reply = local.get("/boom")
    error = error_of(reply, 500)
    assert error["code"] == "internal_error"
    assert "SELECT" not in reply.text and "secret" not in reply.text


def test_a_client_gone_mid_upload_is_a_warning_without_traceback(
    db: Database, database_url: str, tenant: TenantKeys, caplog: pytest.LogCaptureFixture
) -> None:
    import asyncio

    app = create_fastapi(Settings(database_url=database_url), db)
    messages = [
        {"type": "http.request", "body": b'{"coupon_type": ', "more_body": True},
        {"type": "http.disconnect"},
    ]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": coupons(tenant),
        "raw_path": coupons(tenant).encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"authorization", tenant.admin.encode()),
            (b"content-type", b"application/json"),
            (b"host", b"testserver"),
        ],
        "client": ("127.0.0.1", 1),
        "server": ("testserver", 80),
        "state": {},
    }
    with caplog.at_level(logging.INFO, logger="couponry"):
        asyncio.run(app(scope, receive, send))  # type: ignore[arg-type]
    records = [r for r in caplog.records if "disconnected" in r.getMessage()]
    assert len(records) == 1
    assert records[0].levelno == logging.WARNING
    assert records[0].exc_info is None
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


# --- 8. the Host header never reaches a link --------------------------------------------------


def test_link_is_relative_whatever_the_host(api: Api, tenant: TenantKeys) -> None:
    for index in range(3):
        api.post(coupons(tenant), json=percent_coupon(code=f"LNK{index}"))
    reply = api.get(coupons(tenant), params={"limit": 2}, headers={"Host": "evil.example"})
    assert reply.status_code == 200, reply.text
    link = reply.headers["link"]
    assert "evil.example" not in link
    assert link.startswith(f"<{coupons(tenant)}?")
    target = link[1 : link.index(">")]
    following = api.get(target)
    assert following.status_code == 200
    assert [c["code"] for c in following.json()] == ["LNK2"]


# --- also: cookies as EduBrite's Java client sends them, names in the OpenAPI document -------


def test_each_cookie_in_its_own_header_with_version_attributes(
    client: TestClient, tenant: TenantKeys
) -> None:
    key_id, secret = tenant.admin.split(".")
    client.cookies.clear()
    connected = client.get(
        "/oltpublish/site/home.do", params={"username": key_id, "password": secret}
    )
    assert connected.status_code == 200
    session_id = connected.cookies["SESSION_ID"]
    session_info = connected.cookies["SESSION_INFO"]
    client.cookies.clear()
    reply = client.post(
        SERVICE_URL,
        data={"dispatch": "listCoupons"},
        headers=[
            ("Cookie", f"$Version=0; SESSION_ID={session_id}; $Path=/"),
            ("Cookie", f"$Version=0; SESSION_INFO={session_info}; $Path=/"),
            ("REAL_UNAME", "admin|a@example.org|A"),
        ],
    )
    assert reply.status_code == 200, reply.text
    assert ElementTree.fromstring(reply.content).get("code") == "0"


def test_the_anonymous_session_cookie_has_samesite(client: TestClient) -> None:
    client.cookies.clear()
    reply = client.get("/oltpublish/site/home.do")
    cookie = reply.headers["set-cookie"]
    assert cookie.startswith("SESSION_ID=")
    assert "samesite=lax" in cookie.lower() and "httponly" in cookie.lower()


def test_the_openapi_document_names_the_tenant_tenantId(client: TestClient) -> None:
    document = client.get("/openapi.json").json()
    names = set()
    for path, operations in document["paths"].items():
        if not path.startswith(("/coupons/", "/redemptions/", "/groups/")):
            continue
        assert path.split("/")[2] == "{tenantId}", path
        for operation in operations.values():
            for parameter in operation.get("parameters", []):
                if parameter["in"] == "path":
                    names.add(parameter["name"])
    assert "tenantId" in names and "tenant_id" not in names
