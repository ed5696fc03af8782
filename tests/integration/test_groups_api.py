"""Groups, members and group paths over REST, and group references on coupons."""

from __future__ import annotations

from typing import Any

from tests.conftest import Api, TenantKeys, percent_coupon


def group(api: Api, tenant: TenantKeys, name: str, **extra: Any) -> dict[str, Any]:
    reply = api.post(f"/groups/{tenant.tenant_id}", json={"name": name, **extra})
    assert reply.status_code == 201, reply.text
    return reply.json()  # type: ignore[no-any-return]


def tree(api: Api, tenant: TenantKeys) -> dict[str, dict[str, Any]]:
    """Training/{Corporate/{Sales, Support}, Public}, plus a second Corporate elsewhere."""
    training = group(api, tenant, "Training", code="TRN")
    corporate = group(api, tenant, "Corporate", parent_id=training["id"])
    sales = group(api, tenant, "Sales", parent_id=corporate["id"], code="SALES")
    support = group(api, tenant, "Support", parent_id=corporate["id"])
    public = group(api, tenant, "Public", parent_id=training["id"])
    other = group(api, tenant, "Other")
    corporate2 = group(api, tenant, "Corporate", parent_id=other["id"])
    return {
        "training": training,
        "corporate": corporate,
        "sales": sales,
        "support": support,
        "public": public,
        "other": other,
        "corporate2": corporate2,
    }


def test_group_crud(api: Api, tenant: TenantKeys) -> None:
    g = group(api, tenant, "Root", code="ROOT")
    assert set(g) == {
        "id",
        "parent_id",
        "name",
        "code",
        "sys_version",
        "sys_created_at",
        "sys_last_modified_at",
    }
    url = f"/groups/{tenant.tenant_id}/{g['id']}"
    assert api.get(url).json() == g
    put = api.put(url, json={"name": "Renamed", "code": "ROOT2"}, headers={"If-Match": '"1"'})
    assert put.status_code == 200 and put.json()["sys_version"] == 2
    stale = api.put(url, json={"name": "Again"}, headers={"If-Match": '"1"'})
    assert stale.status_code == 409
    dup = api.post(f"/groups/{tenant.tenant_id}", json={"name": "X", "code": "root2"})
    assert dup.status_code == 409
    assert api.delete(url).status_code == 200
    assert api.get(url).status_code == 404


def test_list_children_and_pages(api: Api, tenant: TenantKeys) -> None:
    t = tree(api, tenant)
    children = api.get(f"/groups/{tenant.tenant_id}?parent_id={t['corporate']['id']}").json()
    assert [c["name"] for c in children] == ["Sales", "Support"]
    page = api.get(f"/groups/{tenant.tenant_id}?limit=4")
    assert len(page.json()) == 4
    rest = api.get(
        f"/groups/{tenant.tenant_id}?limit=4&exclusiveStartKey={page.headers['x-exclusive-start-key']}"
    )
    assert len(rest.json()) == 3 and "x-exclusive-start-key" not in rest.headers


def test_resolve_paths(api: Api, tenant: TenantKeys) -> None:
    t = tree(api, tenant)
    base = f"/groups/{tenant.tenant_id}/resolve"
    found = api.get(base, params={"path": '{name:"Training"}/{name: "Corporate"}/{code:"sales"}'})
    assert found.status_code == 200 and found.json()["id"] == t["sales"]["id"]
    assert (
        api.get(base, params={"path": '{code:"TRN"}/{name:" public "}'}).json()["id"]
        == (t["public"]["id"])
    )
    ambiguous = api.get(base, params={"path": '{name:"Training"}/{name:"Corporate"}/*'})
    assert ambiguous.status_code == 409
    assert ambiguous.json()["error"]["code"] == "group_path_ambiguous"
    assert "2" in ambiguous.json()["error"]["message"]
    none = api.get(base, params={"path": '{name:"Training"}/{name:"Nope"}'})
    assert none.status_code == 404 and none.json()["error"]["code"] == "group_path_no_match"
    bad = api.get(base, params={"path": '{name "Training"}'})
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_group_path"
    assert "position" in bad.json()["error"]["message"]
    # same name under another parent does not leak in
    assert api.get(base, params={"path": '*/{name:"Corporate"}'}).status_code == 409


