"""The entry point uvicorn imports in each worker process."""

from __future__ import annotations

from starlette.types import ASGIApp

from couponry.app import create_app
from couponry.config import Settings


def build() -> ASGIApp:
    return create_app(Settings())
