"""The entry point uvicorn imports in each worker process."""

from __future__ import annotations

import gc

from starlette.types import ASGIApp

from couponry.app import create_app
from couponry.config import Settings


def build() -> ASGIApp:
    app = create_app(Settings())
    # What start-up made (modules, the app, its routes and models: about 120,000 objects) lives
    # as long as the worker: out of the collector's generations, a full collection under load
    # does not walk it again each time.
    gc.collect()
    gc.freeze()
    return app
