"""Tests for couponry.web.observability (request id, access log, metrics)."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse
from prometheus_client import REGISTRY
from starlette.testclient import TestClient
from starlette.types import Message, Receive, Scope, Send

from couponry.web import observability
from couponry.web.observability import (
    ACCESS_LOGGER_NAME,
    ObservabilityMiddleware,
    configure_logging,
)

HEX_ID_LEN = 32


class CouponConflict(Exception):
    pass


def build_app() -> FastAPI:
    app = FastAPI()
    coupons = APIRouter()

    @coupons.get("/{tenant_id}/{coupon_id}")
    async def get_coupon(tenant_id: str, coupon_id: str, request: Request) -> dict[str, str]:
        return {"request_id": request.state.request_id}

    @coupons.post("/{tenant_id}/{coupon_id}/redeem")
    async def redeem(tenant_id: str, coupon_id: str) -> dict[str, str]:
        raise CouponConflict

    app.include_router(coupons, prefix="/coupons")

    @app.get("/items/{item_id}")
    async def get_item(item_id: str) -> dict[str, str]:
        return {"item_id": item_id}

    @app.get("/boom")
    async def boom() -> dict[str, str]:
        raise RuntimeError("unhandled")

    @app.exception_handler(CouponConflict)
    async def conflict(request: Request, exc: CouponConflict) -> JSONResponse:
        return JSONResponse({"error": "conflict"}, status_code=409)

    return app


@pytest.fixture
def client() -> Iterator[TestClient]:
    app = build_app()
    app.add_middleware(ObservabilityMiddleware)
    with TestClient(app) as c:
        yield c


@pytest.fixture
def wrapped_client() -> Iterator[TestClient]:
    # Outermost wrapping, the way the service is served: sees ServerErrorMiddleware's 500s.
    app = ObservabilityMiddleware(build_app())
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


@pytest.fixture
def access_log(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.INFO, logger=ACCESS_LOGGER_NAME)
    return caplog


def access_lines(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    return [json.loads(r.getMessage()) for r in caplog.records if r.name == ACCESS_LOGGER_NAME]


def requests_total(method: str, route: str, status: str) -> float:
    value = REGISTRY.get_sample_value(
        "couponry_http_requests_total", {"method": method, "route": route, "status": status}
    )
    return value or 0.0


def duration_count(method: str, route: str) -> float:
    value = REGISTRY.get_sample_value(
        "couponry_http_request_duration_seconds_count", {"method": method, "route": route}
    )
    return value or 0.0


def is_generated_id(value: str | None) -> bool:
    return value is not None and len(value) == HEX_ID_LEN and int(value, 16) >= 0


# --- request id -------------------------------------------------------------------------


def test_request_id_is_echoed_and_exposed_on_request_state(client: TestClient) -> None:
    response = client.get("/coupons/t1/c1", headers={"X-Request-Id": "abc-123:XYZ"})
    assert response.status_code == 200
    assert response.headers["x-request-id"] == "abc-123:XYZ"
    assert response.json() == {"request_id": "abc-123:XYZ"}


def test_request_id_is_generated_when_absent(client: TestClient) -> None:
    response = client.get("/coupons/t1/c1")
    request_id = response.headers["x-request-id"]
    assert is_generated_id(request_id)
    assert response.json() == {"request_id": request_id}


@pytest.mark.parametrize(
    "bad_id",
    [b"", b"has space", b"x" * 129, b"tab\there", b"caf\xc3\xa9", b"\x7f"],
    ids=["empty", "space", "too-long", "tab", "non-ascii", "del"],
)
def test_invalid_request_id_is_replaced(client: TestClient, bad_id: bytes) -> None:
    response = client.get("/items/1", headers=[(b"x-request-id", bad_id)])
    assert is_generated_id(response.headers["x-request-id"])
    assert response.headers["x-request-id"].encode() != bad_id


def test_request_id_at_max_length_is_accepted(client: TestClient) -> None:
    request_id = "a" * 128
    response = client.get("/items/1", headers={"X-Request-Id": request_id})
    assert response.headers["x-request-id"] == request_id


def test_request_id_on_404(client: TestClient) -> None:
    response = client.get("/no/such/path", headers={"X-Request-Id": "rid-404"})
    assert response.status_code == 404
    assert response.headers["x-request-id"] == "rid-404"


def test_request_id_on_reply_from_exception_handler(client: TestClient) -> None:
    response = client.post("/coupons/t1/c1/redeem", headers={"X-Request-Id": "rid-409"})
    assert response.status_code == 409
    assert response.headers.get_list("x-request-id") == ["rid-409"]


def test_app_supplied_request_id_header_is_not_duplicated() -> None:
    app = FastAPI()

    @app.get("/echo")
    async def echo() -> JSONResponse:
        return JSONResponse({}, headers={"X-Request-Id": "from-app"})

    with TestClient(ObservabilityMiddleware(app)) as c:
        response = c.get("/echo", headers={"X-Request-Id": "rid-1"})
    assert response.headers.get_list("x-request-id") == ["rid-1"]


# --- access log -------------------------------------------------------------------------


def test_one_json_line_per_request_with_route_template(
    client: TestClient, access_log: pytest.LogCaptureFixture
) -> None:
    client.get("/coupons/t1/c1?password=secret&key=k", headers={"X-Request-Id": "rid-log"})

    records = [r for r in access_log.records if r.name == ACCESS_LOGGER_NAME]
    assert len(records) == 1
    assert records[0].levelno == logging.INFO
    message = records[0].getMessage()
    assert "secret" not in message
    assert "password" not in message
    line = json.loads(message)
    assert set(line) == {
        "ts",
        "request_id",
        "method",
        "path",
        "route",
        "status",
        "duration_ms",
        "client",
    }
    assert line["request_id"] == "rid-log"
    assert line["method"] == "GET"
    assert line["path"] == "/coupons/t1/c1"
    # Full template including the include_router prefix, never the raw path.
    assert line["route"] == "/coupons/{tenant_id}/{coupon_id}"
    assert line["status"] == 200
    assert isinstance(line["duration_ms"], float)
    assert line["duration_ms"] >= 0
    assert line["client"] == "testclient"
    assert line["ts"].endswith("+00:00")


def test_404_is_logged_as_unmatched(
    client: TestClient, access_log: pytest.LogCaptureFixture
) -> None:
    client.get("/no/such/path")
    [line] = access_lines(access_log)
    assert line["route"] == "unmatched"
    assert line["status"] == 404


def test_405_keeps_the_route_template(
    client: TestClient, access_log: pytest.LogCaptureFixture
) -> None:
    assert client.delete("/items/7").status_code == 405
    [line] = access_lines(access_log)
    assert line["route"] == "/items/{item_id}"
    assert line["status"] == 405


def test_unhandled_exception_logs_500_and_reply_has_request_id(
    wrapped_client: TestClient, access_log: pytest.LogCaptureFixture
) -> None:
    before = requests_total("GET", "/boom", "500")
    response = wrapped_client.get("/boom", headers={"X-Request-Id": "rid-500"})
    assert response.status_code == 500
    assert response.headers["x-request-id"] == "rid-500"
    [line] = access_lines(access_log)
    assert (line["status"], line["route"], line["request_id"]) == (500, "/boom", "rid-500")
    assert requests_total("GET", "/boom", "500") == before + 1


def test_exception_is_reraised_after_logging_and_metrics(
    access_log: pytest.LogCaptureFixture,
) -> None:
    async def failing_app(scope: Scope, receive: Receive, send: Send) -> None:
        raise ValueError("kaput")

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        raise AssertionError("nothing should be sent")

    scope: Scope = {
        "type": "http",
        "method": "PUT",
        "path": "/raw",
        "query_string": b"password=secret",
        "headers": [],
        "client": None,
    }
    before = requests_total("PUT", "unmatched", "500")
    with pytest.raises(ValueError, match="kaput"):
        asyncio.run(ObservabilityMiddleware(failing_app)(scope, receive, send))

    [line] = access_lines(access_log)
    assert line["status"] == 500
    assert line["client"] is None
    assert is_generated_id(scope["state"]["request_id"])
    assert line["request_id"] == scope["state"]["request_id"]
    assert requests_total("PUT", "unmatched", "500") == before + 1


def test_failure_after_reply_started_is_logged_as_500(
    access_log: pytest.LogCaptureFixture,
) -> None:
    sent: list[Message] = []

    async def half_reply(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        raise ConnectionError("stream broke")

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    scope: Scope = {"type": "http", "method": "GET", "path": "/s", "headers": [], "client": None}
    with pytest.raises(ConnectionError):
        asyncio.run(ObservabilityMiddleware(half_reply)(scope, receive, send))

    assert sent[0]["headers"] == [(b"x-request-id", scope["state"]["request_id"].encode())]
    [line] = access_lines(access_log)
    assert line["status"] == 500


# --- metrics ----------------------------------------------------------------------------


def test_counters_increase_by_one_for_the_right_labels(client: TestClient) -> None:
    route = "/coupons/{tenant_id}/{coupon_id}"
    before_ok = requests_total("GET", route, "200")
    before_count = duration_count("GET", route)
    before_404 = requests_total("GET", "unmatched", "404")
    before_conflict = requests_total("POST", "/coupons/{tenant_id}/{coupon_id}/redeem", "409")

    client.get("/coupons/tenant-a/coupon-9")

    assert requests_total("GET", route, "200") == before_ok + 1
    assert duration_count("GET", route) == before_count + 1
    assert requests_total("GET", "unmatched", "404") == before_404
    assert requests_total("POST", "/coupons/{tenant_id}/{coupon_id}/redeem", "409") == (
        before_conflict
    )
    # The raw path never becomes a label value.
    assert requests_total("GET", "/coupons/tenant-a/coupon-9", "200") == 0


def test_unknown_method_is_labelled_other(client: TestClient) -> None:
    before = requests_total("OTHER", "/items/{item_id}", "405")
    client.request("BREW", "/items/1")
    assert requests_total("OTHER", "/items/{item_id}", "405") == before + 1


def test_render_metrics_without_multiprocess_dir(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    client.get("/items/1")
    body, content_type = observability.render_metrics()
    assert content_type.startswith("text/plain")
    assert b'couponry_http_requests_total{method="GET",route="/items/{item_id}",status="200"}' in (
        body
    )
    assert b"# TYPE couponry_redemptions_total counter" in body


MULTIPROCESS_SCRIPT = textwrap.dedent(
    """
    import os, sys
    import prometheus_client  # imported first on purpose in the "late" mode
    mode = sys.argv[1]
    if mode == "late":
        from couponry.web.observability import prepare_multiprocess_dir
        print("DIR", prepare_multiprocess_dir())
    elif mode == "set-before-import":
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = sys.argv[3]
    from fastapi import FastAPI
    from starlette.testclient import TestClient
    from couponry.web.observability import (
        REDEMPTIONS, ObservabilityMiddleware, render_metrics,
    )

    app = FastAPI()

    @app.get("/items/{item_id}")
    async def get_item(item_id: str) -> dict[str, str]:
        return {"item_id": item_id}

    with TestClient(ObservabilityMiddleware(app)) as client:
        for i in range(int(sys.argv[2])):
            assert client.get(f"/items/{i}?password=secret").status_code == 200
    REDEMPTIONS.labels("accepted").inc()
    sys.stdout.write(render_metrics()[0].decode())
    """
)

COUNTER_LINE = 'couponry_http_requests_total{method="GET",route="/items/{item_id}",status="200"}'


def run_worker(mode: str, requests: int, env: dict[str, str], *extra: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", MULTIPROCESS_SCRIPT, mode, str(requests), *extra],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def sample_value(exposition: str, prefix: str) -> float:
    [line] = [ln for ln in exposition.splitlines() if ln.startswith(prefix + " ")]
    return float(line.rsplit(" ", 1)[1])


def test_multiprocess_mode_aggregates_worker_processes(tmp_path: Path) -> None:
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    # Two "workers" share the directory; the second one's scrape sees both.
    run_worker("env", 2, env)
    output = run_worker("env", 3, env)

    assert sample_value(output, COUNTER_LINE) == 5.0
    assert sample_value(output, 'couponry_redemptions_total{outcome="accepted"}') == 2.0
    assert "secret" not in output
    assert len(list(tmp_path.glob("counter_*.db"))) == 2


def test_prepare_multiprocess_dir_after_prometheus_import(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    env["TMPDIR"] = str(tmp_path)
    output = run_worker("late", 4, env)

    metrics_dir = Path(output.splitlines()[0].removeprefix("DIR "))
    assert metrics_dir.parent == tmp_path
    assert list(metrics_dir.glob("counter_*.db"))
    assert sample_value(output, COUNTER_LINE) == 4.0


def test_env_set_after_prometheus_import_but_before_module_import(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    output = run_worker("set-before-import", 2, env, str(tmp_path))

    assert list(tmp_path.glob("counter_*.db"))
    assert sample_value(output, COUNTER_LINE) == 2.0


# --- passthrough and logging setup ------------------------------------------------------


@pytest.mark.parametrize("scope_type", ["lifespan", "websocket"])
def test_non_http_scopes_pass_straight_through(
    scope_type: str, access_log: pytest.LogCaptureFixture
) -> None:
    seen: list[tuple[Scope, Receive, Send]] = []

    async def inner(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append((scope, receive, send))

    async def receive() -> Message:
        return {"type": f"{scope_type}.startup"}

    async def send(message: Message) -> None:
        return None

    scope: Scope = {"type": scope_type, "path": "/ws", "headers": []}
    asyncio.run(ObservabilityMiddleware(inner)(scope, receive, send))

    assert seen == [(scope, receive, send)]
    assert "state" not in scope
    assert access_lines(access_log) == []


@pytest.fixture
def restore_root_logger() -> Iterator[logging.Logger]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield root
    for handler in root.handlers:
        if handler not in handlers:
            handler.close()
    root.handlers[:] = handlers
    root.setLevel(level)


def test_configure_logging_is_idempotent_and_writes_json(
    restore_root_logger: logging.Logger, capsys: pytest.CaptureFixture[str]
) -> None:
    root = restore_root_logger
    configure_logging("info")
    configure_logging("DEBUG")
    ours = [h for h in root.handlers if h.__class__.__name__ == "_CouponryLogHandler"]
    assert len(ours) == 1
    assert root.level == logging.DEBUG

    logging.getLogger(ACCESS_LOGGER_NAME).info('{"already": "json"}')
    logging.getLogger("couponry.store").warning("slow %s", "query", extra={"request_id": "r1"})
    logging.getLogger("couponry.store").info("no request")

    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == '{"already": "json"}'
    entry = json.loads(lines[1])
    assert entry["level"] == "WARNING"
    assert entry["logger"] == "couponry.store"
    assert entry["message"] == "slow query"
    assert entry["request_id"] == "r1"
    assert entry["ts"].endswith("+00:00")
    assert "request_id" not in json.loads(lines[2])
