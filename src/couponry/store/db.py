"""Engine factory and the two ways in: a write transaction (unit of work) and a one-statement read.

SQLite: WAL, synchronous=NORMAL, busy_timeout, foreign keys, and every write transaction
`BEGIN IMMEDIATE` so two writers never both read then both try to write (that deadlocks
into "database is locked"). Reads run without BEGIN. PostgreSQL: psycopg 3, a small pool,
reads in autocommit (one round trip, no BEGIN/ROLLBACK).
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import asyncpg
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

_READ_OPTION = "couponry_read"


def normalise_url(url: str) -> str:
    """Accept `postgresql://` and `postgres://` without a driver suffix; we use psycopg 3."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


# PostgreSQL went away, as asyncpg (store/async_db.py) reports it: the connection failed or
# was lost (SQLSTATE class 08), the server is shutting down or starting up (57), or the socket
# was refused, reset or timed out before PostgreSQL said anything (OSError).
LOST_CONNECTION = (
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,
    OSError,
)
# The rest of what the async database's drivers report as SQLAlchemy's OperationalError would:
# too many connections, out of memory or disk (53), and sqlite3's locked or unusable file.
_ASYNC_UNAVAILABLE = (
    *LOST_CONNECTION,
    asyncpg.exceptions.InsufficientResourcesError,
    # Two transactions waited for each other and PostgreSQL rolled one back: nothing of it
    # was kept, so a retry is safe (psycopg's own reaches us as an OperationalError).
    asyncpg.exceptions.DeadlockDetectedError,
    sqlite3.OperationalError,
)


def is_unavailable(error: BaseException) -> bool:
    """True when the database cannot serve us right now (down, restarting, unreachable, the
    pool or SQLite's write lock busy past our wait): worth a retry, not a bug of ours."""
    if isinstance(error, sa_exc.DBAPIError) and error.connection_invalidated:
        return True
    if isinstance(error, _ASYNC_UNAVAILABLE):
        return True
    return isinstance(error, sa_exc.OperationalError | sa_exc.InterfaceError | sa_exc.TimeoutError)


def is_sqlite(url: str) -> bool:
    return make_url(normalise_url(url)).get_backend_name() == "sqlite"


def make_engine(url: str, *, pool_size: int = 8, busy_timeout_ms: int = 15000) -> Engine:
    url = normalise_url(url)
    if is_sqlite(url):
        return _sqlite_engine(url, busy_timeout_ms)
    return create_engine(
        url,
        # psycopg prepares a statement after a few runs, and PostgreSQL then may switch to a
        # generic plan: for a keyset scan `WHERE tenant_id = $1 AND seq > $2` that walks the
        # whole table by seq, and a plan made while a table was still small (a seq scan) stays
        # for the connection's life. Measured: GET fell from ~1,500 to 160 req/s. Plan each
        # execution for its own parameters instead.
        connect_args={"options": "-c plan_cache_mode=force_custom_plan"},
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_recycle=1800,
        pool_pre_ping=False,
    )


def _sqlite_engine(url: str, busy_timeout_ms: int) -> Engine:
    parsed = make_url(url)
    memory = parsed.database in (None, "", ":memory:")
    engine = create_engine(
        url,
        connect_args={"check_same_thread": False, "timeout": busy_timeout_ms / 1000},
        poolclass=NullPool if memory else None,
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Stop Python's sqlite3 from issuing its own BEGIN; we issue ours in _on_begin.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        if conn.get_execution_options().get(_READ_OPTION):
            return  # each read statement runs on its own
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


class _WriterTurn:
    """One SQLite writer at a time across this machine's processes: a thread lock, then an
    exclusive flock on `<database>-writer.lock` (in-memory databases need only the first)."""

    def __init__(self, engine: Engine) -> None:
        self._threads = threading.Lock()
        path = engine.url.database
        self._file = None if path in (None, "", ":memory:") else f"{path}-writer.lock"
        self._fd: int | None = None

    @contextmanager
    def held(self) -> Iterator[None]:
        with self._threads:
            if self._file is None:
                yield
                return
            if self._fd is None:
                self._fd = os.open(self._file, os.O_RDWR | os.O_CREAT, 0o600)
            fcntl.flock(self._fd, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


@contextmanager
def sqlite_writer_turn(engine: Engine) -> Iterator[None]:
    """The writers' turn for one piece of work (migrations: several processes start at once,
    and the first connection also switches a new file to WAL); nothing on PostgreSQL."""
    if engine.dialect.name != "sqlite":
        yield
        return
    turn = _WriterTurn(engine)
    try:
        with turn.held():
            yield
    finally:
        turn.close()


class Database:
    """The primary engine and an optional read replica."""

    def __init__(self, primary: Engine, replica: Engine | None = None) -> None:
        self.primary = primary
        self.replica = replica
        self.sqlite = primary.dialect.name == "sqlite"
        # SQLite has one writer at a time, and its busy handler polls for the lock with sleeps
        # of up to 100 ms: with several processes writing, a writer could wait most of a second
        # (measured: redeem p99 860 ms at 16 connections). So writers take turns first through
        # a lock file that the kernel hands over at once (flock), one thread per process.
        self._write_turn = _WriterTurn(primary) if self.sqlite else None

    @classmethod
    def from_urls(
        cls,
        url: str,
        replica_url: str | None = None,
        *,
        pool_size: int = 8,
        busy_timeout_ms: int = 15000,
    ) -> Database:
        primary = make_engine(url, pool_size=pool_size, busy_timeout_ms=busy_timeout_ms)
        replica = make_engine(replica_url, pool_size=pool_size) if replica_url else None
        return cls(primary, replica)

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """A write transaction: committed when the block ends normally, else rolled back."""
        if self._write_turn is None:
            with self.primary.begin() as conn:
                yield conn
            return
        with self._write_turn.held(), self.primary.begin() as conn:
            yield conn

    @contextmanager
    def reader(self, *, consistent: bool = True) -> Iterator[Connection]:
        """A connection for reads without a transaction; the replica when allowed."""
        engine = self.replica if (self.replica is not None and not consistent) else self.primary
        with engine.connect() as conn:
            if engine.dialect.name == "sqlite":
                conn = conn.execution_options(**{_READ_OPTION: True})
            else:
                conn = conn.execution_options(isolation_level="AUTOCOMMIT")
            yield conn

    def forget_connections(self) -> None:
        """The primary went away (the async database lost its connections): the pooled ones
        here are as dead, and found out only when next used (no pre-ping, for speed). Start
        afresh, so the first request after the database is back does not fail on one."""
        self.primary.dispose()

    def dispose(self) -> None:
        self.primary.dispose()
        if self.replica is not None:
            self.replica.dispose()
