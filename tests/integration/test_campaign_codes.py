"""A coupon's campaign codes over REST (SPEC 10, step 2 of issue 10): add a list, page through
them, deactivate one; all or nothing, every refusal naming its codes; admin only."""

from __future__ import annotations

import threading
from typing import Any

from starlette.testclient import TestClient

from tests.conftest import Api, TenantKeys, percent_coupon


def _coupon(api: Api, tenant: TenantKeys, code: str = "CAMPAIGN-1") -> dict[str, Any]:
    reply = api.post(f"/coupons/{tenant.tenant_id}", json=percent_coupon(code=code))
    assert reply.status_code == 201, reply.text
    return dict(reply.json())


def _codes_path(tenant: TenantKeys, coupon: dict[str, Any]) -> str:
    return f"/coupons/{tenant.tenant_id}/{coupon['id']}/codes"


def _listed(api: Api, path: str, **params: str) -> list[dict[str, Any]]:
    reply = api.get(path, params=params)
    assert reply.status_code == 200, reply.text
    return list(reply.json())


def test_codes_are_added_and_listed_in_order(api: Api, tenant: TenantKeys) -> None:
    coupon = _coupon(api, tenant)
    path = _codes_path(tenant, coupon)
    reply = api.post(path, json={"codes": ["Spring-A1", "SPRING-B2", "spring_c3"]})
    assert reply.status_code == 201, reply.text
    assert reply.json() == {"created": 3}
    listed = _listed(api, path)
    assert [c["code"] for c in listed] == ["Spring-A1", "SPRING-B2", "spring_c3"]  # not its own
    first = listed[0]
    assert first["max_uses"] == 1 and first["times_used"] == 0 and first["is_active"] is True
    assert first["created_at"].endswith("Z") and first["last_used_at"] is None
    unlimited = api.post(path, json={"codes": ["FOREVER-1"], "max_uses": None})
    assert unlimited.status_code == 201
    assert _listed(api, path)[-1]["max_uses"] is None
    assert _listed(api, path, used="true") == []
    assert len(_listed(api, path, used="false")) == 4


def test_pages_follow_the_order_of_creation(api: Api, tenant: TenantKeys) -> None:
    coupon = _coupon(api, tenant)
    path = _codes_path(tenant, coupon)
    codes = [f"PAGE-{n:03d}" for n in range(25)]
    assert api.post(path, json={"codes": codes}).status_code == 201
    seen: list[str] = []
    params = {"limit": "10"}
    while True:
        reply = api.get(path, params=params)
        seen += [c["code"] for c in reply.json()]
        start = reply.headers.get("X-Exclusive-Start-Key")
        if start is None:
            break
        params = {"limit": "10", "exclusiveStartKey": start}
    assert seen == codes


def test_a_bad_list_writes_nothing_and_names_every_problem(api: Api, tenant: TenantKeys) -> None:
    coupon = _coupon(api, tenant)
    path = _codes_path(tenant, coupon)
    bad = api.post(path, json={"codes": ["GOOD-1", "no", "dup-1", "DUP-1", "bad code!"]})
    assert bad.status_code == 422, bad.text
    fields = [d["field"] for d in bad.json()["error"]["details"]]
    assert fields == ["codes[1]", "codes[3]", "codes[4]"]
    assert "codes[2]" in bad.json()["error"]["details"][1]["message"]
    cases = [
        ({"codes": []}, "codes"),
        ({"codes": [f"C-{n:04d}" for n in range(1001)]}, "codes"),
        ({}, "codes"),
        ({"codes": ["OK-123"], "max_uses": 0}, "max_uses"),
        ({"codes": ["OK-123"], "max_uses": "1"}, "max_uses"),
        ({"codes": ["OK-123"], "uses": 1}, "uses"),
        ({"codes": "OK-123"}, "codes"),
        ({"codes": [None]}, "codes[0]"),
    ]
    for body, field in cases:
        reply = api.post(path, json=body)
        assert reply.status_code == 422, (body, reply.text)
        assert field in [d["field"] for d in reply.json()["error"]["details"]], (body, reply.text)
    assert _listed(api, path) == []


