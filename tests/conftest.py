"""Fixtures: one database per backend per run, built by the real migrations.

Every test works in tenants of its own (fresh ids), so tests never see each other's rows and
need no cleanup. PostgreSQL runs when COUPONRY_TEST_POSTGRES_URL is set; with
COUPONRY_REQUIRE_POSTGRES=1 a missing or unreachable server fails the run instead of skipping.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from couponry.config import Settings
from couponry.services import tenants as tenant_svc
from couponry.store.db import Database, normalise_url
from couponry.store.migrate import upgrade

POSTGRES_URL = os.environ.get("COUPONRY_TEST_POSTGRES_URL")
REQUIRE_POSTGRES = os.environ.get("COUPONRY_REQUIRE_POSTGRES") == "1"
BACKENDS = ["sqlite", "postgres"]


def _create_pg_database(admin_url: str) -> str:
    name = f"couponry_test_{os.getpid()}_{secrets.token_hex(3)}"
    engine = create_engine(normalise_url(admin_url), isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return (
        make_url(normalise_url(admin_url)).set(database=name).render_as_string(hide_password=False)
    )


def _drop_pg_database(admin_url: str, url: str) -> None:
    name = make_url(url).database
    engine = create_engine(normalise_url(admin_url), isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    engine.dispose()


@pytest.fixture(scope="session")
def database_urls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    urls = {"sqlite": f"sqlite:///{tmp_path_factory.mktemp('db') / 'couponry.db'}"}
    pg_url = None
    if POSTGRES_URL:
        try:
            pg_url = _create_pg_database(POSTGRES_URL)
            urls["postgres"] = pg_url
        except Exception as exc:
            if REQUIRE_POSTGRES:
                raise RuntimeError(f"PostgreSQL is required but unusable: {exc}") from exc
    elif REQUIRE_POSTGRES:
        raise RuntimeError("COUPONRY_REQUIRE_POSTGRES=1 but COUPONRY_TEST_POSTGRES_URL is unset")
    yield urls
    _close_clients()  # before the database goes: their pools would try to reconnect to it
    if pg_url and POSTGRES_URL:
        _drop_pg_database(POSTGRES_URL, pg_url)


_databases: dict[str, Database] = {}


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, database_urls: dict[str, str]) -> str:
    if request.param not in database_urls:
        pytest.skip("set COUPONRY_TEST_POSTGRES_URL to run the PostgreSQL tests")
    return str(request.param)


@pytest.fixture
def database_url(backend: str, database_urls: dict[str, str]) -> str:
    return database_urls[backend]


@pytest.fixture
def empty_url(backend: str, tmp_path: Path) -> Iterator[str]:
    """A database of its own with no schema yet (migration tests)."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    assert POSTGRES_URL
    url = _create_pg_database(POSTGRES_URL)
    yield url
    _drop_pg_database(POSTGRES_URL, url)


@pytest.fixture
def db(database_url: str) -> Database:
    """A migrated database shared by the whole run (one per backend)."""
    if database_url not in _databases:
        database = Database.from_urls(database_url, pool_size=10)
        upgrade(database.primary)
        _databases[database_url] = database
    return _databases[database_url]


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if POSTGRES_URL:
        return
    terminalreporter.write_line(
        "PostgreSQL tests were skipped (COUPONRY_TEST_POSTGRES_URL is unset). To run them too:\n"
        "  COUPONRY_TEST_POSTGRES_URL=postgresql://USER@HOST:5432/DB make test\n"
        "(each run creates and drops a database of its own, so the user needs CREATEDB).",
        yellow=True,
    )


def _close_clients() -> None:
    for test_client in _clients.values():
        test_client.__exit__(None, None, None)  # type: ignore[attr-defined]
    _clients.clear()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    _close_clients()
    for database in _databases.values():
        database.dispose()
    _databases.clear()


def now() -> datetime:
    return datetime.now(UTC)


