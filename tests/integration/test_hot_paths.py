"""Which requests the hot routes serve themselves (web/hot.py), and which go the general way.

The rest of the suite checks what every request answers; this checks that on PostgreSQL the
common redemption really takes the asyncpg path, so that suite covers it, and that the others
(a credit, an unknown code, SQLite) still go through the synchronous service.
"""

from __future__ import annotations

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


def test_the_common_redemption_takes_the_hot_path_on_postgres(
    api: Api, tenant: TenantKeys, backend: str, general_way: list[str]
) -> None:
    api.post(f"/coupons/{tenant.tenant_id}", json=percent_coupon(code="HOT-PATH"))
    reply = api.post(f"/redemptions/{tenant.tenant_id}", json=cart("HOT-PATH"))
    assert reply.status_code == 201, reply.text
    assert reply.json()["discount_total"] == "5.00"
    assert general_way == ([] if backend == "postgres" else [tenant.tenant_id])


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
