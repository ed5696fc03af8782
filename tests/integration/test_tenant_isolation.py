"""Tenant isolation across every REST endpoint, on both backends (SPEC 2, 4, 4.1, 4.2, 5, 9).

Tenant B owns coupons, groups and a membership whose names, codes and ids are distinctive
strings. Tenant A then calls every endpoint in every way that could reach B's data:

- A's key on B's path: 403 (`wrong_tenant`), exactly as for a tenant that does not exist.
- A's key on A's path naming B's ids (URL, batch `id`, `entity_id`, `authorized_group_id`,
  `parent_id`, a group path only B's groups match): the same reply, byte for byte apart from
  the id A sent, as for an id that exists nowhere.
- scans and lists with A's key never show B's rows, whatever the filter or start key.

After every call, B's whole state (scan, groups, members, including `sys_version` and
timestamps) is what it was before, and no string of B's that A did not send itself appears in
the reply (body or headers). Adding an endpoint is one line in ENDPOINTS.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote

import pytest
from starlette.testclient import TestClient

from tests.conftest import Api, TenantKeys, percent_coupon

# --- what a request names, and the endpoint table ------------------------------------------


@dataclass(frozen=True)
class Target:
    """The tenant in the path, and the ids / references a request names."""

    tenant: str
    coupon: str
    group: str
    user: str
    ref: str  # a group reference put in a body or a query: an id or a group path

    def tokens(self) -> list[str]:
        """The strings a reply may echo back because the caller sent them."""
        return [self.coupon, self.group, self.user, self.ref, *_path_values(self.ref)]


@dataclass(frozen=True)
class Call:
    method: str
    url: str
    body: Any = None

    def send(self, api: Api) -> Any:
        kwargs: dict[str, Any] = {} if self.body is None else {"json": self.body}
        return api.request(self.method, self.url, **kwargs)

    @property
    def writes(self) -> bool:
        return self.method != "GET"

    @property
    def sent(self) -> str:
        """Everything the caller put in the request, as text."""
        return unquote(self.url) + "\n" + json.dumps(self.body, ensure_ascii=False)


Build = Callable[[Target], Call]

PATCH_PERCENT = [{"op": "replace", "path": "/value_percent", "value": 50}]


def _batch(*operations: dict[str, Any]) -> dict[str, Any]:
    return {"operations": list(operations)}


def _path_values(ref: str) -> list[str]:
    """The quoted values inside a group path (none for a plain id)."""
    return re.findall(r'"((?:[^"\\]|\\.)*)"', ref)


def _name_path(value: str) -> str:
    return '{name:"' + value + '"}'


def _code_path(value: str) -> str:
    return '{code:"' + value + '"}'


# Every REST endpoint of SPEC 4.1 and 4.2, one line each.
ENDPOINTS: dict[str, Build] = {
    "coupon-create": lambda t: Call("POST", f"/coupons/{t.tenant}", percent_coupon()),
    "coupon-scan": lambda t: Call("GET", f"/coupons/{t.tenant}"),
    "coupon-get": lambda t: Call("GET", f"/coupons/{t.tenant}/{t.coupon}"),
    "coupon-put": lambda t: Call(
        "PUT", f"/coupons/{t.tenant}/{t.coupon}", percent_coupon(value_percent=50)
    ),
    "coupon-patch": lambda t: Call("PATCH", f"/coupons/{t.tenant}/{t.coupon}", PATCH_PERCENT),
    "coupon-delete": lambda t: Call("DELETE", f"/coupons/{t.tenant}/{t.coupon}"),
    "batch-create": lambda t: Call(
        "POST",
        f"/coupons/{t.tenant}/batch",
        _batch({"operation": "create", "object": percent_coupon()}),
    ),
    "batch-update": lambda t: Call(
        "POST",
        f"/coupons/{t.tenant}/batch",
        _batch({"operation": "update", "id": t.coupon, "object": percent_coupon(value_percent=50)}),
    ),
    "batch-patch": lambda t: Call(
        "POST",
        f"/coupons/{t.tenant}/batch",
        _batch({"operation": "patch", "id": t.coupon, "patch_directives": PATCH_PERCENT}),
    ),
    "batch-delete": lambda t: Call(
        "POST", f"/coupons/{t.tenant}/batch", _batch({"operation": "delete", "id": t.coupon})
    ),
    "group-create": lambda t: Call("POST", f"/groups/{t.tenant}", {"name": "A new group"}),
    "group-list": lambda t: Call("GET", f"/groups/{t.tenant}"),
    "group-resolve": lambda t: Call(
        "GET", f"/groups/{t.tenant}/resolve?path={quote(t.ref, safe='')}"
    ),
    "group-get": lambda t: Call("GET", f"/groups/{t.tenant}/{t.group}"),
    "group-put": lambda t: Call("PUT", f"/groups/{t.tenant}/{t.group}", {"name": "Renamed"}),
    "group-delete": lambda t: Call("DELETE", f"/groups/{t.tenant}/{t.group}"),
    "member-list": lambda t: Call("GET", f"/groups/{t.tenant}/{t.group}/members"),
    "member-put": lambda t: Call(
        "PUT", f"/groups/{t.tenant}/{t.group}/members/{t.user}", {"role": "admin"}
    ),
    "member-delete": lambda t: Call("DELETE", f"/groups/{t.tenant}/{t.group}/members/{t.user}"),
}

# Endpoints that name a coupon, a group, a member or a group path, with what A gets back when
# that thing is B's: (status, error code); batch replies are 200 with a per-operation error.
NAMING_ENDPOINTS: dict[str, tuple[int, str]] = {
    "coupon-get": (404, "coupon_not_found"),
    "coupon-put": (404, "coupon_not_found"),
    "coupon-patch": (404, "coupon_not_found"),
    "coupon-delete": (404, "coupon_not_found"),
    "batch-update": (200, "coupon_not_found"),
    "batch-patch": (200, "coupon_not_found"),
    "batch-delete": (200, "coupon_not_found"),
    "group-resolve": (404, "group_path_no_match"),
    "group-get": (404, "group_not_found"),
    "group-put": (404, "group_not_found"),
    "group-delete": (404, "group_not_found"),
    "member-list": (404, "group_not_found"),
    "member-put": (404, "group_not_found"),
    "member-delete": (404, "group_not_found"),
}


# Calls on A's own path whose body names a group (an id or a path) by `t.ref`; `t.coupon` and
# `t.group` are A's own coupon and group. Value: the reference kinds it takes and the reply.
def _entity(ref: str) -> dict[str, Any]:
    return percent_coupon(entity_type="GROUP", entity_id=ref)


def _patch_entity(ref: str) -> list[dict[str, Any]]:
    return [
        {"op": "replace", "path": "/entity_type", "value": "GROUP"},
        {"op": "replace", "path": "/entity_id", "value": ref},
    ]


def _patch_authorized(ref: str) -> list[dict[str, Any]]:
    return [{"op": "replace", "path": "/authorized_group_id", "value": ref}]


ALL_REFS = ("id", "name-path", "code-path", "nested-path")
REFERENCES: dict[str, tuple[Build, tuple[str, ...], int, str]] = {
    "coupon-create-entity": (
        lambda t: Call("POST", f"/coupons/{t.tenant}", _entity(t.ref)),
        ALL_REFS,
        404,
        "group_path_no_match",
    ),
    "coupon-create-authorized": (
        lambda t: Call("POST", f"/coupons/{t.tenant}", percent_coupon(authorized_group_id=t.ref)),
        ALL_REFS,
        404,
        "group_path_no_match",
    ),
    "coupon-put-entity": (
        lambda t: Call("PUT", f"/coupons/{t.tenant}/{t.coupon}", _entity(t.ref)),
        ALL_REFS,
        404,
        "group_path_no_match",
    ),
    "coupon-put-authorized": (
        lambda t: Call(
            "PUT", f"/coupons/{t.tenant}/{t.coupon}", percent_coupon(authorized_group_id=t.ref)
        ),
        ALL_REFS,
        404,
        "group_path_no_match",
    ),
    "coupon-patch-entity": (
        lambda t: Call("PATCH", f"/coupons/{t.tenant}/{t.coupon}", _patch_entity(t.ref)),
        ALL_REFS,
        404,
        "group_path_no_match",
    ),
    "coupon-patch-authorized": (
        lambda t: Call("PATCH", f"/coupons/{t.tenant}/{t.coupon}", _patch_authorized(t.ref)),
        ALL_REFS,
        404,
        "group_path_no_match",
    ),
    "batch-create-entity": (
        lambda t: Call(
            "POST",
            f"/coupons/{t.tenant}/batch",
            _batch({"operation": "create", "object": _entity(t.ref)}),
        ),
        ALL_REFS,
        200,
        "group_path_no_match",
    ),
    "batch-update-authorized": (
        lambda t: Call(
            "POST",
            f"/coupons/{t.tenant}/batch",
            _batch(
                {
                    "operation": "update",
                    "id": t.coupon,
                    "object": percent_coupon(authorized_group_id=t.ref),
                }
            ),
        ),
        ALL_REFS,
        200,
        "group_path_no_match",
    ),
    "batch-patch-entity": (
        lambda t: Call(
            "POST",
            f"/coupons/{t.tenant}/batch",
            _batch(
                {"operation": "patch", "id": t.coupon, "patch_directives": _patch_entity(t.ref)}
            ),
        ),
        ALL_REFS,
        200,
        "group_path_no_match",
    ),
    "group-create-parent": (
        lambda t: Call("POST", f"/groups/{t.tenant}", {"name": "A child", "parent_id": t.ref}),
        ("id",),
        422,
        "validation_failed",
    ),
    "group-put-parent": (
        lambda t: Call(
            "PUT", f"/groups/{t.tenant}/{t.group}", {"name": "A moved", "parent_id": t.ref}
        ),
        ("id",),
        422,
        "validation_failed",
    ),
    "group-resolve": (
        lambda t: Call("GET", f"/groups/{t.tenant}/resolve?path={quote(t.ref, safe='')}"),
        ("name-path", "code-path", "nested-path"),
        404,
        "group_path_no_match",
    ),
}
REFERENCE_CASES = [
    pytest.param(name, kind, id=f"{name}[{kind}]")
    for name, (_, kinds, _, _) in REFERENCES.items()
    for kind in kinds
]


# --- the two tenants --------------------------------------------------------------------------


def _tag() -> str:
    return secrets.token_hex(5)


def _random_id() -> str:
    raw = secrets.token_hex(8)
    return "-".join(raw[i : i + 4] for i in range(0, 16, 4))


def _created(response: Any, status: int = 201) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    return body


@dataclass
class World:
    a: TenantKeys
    b: TenantKeys
    a_api: Api
    b_api: Api
    a_coupon: dict[str, Any]
    a_group: dict[str, Any]
    b_coupons: list[dict[str, Any]]
    b_root: dict[str, Any]
    b_child: dict[str, Any]
    b_user: str

    def b_refs(self) -> dict[str, str]:
        """Ways of naming B's groups that only B's groups match."""
        return {
            "id": self.b_root["id"],
            "name-path": _name_path(self.b_root["name"]),
            "code-path": _code_path(self.b_child["code"]),
            "nested-path": _name_path(self.b_root["name"]) + "/*",
        }

    @staticmethod
    def nowhere_refs() -> dict[str, str]:
        """The same shapes, naming nothing in any tenant."""
        tag = _tag()
        return {
            "id": _random_id(),
            "name-path": _name_path(f"Nowhere-{tag}"),
            "code-path": _code_path(f"NOWHERE-{tag}"),
            "nested-path": _name_path(f"Nowhere-{tag}") + "/*",
        }

    def b_target(self, tenant: str) -> Target:
        """B's coupon, group, member and a path only B's groups match, on `tenant`'s path."""
        return Target(
            tenant=tenant,
            coupon=self.b_coupons[0]["id"],
            group=self.b_root["id"],
            user=self.b_user,
            ref=_name_path(self.b_root["name"]),
        )

    def nowhere_target(self, tenant: str) -> Target:
        return Target(
            tenant=tenant,
            coupon=_random_id(),
            group=_random_id(),
            user=f"nobody-{_tag()}",
            ref=_name_path(f"Nowhere-{_tag()}"),
        )

    def b_strings(self) -> list[str]:
        """Every distinctive string of B's: ids, codes, names, free text, key ids."""
        found = [self.b.tenant_id, self.b_user]
        found += [key.split(".", 1)[0] for key in (self.b.admin, self.b.checkout, self.b.read)]
        found += [key.split(".", 1)[1] for key in (self.b.admin, self.b.checkout, self.b.read)]
        for coupon in self.b_coupons:
            found += [coupon["id"], coupon["code"], coupon["name"]]
            found += [coupon[k] for k in ("comment", "sys_external_id") if coupon.get(k)]
        for group in (self.b_root, self.b_child):
            found += [group["id"], group["name"], group["code"]]
        return found

    def b_state(self) -> dict[str, Any]:
        return tenant_state(self.b_api, self.b.tenant_id)

    def a_state(self) -> dict[str, Any]:
        return tenant_state(self.a_api, self.a.tenant_id)


