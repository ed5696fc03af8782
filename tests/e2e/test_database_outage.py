"""A database that goes away: each request answers 503 with Retry-After, the client's keep-alive
connection survives, and the first request after the database is back succeeds (issue 8.7).

PostgreSQL is reached through a TCP proxy the test can cut: every open connection is closed
and new ones are refused, as during a restart. SQLite's outage is its write lock held past the
busy timeout by another process.
"""

from __future__ import annotations

import http.client
import json
import socket
import sqlite3
import threading
from contextlib import suppress
from typing import Any

import pytest
from sqlalchemy.engine import make_url
from starlette.testclient import TestClient

from couponry.app import create_app
from couponry.config import Settings
from couponry.services.coupons import create_coupon
from couponry.services.tenants import get_tenant
from couponry.store.db import Database, normalise_url
from couponry.store.migrate import upgrade
from tests.conftest import make_tenant, now, percent_coupon
from tests.e2e.server import cli_env, free_port, running_server

pytestmark = pytest.mark.slow


class CuttableProxy:
    """Forwards 127.0.0.1:<port> to PostgreSQL until `cut`, refuses everything until `restore`."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = free_port()
        self.lock = threading.Lock()
        self.sockets: list[socket.socket] = []
        self.listener: socket.socket | None = None
        self.restore()

    def restore(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self.listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def cut(self) -> None:
        assert self.listener is not None
        # shutdown wakes the thread blocked in accept() (close alone would not, on Linux).
        with suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)
        self.listener.close()  # new connections are refused
        with self.lock:
            for sock in self.sockets:
                with suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
            self.sockets.clear()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            with self.lock:
                self.sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        with suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        with suppress(OSError):
            sink.shutdown(socket.SHUT_WR)


def request(conn: http.client.HTTPConnection, path: str, key: str) -> tuple[int, Any, Any]:
    conn.request("GET", path, headers={"Authorization": key})
    reply = conn.getresponse()
    body = json.loads(reply.read())
    return reply.status, reply.headers, body


def test_postgres_outage_answers_503_and_keeps_the_connection(
    db: Database, database_url: str, backend: str
) -> None:
    if backend != "postgres":
        pytest.skip("the proxy stands in front of PostgreSQL; SQLite has its own test below")
    url = make_url(normalise_url(database_url))
    proxy = CuttableProxy((url.host or "127.0.0.1", url.port or 5432))
    through_proxy = url.set(host="127.0.0.1", port=proxy.port).render_as_string(False)
    tenant = make_tenant(db, prefix="outage")
    owner = get_tenant(db, tenant_id=tenant.tenant_id)
    coupon = create_coupon(db, tenant=owner, actor_id="t", doc=percent_coupon(), now=now())
    path = f"/coupons/{tenant.tenant_id}"
    # A scan (the key read on asyncpg, the page through SQLAlchemy) and one coupon (the hot
    # route: one asyncpg read): after the outage, neither pool hands out a dead connection.
    paths = [path, f"{path}/{coupon.id}"]
    with running_server(cli_env(through_proxy), workers=1) as server:
        port = int(server.base.rsplit(":", 1)[1])
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        for each in paths:
            status, _, _ = request(conn, each, tenant.admin)
            assert status == 200
        assert conn.sock is not None
        local = conn.sock.getsockname()

        proxy.cut()
        for _ in range(3):  # one failure per request, never the connection
            for each in paths:
                status, headers, body = request(conn, each, tenant.admin)
                assert status == 503, body
                assert headers["Retry-After"] == "1"
                assert body["error"]["code"] == "unavailable"
                assert "close" not in (headers.get("Connection") or "").lower()
                assert conn.sock is not None and conn.sock.getsockname() == local

        proxy.restore()
        for each in paths:
            status, _, body = request(conn, each, tenant.admin)
            assert status == 200, body
        assert conn.sock is not None and conn.sock.getsockname() == local
        assert "Traceback" not in server.output()
        conn.close()
    proxy.cut()


def test_sqlite_write_lock_past_the_busy_timeout_is_a_503(
    database_url: str, backend: str, tmp_path: Any
) -> None:
    if backend != "sqlite":
        pytest.skip("SQLite's write lock")
    url = f"sqlite:///{tmp_path / 'locked.db'}"

    database = Database.from_urls(url, busy_timeout_ms=200)
    upgrade(database.primary)
    tenant = make_tenant(database, prefix="locked")
    client = TestClient(create_app(Settings(database_url=url), database))
    headers = {"Authorization": tenant.admin}
    holder = sqlite3.connect(tmp_path / "locked.db", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another process holding the write lock
    try:
        reply = client.post(
            f"/coupons/{tenant.tenant_id}", json=percent_coupon(code="LOCKED-1"), headers=headers
        )
        assert reply.status_code == 503, reply.text
        assert reply.headers["retry-after"] == "1"
        assert reply.json()["error"]["code"] == "unavailable"
        # Reads go on under WAL while the writer waits.
        assert client.get(f"/coupons/{tenant.tenant_id}", headers=headers).json() == []
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    reply = client.post(
        f"/coupons/{tenant.tenant_id}", json=percent_coupon(code="LOCKED-1"), headers=headers
    )
    assert reply.status_code == 201, reply.text
    database.dispose()
