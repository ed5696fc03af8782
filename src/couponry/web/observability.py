"""Request ids, JSON access log and Prometheus metrics for every HTTP request.

``ObservabilityMiddleware`` is a raw ASGI callable (no BaseHTTPMiddleware: that costs
throughput). To get ``x-request-id`` on 500 replies rendered by Starlette's
ServerErrorMiddleware (handlers for ``Exception``/500 and unhandled errors), wrap the whole
application, e.g. ``ObservabilityMiddleware(fastapi_app)``: ``app.add_middleware`` places it
*inside* ServerErrorMiddleware, which sends its reply through the outer ``send``.

Multiprocess metrics: prometheus_client (0.26) chooses how metric values are stored once, when
``prometheus_client.values`` is first imported, by looking at ``PROMETHEUS_MULTIPROC_DIR``.
Each labelled child (``.labels(...)``) then reads ``values.ValueClass`` when it is created.
So the variable must be set before a worker process imports prometheus_client (``serve`` calls
``prepare_multiprocess_dir()`` before starting workers; uvicorn spawns them, so they inherit
it). All metrics here are labelled, so no value exists at import time; if prometheus_client
was imported before the variable was set in the same process, the value class is swapped
below so that children created afterwards still go to the shared directory. Children created
before the swap (and unlabelled metrics created before it) stay process-local.
"""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
import sys
import tempfile
import time
from datetime import UTC, datetime
from typing import Any, Final, TextIO

import orjson
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
    values,
)
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = [
    "ACCESS_LOGGER_NAME",
    "HTTP_REQUESTS",
    "HTTP_REQUEST_DURATION",
    "MULTIPROC_ENV",
    "REDEMPTIONS",
    "REQUEST_ID_HEADER",
    "UNMATCHED_ROUTE",
    "ObservabilityMiddleware",
    "configure_logging",
    "mark_process_dead",
    "prepare_multiprocess_dir",
    "render_metrics",
]

MULTIPROC_ENV: Final = "PROMETHEUS_MULTIPROC_DIR"
ACCESS_LOGGER_NAME: Final = "couponry.access"
REQUEST_ID_HEADER: Final = "x-request-id"
UNMATCHED_ROUTE: Final = "unmatched"

_HEADER_NAME: Final = REQUEST_ID_HEADER.encode("latin-1")
# 1-128 printable ASCII characters, no spaces: safe to echo back and to put in log lines.
_VALID_REQUEST_ID: Final = re.compile(rb"[\x21-\x7e]{1,128}")
# Any other method becomes "OTHER" in metric labels: clients choose the method freely.
_KNOWN_METHODS: Final = frozenset(
    {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"}
)

_access_log = logging.getLogger(ACCESS_LOGGER_NAME)


def _multiproc_dir() -> str | None:
    return os.environ.get(MULTIPROC_ENV) or None


def _ensure_multiprocess_values() -> None:
    # See the module docstring: prometheus_client may have been imported before the variable
    # was set, in which case it would silently keep values in this process's memory.
    if _multiproc_dir() and not getattr(values.ValueClass, "_multiprocess", False):
        values.ValueClass = values.get_value_class()  # type: ignore[no-untyped-call]


_ensure_multiprocess_values()

HTTP_REQUESTS = Counter(
    "couponry_http_requests_total",
    "HTTP requests handled, by method, route template and status code.",
    ["method", "route", "status"],
)
HTTP_REQUEST_DURATION = Histogram(
    "couponry_http_request_duration_seconds",
    "HTTP request duration in seconds, by method and route template.",
    ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
REDEMPTIONS = Counter(
    "couponry_redemptions_total",
    "Coupon redemption attempts, by outcome.",
    ["outcome"],
)


def prepare_multiprocess_dir() -> str:
    """Create a fresh metrics directory, export it as PROMETHEUS_MULTIPROC_DIR, return it.

    Call once, before worker processes start (they inherit the environment). Also switches
    this process to file-backed values so that serving in-process sees the same directory.
    """
    path = tempfile.mkdtemp(prefix="couponry-metrics-")
    os.environ[MULTIPROC_ENV] = path
    # A new value class binds to the new directory (the old one caches open files).
    values.ValueClass = values.get_value_class()  # type: ignore[no-untyped-call]
    return path


def mark_process_dead(pid: int) -> None:
    """Tell prometheus_client that a worker exited (drops its live-gauge files)."""
    path = _multiproc_dir()
    if path is not None:
        multiprocess.mark_process_dead(pid, path)  # type: ignore[no-untyped-call]


def render_metrics() -> tuple[bytes, str]:
    """Return the exposition body and its content type, aggregated over all workers."""
    path = _multiproc_dir()
    if path is None:
        return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
    # A fresh registry per scrape: the collector reads every worker's files each time.
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=path)  # type: ignore[no-untyped-call]
    return generate_latest(registry), CONTENT_TYPE_LATEST


def _utc_iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="milliseconds")