def tenant_state(api: Api, tenant_id: str) -> dict[str, Any]:
    """Everything a tenant's admin can read: coupons, groups, memberships."""
    coupons = api.get(f"/coupons/{tenant_id}", params={"limit": "1000"})
    assert coupons.status_code == 200, coupons.text
    groups = api.get(f"/groups/{tenant_id}", params={"limit": "1000"})
    assert groups.status_code == 200, groups.text
    members = {}
    for group in groups.json():
        reply = api.get(f"/groups/{tenant_id}/{group['id']}/members")
        assert reply.status_code == 200, reply.text
        members[group["id"]] = reply.json()
    return {"coupons": coupons.json(), "groups": groups.json(), "members": members}


@pytest.fixture
def world(client: TestClient, tenant: TenantKeys, other_tenant: TenantKeys) -> World:
    a_api, b_api = Api(client, tenant.admin), Api(client, other_tenant.admin)
    a, b = tenant.tenant_id, other_tenant.tenant_id
    tag = _tag()

    b_root = _created(
        b_api.post(f"/groups/{b}", json={"name": f"Broot-{tag}", "code": f"BG-{tag}"})
    )
    b_child = _created(
        b_api.post(
            f"/groups/{b}",
            json={"name": f"Bchild-{tag}", "code": f"BGC-{tag}", "parent_id": b_root["id"]},
        )
    )
    b_user = f"buser-{tag}"
    _created(b_api.put(f"/groups/{b}/{b_root['id']}/members/{b_user}", json={"role": "admin"}))
    b_coupons = [
        _created(
            b_api.post(
                f"/coupons/{b}",
                json=percent_coupon(
                    code=f"BCODE-{tag}",
                    name=f"Bname-{tag}",
                    comment=f"Bcomment-{tag}",
                    sys_external_id=f"Bext-{tag}",
                    entity_type="GROUP",
                    entity_id=b_child["id"],
                    authorized_group_id=b_root["id"],
                ),
            )
        ),
        _created(
            b_api.post(
                f"/coupons/{b}",
                json=percent_coupon(code=f"BCODE2-{tag}", name=f"Bname2-{tag}", value_percent=20),
            )
        ),
    ]
    a_group = _created(a_api.post(f"/groups/{a}", json={"name": f"Aroot-{tag}"}))
    a_coupon = _created(a_api.post(f"/coupons/{a}", json=percent_coupon(code=f"ACODE-{tag}")))
    return World(
        tenant, other_tenant, a_api, b_api, a_coupon, a_group, b_coupons, b_root, b_child, b_user
    )