def test_coupon_group_references(api: Api, tenant: TenantKeys) -> None:
    t = tree(api, tenant)
    body = percent_coupon(
        entity_type="GROUP",
        entity_id='{name:"Training"}/{name:"Corporate"}/{name:"Sales"}',
        authorized_group_id=t["public"]["id"],
        require_approval=True,
    )
    reply = api.post(f"/coupons/{tenant.tenant_id}", json=body)
    assert reply.status_code == 201, reply.text
    coupon = reply.json()
    assert coupon["entity_id"] == t["sales"]["id"]
    assert coupon["authorized_group_id"] == t["public"]["id"]
    missing = api.post(
        f"/coupons/{tenant.tenant_id}",
        json=percent_coupon(entity_type="GROUP", entity_id="ffff-ffff-ffff-ffff"),
    )
    assert (
        missing.status_code == 404 and missing.json()["error"]["details"][0]["field"] == "entity_id"
    )
    ambiguous = api.post(
        f"/coupons/{tenant.tenant_id}",
        json=percent_coupon(authorized_group_id='*/{name:"Corporate"}'),
    )
    assert ambiguous.status_code == 409
    update = api.patch(
        f"/coupons/{tenant.tenant_id}/{coupon['id']}",
        json=[{"op": "replace", "path": "/authorized_group_id", "value": '{code:"TRN"}'}],
    )
    assert update.status_code == 200 and update.json()["authorized_group_id"] == t["training"]["id"]
    # a group used by an active coupon, or with children, cannot be deleted
    assert api.delete(f"/groups/{tenant.tenant_id}/{t['sales']['id']}").status_code == 409
    assert api.delete(f"/groups/{tenant.tenant_id}/{t['corporate']['id']}").status_code == 409
    api.patch(
        f"/coupons/{tenant.tenant_id}/{coupon['id']}",
        json=[{"op": "replace", "path": "/is_active", "value": False}],
    )
    assert api.delete(f"/groups/{tenant.tenant_id}/{t['sales']['id']}").status_code == 200


def test_group_parent_rules(api: Api, tenant: TenantKeys) -> None:
    t = tree(api, tenant)
    url = f"/groups/{tenant.tenant_id}/{t['training']['id']}"
    cycle = api.put(url, json={"name": "Training", "parent_id": t["sales"]["id"]})
    assert cycle.status_code == 409
    unknown = api.post(
        f"/groups/{tenant.tenant_id}", json={"name": "X", "parent_id": "ffff-ffff-ffff-ffff"}
    )
    assert unknown.status_code == 422


def test_members(api: Api, tenant: TenantKeys) -> None:
    g = group(api, tenant, "Members")
    base = f"/groups/{tenant.tenant_id}/{g['id']}/members"
    added = api.put(f"{base}/u-1", json={"role": "admin"})
    assert added.status_code == 201
    assert added.json() == {"user_id": "u-1", "role": "admin", "expires_at": None}
    changed = api.put(f"{base}/u-1", json={"role": "member", "expires_at": "2030-01-01T00:00:00Z"})
    assert changed.status_code == 200
    api.put(f"{base}/u-2", json={})
    listed = api.get(base).json()
    assert listed == [
        {"user_id": "u-1", "role": "member", "expires_at": "2030-01-01T00:00:00Z"},
        {"user_id": "u-2", "role": "member", "expires_at": None},
    ]
    assert api.delete(f"{base}/u-1").status_code == 200
    assert api.delete(f"{base}/u-1").status_code == 404
    assert [m["user_id"] for m in api.get(base).json()] == ["u-2"]
    bad_role = api.put(f"{base}/u-3", json={"role": "owner"})
    assert bad_role.status_code == 422
    assert (
        api.put(f"/groups/{tenant.tenant_id}/ffff-ffff-ffff-ffff/members/u", json={}).status_code
        == 404
    )
