"""The coupon endpoints of the REST dialect, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from tests.conftest import Api, TenantKeys, percent_coupon


def create(api: Api, tenant: TenantKeys, **body: Any) -> dict[str, Any]:
    reply = api.post(f"/coupons/{tenant.tenant_id}", json=percent_coupon(**body))
    assert reply.status_code == 201, reply.text
    return reply.json()  # type: ignore[no-any-return]


def test_create_returns_the_full_coupon_with_defaults(api: Api, tenant: TenantKeys) -> None:
    coupon = create(api, tenant, code="Spring-25")
    assert len(coupon["id"]) == 19 and coupon["id"].count("-") == 3
    assert coupon["code"] == "Spring-25"
    assert coupon["name"] == "Spring-25"  # defaults to the code
    assert coupon["entity_type"] == "SITE" and coupon["entity_id"] == tenant.tenant_id
    assert coupon["discount_method"] == "inline discount"
    assert coupon["applies_to"] == "all members"
    assert coupon["sys_version"] == 1 and coupon["times_used"] == 0
    assert coupon["sys_created_by_id"] == tenant.admin.split(".")[0]
    assert coupon["sys_bulk_load_pk"] is None
    assert coupon["sys_created_at"].endswith("Z")


def test_generated_code_is_readable(api: Api, tenant: TenantKeys) -> None:
    codes = {create(api, tenant)["code"] for _ in range(5)}
    assert len(codes) == 5
    for code in codes:
        assert len(code) == 10 and code.isupper()
        assert not set(code) & set("01OI")


def test_money_is_exact_and_site_urls_normalise(api: Api, tenant: TenantKeys) -> None:
    coupon = create(
        api,
        tenant,
        coupon_type="TOTAL_AMOUNT",
        value_percent=None,
        value_amount="120.0050",
        entity_id=f"https://{tenant.tenant_id}.example.org/shop",
    )
    assert coupon["value_amount"] == 120.005
    assert coupon["remaining_amount"] == 120.005
    assert coupon["entity_id"] == tenant.tenant_id


def test_get_with_fields_and_etag(api: Api, tenant: TenantKeys) -> None:
    coupon = create(api, tenant, comment="hello")
    reply = api.get(f"/coupons/{tenant.tenant_id}/{coupon['id']}?fields=code,comment")
    assert reply.status_code == 200
    assert reply.json() == {"id": coupon["id"], "code": coupon["code"], "comment": "hello"}
    assert reply.headers["etag"] == '"1"'
    full = api.get(f"/coupons/{tenant.tenant_id}/{coupon['id']}?consistentRead=true").json()
    assert full == coupon


def test_code_lookups_ignore_case_and_uniqueness_too(api: Api, tenant: TenantKeys) -> None:
    create(api, tenant, code="MixedCase")
    clash = api.post(f"/coupons/{tenant.tenant_id}", json=percent_coupon(code="mixedcase"))
    assert clash.status_code == 409 and clash.json()["error"]["code"] == "code_taken"
    found = api.get(f"/coupons/{tenant.tenant_id}?code=MIXEDCASE").json()
    assert [c["code"] for c in found] == ["MixedCase"]


def test_scan_filters_and_pages(api: Api, tenant: TenantKeys) -> None:
    made = [create(api, tenant, is_active=i % 2 == 0)["id"] for i in range(5)]
    page1 = api.get(f"/coupons/{tenant.tenant_id}?limit=2")
    assert [c["id"] for c in page1.json()] == made[:2]
    key = page1.headers["x-exclusive-start-key"]
    assert 'rel="next"' in page1.headers["link"]
    page2 = api.get(f"/coupons/{tenant.tenant_id}?limit=2&exclusiveStartKey={key}")
    assert [c["id"] for c in page2.json()] == made[2:4]
    via_header = api.get(
        f"/coupons/{tenant.tenant_id}?limit=2", headers={"X-Exclusive-Start-Key": key}
    )
    assert via_header.json() == page2.json()
    last = api.get(
        f"/coupons/{tenant.tenant_id}?limit=2&exclusiveStartKey="
        + page2.headers["x-exclusive-start-key"]
    )
    assert [c["id"] for c in last.json()] == made[4:]
    assert "x-exclusive-start-key" not in last.headers
    active = api.get(f"/coupons/{tenant.tenant_id}?is_active=true&fields=is_active").json()
    assert [c["id"] for c in active] == made[0::2]
    assert all(set(c) == {"id", "is_active"} for c in active)


def test_put_replaces_writable_fields_and_keeps_code(api: Api, tenant: TenantKeys) -> None:
    coupon = create(api, tenant, comment="before", usage_limit=5, code="KEEPME")
    body = {"coupon_type": "AMOUNT", "value_amount": 7.5}
    reply = api.put(f"/coupons/{tenant.tenant_id}/{coupon['id']}", json=body)
    assert reply.status_code == 200, reply.text
    updated = reply.json()
    assert updated["code"] == "KEEPME"  # a PUT without code keeps it
    assert updated["comment"] is None and updated["usage_limit"] is None  # back to defaults
    assert updated["value_amount"] == 7.5 and updated["value_percent"] is None
    assert updated["sys_version"] == 2 and reply.headers["etag"] == '"2"'


def test_put_of_a_get_body_round_trips(api: Api, tenant: TenantKeys) -> None:
    coupon = create(api, tenant)
    coupon["comment"] = "edited"
    reply = api.put(f"/coupons/{tenant.tenant_id}/{coupon['id']}", json=coupon)
    assert reply.status_code == 200, reply.text
    assert reply.json()["comment"] == "edited" and reply.json()["sys_version"] == 2


def test_preconditions(api: Api, tenant: TenantKeys) -> None:
    coupon = create(api, tenant)
    url = f"/coupons/{tenant.tenant_id}/{coupon['id']}"
    stale = api.put(url, json=percent_coupon(comment="x"), headers={"If-Match": '"9"'})
    assert stale.status_code == 409 and stale.json()["error"]["code"] == "version_conflict"
    ok = api.put(url, json=percent_coupon(comment="x"), headers={"If-Match": '"1"'})
    assert ok.status_code == 200 and ok.json()["sys_version"] == 2
    body_stale = api.put(url, json=percent_coupon(comment="y", sys_version=1))
    assert body_stale.status_code == 409
    both = api.put(
        url, json=percent_coupon(comment="y", sys_version=2), headers={"If-Match": '"1"'}
    )
    assert both.status_code == 409
    patch_stale = api.patch(
        url, json=[{"op": "replace", "path": "/comment", "value": "z"}], headers={"If-Match": '"1"'}
    )
    assert patch_stale.status_code == 409
    assert api.get(url).json()["comment"] == "x"


def test_patch_applies_atomically(api: Api, tenant: TenantKeys) -> None:
    coupon = create(api, tenant, comment="a")
    url = f"/coupons/{tenant.tenant_id}/{coupon['id']}"
    reply = api.patch(
        url,
        json=[
            {"op": "test", "path": "/comment", "value": "a"},
            {"op": "replace", "path": "/comment", "value": "b"},
            {"op": "add", "path": "/usage_limit", "value": 3},
        ],
        headers={"Content-Type": "application/json-patch+json"},
    )
    assert reply.status_code == 200, reply.text
    assert reply.json()["comment"] == "b" and reply.json()["usage_limit"] == 3
    failed = api.patch(
        url,
        json=[
            {"op": "replace", "path": "/comment", "value": "c"},
            {"op": "test", "path": "/comment", "value": "nope"},
        ],
    )
    assert failed.status_code == 409 and failed.json()["error"]["code"] == "patch_test_failed"
    invalid_result = api.patch(
        url, json=[{"op": "replace", "path": "/value_percent", "value": 500}]
    )
    assert invalid_result.status_code == 422
    after = api.get(url).json()
    assert after["comment"] == "b" and after["sys_version"] == 2 and after["value_percent"] == 10


def test_stacking_and_priority_round_trip(api: Api, tenant: TenantKeys) -> None:
    plain = create(api, tenant)
    assert plain["stacking"] == "exclusive" and plain["priority"] == 0  # SPEC 11.2 defaults
    coupon = create(api, tenant, stacking="combinable", priority=-3)
    url = f"/coupons/{tenant.tenant_id}/{coupon['id']}"
    assert api.get(url).json()["stacking"] == "combinable"
    reply = api.patch(url, json=[{"op": "replace", "path": "/priority", "value": 1000}])
    assert reply.status_code == 200, reply.text
    assert reply.json()["priority"] == 1000 and reply.json()["stacking"] == "combinable"
    refused = api.patch(url, json=[{"op": "replace", "path": "/priority", "value": 1001}])
    assert refused.status_code == 422
    assert [d["field"] for d in refused.json()["error"]["details"]] == ["priority"]
    assert "between -1000 and 1000" in refused.json()["error"]["details"][0]["message"]
    assert api.get(url).json()["priority"] == 1000


def test_patch_may_read_but_not_write_read_only_fields(api: Api, tenant: TenantKeys) -> None:
    coupon = create(api, tenant)
    url = f"/coupons/{tenant.tenant_id}/{coupon['id']}"
    for path in ("/id", "/times_used", "/remaining_amount", "/sys_version", "/sys_created_at"):
        reply = api.patch(url, json=[{"op": "replace", "path": path, "value": coupon[path[1:]]}])
        assert reply.status_code == 422, path
        assert reply.json()["error"]["code"] == "invalid_patch"
    moved = api.patch(url, json=[{"op": "move", "from": "/times_used", "path": "/comment"}])
    assert moved.status_code == 422
    copied = api.patch(
        url,
        json=[
            {"op": "test", "path": "/times_used", "value": 0},
            {"op": "copy", "from": "/code", "path": "/comment"},
        ],
    )
    assert copied.status_code == 200 and copied.json()["comment"] == coupon["code"]


def test_locked_coupon_refuses_changes_but_unlocks(api: Api, tenant: TenantKeys) -> None:
    coupon = create(api, tenant, sys_locked=True)
    url = f"/coupons/{tenant.tenant_id}/{coupon['id']}"
    change = api.patch(url, json=[{"op": "replace", "path": "/comment", "value": "x"}])
    assert change.status_code == 409 and change.json()["error"]["code"] == "coupon_locked"
    assert api.delete(url).status_code == 409
    both = api.patch(
        url,
        json=[
            {"op": "replace", "path": "/sys_locked", "value": False},
            {"op": "replace", "path": "/comment", "value": "x"},
        ],
    )
    assert both.status_code == 409
    unlock = api.patch(url, json=[{"op": "replace", "path": "/sys_locked", "value": False}])
    assert unlock.status_code == 200 and unlock.json()["sys_locked"] is False
    assert (
        api.patch(url, json=[{"op": "replace", "path": "/comment", "value": "x"}]).status_code
        == 200
    )


def test_delete_is_soft_and_frees_the_code(api: Api, tenant: TenantKeys) -> None:
    coupon = create(api, tenant, code="REUSE-ME")
    url = f"/coupons/{tenant.tenant_id}/{coupon['id']}"
    reply = api.delete(url)
    assert reply.status_code == 200 and reply.json() == coupon["id"]
    for call in (api.get, api.delete):
        assert call(url).status_code == 404
    assert api.put(url, json=percent_coupon()).status_code == 404
    assert api.patch(url, json=[]).status_code == 404
    assert api.get(f"/coupons/{tenant.tenant_id}?code=REUSE-ME").json() == []
    again = create(api, tenant, code="reuse-me")
    assert again["id"] != coupon["id"]


def test_no_op_put_keeps_the_version(api: Api, tenant: TenantKeys) -> None:
    coupon = create(api, tenant)
    reply = api.put(f"/coupons/{tenant.tenant_id}/{coupon['id']}", json=coupon)
    assert reply.status_code == 200 and reply.json()["sys_version"] == 1


def test_batch_runs_each_operation_on_its_own(api: Api, tenant: TenantKeys) -> None:
    first = create(api, tenant, code="BATCH-1")
    operations = [
        {"operation": "create", "object": percent_coupon(code="BATCH-2")},
        {"operation": "create", "object": percent_coupon(code="batch-1")},  # duplicate
        {"operation": "update", "id": first["id"], "object": percent_coupon(comment="u")},
        {
            "operation": "patch",
            "id": first["id"],
            "patch_directives": [{"op": "add", "path": "/usage_limit", "value": 4}],
        },
        {"operation": "delete", "id": "0000-0000-0000-0000"},
        {"operation": "explode"},
    ]
    reply = api.post(f"/coupons/{tenant.tenant_id}/batch", json={"operations": operations})
    assert reply.status_code == 200, reply.text
    body = reply.json()
    outcomes = [r["outcome"] for r in body["results"]]
    assert outcomes == ["success", "error", "success", "success", "error", "error"]
    assert body["success_count"] == 3 and body["error_count"] == 3
    assert body["results"][1]["error_code"] == "code_taken"
    assert body["results"][4]["error_code"] == "coupon_not_found"
    assert body["results"][0]["object"]["code"] == "BATCH-2"
    after = api.get(f"/coupons/{tenant.tenant_id}/{first['id']}").json()
    assert after["comment"] == "u" and after["usage_limit"] == 4 and after["sys_version"] == 3


def test_batch_of_100_creates(api: Api, tenant: TenantKeys) -> None:
    operations = [{"operation": "create", "object": percent_coupon()} for _ in range(100)]
    reply = api.post(f"/coupons/{tenant.tenant_id}/batch", json={"operations": operations})
    assert reply.status_code == 200 and reply.json()["success_count"] == 100
    assert len(api.get(f"/coupons/{tenant.tenant_id}?limit=1000").json()) == 100


def test_usage_limit_cannot_go_below_times_used(api: Api, tenant: TenantKeys, db: Any) -> None:
    from sqlalchemy import update

    from couponry.store.tables import coupons

    coupon = create(api, tenant, usage_limit=10)
    with db.transaction() as conn:  # stands in for redemptions until they exist
        conn.execute(update(coupons).where(coupons.c.id == coupon["id"]).values(times_used=4))
    url = f"/coupons/{tenant.tenant_id}/{coupon['id']}"
    low = api.patch(url, json=[{"op": "replace", "path": "/usage_limit", "value": 3}])
    assert low.status_code == 409 and low.json()["error"]["code"] == "usage_limit_below_used"
    ok = api.patch(url, json=[{"op": "replace", "path": "/usage_limit", "value": 4}])
    assert ok.status_code == 200 and ok.json()["times_used"] == 4


def test_total_amount_credit_follows_value_changes(api: Api, tenant: TenantKeys, db: Any) -> None:
    from sqlalchemy import update

    from couponry.store.tables import coupons

    coupon = create(api, tenant, coupon_type="TOTAL_AMOUNT", value_percent=None, value_amount=100)
    with db.transaction() as conn:  # 30 already drawn
        conn.execute(
            update(coupons)
            .where(coupons.c.id == coupon["id"])
            .values(remaining_units=700000, credit_drawn_units=300000)
        )
    url = f"/coupons/{tenant.tenant_id}/{coupon['id']}"
    raised = api.patch(url, json=[{"op": "replace", "path": "/value_amount", "value": 150}])
    assert raised.json()["remaining_amount"] == 120
    lowered = api.patch(url, json=[{"op": "replace", "path": "/value_amount", "value": 10}])
    assert lowered.json()["remaining_amount"] == 0


def test_rhythm_categories_round_trip(api: Api, tenant: TenantKeys) -> None:
    body = {
        "apply_to_chapter_dues": True,
        "chapter_dues_discount_info": {
            "method": "percentage",
            "amount": 15,
            "maximum_number_of_chapters": 2,
            "chapter_ids": ["ch-1"],
        },
        "discount_method": "discount line item",
        "discount_product_id": "prod-9",
        "maximum_discount": "50.25",
        "custom_field_values": [
            {"custom_field_id": "cf1", "numeric_value": 2.5, "list_value": ["a"]}
        ],
    }
    reply = api.post(f"/coupons/{tenant.tenant_id}", json=body)
    assert reply.status_code == 201, reply.text
    coupon = reply.json()
    assert coupon["coupon_type"] is None and coupon["entity_type"] is None
    assert coupon["chapter_dues_discount_info"] == {
        "method": "percentage",
        "amount": 15,
        "maximum_number_of_chapters": 2,
        "chapter_type_ids": [],
        "chapter_ids": ["ch-1"],
    }
    assert coupon["maximum_discount"] == 50.25
    assert coupon["custom_field_values"][0]["numeric_value"] == 2.5
    assert api.get(f"/coupons/{tenant.tenant_id}/{coupon['id']}").json() == coupon


def test_a_run_of_creates_refuses_only_its_bad_members(api: Api, tenant: TenantKeys) -> None:
    create(api, tenant, code="EXISTING")
    ops = [
        {"operation": "create", "object": percent_coupon(code="RUN-A")},
        {"operation": "create", "object": percent_coupon(code="run-a")},  # same run, same code
        {"operation": "create", "object": percent_coupon(code="existing")},  # already live
        {"operation": "create", "object": {"coupon_type": "PERCENT"}},  # no value_percent
        {"operation": "create", "object": percent_coupon()},  # generated code
        {"operation": "create", "object": percent_coupon(entity_type="GROUP", entity_id="{x")},
        {"operation": "create", "object": percent_coupon(code="RUN-B")},
    ]
    reply = api.post(f"/coupons/{tenant.tenant_id}/batch", json={"operations": ops})
    results = reply.json()["results"]
    assert [r["outcome"] for r in results] == [
        "success",
        "error",
        "error",
        "error",
        "success",
        "error",
        "success",
    ]
    assert [r["error_code"] for r in results] == [
        None,
        "code_taken",
        "code_taken",
        "validation_failed",
        None,
        "invalid_group_path",
        None,
    ]
    assert results[0]["object"]["code"] == "RUN-A" and results[6]["object"]["code"] == "RUN-B"
    assert all(r["id"] == r["object"]["id"] for r in results if r["outcome"] == "success")
    listed = api.get(f"/coupons/{tenant.tenant_id}?limit=1000&fields=code").json()
    assert sorted(c["code"].upper() for c in listed) == sorted(
        ["EXISTING", "RUN-A", "RUN-B", results[4]["object"]["code"]]
    )


def test_a_run_of_creates_falls_back_one_by_one_after_a_race(
    api: Api, tenant: TenantKeys, monkeypatch: Any
) -> None:
    """If another writer takes a code between the check and the insert, the run is retried
    one operation at a time, so only the operation that lost the race fails."""
    from couponry.store.coupon_repo import CouponRepository

    create(api, tenant, code="RACED")
    monkeypatch.setattr(CouponRepository, "codes_in_use", lambda self, codes: set())
    ops = [
        {"operation": "create", "object": percent_coupon(code="FIRST")},
        {"operation": "create", "object": percent_coupon(code="RACED")},
        {"operation": "create", "object": percent_coupon(code="LAST")},
    ]
    results = api.post(f"/coupons/{tenant.tenant_id}/batch", json={"operations": ops}).json()
    assert [r["outcome"] for r in results["results"]] == ["success", "error", "success"]
    assert results["results"][1]["error_code"] == "code_taken"
    assert results["success_count"] == 2