# --- assertions -------------------------------------------------------------------------------


def assert_no_leak(response: Any, call: Call, world: World) -> None:
    """No string of B's appears in the reply unless A itself sent it in this request."""
    reply = response.text + "\n" + "\n".join(f"{k}: {v}" for k, v in response.headers.items())
    reply, sent = reply.lower(), call.sent.lower()
    leaked = [s for s in world.b_strings() if s.lower() in reply and s.lower() not in sent]
    assert not leaked, f"B's data {leaked} in reply to {call.method} {call.url}: {response.text}"


def assert_error(response: Any, status: int, code: str | tuple[str, ...]) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}, body
    error: dict[str, Any] = body["error"]
    assert error["code"] in ((code,) if isinstance(code, str) else code), body
    assert isinstance(error["message"], str) and error["message"]
    assert isinstance(error["details"], list)
    return error


def normalised(response: Any, tokens: list[str]) -> Any:
    """The reply's JSON with the strings the caller sent replaced by placeholders."""
    text = response.text
    for index, token in sorted(enumerate(tokens), key=lambda it: -len(it[1])):
        if token:
            text = text.replace(token, f"<sent-{index}>")
    return json.loads(text)


def assert_like_nowhere(
    response: Any, target: Target, control: Any, control_target: Target
) -> None:
    """B's thing gives exactly the reply that a thing existing nowhere gives."""
    assert response.status_code == control.status_code, (response.text, control.text)
    assert normalised(response, target.tokens()) == normalised(control, control_target.tokens())


