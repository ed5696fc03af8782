"""The EduBrite dialect driven as its Java client drives it, and one store shared with REST."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import update

from couponry.store.tables import coupons
from tests.conftest import Api, TenantKeys
from tests.edubrite_client import AdminUser, EduBriteConnection, coupon_fields, messages, parse

ADMIN = AdminUser("admin", "admin@example.org", "Ada Admin")
SERVICE = "couponService.do"
START_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z
END_MS = 1_798_761_600_123  # 2027-01-01T00:00:00.123Z


def iso(ms: int) -> str:
    return (
        datetime.fromtimestamp(ms / 1000, UTC)
        .strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        .replace(".000000Z", "Z")
    )


def groups(api: Api, tenant: TenantKeys) -> dict[str, str]:
    def make(name: str, parent: str | None = None, code: str | None = None) -> str:
        body: dict[str, Any] = {"name": name, "parent_id": parent, "code": code}
        reply = api.post(f"/groups/{tenant.tenant_id}", json=body)
        assert reply.status_code == 201, reply.text
        return str(reply.json()["id"])

    training = make("Training", code="TRN")
    corporate = make("Corporate", training)
    sales = make("Sales", corporate, code="SALES")
    return {"training": training, "corporate": corporate, "sales": sales}


def create(edubrite: EduBriteConnection, **params: str) -> dict[str, Any]:
    body = edubrite.invoke_api(
        SERVICE, ADMIN, {"dispatch": "createCoupon", "xml": "true", **params}
    )
    assert edubrite.last_status == 200, body
    root = parse(body)
    assert root.get("code") == "0"
    assert messages(root) == [("0222", "Coupon Created Successfully")]
    element = root.find("coupon")
    assert element is not None
    return coupon_fields(element)


def test_seed_example_create_then_update(edubrite: EduBriteConnection, tenant: TenantKeys) -> None:
    """The documented createCoupon and updateCoupon calls, verbatim but for the site URL."""
    made = create(
        edubrite,
        couponName="partner1-free",
        type="USAGE",
        entityType="SITE",
        entityId=f"{tenant.tenant_id}.example.org",
        valueCount="999999",
        expDate="1495163497116",
    )
    assert made["couponName"] == "partner1-free"
    assert made["entityId"] == tenant.tenant_id
    assert made["valueCount"] == "999999" and made["usedCount"] == "0"
    assert made["expDate"] == "1495163497116" and made["startDate"] is None
    assert made["status"] == "ACTIVE" and made["requireApproval"] == "false"
    body = edubrite.invoke_api(
        SERVICE,
        ADMIN,
        {
            "dispatch": "updateCoupon",
            "xml": "true",
            "id": made["id"],
            "valueCount": "1234",
            "expDate": "1495163497116",
        },
    )
    assert edubrite.last_status == 200
    assert body.startswith(
        '<response code="0"><msgs><msg><code>0223</code><value><![CDATA[Coupon updated '
        f'successfully]]></value></msg></msgs><coupon id="{made["id"]}">'
    )
    assert coupon_fields(parse(body).find("coupon"))["valueCount"] == "1234"  # type: ignore[arg-type]


def test_every_parameter_and_its_rest_view(
    edubrite: EduBriteConnection, api: Api, tenant: TenantKeys
) -> None:
    g = groups(api, tenant)
    made = create(
        edubrite,
        couponName="Sales team 20%",
        authCode="Sales-20",
        type="PERCENT",
        entityType="GROUP",
        entityId='{name:"Training"}/{name: "Corporate"}/{code:"sales"}',
        valueCount="50",
        valuePercent="20",
        startDate=str(START_MS),
        expDate=str(END_MS),
        authorizedGroup=g["training"],
        setMembershipExpiration="TRUE",
        addUserToCouponsGroup="true",
        requireApproval="False",
        previewAccessOnly="tRuE",
        status="INACTIVE",
        comment="for the sales team",
    )
    assert made["entityId"] == g["sales"] and made["authorizedGroupId"] == g["training"]
    rest = api.get(f"/coupons/{tenant.tenant_id}/{made['id']}").json()
    assert rest["name"] == "Sales team 20%" and rest["code"] == "Sales-20"
    assert rest["coupon_type"] == "PERCENT" and rest["value_percent"] == 20
    assert rest["entity_type"] == "GROUP" and rest["entity_id"] == g["sales"]
    assert rest["usage_limit"] == 50
    assert rest["starts_at"] == iso(START_MS) and rest["expires_at"] == iso(END_MS)
    assert rest["authorized_group_id"] == g["training"]
    assert rest["set_membership_expiration"] is True and rest["add_user_to_coupons_group"] is True
    assert rest["require_approval"] is False and rest["preview_access_only"] is True
    assert rest["is_active"] is False and rest["comment"] == "for the sales team"
    assert rest["sys_created_by_id"] == "admin" and rest["sys_version"] == 1
    assert made["startDate"] == str(START_MS) and made["expDate"] == str(END_MS)


def test_update_changes_only_what_it_is_given(
    edubrite: EduBriteConnection, api: Api, tenant: TenantKeys
) -> None:
    made = create(
        edubrite,
        type="AMOUNT",
        valueAmount="12.50",
        valueCount="10",
        comment="keep me",
        startDate=str(START_MS),
        expDate=str(END_MS),
    )
    before = api.get(f"/coupons/{tenant.tenant_id}/{made['id']}").json()
    body = edubrite.invoke_api(
        SERVICE, ADMIN, {"dispatch": "updateCoupon", "id": made["id"], "valueAmount": "15"}
    )
    after = api.get(f"/coupons/{tenant.tenant_id}/{made['id']}").json()
    assert coupon_fields(parse(body).find("coupon"))["valueAmount"] == "15"  # type: ignore[arg-type]
    changed = {k for k in after if after[k] != before[k]}
    assert changed == {"value_amount", "sys_version", "sys_last_modified_at"}
    assert after["sys_version"] == before["sys_version"] + 1
    # empty values clear the optional fields
    edubrite.invoke_api(
        SERVICE,
        ADMIN,
        {
            "dispatch": "updateCoupon",
            "id": made["id"],
            "comment": "",
            "startDate": "",
            "expDate": "",
            "valueCount": "",
        },
    )
    cleared = api.get(f"/coupons/{tenant.tenant_id}/{made['id']}").json()
    assert cleared["comment"] is None and cleared["starts_at"] is None
    assert cleared["expires_at"] is None and cleared["usage_limit"] is None
    assert cleared["value_amount"] == 15 and cleared["sys_version"] == before["sys_version"] + 2
    assert cleared["sys_last_modified_by_id"] == "admin"


def test_rest_writes_are_seen_by_edubrite_and_back(
    edubrite: EduBriteConnection, api: Api, tenant: TenantKeys
) -> None:
    g = groups(api, tenant)
    rest = api.post(
        f"/coupons/{tenant.tenant_id}",
        json={
            "name": "Credit",
            "code": "CREDIT-100",
            "coupon_type": "TOTAL_AMOUNT",
            "value_amount": "100.00",
            "entity_type": "COURSE_SESSION",
            "entity_id": "cs-9",
            "usage_limit": 7,
            "starts_at": iso(START_MS),
            "expires_at": iso(END_MS),
            "authorized_group_id": g["corporate"],
            "require_approval": True,
            "is_active": True,
            "comment": "from REST",
        },
    ).json()
    body = edubrite.invoke_api(SERVICE, ADMIN, {"dispatch": "getCoupon", "authCode": "credit-100"})
    seen = coupon_fields(parse(body).find("coupon"))  # type: ignore[arg-type]
    assert seen == {
        "id": rest["id"],
        "couponName": "Credit",
        "authCode": "CREDIT-100",
        "type": "TOTAL_AMOUNT",
        "entityType": "COURSE_SESSION",
        "entityId": "cs-9",
        "valueCount": "7",
        "usedCount": "0",
        "valueAmount": "100",
        "remainingAmount": "100",
        "valuePercent": None,
        "startDate": str(START_MS),
        "expDate": str(END_MS),
        "authorizedGroupId": g["corporate"],
        "setMembershipExpiration": "false",
        "addUserToCouponsGroup": "false",
        "requireApproval": "true",
        "previewAccessOnly": "false",
        "status": "ACTIVE",
        "comment": "from REST",
    }
    # EduBrite changes, REST reads; then REST changes, EduBrite reads
    edubrite.invoke_api(
        SERVICE,
        ADMIN,
        {"dispatch": "updateCoupon", "id": rest["id"], "status": "inactive", "valueAmount": "150"},
    )
    now = api.get(f"/coupons/{tenant.tenant_id}/{rest['id']}").json()
    assert now["is_active"] is False and now["remaining_amount"] == 150
    assert now["sys_version"] == 2 and now["sys_last_modified_by_id"] == "admin"
    api.patch(
        f"/coupons/{tenant.tenant_id}/{rest['id']}",
        json=[{"op": "replace", "path": "/comment", "value": "patched"}],
    )
    body = edubrite.invoke_api(SERVICE, ADMIN, {"dispatch": "getCoupon", "id": rest["id"]})
    assert coupon_fields(parse(body).find("coupon"))["comment"] == "patched"  # type: ignore[arg-type]
    # delete in one dialect: gone in both
    api.delete(f"/coupons/{tenant.tenant_id}/{rest['id']}")
    edubrite.invoke_api(SERVICE, ADMIN, {"dispatch": "getCoupon", "id": rest["id"]})
    assert edubrite.last_status == 404


def test_delete_through_edubrite(
    edubrite: EduBriteConnection, api: Api, tenant: TenantKeys
) -> None:
    made = create(edubrite, type="USAGE", authCode="GONE-SOON")
    body = edubrite.invoke_api(SERVICE, ADMIN, {"dispatch": "deleteCoupon", "id": made["id"]})
    assert messages(parse(body)) == [("0224", "Coupon deleted successfully")]
    assert api.get(f"/coupons/{tenant.tenant_id}/{made['id']}").status_code == 404
    again = create(edubrite, type="USAGE", authCode="gone-soon")  # the code is free again
    assert again["id"] != made["id"]


def test_used_count_is_times_used(
    edubrite: EduBriteConnection, api: Api, tenant: TenantKeys, db: Any
) -> None:
    made = create(edubrite, type="USAGE", valueCount="5")
    with db.transaction() as conn:
        conn.execute(update(coupons).where(coupons.c.id == made["id"]).values(times_used=3))
    body = edubrite.invoke_api(SERVICE, ADMIN, {"dispatch": "getCoupon", "id": made["id"]})
    assert coupon_fields(parse(body).find("coupon"))["usedCount"] == "3"  # type: ignore[arg-type]
    refused = edubrite.invoke_api(
        SERVICE, ADMIN, {"dispatch": "updateCoupon", "id": made["id"], "valueCount": "2"}
    )
    assert edubrite.last_status == 409 and parse(refused).get("code") == "1006"


def test_list_pages_by_position(edubrite: EduBriteConnection, tenant: TenantKeys) -> None:
    ids = [
        create(edubrite, type="USAGE", status="ACTIVE" if i % 3 else "INACTIVE")["id"]
        for i in range(7)
    ]
    body = edubrite.invoke_api(
        SERVICE, ADMIN, {"dispatch": "listCoupons", "currPage": "1", "pageSize": "3"}
    )
    listing = parse(body).find("coupons")
    assert listing is not None
    assert dict(listing.attrib) == {
        "numItems": "7",
        "currPage": "1",
        "numPages": "3",
        "pageSize": "3",
    }
    assert [c.get("id") for c in listing.iterfind("coupon")] == ids[3:6]
    active = parse(
        edubrite.invoke_api(SERVICE, ADMIN, {"dispatch": "listCoupons", "status": "ACTIVE"})
    ).find("coupons")
    assert active is not None and active.get("numItems") == "4" and active.get("pageSize") == "20"
    assert [c.get("id") for c in active.iterfind("coupon")] == [
        i for n, i in enumerate(ids) if n % 3
    ]


def test_json_replies_are_typed(edubrite: EduBriteConnection) -> None:
    import json

    body = edubrite.invoke_api(
        SERVICE,
        ADMIN,
        {
            "dispatch": "createCoupon",
            "xml": "false",
            "type": "AMOUNT",
            "valueAmount": "9.99",
            "valueCount": "3",
            "expDate": str(END_MS),
        },
    )
    doc = json.loads(body)
    assert doc["code"] == 0
    assert doc["msgs"] == [{"code": "0222", "value": "Coupon Created Successfully"}]
    coupon = doc["coupon"]
    assert coupon["valueAmount"] == 9.99 and coupon["valueCount"] == 3
    assert coupon["expDate"] == END_MS and coupon["startDate"] is None
    assert coupon["requireApproval"] is False and coupon["status"] == "ACTIVE"
    listed = json.loads(
        edubrite.invoke_api(SERVICE, ADMIN, {"dispatch": "listCoupons", "xml": "false"})
    )
    assert listed["coupons"]["numItems"] == 1
    assert listed["coupons"]["coupon"][0]["id"] == coupon["id"]
