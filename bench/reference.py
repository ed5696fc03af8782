"""The lean reference peer (../shared/reference/peer.py), measured in the same run as couponry.

Like pgbench, it is a measuring stick, not part of couponry: when the file is present, `make
bench` starts it with 2 workers on a database of its own, loads the same number of coupons,
and drives it with the same wrk scripts and settings as couponry. Without it the bench still
runs and the report says the reference was not measured.
"""

from __future__ import annotations

import os
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
PEER = Path(os.environ.get("COUPONRY_BENCH_REFERENCE", ROOT.parent / "shared/reference/peer.py"))
PEER_DB = "couponry_bench_reference"
# Made by `make bench` from bench/reference-requirements.txt.
PEER_PYTHON = ROOT / ".venv-reference" / "bin" / "python"
TENANT = "acme"


def available() -> bool:
    return PEER.is_file() and PEER_PYTHON.is_file()


def _free_port() -> int:
    # The peer accepts ports 8200-8299 only.
    for port in range(8200, 8300):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port in 8200-8299 for the reference peer")


@contextmanager
def serving(database_url: str) -> Iterator[tuple[str, int]]:
    port = _free_port()
    process = subprocess.Popen(
        [str(PEER_PYTHON), str(PEER), "--db", database_url, "--port", str(port), "--workers", "2"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError("the reference peer exited")
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        else:
            raise RuntimeError("the reference peer did not start")
        yield base, process.pid
    finally:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()


@dataclass
class Peer:
    """The running peer: where it listens, its pid (for CPU figures) and its scenarios."""

    base: str
    pid: int
    url: str
    plan: dict[str, tuple[str, dict[str, str]]]  # scenario -> (wrk script, environment)


@contextmanager
def started(spread: int, make_db: Callable[[str], str]) -> Iterator[Peer | None]:
    """The peer on a fresh database of its own, loaded with `spread` coupons and HOT-1; None
    when it is not available. couponry's bench drives it scenario by scenario, alternating
    with couponry's own rounds (bench/run.py)."""
    if not available():
        print(f"  reference peer not measured: {PEER} or {PEER_PYTHON} missing", flush=True)
        yield None
        return
    url = make_db(PEER_DB)
    with tempfile.TemporaryDirectory() as tmp, serving(url) as (base, pid):
        key = httpx.post(f"{base}/_setup/key", json={"tenant_id": TENANT}).json()["key"]
        made: list[dict[str, Any]] = httpx.post(
            f"{base}/_setup/coupons",
            json={"tenant_id": TENANT, "n": spread, "prefix": "SPREAD-"},
            timeout=120,
        ).json()
        httpx.post(
            f"{base}/_setup/coupon", json={"tenant_id": TENANT, "code": "HOT-1"}
        ).raise_for_status()
        ids = Path(tmp) / "ids.txt"
        ids.write_text("\n".join(c["id"] for c in made))
        codes = Path(tmp) / "codes.txt"
        codes.write_text("\n".join(c["code"] for c in made))
        common = {"BENCH_TENANT": TENANT, "BENCH_KEY": key}
        redeem = {**common, "BENCH_PATH": f"/redemptions/{TENANT}"}
        yield Peer(
            base,
            pid,
            url,
            {
                "hello": ("hello.lua", common),
                "get": ("get.lua", {**common, "BENCH_IDS_FILE": str(ids)}),
                "redeem_spread": ("cart.lua", {**redeem, "BENCH_CODES_FILE": str(codes)}),
                "redeem_hot": ("cart.lua", {**redeem, "BENCH_CODE": "HOT-1"}),
            },
        )