def assert_batch_refused(response: Any, call: Call, code: str) -> None:
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["success_count"] == 0 and body["error_count"] == 1, body
    (result,) = body["results"]
    assert result["outcome"] == "error", body
    assert result["object"] is None, body
    assert result["error_message"], body
    assert result["id"] == call.body["operations"][0].get("id"), body
    if "error_code" in result:  # beyond SPEC 4.1; checked when present
        assert result["error_code"] == code, body


# --- A's key on B's path ----------------------------------------------------------------------


@pytest.mark.parametrize("role", ["admin", "checkout", "read"])
@pytest.mark.parametrize("endpoint", list(ENDPOINTS))
def test_key_on_another_tenants_path_is_forbidden(world: World, endpoint: str, role: str) -> None:
    api = world.a_api.as_key(getattr(world.a, role))
    call = ENDPOINTS[endpoint](world.b_target(world.b.tenant_id))
    before = world.b_state()

    response = call.send(api)

    # A role that may not do this anyway may say so instead; the tenant still never answers.
    may_do_it = role == "admin" or (not call.writes)
    codes = "wrong_tenant" if may_do_it else ("wrong_tenant", "insufficient_role")
    assert_error(response, 403, codes)
    assert_no_leak(response, call, world)
    assert world.b_state() == before

    # No oracle for whether a tenant exists: a tenant that does not exist looks the same.
    absent = f"zz-{_tag()}"
    control = ENDPOINTS[endpoint](world.b_target(absent)).send(api)
    assert control.status_code == response.status_code, control.text
    assert control.json()["error"]["code"] == response.json()["error"]["code"]


