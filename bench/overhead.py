"""What observability costs per request, measured in-process as a worker runs it: the request
id, the access line (JSON, written to /dev/null here) and the Prometheus metrics (multiprocess
mode, as `couponry serve` sets it up), around an app that answers at once, against that app
alone. Run as its own process (bench/run.py does), so the metrics directory is set before
prometheus_client is imported, as in a worker."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
import time
from typing import Any

REQUESTS = 20_000


def main() -> None:
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="couponry-bench-metrics-")
    sys.stderr = open(os.devnull, "w")  # noqa: SIM115 (the access lines go nowhere)

    from couponry.web.observability import ObservabilityMiddleware, configure_logging

    configure_logging("info")

    async def bare(scope: Any, receive: Any, send: Any) -> None:
        scope["route"] = type("R", (), {"path": "/coupons/{tenantId}/{coupon_id}"})()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    observed = ObservabilityMiddleware(bare)
    scope = {
        "type": "http",
        "method": "GET",
        "path": "/coupons/acme/abcd-0123-4567-89ab",
        "headers": [(b"authorization", b"key")],
        "client": ("127.0.0.1", 1),
    }

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        return None

    async def cost(app: Any) -> float:
        for _ in range(1000):
            await app(dict(scope), receive, send)
        started = time.process_time()
        for _ in range(REQUESTS):
            await app(dict(scope), receive, send)
        return (time.process_time() - started) / REQUESTS * 1e6

    async def measure() -> dict[str, float]:
        bare_us = min([await cost(bare) for _ in range(3)])
        observed_us = min([await cost(observed) for _ in range(3)])
        return {"bare_us": bare_us, "observed_us": observed_us, "cost_us": observed_us - bare_us}

    print(json.dumps(asyncio.run(measure())))


if __name__ == "__main__":
    main()
