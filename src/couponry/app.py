"""create_app(settings) -> the ASGI app: routers, error handlers, health and metrics."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel
from sqlalchemy import text
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.types import ASGIApp

from couponry.config import Settings
from couponry.store.async_db import AsyncDatabase
from couponry.store.db import Database
from couponry.store.migrate import is_migrated
from couponry.web.background import JobRunner
from couponry.web.console import create_console
from couponry.web.console.render import SECURITY_HEADERS
from couponry.web.docs import add_local_docs
from couponry.web.edubrite import routes as edubrite
from couponry.web.errors import install_error_handlers
from couponry.web.guard import RequestGuard
from couponry.web.hot import HotRoutes
from couponry.web.jsonio import json_response
from couponry.web.observability import ObservabilityMiddleware, configure_logging, render_metrics
from couponry.web.rest import codes, coupons, groups, imports, jobs, redemptions, stats
from couponry.web.rest.schemas import REQUEST_MODELS, PatchOperation

DESCRIPTION = """A multi-tenant coupon service. Authenticate with `Authorization: <key>` (or
`Bearer <key>`). Errors are `{"error": {"code", "message", "details"}}`."""


def create_fastapi(settings: Settings, db: Database | None = None) -> FastAPI:
    """The FastAPI app without the outer middleware (tests may want it bare)."""
    database = db or Database.from_urls(
        settings.database_url,
        settings.replica_url,
        pool_size=settings.pool_size,
        busy_timeout_ms=settings.sqlite_busy_timeout_ms,
    )

    adb = AsyncDatabase(
        settings.database_url,
        pool_size=settings.pool_size,
        busy_timeout_ms=settings.sqlite_busy_timeout_ms,
        on_lost=database.forget_connections,
    )

    runner = JobRunner(database, lease=timedelta(seconds=settings.job_lease_seconds))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runner.start()
        yield
        await runner.stop()
        await adb.close()
        if db is None:
            database.dispose()

    app = FastAPI(
        # /docs is served below from installed files; ReDoc's bundle loads its logo from a
        # CDN, so it is not offered (SPEC 12: no request leaves the host).
        docs_url=None,
        redoc_url=None,
        title="couponry",
        version="0.1.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        # FastAPI's own OpenTelemetry hooks checked a provider on every request; metrics and
        # the access log are ours (web/observability.py).
        telemetry={"tracing": False, "metrics": False, "logs": False, "operation_spans": False},
    )
    app.state.db = database
    app.state.adb = adb
    app.state.settings = settings
    install_error_handlers(app)
    # Inside FastAPI's error middleware, which would re-raise after its 500 (see web/guard.py).
    app.add_middleware(RequestGuard)
    app.include_router(redemptions.coupon_router)  # /coupons/{t}/validate before /{id}
    app.include_router(coupons.router)
    app.include_router(codes.router)
    app.include_router(stats.router)
    app.include_router(jobs.router)
    app.include_router(imports.router)
    app.include_router(redemptions.router)
    app.include_router(groups.router)
    app.include_router(edubrite.router)
    _add_operational_routes(app, database)
    # /console itself, answered here: Starlette's own redirect to /console/ would be an
    # absolute address built from the Host header.
    app.add_api_route("/console", _console_home, include_in_schema=False)
    app.mount("/console", create_console(database))
    add_local_docs(app)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


def create_app(settings: Settings, db: Database | None = None) -> ASGIApp:
    """The whole service; the observability wrapper sits outside every handler.

    The hot routes are served in front of FastAPI (web/hot.py), behind a request guard of
    their own; FastAPI's routes keep the guard inside FastAPI's stack."""
    configure_logging(settings.log_level)
    return ObservabilityMiddleware(RequestGuard(HotRoutes(create_fastapi(settings, db))))


async def _console_home() -> Response:
    return RedirectResponse("/console/coupons", status_code=303, headers=SECURITY_HEADERS)


def _add_operational_routes(app: FastAPI, db: Database) -> None:
    @app.get("/healthz", tags=["operations"], summary="The process is alive")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get(
        "/readyz",
        tags=["operations"],
        summary="The database is reachable and migrated",
        responses={503: {"description": "not ready"}},
    )
    async def readyz() -> Response:
        def check() -> bool:
            try:
                with db.reader() as conn:
                    conn.execute(text("SELECT 1"))
                return is_migrated(db.primary)
            except Exception:
                return False

        ready = await run_in_threadpool(check)
        return json_response({"status": "ready" if ready else "not ready"}, 200 if ready else 503)

    @app.get("/metrics", tags=["operations"], summary="Prometheus metrics")
    async def metrics(request: Request) -> Response:
        body, content_type = render_metrics()
        return Response(body, media_type=content_type)


def _openapi(app: FastAPI) -> dict[str, Any]:
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(
        title=app.title, version=app.version, description=app.description, routes=app.routes
    )
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    models: list[type[BaseModel]] = [
        *REQUEST_MODELS,
        *redemptions.DOC_MODELS,
        *codes.DOC_MODELS,
        *jobs.DOC_MODELS,
        PatchOperation,
    ]
    for model in models:
        model_schema = model.model_json_schema(
            ref_template="#/components/schemas/{model}", by_alias=True
        )
        components.update(model_schema.pop("$defs", {}))
        components[model.__name__] = model_schema
    app.openapi_schema = schema
    return schema
