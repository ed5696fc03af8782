"""Authentication and roles over REST, on both backends (SPEC 2, 4, 4.3, 8).

No key, a malformed key, an unknown key id or a wrong secret: 401 with the JSON error envelope,
and nothing changes. `Authorization: <key>` and `Bearer <key>` both work. Revocation takes
effect on the very next request. A `read` key may only GET; a `checkout` key may read coupons
but change nothing here; an `admin` key may do everything. Only a hash of the secret is stored.
The operational endpoints need no key.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import pytest
from sqlalchemy import select
from starlette.testclient import TestClient

from couponry.services.tenants import revoke_key
from couponry.store.db import Database
from couponry.store.tables import api_keys
from tests.conftest import Api, TenantKeys, now, percent_coupon

# --- one tenant with one of everything, and every endpoint ----------------------------------


@dataclass(frozen=True)
class Own:
    """A tenant's coupon, a leaf group, one member of it, and a path to the group."""

    tenant: str
    coupon: str
    group: str
    user: str
    path: str


@dataclass(frozen=True)
class Call:
    method: str
    url: str
    body: Any = None

    def send(self, api: Api, headers: dict[str, str | bytes] | None = None) -> Any:
        kwargs: dict[str, Any] = {} if self.body is None else {"json": self.body}
        if headers is not None:
            kwargs["headers"] = headers
        return api.request(self.method, self.url, **kwargs)

    @property
    def writes(self) -> bool:
        return self.method != "GET"


PATCH_PERCENT = [{"op": "replace", "path": "/value_percent", "value": 50}]


def _batch(operation: dict[str, Any]) -> dict[str, Any]:
    return {"operations": [operation]}


# name -> (the call on the tenant's own data, the status an admin key gets)
ENDPOINTS: dict[str, tuple[Callable[[Own], Call], int]] = {
    "coupon-create": (lambda o: Call("POST", f"/coupons/{o.tenant}", percent_coupon()), 201),
    "coupon-scan": (lambda o: Call("GET", f"/coupons/{o.tenant}"), 200),
    "coupon-get": (lambda o: Call("GET", f"/coupons/{o.tenant}/{o.coupon}"), 200),
    "coupon-put": (
        lambda o: Call("PUT", f"/coupons/{o.tenant}/{o.coupon}", percent_coupon(value_percent=50)),
        200,
    ),
    "coupon-patch": (
        lambda o: Call("PATCH", f"/coupons/{o.tenant}/{o.coupon}", PATCH_PERCENT),
        200,
    ),
    "coupon-delete": (lambda o: Call("DELETE", f"/coupons/{o.tenant}/{o.coupon}"), 200),
    "batch-create": (
        lambda o: Call(
            "POST",
            f"/coupons/{o.tenant}/batch",
            _batch({"operation": "create", "object": percent_coupon()}),
        ),
        200,
    ),
    "batch-update": (
        lambda o: Call(
            "POST",
            f"/coupons/{o.tenant}/batch",
            _batch(
                {"operation": "update", "id": o.coupon, "object": percent_coupon(value_percent=50)}
            ),
        ),
        200,
    ),
    "batch-patch": (
        lambda o: Call(
            "POST",
            f"/coupons/{o.tenant}/batch",
            _batch({"operation": "patch", "id": o.coupon, "patch_directives": PATCH_PERCENT}),
        ),
        200,
    ),
    "batch-delete": (
        lambda o: Call(
            "POST", f"/coupons/{o.tenant}/batch", _batch({"operation": "delete", "id": o.coupon})
        ),
        200,
    ),
    "group-create": (lambda o: Call("POST", f"/groups/{o.tenant}", {"name": "New group"}), 201),
    "group-list": (lambda o: Call("GET", f"/groups/{o.tenant}"), 200),
    "group-resolve": (
        lambda o: Call("GET", f"/groups/{o.tenant}/resolve?path={quote(o.path, safe='')}"),
        200,
    ),
    "group-get": (lambda o: Call("GET", f"/groups/{o.tenant}/{o.group}"), 200),
    "group-put": (lambda o: Call("PUT", f"/groups/{o.tenant}/{o.group}", {"name": "Renamed"}), 200),
    "group-delete": (lambda o: Call("DELETE", f"/groups/{o.tenant}/{o.group}"), 200),
    "member-list": (lambda o: Call("GET", f"/groups/{o.tenant}/{o.group}/members"), 200),
    "member-put-new": (
        lambda o: Call("PUT", f"/groups/{o.tenant}/{o.group}/members/new-user", {"role": "admin"}),
        201,
    ),
    "member-put-existing": (
        lambda o: Call("PUT", f"/groups/{o.tenant}/{o.group}/members/{o.user}", {"role": "admin"}),
        200,
    ),
    "member-delete": (
        lambda o: Call("DELETE", f"/groups/{o.tenant}/{o.group}/members/{o.user}"),
        200,
    ),
}
_SAMPLE = Own("t", "c", "g", "u", "*")
READS = [name for name, (build, _) in ENDPOINTS.items() if not build(_SAMPLE).writes]
WRITES = [name for name, (build, _) in ENDPOINTS.items() if build(_SAMPLE).writes]
COUPON_READS = ["coupon-scan", "coupon-get"]