@dataclass
class TenantKeys:
    tenant_id: str
    admin: str
    checkout: str
    read: str


def make_tenant(
    db: Database, *, prefix: str = "t", admins: tuple[str, ...] = ("admin",)
) -> TenantKeys:
    tenant_id = f"{prefix}-{secrets.token_hex(5)}"
    tenant_svc.create_tenant(
        db,
        tenant_id=tenant_id,
        name=f"Tenant {tenant_id}",
        site_urls=[f"{tenant_id}.example.org"],
        admins=list(admins),
        currency="USD",
        now=now(),
    )
    keys = {
        role: tenant_svc.create_key(db, tenant_id=tenant_id, role=role, now=now())
        for role in ("admin", "checkout", "read")
    }
    return TenantKeys(tenant_id, keys["admin"], keys["checkout"], keys["read"])


@pytest.fixture
def tenant(db: Database) -> TenantKeys:
    return make_tenant(db)


@pytest.fixture
def other_tenant(db: Database) -> TenantKeys:
    return make_tenant(db, prefix="o")


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(database_url=database_url)


REPO_ROOT = Path(__file__).resolve().parents[1]


_clients: dict[str, object] = {}


class Api:
    """A thin wrapper over the in-process client that adds a key and JSON bodies."""

    def __init__(self, client: object, key: str | None = None) -> None:
        from starlette.testclient import TestClient

        assert isinstance(client, TestClient)
        self.client = client
        self.key = key

    def as_key(self, key: str | None) -> Api:
        return Api(self.client, key)

    def request(self, method: str, path: str, **kwargs: object):  # type: ignore[no-untyped-def]
        headers = dict(kwargs.pop("headers", None) or {})  # type: ignore[call-overload]
        if self.key is not None and "Authorization" not in headers:
            headers["Authorization"] = self.key
        return self.client.request(method, path, headers=headers, **kwargs)  # type: ignore[arg-type]

    def get(self, path: str, **kw: object):  # type: ignore[no-untyped-def]
        return self.request("GET", path, **kw)

    def post(self, path: str, **kw: object):  # type: ignore[no-untyped-def]
        return self.request("POST", path, **kw)

    def put(self, path: str, **kw: object):  # type: ignore[no-untyped-def]
        return self.request("PUT", path, **kw)

    def patch(self, path: str, **kw: object):  # type: ignore[no-untyped-def]
        return self.request("PATCH", path, **kw)

    def delete(self, path: str, **kw: object):  # type: ignore[no-untyped-def]
        return self.request("DELETE", path, **kw)


@pytest.fixture
def client(db: Database, database_url: str):  # type: ignore[no-untyped-def]
    from starlette.testclient import TestClient

    from couponry.app import create_app

    if database_url not in _clients:
        app = create_app(Settings(database_url=database_url), db)
        test_client = TestClient(app, raise_server_exceptions=False)
        # Entered once: every request of the run shares one event loop, as in a worker (the
        # asyncpg pool belongs to the loop that made it).
        test_client.__enter__()
        _clients[database_url] = test_client
    return _clients[database_url]


@pytest.fixture
def api(client: object, tenant: TenantKeys) -> Api:
    """Calls as the tenant's admin key."""
    return Api(client, tenant.admin)


def percent_coupon(**overrides: object) -> dict[str, object]:
    body: dict[str, object] = {"coupon_type": "PERCENT", "value_percent": 10}
    body.update(overrides)
    return body


@pytest.fixture
def edubrite(client: object, tenant: TenantKeys):  # type: ignore[no-untyped-def]
    """A connected EduBrite session for the tenant's admin key, over the in-process app."""
    from tests.edubrite_client import EduBriteConnection

    key_id, secret = tenant.admin.split(".")
    connection = EduBriteConnection(client, "http://testserver", key_id, secret)  # type: ignore[arg-type]
    assert connection.connect()
    return connection
