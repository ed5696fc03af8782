"""/docs from Swagger UI files installed with couponry, so it works without the internet.

FastAPI's default page loads Swagger UI from a CDN. The files come from the
drf-spectacular-sidecar package (Swagger UI 5, which reads OpenAPI 3.1), found without
importing it: its __init__ imports Django, which couponry never loads.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.staticfiles import StaticFiles

ASSETS = "/docs/assets"


def swagger_ui_dir() -> Path:
    spec = importlib.util.find_spec("drf_spectacular_sidecar")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("drf-spectacular-sidecar is not installed (see pyproject.toml)")
    root = Path(next(iter(spec.submodule_search_locations)))
    return root / "static" / "drf_spectacular_sidecar" / "swagger-ui-dist"


def add_local_docs(app: FastAPI) -> None:
    app.mount(ASSETS, StaticFiles(directory=swagger_ui_dir()), name="swagger-ui")

    @app.get("/docs", include_in_schema=False)
    async def docs(request: Request) -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="couponry: API",
            swagger_js_url=f"{ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS}/favicon-32x32.png",
        )