def _created(response: Any, status: int = 201) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    return body


@pytest.fixture
def own(api: Api, tenant: TenantKeys) -> Own:
    t = tenant.tenant_id
    tag = secrets.token_hex(4)
    coupon = _created(api.post(f"/coupons/{t}", json=percent_coupon(code=f"AUTH-{tag}")))
    group = _created(api.post(f"/groups/{t}", json={"name": f"Group {tag}"}))
    user = f"user-{tag}"
    _created(api.put(f"/groups/{t}/{group['id']}/members/{user}", json={"role": "member"}))
    return Own(t, coupon["id"], group["id"], user, '{name:"' + group["name"] + '"}')


def state(api: Api, tenant_id: str) -> dict[str, Any]:
    """Everything the tenant's admin can read: coupons, groups, memberships."""
    coupons = api.get(f"/coupons/{tenant_id}", params={"limit": "1000"})
    groups = api.get(f"/groups/{tenant_id}", params={"limit": "1000"})
    assert coupons.status_code == 200 and groups.status_code == 200
    members = {
        g["id"]: api.get(f"/groups/{tenant_id}/{g['id']}/members").json() for g in groups.json()
    }
    return {"coupons": coupons.json(), "groups": groups.json(), "members": members}


def assert_error(response: Any, status: int, codes: tuple[str, ...] = ()) -> dict[str, Any]:
    """The SPEC 4.3 envelope with this status (and one of these codes, when given)."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}, body
    error: dict[str, Any] = body["error"]
    assert set(error) == {"code", "message", "details"}, error
    assert re.fullmatch(r"[a-z][a-z0-9]*(_[a-z0-9]+)*", error["code"]), error
    if codes:
        assert error["code"] in codes, error
    assert isinstance(error["message"], str) and error["message"].strip()
    assert isinstance(error["details"], list)
    assert response.headers.get("x-request-id"), response.headers
    return error


def assert_success(response: Any, status: int) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    if isinstance(body, dict) and "results" in body:  # a batch: the operation itself succeeded
        assert body["error_count"] == 0, body
        assert body["success_count"] == 1, body


# --- 401 ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("endpoint", list(ENDPOINTS))
def test_no_key_is_401_and_changes_nothing(api: Api, own: Own, endpoint: str) -> None:
    before = state(api, own.tenant)
    response = ENDPOINTS[endpoint][0](own).send(api.as_key(None))
    assert_error(response, 401)
    assert state(api, own.tenant) == before


def _bad_keys(keys: TenantKeys, other: TenantKeys) -> dict[str, str | bytes]:
    key_id, secret = keys.admin.split(".", 1)
    other_id, other_secret = other.admin.split(".", 1)
    return {
        "empty": "",
        "blank": "   ",
        "bearer-only": "Bearer",
        "bearer-blank": "Bearer ",
        "no-dot": "not-a-key",
        "dot-only": ".",
        "no-secret": f"{key_id}.",
        "no-key-id": f".{secret}",
        "secret-only": secret,
        "key-id-only": key_id,
        "basic-scheme": "Basic " + keys.admin,
        "unknown-key-id": f"k{secrets.token_hex(8)}.{secret}",
        "wrong-secret": f"{key_id}.{secrets.token_urlsafe(32)}",
        "secret-changed-by-one": f"{key_id}.{secret[:-1]}{'A' if secret[-1] != 'A' else 'B'}",
        "secret-case-changed": f"{key_id}.{secret.swapcase()}",
        "secret-with-suffix": f"{keys.admin}x",
        "other-tenants-secret": f"{key_id}.{other_secret}",
        "other-key-id-own-secret": f"{other_id}.{secret}",
        "bearer-wrong-secret": f"Bearer {key_id}.{secrets.token_urlsafe(32)}",
        "huge": f"{key_id}.{'x' * 5000}",
        # Sent as raw bytes: UTF-8 beyond ASCII, and bytes that are not UTF-8 at all.
        "unicode": f"{key_id}.sécret".encode(),
        "not-utf8": key_id.encode() + b".\xff\xfe",
    }


BAD_KEYS = [
    "empty",
    "blank",
    "bearer-only",
    "bearer-blank",
    "no-dot",
    "dot-only",
    "no-secret",
    "no-key-id",
    "secret-only",
    "key-id-only",
    "basic-scheme",
    "unknown-key-id",
    "wrong-secret",
    "secret-changed-by-one",
    "secret-case-changed",
    "secret-with-suffix",
    "other-tenants-secret",
    "other-key-id-own-secret",
    "bearer-wrong-secret",
    "huge",
    "unicode",
    "not-utf8",
]


@pytest.mark.parametrize("kind", BAD_KEYS)
@pytest.mark.parametrize("endpoint", ["coupon-scan", "coupon-get", "coupon-create", "batch-delete"])
def test_bad_key_is_401_and_changes_nothing(
    api: Api, own: Own, tenant: TenantKeys, other_tenant: TenantKeys, endpoint: str, kind: str
) -> None:
    bad_keys = _bad_keys(tenant, other_tenant)
    assert set(bad_keys) == set(BAD_KEYS)
    bad = bad_keys[kind]
    before = state(api, own.tenant)
    response = ENDPOINTS[endpoint][0](own).send(api.as_key(None), headers={"Authorization": bad})
    assert_error(response, 401)
    assert state(api, own.tenant) == before


@pytest.mark.parametrize("endpoint", list(ENDPOINTS))
def test_wrong_secret_is_401_on_every_endpoint(api: Api, own: Own, endpoint: str) -> None:
    assert api.key is not None
    key_id = api.key.split(".", 1)[0]
    before = state(api, own.tenant)
    wrong = f"{key_id}.{secrets.token_urlsafe(32)}"
    response = ENDPOINTS[endpoint][0](own).send(api.as_key(wrong))
    assert_error(response, 401)
    assert state(api, own.tenant) == before


# --- header forms ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "form",
    ["{key}", "Bearer {key}", "bearer {key}", "BEARER {key}", "Bearer  {key}", " {key} "],
)
def test_authorization_header_forms(api: Api, own: Own, tenant: TenantKeys, form: str) -> None:
    header = form.format(key=tenant.admin)
    response = api.as_key(None).get(
        f"/coupons/{own.tenant}/{own.coupon}", headers={"Authorization": header}
    )
    assert response.status_code == 200, response.text
    assert response.json()["id"] == own.coupon
    created = api.as_key(None).post(
        f"/coupons/{own.tenant}", json=percent_coupon(), headers={"Authorization": header}
    )
    assert created.status_code == 201, created.text


# --- revocation -----------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["admin", "checkout", "read"])
def test_revocation_is_immediate(
    db: Database, api: Api, own: Own, tenant: TenantKeys, role: str
) -> None:
    key = getattr(tenant, role)
    caller = api.as_key(key)
    url = f"/coupons/{own.tenant}/{own.coupon}"
    assert caller.get(url).status_code == 200

    revoke_key(db, key_id=key.split(".", 1)[0], now=now())

    assert_error(caller.get(url), 401)
    assert_error(caller.get(url, headers={"Authorization": f"Bearer {key}"}), 401)
    if role == "admin":
        before = state(api.as_key(tenant.read), own.tenant)
        assert_error(caller.post(f"/coupons/{own.tenant}", json=percent_coupon()), 401)
        assert_error(caller.delete(url), 401)
        assert state(api.as_key(tenant.read), own.tenant) == before
    # The tenant's other keys still work.
    for other in ("admin", "checkout", "read"):
        if other != role:
            assert api.as_key(getattr(tenant, other)).get(url).status_code == 200


# --- roles ------------------------------------------------------------------------------------


@pytest.mark.parametrize("endpoint", READS)
def test_read_key_may_get(api: Api, own: Own, tenant: TenantKeys, endpoint: str) -> None:
    build, status = ENDPOINTS[endpoint]
    response = build(own).send(api.as_key(tenant.read))
    assert_success(response, status)


@pytest.mark.parametrize("role", ["read", "checkout"])
@pytest.mark.parametrize("endpoint", WRITES)
def test_non_admin_keys_may_not_write(
    api: Api, own: Own, tenant: TenantKeys, endpoint: str, role: str
) -> None:
    before = state(api, own.tenant)
    response = ENDPOINTS[endpoint][0](own).send(api.as_key(getattr(tenant, role)))
    assert_error(response, 403, ("insufficient_role",))
    assert state(api, own.tenant) == before


@pytest.mark.parametrize("endpoint", COUPON_READS)
def test_checkout_key_may_read_coupons(
    api: Api, own: Own, tenant: TenantKeys, endpoint: str
) -> None:
    build, status = ENDPOINTS[endpoint]
    response = build(own).send(api.as_key(tenant.checkout))
    assert_success(response, status)
    if endpoint == "coupon-get":
        assert response.json()["id"] == own.coupon
    else:
        assert own.coupon in [c["id"] for c in response.json()]


@pytest.mark.parametrize("endpoint", list(ENDPOINTS))
def test_admin_key_may_do_everything(api: Api, own: Own, endpoint: str) -> None:
    build, status = ENDPOINTS[endpoint]
    response = build(own).send(api)
    assert_success(response, status)


# --- the order of refusals for a request with a body -------------------------------------------

MIB = 1024 * 1024
NO_REDEMPTION = "ffff-ffff-ffff-ffff"
# Every endpoint that reads a body (the redemption ones here too), as an admin key sends it.
BODY_CALLS: dict[str, Callable[[Own], Call]] = {
    name: build for name, (build, _) in ENDPOINTS.items() if build(_SAMPLE).body is not None
} | {
    "validate": lambda o: Call("POST", f"/coupons/{o.tenant}/validate", {}),
    "redeem": lambda o: Call("POST", f"/redemptions/{o.tenant}", {}),
    "approve": lambda o: Call("POST", f"/redemptions/{o.tenant}/{NO_REDEMPTION}/approve", {}),
}


@pytest.mark.parametrize("endpoint", list(BODY_CALLS))
def test_body_refusals_come_in_order(api: Api, own: Own, tenant: TenantKeys, endpoint: str) -> None:
    """413 (too large, whatever the key), then 401 (no key), 403 (the role), and only then
    what is wrong with the body: 415 (its type) and 400 (not JSON)."""
    call = BODY_CALLS[endpoint](own)
    anonymous, reader = api.as_key(None), api.as_key(tenant.read)
    as_json = {"Content-Type": "application/json"}
    as_text = {"Content-Type": "text/plain"}

    def send(caller: Api, content: Any, headers: dict[str, str]) -> Any:
        return caller.request(call.method, call.url, content=content, headers=headers)

    before = state(api, own.tenant)
    too_large = b"[" + b" " * MIB + b"]"
    assert_error(send(anonymous, too_large, as_json), 413, ("payload_too_large",))
    chunked = iter([b"[", b" " * MIB, b"]"])  # no Content-Length: counted as it is read
    assert_error(send(anonymous, chunked, as_json), 413, ("payload_too_large",))
    assert_error(send(anonymous, b"{", as_text), 401)
    assert_error(send(reader, b"{", as_text), 403, ("insufficient_role",))
    assert_error(send(api, b"{", as_text), 415, ("unsupported_media_type",))
    assert_error(send(api, b"{", as_json), 400, ("malformed_json",))
    assert state(api, own.tenant) == before


def test_admin_changes_are_seen_by_read_key(api: Api, own: Own, tenant: TenantKeys) -> None:
    reader = api.as_key(tenant.read)
    patched = api.patch(f"/coupons/{own.tenant}/{own.coupon}", json=PATCH_PERCENT)
    assert patched.status_code == 200, patched.text
    seen = reader.get(f"/coupons/{own.tenant}/{own.coupon}")
    assert seen.status_code == 200
    assert seen.json()["value_percent"] == 50
    assert seen.json()["sys_version"] == patched.json()["sys_version"]


# --- keys at rest -----------------------------------------------------------------------------


def test_keys_are_stored_hashed(db: Database, tenant: TenantKeys) -> None:
    with db.primary.connect() as conn:
        rows = conn.execute(select(api_keys).where(api_keys.c.tenant_id == tenant.tenant_id)).all()
    assert len(rows) == 3
    stored = {row.id: row for row in rows}
    for key in (tenant.admin, tenant.checkout, tenant.read):
        key_id, secret = key.split(".", 1)
        assert key_id in stored
        for column, value in stored[key_id]._mapping.items():
            text = json.dumps(value, default=str)
            assert secret not in text, f"the secret is stored in api_keys.{column}"
            assert key not in text, f"the whole key is stored in api_keys.{column}"
        # Nor in any other key's row.
        for row in rows:
            assert all(secret not in str(value) for value in row)
    assert {row.role for row in rows} == {"admin", "checkout", "read"}


# --- no key needed ----------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/metrics", "/openapi.json", "/docs"])
@pytest.mark.parametrize("header", [None, "garbage", "k0000000000000000.nope"])
def test_operational_endpoints_need_no_key(
    client: TestClient, path: str, header: str | None
) -> None:
    headers = {} if header is None else {"Authorization": header}
    response = client.get(path, headers=headers)
    assert response.status_code == 200, response.text
    if path == "/openapi.json":
        assert "/coupons/{tenantId}" in response.json()["paths"]


def test_readyz_says_ready_when_migrated(client: TestClient) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "ready"
