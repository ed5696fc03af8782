"""Which requests the hot routes serve themselves (web/hot.py), and which go the general way.

The rest of the suite checks what every request answers; this checks that the common
redemption really takes the async path (asyncpg; SQLite's writer), so that suite covers it,
and that the others (a credit, an unknown code) still go through the synchronous service.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from couponry.web.rest import redemptions as rest_redemptions
from tests.conftest import Api, TenantKeys, percent_coupon


def cart(code: str) -> dict[str, Any]:
    line = {"line_id": "1", "kind": "event", "id": "ev", "unit_price": "50.00", "quantity": 1}
    return {"code": code, "user_id": "u-hot", "lines": [line]}


@pytest.fixture
def general_way(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Records each redemption that went through the synchronous service."""
    taken: list[str] = []
    original = rest_redemptions.redeem_in_thread

    async def recording(request: Any, tenant_id: str, raw: bytes, key: str | None) -> Any:
        taken.append(tenant_id)
        return await original(request, tenant_id, raw, key)

    monkeypatch.setattr(rest_redemptions, "redeem_in_thread", recording)
    return taken


def test_the_common_redemption_takes_the_hot_path(
    api: Api, tenant: TenantKeys, general_way: list[str]
) -> None:
    api.post(f"/coupons/{tenant.tenant_id}", json=percent_coupon(code="HOT-PATH"))
    reply = api.post(f"/redemptions/{tenant.tenant_id}", json=cart("HOT-PATH"))
    assert reply.status_code == 201, reply.text
    assert reply.json()["discount_total"] == "5.00"
    assert general_way == []


@pytest.mark.parametrize("kind", ["credit", "unknown code"])
def test_the_others_go_the_general_way(
    api: Api, tenant: TenantKeys, general_way: list[str], kind: str
) -> None:
    if kind == "credit":
        credit = {"coupon_type": "TOTAL_AMOUNT", "value_amount": "20.00", "code": "CREDIT-1"}
        api.post(f"/coupons/{tenant.tenant_id}", json=credit)
        expected = 201
    else:
        expected = 404
    code = "CREDIT-1" if kind == "credit" else "NO-SUCH-CODE"
    reply = api.post(f"/redemptions/{tenant.tenant_id}", json=cart(code))
    assert reply.status_code == expected, reply.text
    assert general_way == [tenant.tenant_id]


# --- the claims and the record in one statement (store/hot_redemptions.py) -----------------


def _coupon(api: Api, tenant: TenantKeys, code: str, **fields: object) -> dict[str, Any]:
    reply = api.post(f"/coupons/{tenant.tenant_id}", json=percent_coupon(code=code, **fields))
    assert reply.status_code == 201, reply.text
    return dict(reply.json())


def _state(api: Api, tenant: TenantKeys, coupon: dict[str, Any]) -> tuple[int, int]:
    """(the coupon's times_used, how many redemptions it has)."""
    used = api.get(f"/coupons/{tenant.tenant_id}/{coupon['id']}").json()["times_used"]
    listed = api.get(f"/redemptions/{tenant.tenant_id}", params={"coupon_id": coupon["id"]})
    return used, len(listed.json())


@pytest.mark.parametrize("with_key", [False, True])
def test_a_user_at_their_limit_is_refused_as_such_and_the_coupon_keeps_its_use(
    api: Api, tenant: TenantKeys, with_key: bool
) -> None:
    """The coupon's use is claimed before the user's: when the user's is refused, the
    coupon's comes back (transaction or savepoint), and the refusal is the user's limit
    even when the coupon's own claim took its last use."""
    coupon = _coupon(api, tenant, "USER-LIMIT", usage_limit=2, max_uses_per_user=1)
    first = api.post(f"/redemptions/{tenant.tenant_id}", json=cart("USER-LIMIT"))
    assert first.status_code == 201, first.text
    headers = {"Idempotency-Key": "again-1"} if with_key else {}
    again = api.post(f"/redemptions/{tenant.tenant_id}", json=cart("USER-LIMIT"), headers=headers)
    assert again.status_code == 409, again.text
    assert again.json()["error"]["code"] == "user_limit_reached"
    assert _state(api, tenant, coupon) == (1, 1)
    if with_key:  # the refusal is kept with its key, and replayed
        replay = api.post(
            f"/redemptions/{tenant.tenant_id}", json=cart("USER-LIMIT"), headers=headers
        )
        assert replay.status_code == 409 and replay.text == again.text
        assert replay.headers.get("Idempotent-Replayed") == "true"
    other = dict(cart("USER-LIMIT"), user_id="u-other")
    assert api.post(f"/redemptions/{tenant.tenant_id}", json=other).status_code == 201
    assert _state(api, tenant, coupon) == (2, 2)


