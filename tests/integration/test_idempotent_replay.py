"""A repeated Idempotency-Key gets the first reply again, byte for byte, on both backends.

The service stores the first request's outcome in domain terms (redeemed with the redemption's
view, or refused with the refusal's document); the web layer renders the replay from it. Rows
stored by earlier versions hold the HTTP reply itself and must replay exactly as well.
"""

from __future__ import annotations

import json
import secrets
from typing import Any

import pytest
from sqlalchemy import insert, select

from couponry.domain.redemptions import REDEEMED, REFUSED, request_hash
from couponry.store.db import Database
from couponry.store.tables import idempotency_keys
from tests.conftest import Api, TenantKeys, now, percent_coupon

# How each kind of coupon is redeemed: on PostgreSQL a plain one takes the hot path (asyncpg),
# the others the synchronous service; SQLite takes the synchronous service for all.
COUPONS: dict[str, dict[str, Any]] = {
    "plain": percent_coupon(),
    "credit": {"coupon_type": "TOTAL_AMOUNT", "value_amount": "500.00"},
    "approval": percent_coupon(require_approval=True, add_user_to_coupons_group=True),
}


def cart(code: str, user: str) -> dict[str, Any]:
    line = {"line_id": "1", "kind": "event", "id": "ev-1", "unit_price": "80.00", "quantity": 1}
    return {"code": code, "user_id": user, "lines": [line]}


def redeem(api: Api, tenant: TenantKeys, body: dict[str, Any], key: str) -> Any:
    raw = json.dumps(body).encode()
    headers = {"Content-Type": "application/json", "Idempotency-Key": key}
    return api.post(f"/redemptions/{tenant.tenant_id}", content=raw, headers=headers)


def stored(db: Database, tenant: TenantKeys, key: str) -> tuple[int, str]:
    k = idempotency_keys.c
    with db.reader() as conn:
        row = conn.execute(
            select(k.outcome, k.response_body).where(k.tenant_id == tenant.tenant_id, k.key == key)
        ).one()
    return row.outcome, row.response_body


def assert_replays(
    api: Api, tenant: TenantKeys, body: dict[str, Any], key: str, first: Any
) -> None:
    """The same key and body again: the same status, headers and bytes, marked replayed."""
    for _ in range(2):
        replay = redeem(api, tenant, body, key)
        assert replay.headers["idempotent-replayed"] == "true"
        assert replay.status_code == first.status_code, replay.text
        assert replay.content == first.content
        for header in ("content-type", "content-length", "www-authenticate", "retry-after"):
            assert replay.headers.get(header) == first.headers.get(header), header


@pytest.mark.parametrize("kind", list(COUPONS))
def test_a_replay_is_the_first_reply_byte_for_byte(
    api: Api, tenant: TenantKeys, db: Database, kind: str
) -> None:
    code = f"REPLAY-{secrets.token_hex(3)}"
    coupon = {**COUPONS[kind], "code": code, "usage_limit": 1}
    if kind == "approval":  # approval is for a group's coupons
        group = api.post(f"/groups/{tenant.tenant_id}", json={"name": f"Group {code}"})
        coupon["authorized_group_id"] = group.json()["id"]
    made = api.post(f"/coupons/{tenant.tenant_id}", json=coupon)
    assert made.status_code == 201, made.text

    # A redemption: 201 and its view; the key keeps the view itself, no status.
    body = cart(code, "u-first")
    first = redeem(api, tenant, body, "replay-ok")
    assert first.status_code == 201, first.text
    assert "idempotent-replayed" not in first.headers
    expected_status = "pending_approval" if kind == "approval" else "applied"
    assert first.json()["status"] == expected_status
    assert stored(db, tenant, "replay-ok") == (REDEEMED, first.content.decode())
    assert_replays(api, tenant, body, "replay-ok", first)

    # A refusal (the only use is taken): its status and envelope; the key keeps the refusal's
    # document, without the envelope or a status.
    other = cart(code, "u-second")
    refused = redeem(api, tenant, other, "replay-refused")
    assert refused.status_code == 409, refused.text
    assert refused.json()["error"]["code"] == "usage_limit_reached"
    outcome, document = stored(db, tenant, "replay-refused")
    assert outcome == REFUSED
    assert refused.content == b'{"error":' + document.encode() + b"}"
    assert_replays(api, tenant, other, "replay-refused", refused)


# --- rows stored before the outcome (migration 0004): an HTTP status and the reply ----------

LEGACY_REFUSALS = [
    pytest.param(
        404,
        '{"error":{"code":"coupon_not_found","message":"No coupon has this code.","details":[]}}',
        id="404",
    ),
    pytest.param(
        409,
        '{"error":{"code":"usage_limit_reached","message":'
        '"This coupon has been used as often as it may be.","details":[]}}',
        id="409",
    ),
    pytest.param(
        422,
        '{"error":{"code":"coupon_not_applicable","message":"Nothing in the cart — «é» —'
        ' qualifies.","details":[{"field":"lines","message":"no line \\"matches\\""}]}}',
        id="422-with-details",
    ),
]


def insert_legacy(
    db: Database, tenant: TenantKeys, key: str, body: dict[str, Any], status: int, reply: str
) -> None:
    """A row as the code before migration 0004 wrote it."""
    with db.transaction() as conn:
        conn.execute(
            insert(idempotency_keys).values(
                tenant_id=tenant.tenant_id,
                key=key,
                request_hash=request_hash(body),
                outcome=status,
                response_body=reply,
                created_at=now(),
            )
        )


@pytest.fixture(params=["plain", "credit"])
def legacy_code(request: pytest.FixtureRequest, api: Api, tenant: TenantKeys) -> str:
    """The code of a coupon whose redemption takes the hot path (on PostgreSQL) or not."""
    code = f"LEGACY-{secrets.token_hex(3)}"
    made = api.post(f"/coupons/{tenant.tenant_id}", json={**COUPONS[request.param], "code": code})
    assert made.status_code == 201, made.text
    return code


@pytest.mark.parametrize(("status", "reply"), LEGACY_REFUSALS)
def test_a_legacy_refusal_replays_byte_for_byte(
    api: Api, tenant: TenantKeys, db: Database, legacy_code: str, status: int, reply: str
) -> None:
    body = cart(legacy_code, "u-legacy")
    insert_legacy(db, tenant, "legacy-refused", body, status, reply)
    replay = redeem(api, tenant, body, "legacy-refused")
    assert replay.status_code == status, replay.text
    assert replay.content == reply.encode()
    assert replay.headers["idempotent-replayed"] == "true"
    assert replay.headers["content-type"] == "application/json"
    # Nothing was redeemed: the key answered.
    assert api.get(f"/redemptions/{tenant.tenant_id}").json() == []


def test_a_legacy_redemption_replays_byte_for_byte(
    api: Api, tenant: TenantKeys, db: Database, legacy_code: str
) -> None:
    earlier = redeem(api, tenant, cart(legacy_code, "u-earlier"), "made-now")
    assert earlier.status_code == 201, earlier.text
    view = earlier.content.decode()  # what the old code stored for a 201: the body as sent
    body = cart(legacy_code, "u-legacy")
    insert_legacy(db, tenant, "legacy-ok", body, 201, view)
    replay = redeem(api, tenant, body, "legacy-ok")
    assert replay.status_code == 201, replay.text
    assert replay.content == earlier.content
    assert replay.headers["idempotent-replayed"] == "true"
    assert len(api.get(f"/redemptions/{tenant.tenant_id}").json()) == 1