def test_codes_the_tenant_has_are_refused_together(api: Api, tenant: TenantKeys) -> None:
    other = _coupon(api, tenant, "OTHER-COUPON")
    coupon = _coupon(api, tenant)
    assert api.post(_codes_path(tenant, other), json={"codes": ["TAKEN-1"]}).status_code == 201
    path = _codes_path(tenant, coupon)
    reply = api.post(path, json={"codes": ["FREE-1", "taken-1", "other-coupon", "CAMPAIGN-1"]})
    assert reply.status_code == 409, reply.text
    error = reply.json()["error"]
    assert error["code"] == "code_taken"
    messages = " ".join(d["message"] for d in error["details"])
    for code in ("taken-1", "other-coupon", "CAMPAIGN-1"):
        assert repr(code) in messages
    assert "FREE-1" not in messages
    assert _listed(api, path) == []
    # and a coupon may not take a campaign code either
    clash = api.post(f"/coupons/{tenant.tenant_id}", json=percent_coupon(code="Taken-1"))
    assert clash.status_code == 409


def test_a_deactivated_code_stays_taken(api: Api, tenant: TenantKeys) -> None:
    coupon = _coupon(api, tenant)
    path = _codes_path(tenant, coupon)
    assert api.post(path, json={"codes": ["OFF-1", "ON-1"]}).status_code == 201
    off = api.request("DELETE", f"{path}/off-1")
    assert off.status_code == 200, off.text
    assert off.json()["code"] == "OFF-1" and off.json()["is_active"] is False
    assert [c["is_active"] for c in _listed(api, path)] == [False, True]
    assert api.post(path, json={"codes": ["OFF-1"]}).status_code == 409
    for missing in ("NOPE-1", "CAMPAIGN-1", "bad code"):  # its own code is not a campaign code
        reply = api.request("DELETE", f"{path}/{missing}")
        assert reply.status_code == 404, reply.text
        assert reply.json()["error"]["code"] == "code_not_found"


def test_a_deleted_coupon_frees_its_codes(api: Api, tenant: TenantKeys) -> None:
    coupon = _coupon(api, tenant)
    assert api.post(_codes_path(tenant, coupon), json={"codes": ["REUSE-1"]}).status_code == 201
    api.request("DELETE", f"/coupons/{tenant.tenant_id}/{coupon['id']}")
    again = _coupon(api, tenant, "AGAIN-1")
    assert api.post(_codes_path(tenant, again), json={"codes": ["REUSE-1"]}).status_code == 201
    gone = api.get(_codes_path(tenant, coupon))
    assert gone.status_code == 404 and gone.json()["error"]["code"] == "coupon_not_found"


def test_only_the_tenant_s_admin_may(
    api: Api, tenant: TenantKeys, other_tenant: TenantKeys
) -> None:
    coupon = _coupon(api, tenant)
    path = _codes_path(tenant, coupon)
    body = {"codes": ["ROLE-1"]}
    assert api.as_key(tenant.checkout).post(path, json=body).status_code == 403
    assert api.as_key(tenant.read).get(path).status_code == 403
    assert api.as_key(other_tenant.admin).post(path, json=body).status_code == 403
    mine = _coupon(api.as_key(other_tenant.admin), other_tenant, "MINE-1")
    elsewhere = f"/coupons/{other_tenant.tenant_id}/{coupon['id']}/codes"
    assert api.as_key(other_tenant.admin).get(elsewhere).status_code == 404
    assert _listed(api.as_key(other_tenant.admin), _codes_path(other_tenant, mine)) == []
    assert _listed(api, path) == []


def test_racing_lists_with_a_code_in_common_add_one_list(api: Api, tenant: TenantKeys) -> None:
    coupon = _coupon(api, tenant)
    path = _codes_path(tenant, coupon)
    lists = [[f"RACE-{n}-{i}" for i in range(50)] + ["RACE-SHARED"] for n in range(6)]
    results: list[int] = []
    refusals: list[list[str]] = []
    barrier = threading.Barrier(len(lists))

    def add(codes: list[str]) -> None:
        own = Api(TestClient(api.client.app, raise_server_exceptions=False), tenant.admin)
        barrier.wait()
        reply = own.post(path, json={"codes": codes})
        results.append(reply.status_code)
        if reply.status_code == 409:  # it names the one code in common, and only it
            named = [d["message"] for d in reply.json()["error"]["details"]]
            refusals.append(named)

    threads = [threading.Thread(target=add, args=(codes,)) for codes in lists]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(results) == [201] + [409] * (len(lists) - 1)
    assert all(len(named) == 1 and "'RACE-SHARED'" in named[0] for named in refusals)
    listed = _listed(api, path, limit="1000")
    assert len(listed) == 51 and sum(c["code"] == "RACE-SHARED" for c in listed) == 1