@pytest.mark.parametrize("endpoint", list(ENDPOINTS))
def test_another_tenants_key_is_forbidden_even_with_own_ids(world: World, endpoint: str) -> None:
    """B's path naming B's ids with A's key is covered above; here A names A's own ids."""
    target = Target(
        tenant=world.b.tenant_id,
        coupon=world.a_coupon["id"],
        group=world.a_group["id"],
        user=f"auser-{_tag()}",
        ref=_name_path(world.a_group["name"]),
    )
    before_a, before_b = world.a_state(), world.b_state()
    call = ENDPOINTS[endpoint](target)
    response = call.send(world.a_api)
    assert_error(response, 403, "wrong_tenant")
    assert_no_leak(response, call, world)
    assert world.b_state() == before_b
    assert world.a_state() == before_a


# --- A's key on A's path naming B's things ----------------------------------------------------


@pytest.mark.parametrize("endpoint", list(NAMING_ENDPOINTS))
def test_own_path_naming_other_tenants_ids_is_not_found(world: World, endpoint: str) -> None:
    status, code = NAMING_ENDPOINTS[endpoint]
    target = world.b_target(world.a.tenant_id)
    call = ENDPOINTS[endpoint](target)
    before_a, before_b = world.a_state(), world.b_state()

    response = call.send(world.a_api)

    if status == 200:
        assert_batch_refused(response, call, code)
    else:
        assert_error(response, status, code)
    assert_no_leak(response, call, world)
    assert world.b_state() == before_b
    assert world.a_state() == before_a

    control_target = world.nowhere_target(world.a.tenant_id)
    control = ENDPOINTS[endpoint](control_target).send(world.a_api)
    assert_like_nowhere(response, target, control, control_target)


def test_member_of_other_tenant_is_not_a_member_of_own_group(world: World) -> None:
    a = world.a.tenant_id
    before_b = world.b_state()
    call = Call("DELETE", f"/groups/{a}/{world.a_group['id']}/members/{world.b_user}")
    response = call.send(world.a_api)
    assert_error(response, 404, "member_not_found")
    assert_no_leak(response, call, world)
    listed = world.a_api.get(f"/groups/{a}/{world.a_group['id']}/members")
    assert listed.status_code == 200 and listed.json() == []
    assert world.b_state() == before_b


@pytest.mark.parametrize(("name", "kind"), REFERENCE_CASES)
def test_body_naming_other_tenants_group_is_not_found(world: World, name: str, kind: str) -> None:
    build, _, status, code = REFERENCES[name]
    a = world.a.tenant_id

    def target(ref: str) -> Target:
        return Target(a, world.a_coupon["id"], world.a_group["id"], "", ref)

    b_target = target(world.b_refs()[kind])
    call = build(b_target)
    before_a, before_b = world.a_state(), world.b_state()

    response = call.send(world.a_api)

    if status == 200:
        assert_batch_refused(response, call, code)
    else:
        assert_error(response, status, code)
    assert_no_leak(response, call, world)
    assert world.b_state() == before_b
    assert world.a_state() == before_a

    control_target = target(world.nowhere_refs()[kind])
    control = build(control_target).send(world.a_api)
    assert_like_nowhere(response, b_target, control, control_target)


