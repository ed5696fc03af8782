"""Start the real `couponry` command as a user would, and wait for it."""

from __future__ import annotations

import os
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

COUPONRY = str(Path(sys.executable).with_name("couponry"))


@dataclass(frozen=True)
class Server:
    base: str
    log_path: Path
    pid: int

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cli(*args: str, env: dict[str, str], check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([COUPONRY, *args], env=env, capture_output=True, text=True, timeout=120)
    if check and result.returncode != 0:
        raise AssertionError(f"couponry {' '.join(args)} failed: {result.stderr}")
    return result


def cli_env(database_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COUPONRY_")}
    env["COUPONRY_DATABASE_URL"] = database_url
    env.update(extra)
    return env


@contextmanager
def running_server(
    env: dict[str, str],
    *,
    workers: int = 2,
    extra_args: tuple[str, ...] = (),
    tls_ca: str | None = None,
) -> Iterator[Server]:
    """`couponry serve` on a free port; yields it once /readyz answers 200."""
    port = free_port()
    scheme = "https" if tls_ca else "http"
    verify: Any = ssl.create_default_context(cafile=tls_ca) if tls_ca else True
    # A file, not a pipe: a full pipe would block the server's log writes.
    log = tempfile.NamedTemporaryFile("w+", prefix="couponry-serve-", suffix=".log")  # noqa: SIM115
    process = subprocess.Popen(
        [COUPONRY, "serve", "--port", str(port), "--workers", str(workers), *extra_args],
        env=env,
        stdout=log,
        stderr=log,
        text=True,
    )
    base = f"{scheme}://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if process.poll() is not None:
                log.seek(0)
                raise AssertionError(f"server exited: {log.read()[-4000:]}")
            try:
                if httpx.get(f"{base}/readyz", timeout=1, verify=verify).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        else:
            raise AssertionError("server did not become ready")
        yield Server(base, Path(log.name), process.pid)
    finally:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