def test_codes_added_while_the_coupon_is_deleted_are_not_left_behind(
    api: Api, tenant: TenantKeys, db: Any
) -> None:
    """A delete holds the coupon while it frees its codes; codes added at that moment wait for
    it, then find no coupon (404) instead of staying taken by a coupon that is gone."""
    from datetime import UTC, datetime

    from couponry.errors import CouponNotFound
    from couponry.services.codes import add_codes
    from couponry.store.coupon_repo import CouponRepository

    coupon = _coupon(api, tenant)
    outcome: list[str] = []
    started = threading.Event()

    def add() -> None:
        started.set()
        try:
            add_codes(
                db,
                tenant_id=tenant.tenant_id,
                coupon_id=coupon["id"],
                doc={"codes": ["LATE-1", "LATE-2"]},
                now=datetime.now(UTC),
            )
            outcome.append("added")
        except CouponNotFound:
            outcome.append("coupon_not_found")

    adding = threading.Thread(target=add)
    if db.sqlite:  # SQLite's writers are serial: the add simply comes after the delete
        with db.transaction() as conn:
            repo = CouponRepository(conn, tenant.tenant_id)
            assert repo.get(coupon["id"], for_update=True) is not None
            assert repo.soft_delete(coupon["id"], by="t", now=datetime.now(UTC))
        adding.start()
    else:
        with db.transaction() as conn:
            repo = CouponRepository(conn, tenant.tenant_id)
            assert repo.get(coupon["id"], for_update=True) is not None
            adding.start()
            started.wait(5)
            threading.Event().wait(0.3)  # the add reaches the coupon and waits for this
            assert repo.soft_delete(coupon["id"], by="t", now=datetime.now(UTC))
    adding.join(30)
    assert outcome == ["coupon_not_found"]
    again = _coupon(api, tenant, "AFTER-1")
    assert api.post(_codes_path(tenant, again), json={"codes": ["LATE-1"]}).status_code == 201


def test_the_codes_export_as_csv_safe_for_a_spreadsheet(api: Api, tenant: TenantKeys) -> None:
    import csv
    import io

    coupon = _coupon(api, tenant)
    path = _codes_path(tenant, coupon)
    codes = ["-MINUS-1", "PLAIN-1", "_UNDER-1"] + [f"BULK-{n:05d}" for n in range(5200)]
    for start in range(0, len(codes), 1000):
        chunk = codes[start : start + 1000]
        assert api.post(path, json={"codes": chunk, "max_uses": None}).status_code == 201
    assert api.request("DELETE", f"{path}/PLAIN-1").status_code == 200
    reply = api.get(f"{path}.csv")
    assert reply.status_code == 200, reply.text
    assert reply.headers["content-type"].startswith("text/csv")
    assert "attachment" in reply.headers["content-disposition"]
    text = reply.content.decode("utf-8")
    lines = text.split("\r\n")
    assert lines[0] == "code,max_uses,times_used,is_active,created_at,last_used_at"
    # A code a spreadsheet would read as a formula is quoted, after a single quote.
    assert lines[1].startswith('"\'-MINUS-1",,0,true,')
    assert lines[2].startswith("PLAIN-1,,0,false,")
    rows = list(csv.reader(io.StringIO(text)))
    assert len(rows) == 1 + len(codes)  # every code, across the export's pages (5,000 each)
    assert [r[0] for r in rows[1:]] == ["'-MINUS-1", *codes[1:]]
    for row in rows[1:]:
        assert not row[0].startswith(("=", "+", "-", "@", "\t", "\r"))
        assert row[4].endswith("Z") and row[5] == ""
    assert api.as_key(tenant.checkout).get(f"{path}.csv").status_code == 403
    missing = api.get(f"/coupons/{tenant.tenant_id}/0000-0000-0000-0000/codes.csv")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "coupon_not_found"