def test_group_paths_resolve_among_own_groups_only(world: World) -> None:
    """B's groups neither match nor count: `*` is A's one root, `*/*` is nothing (SPEC 5)."""
    a = world.a.tenant_id
    api = world.a_api
    resolve = "/groups/{}/resolve"

    only_root = api.get(resolve.format(a), params={"path": "*"})
    assert only_root.status_code == 200, only_root.text
    assert only_root.json()["id"] == world.a_group["id"]

    # B's root has a child; A's has none.
    call = Call("GET", f"/groups/{a}/resolve?path={quote('*/*', safe='')}")
    nested = call.send(api)
    assert_error(nested, 404, "group_path_no_match")
    assert_no_leak(nested, call, world)

    scoped = api.post(f"/coupons/{a}", json=_entity("*"))
    assert scoped.status_code == 201, scoped.text
    assert scoped.json()["entity_id"] == world.a_group["id"]

    # Two roots in A, one in B: ambiguous among A's two, not three.
    _created(api.post(f"/groups/{a}", json={"name": f"Aroot2-{_tag()}"}))
    call = Call("GET", f"/groups/{a}/resolve?path=*")
    ambiguous = call.send(api)
    error = assert_error(ambiguous, 409, "group_path_ambiguous")
    assert re.search(r"\b2\b", error["message"]), error
    assert not re.search(r"\b3\b", error["message"]), error
    assert_no_leak(ambiguous, call, world)


# --- scans and lists --------------------------------------------------------------------------


def _ids(response: Any) -> list[str]:
    assert response.status_code == 200, response.text
    assert isinstance(response.json(), list), response.text
    return [item["id"] for item in response.json()]


def _start_key(response: Any) -> str:
    key = response.headers.get("x-exclusive-start-key")
    assert key, f"expected a next page: {response.headers}"
    return str(key)


def test_coupon_scan_shows_own_coupons_only(world: World) -> None:
    a, b = world.a.tenant_id, world.b.tenant_id
    api = world.a_api
    own = {world.a_coupon["id"]}
    own.add(_created(api.post(f"/coupons/{a}", json=percent_coupon()))["id"])
    b_code = world.b_coupons[0]["code"]
    b_page = world.b_api.get(f"/coupons/{b}", params={"limit": "1"})
    b_key = _start_key(b_page)
    before_b = world.b_state()

    queries: list[dict[str, str]] = [
        {},
        {"limit": "1000"},
        {"code": b_code},
        {"code": b_code.lower()},
        {"code": b_code, "is_active": "true"},
        {"is_active": "true"},
        {"is_active": "false"},
        {"fields": "code,name"},
        {"exclusiveStartKey": b_key},
        {"exclusiveStartKey": b_key, "code": b_code},
        {"consistentRead": "true"},
    ]
    for params in queries:
        call = Call("GET", f"/coupons/{a}?{_query(params)}")
        response = call.send(api)
        assert set(_ids(response)) <= own, (params, response.text)
        assert_no_leak(response, call, world)
    assert set(_ids(api.get(f"/coupons/{a}"))) == own
    assert _ids(api.get(f"/coupons/{a}", params={"code": b_code})) == []

    # The same start key in the header.
    call = Call("GET", f"/coupons/{a}")
    response = api.get(f"/coupons/{a}", headers={"X-Exclusive-Start-Key": b_key})
    assert set(_ids(response)) <= own
    assert_no_leak(response, call, world)

    # Paging one by one walks A's coupons and nothing else.
    seen: list[str] = []
    params = {"limit": "1"}
    for _ in range(10):
        page = api.get(f"/coupons/{a}", params=params)
        seen += _ids(page)
        assert_no_leak(page, Call("GET", f"/coupons/{a}?{_query(params)}"), world)
        key = page.headers.get("x-exclusive-start-key")
        if not key:
            break
        params = {"limit": "1", "exclusiveStartKey": key}
    assert sorted(seen) == sorted(own)
    assert world.b_state() == before_b


