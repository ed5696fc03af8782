"""A bounded schemathesis run: generated requests never get a 5xx or an off-schema reply."""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.schemas import BaseOpenAPISchema

from couponry.app import create_app
from couponry.config import Settings
from couponry.store.db import Database
from tests.conftest import make_tenant, percent_coupon

EXAMPLES_PER_OPERATION = 25
STATUSES: dict[int, int] = {}


@schemathesis.serializer("text/csv")
class CsvText:
    """The code import's body (text/csv): generated text sent as it is, in UTF-8."""

    def as_requests(self, context: Any, value: Any) -> dict[str, Any]:
        return {"data": _utf8(value)}

    def as_werkzeug(self, context: Any, value: Any) -> dict[str, Any]:
        return {"data": _utf8(value)}


def _utf8(value: Any) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode("utf-8", "surrogatepass")


@pytest.fixture(scope="module")
def fuzz_target(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    from couponry.store.migrate import upgrade

    url = f"sqlite:///{tmp_path_factory.mktemp('fuzz') / 'fuzz.db'}"
    db = Database.from_urls(url)
    upgrade(db.primary)
    keys = make_tenant(db, prefix="fuzz")
    app = create_app(Settings(database_url=url), db)
    from starlette.testclient import TestClient

    client = TestClient(app)
    h = {"Authorization": keys.admin}
    coupon = client.post(f"/coupons/{keys.tenant_id}", json=percent_coupon(), headers=h).json()
    group = client.post(f"/groups/{keys.tenant_id}", json={"name": "G"}, headers=h).json()
    return {"app": app, "keys": keys, "coupon": coupon["id"], "group": group["id"]}


def _schema(app: Any) -> BaseOpenAPISchema:
    schemathesis.experimental.OPEN_API_3_1.enable()  # FastAPI documents OpenAPI 3.1
    schema = schemathesis.from_asgi("/openapi.json", app)
    return schema.exclude(path_regex="^/(metrics|docs)")  # type: ignore[no-any-return]


def test_generated_requests_never_break_the_api(fuzz_target: dict[str, Any]) -> None:
    schema = _schema(fuzz_target["app"])
    keys = fuzz_target["keys"]
    failures: list[str] = []
    calls = 0
    for result in schema.get_all_operations():
        operation = result.ok()

        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy())
        def check(case: Any) -> None:
            nonlocal calls
            params = case.path_parameters or {}
            if "tenantId" in params:
                params["tenantId"] = keys.tenant_id
            if "coupon_id" in params and calls % 2 == 0:
                params["coupon_id"] = fuzz_target["coupon"]
            if "group_id" in params and calls % 2 == 0:
                params["group_id"] = fuzz_target["group"]
            case.headers = {**(case.headers or {}), "Authorization": keys.admin}
            calls += 1
            response = case.call()
            STATUSES[response.status_code] = STATUSES.get(response.status_code, 0) + 1
            try:
                case.validate_response(response)
            except Exception as exc:  # collect every failure, then report them all
                failures.append(f"{case.method} {case.formatted_path}: {exc}"[:2000])

        check()
    assert calls >= 300
    # the run reached the handlers, not only the refusals
    assert STATUSES.get(200, 0) + STATUSES.get(201, 0) >= 20, STATUSES
    assert not failures, "\n\n".join(failures[:10])
