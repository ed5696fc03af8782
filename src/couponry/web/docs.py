"""/docs from files installed with couponry, so it works without the internet.

FastAPI's default page loads Swagger UI from a CDN. The files come from the fastapi-offline
package (Swagger UI 5, which reads OpenAPI 3.1); only its static files are used. ReDoc is
not offered: its bundle loads its logo from Redocly's CDN.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.staticfiles import StaticFiles

ASSETS = "/docs/assets"


def docs_assets_dir() -> Path:
    return Path(str(files("fastapi_offline") / "static"))


def add_local_docs(app: FastAPI) -> None:
    app.mount(ASSETS, StaticFiles(directory=docs_assets_dir()), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def docs(request: Request) -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="couponry: API",
            swagger_js_url=f"{ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS}/favicon.png",
            # Swagger UI would otherwise send the document to swagger.io's online validator.
            swagger_ui_parameters={"validatorUrl": None},
        )