@pytest.mark.parametrize("with_key", [False, True])
def test_a_coupon_at_its_limit_writes_nothing(api: Api, tenant: TenantKeys, with_key: bool) -> None:
    coupon = _coupon(api, tenant, "LAST-USE", usage_limit=1)
    assert api.post(f"/redemptions/{tenant.tenant_id}", json=cart("LAST-USE")).status_code == 201
    headers = {"Idempotency-Key": "late-1"} if with_key else {}
    late = dict(cart("LAST-USE"), user_id="u-late")
    refused = api.post(f"/redemptions/{tenant.tenant_id}", json=late, headers=headers)
    assert refused.status_code == 409, refused.text
    assert refused.json()["error"]["code"] == "usage_limit_reached"
    assert _state(api, tenant, coupon) == (1, 1)
    # the late user holds no use: with a per-user view of uses, nothing was counted for them
    listed = api.get(f"/redemptions/{tenant.tenant_id}", params={"user_id": "u-late"})
    assert listed.json() == []


def test_a_per_user_limit_counts_every_use_of_the_user(api: Api, tenant: TenantKeys) -> None:
    coupon = _coupon(api, tenant, "THREE-EACH", max_uses_per_user=3)
    codes = [
        api.post(f"/redemptions/{tenant.tenant_id}", json=cart("THREE-EACH")).status_code
        for _ in range(4)
    ]
    assert codes == [201, 201, 201, 409]
    assert _state(api, tenant, coupon) == (3, 3)


# --- GET renders the stored coupon without making a Coupon (coupon_view_from_columns) --------


def _rich_coupon() -> dict[str, Any]:
    return percent_coupon(
        code="RICH-1",
        name="Été — 10% ✓",
        value_percent="12.5",
        maximum_discount="50.25",
        usage_limit=7,
        max_uses_per_user=2,
        starts_at="2026-01-02T03:04:05.678901Z",
        expires_at="2030-12-31T23:59:59Z",
        apply_to_chapter_dues=True,
        chapter_dues_discount_info={"method": "percentage", "amount": 15, "chapter_ids": ["c"]},
        custom_field_values=[{"custom_field_id": "cf1", "numeric_value": 2.5}],
        comment="line one\nline two",
    )


def test_get_shows_what_create_and_scan_show(api: Api, tenant: TenantKeys) -> None:
    created = api.post(f"/coupons/{tenant.tenant_id}", json=_rich_coupon())
    assert created.status_code == 201, created.text
    coupon = created.json()
    got = api.get(f"/coupons/{tenant.tenant_id}/{coupon['id']}")
    assert got.json() == coupon
    assert got.text == created.text  # the same bytes, field order included
    scanned = api.get(f"/coupons/{tenant.tenant_id}", params={"code": "RICH-1"}).json()
    assert scanned == [coupon]


def test_a_stored_coupon_without_a_newer_field_shows_its_default(
    api: Api, tenant: TenantKeys, db: Any
) -> None:
    """A body written before a field existed lacks it: GET and the scan show the default."""
    from sqlalchemy import text

    coupon = api.post(f"/coupons/{tenant.tenant_id}", json=_rich_coupon()).json()
    with db.transaction() as conn:
        body = conn.execute(
            text("SELECT body FROM coupons WHERE id = :id"), {"id": coupon["id"]}
        ).scalar_one()
        older = json.loads(body)
        del older["preview_access_only"], older["comment"]
        conn.execute(
            text("UPDATE coupons SET body = :body WHERE id = :id"),
            {"body": json.dumps(older), "id": coupon["id"]},
        )
    got = api.get(f"/coupons/{tenant.tenant_id}/{coupon['id']}").json()
    assert got["preview_access_only"] is False and got["comment"] is None
    assert got == dict(coupon, comment=None)
    scanned = api.get(f"/coupons/{tenant.tenant_id}", params={"code": "RICH-1"}).json()
    assert scanned == [got]