class _JsonLineFormatter(logging.Formatter):
    """Access lines are already JSON and pass through; everything else is wrapped."""

    def format(self, record: logging.LogRecord) -> str:
        if record.name == ACCESS_LOGGER_NAME:
            return record.getMessage()
        entry: dict[str, Any] = {
            "ts": _utc_iso(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = getattr(record, "request_id", None)
        if request_id is not None:
            entry["request_id"] = request_id
        if record.exc_info:
            entry["exc_info"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class _CouponryLogHandler(logging.StreamHandler[TextIO]):
    """Marker class so configure_logging can find the handler it installed earlier."""


def configure_logging(level: str) -> None:
    """Install one JSON-lines handler on the root logger, writing to stderr.

    Idempotent: a handler installed by an earlier call is replaced, never duplicated.
    """
    root = logging.getLogger()
    root.setLevel(level.upper())
    for handler in list(root.handlers):
        if isinstance(handler, _CouponryLogHandler):
            root.removeHandler(handler)
            handler.close()
    # Bind to the current sys.stderr (it may have been replaced since an earlier call).
    handler = _CouponryLogHandler(sys.stderr)
    handler.setFormatter(_JsonLineFormatter())
    root.addHandler(handler)


def _request_id_from(headers: list[tuple[bytes, bytes]]) -> bytes:
    for name, value in headers:
        if name == _HEADER_NAME:
            if _VALID_REQUEST_ID.fullmatch(value):
                return value
            break
    return secrets.token_hex(16).encode("ascii")  # 128 random bits, as uuid4's 122, cheaper


def _route_template(scope: Scope) -> str:
    # FastAPI >= 0.137 leaves scope["route"] set to the router-relative APIRoute for routes
    # added through include_router(prefix=...) (fastapi/fastapi#16051); the full template is
    # only in its per-request context. Read it defensively: if FastAPI changes, we fall back
    # to the relative template rather than failing.
    fastapi_scope = scope.get("fastapi")
    if isinstance(fastapi_scope, dict):
        path = getattr(fastapi_scope.get("effective_route_context"), "path", None)
        if isinstance(path, str):
            return path
    path = getattr(scope.get("route"), "path", None)
    return path if isinstance(path, str) else UNMATCHED_ROUTE


class ObservabilityMiddleware:
    """Request id, one JSON access-log line and HTTP metrics per request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        raw_id = _request_id_from(scope["headers"])
        request_id = raw_id.decode("ascii")
        state = scope.get("state")
        if state is None:
            state = scope["state"] = {}
        state["request_id"] = request_id
        id_header = (_HEADER_NAME, raw_id)
        # 500 unless the app starts a reply: covers apps that return without responding.
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                # New list: never mutate the Response object's own header list.
                headers = [h for h in message.get("headers", ()) if h[0].lower() != _HEADER_NAME]
                headers.append(id_header)
                message["headers"] = headers
            await send(message)

        start = time.perf_counter()
        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            status = 500
            raise
        finally:
            _record(scope, request_id, status, time.perf_counter() - start)


# Labelled children, looked up once: `.labels()` takes a lock and builds a key every call.
_children: dict[tuple[str, str, int], tuple[Any, Any]] = {}


def _metrics_for(method: str, route: str, status: int) -> tuple[Any, Any]:
    key = (method, route, status)
    found = _children.get(key)
    if found is None:
        found = (
            HTTP_REQUESTS.labels(method, route, str(status)),
            HTTP_REQUEST_DURATION.labels(method, route),
        )
        _children[key] = found
    return found


def _record(scope: Scope, request_id: str, status: int, duration: float) -> None:
    route = _route_template(scope)
    method: str = scope["method"]
    label_method = method if method in _KNOWN_METHODS else "OTHER"
    requests, durations = _metrics_for(label_method, route, status)
    requests.inc()
    durations.observe(duration)
    if not _access_log.isEnabledFor(logging.INFO):
        return
    client = scope.get("client")
    # Only the path: query strings, headers and bodies can carry passwords and keys.
    line = {
        "ts": _utc_iso(time.time()),
        "request_id": request_id,
        "method": method,
        "path": scope["path"],
        "route": route,
        "status": status,
        "duration_ms": round(duration * 1000, 2),
        "client": client[0] if client else None,
    }
    # A record made directly: logging's own `info` would walk the stack for the caller.
    text = orjson.dumps(line).decode() if _orjson_safe(scope["path"]) else json.dumps(line)
    record = _access_log.makeRecord(ACCESS_LOGGER_NAME, logging.INFO, "", 0, text, (), None)
    _access_log.handle(record)


def _orjson_safe(path: str) -> bool:
    # orjson refuses lone surrogates, which a decoded path may hold; json escapes them.
    return path.isascii() or not any("\ud800" <= c <= "\udfff" for c in path)