def test_group_list_shows_own_groups_only(world: World) -> None:
    a, b = world.a.tenant_id, world.b.tenant_id
    api = world.a_api
    a_child = _created(
        api.post(f"/groups/{a}", json={"name": "A child", "parent_id": world.a_group["id"]})
    )
    own = {world.a_group["id"], a_child["id"]}
    b_key = _start_key(world.b_api.get(f"/groups/{b}", params={"limit": "1"}))
    before_b = world.b_state()

    queries: list[dict[str, str]] = [
        {},
        {"limit": "1000"},
        {"exclusiveStartKey": b_key},
        {"parent_id": world.b_root["id"]},
        {"parent_id": world.b_root["id"], "exclusiveStartKey": b_key},
        {"parent_id": world.a_group["id"]},
    ]
    for params in queries:
        call = Call("GET", f"/groups/{a}?{_query(params)}")
        response = call.send(api)
        assert set(_ids(response)) <= own, (params, response.text)
        assert_no_leak(response, call, world)
    assert set(_ids(api.get(f"/groups/{a}"))) == own
    assert _ids(api.get(f"/groups/{a}", params={"parent_id": world.b_root["id"]})) == []
    assert _ids(api.get(f"/groups/{a}", params={"parent_id": world.a_group["id"]})) == [
        a_child["id"]
    ]

    seen: list[str] = []
    params = {"limit": "1"}
    for _ in range(10):
        page = api.get(f"/groups/{a}", params=params)
        seen += _ids(page)
        assert_no_leak(page, Call("GET", f"/groups/{a}?{_query(params)}"), world)
        key = page.headers.get("x-exclusive-start-key")
        if not key:
            break
        params = {"limit": "1", "exclusiveStartKey": key}
    assert sorted(seen) == sorted(own)
    assert world.b_state() == before_b


def _query(params: dict[str, str]) -> str:
    return "&".join(f"{k}={quote(v, safe='')}" for k, v in params.items())


# --- codes are unique per tenant --------------------------------------------------------------


def test_coupon_codes_are_unique_per_tenant(world: World) -> None:
    a, b = world.a.tenant_id, world.b.tenant_id
    a_same = _created(world.a_api.post(f"/coupons/{a}", json=percent_coupon(code="SAME")))
    b_same = _created(world.b_api.post(f"/coupons/{b}", json=percent_coupon(code="SAME")))
    assert a_same["id"] != b_same["id"]

    assert _ids(world.a_api.get(f"/coupons/{a}", params={"code": "same"})) == [a_same["id"]]
    assert _ids(world.b_api.get(f"/coupons/{b}", params={"code": "SAME"})) == [b_same["id"]]

    # Still unique within one tenant, case-insensitively.
    assert_error(
        world.a_api.post(f"/coupons/{a}", json=percent_coupon(code="same")), 409, "code_taken"
    )

    # A may take B's code too, at creation and by changing one of A's own coupons.
    b_code = world.b_coupons[0]["code"]
    before_b = world.b_state()
    call = Call("POST", f"/coupons/{a}", percent_coupon(code=b_code))
    taken = call.send(world.a_api)
    assert taken.status_code == 201, taken.text
    assert_no_leak(taken, call, world)
    call = Call(
        "PUT",
        f"/coupons/{a}/{world.a_coupon['id']}",
        percent_coupon(code=world.b_coupons[1]["code"]),
    )
    changed = call.send(world.a_api)
    assert changed.status_code == 200, changed.text
    assert_no_leak(changed, call, world)
    assert world.b_state() == before_b


def test_group_codes_are_unique_per_tenant(world: World) -> None:
    a, b = world.a.tenant_id, world.b.tenant_id
    before_b = world.b_state()
    call = Call("POST", f"/groups/{a}", {"name": "A same", "code": world.b_root["code"]})
    response = call.send(world.a_api)
    assert response.status_code == 201, response.text
    assert_no_leak(response, call, world)
    assert world.b_state() == before_b

    _created(world.a_api.post(f"/groups/{a}", json={"name": "A", "code": "GSAME"}))
    _created(world.b_api.post(f"/groups/{b}", json={"name": "B", "code": "GSAME"}))
    duplicate = world.a_api.post(f"/groups/{a}", json={"name": "A2", "code": "gsame"})
    assert duplicate.status_code == 409, duplicate.text
