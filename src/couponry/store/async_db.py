"""The asynchronous way into the database, for the hot paths (issue 9).

PostgreSQL: asyncpg straight from the event loop (no thread hop, no SQLAlchemy between the
request and the driver), with a small pool of our own per worker (`Connections`): asyncpg's
`Pool` costs about 35 us of CPU per checkout here (a proxy object, a timeout context and an
inactivity timer armed and cancelled each time, measured against a bare connection), and it
would send a reset query on every release unless told not to (we change no session state).
SQLite: the plain `sqlite3` driver in worker threads, one connection per thread, so a write
lock held by another process waits in a thread and never stalls the event loop.

SQL is written once, with `:name` parameters; `Query` gives each driver its form.
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
import threading
from collections import deque
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager, suppress
from typing import Any

import asyncpg
from sqlalchemy.engine import make_url
from starlette.concurrency import run_in_threadpool

from couponry.store.db import is_sqlite, normalise_url

_PARAM = re.compile(r"(?<![:\w]):([a-z_][a-z0-9_]*)")


class Query:
    """One SQL text, with `:name` parameters, in the form each driver wants."""

    def __init__(self, sql: str) -> None:
        self.sqlite = sql
        names: list[str] = []

        def number(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in names:
                names.append(name)
            return f"${names.index(name) + 1}"

        self.postgres = _PARAM.sub(number, sql)
        self.names = tuple(names)

    def positional(self, params: Mapping[str, Any]) -> list[Any]:
        return [params[name] for name in self.names]


class AsyncTransaction:
    """Statements inside one PostgreSQL transaction (see `AsyncDatabase.transaction`)."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def fetchrow(self, query: Query, params: Mapping[str, Any]) -> Any:
        return await self._conn.fetchrow(query.postgres, *query.positional(params))

    async def execute(self, query: Query, params: Mapping[str, Any]) -> None:
        await self._conn.execute(query.postgres, *query.positional(params))

    @asynccontextmanager
    async def savepoint(self) -> AsyncIterator[None]:
        """A block whose statements are undone, and the rest of the transaction kept, if
        it raises."""
        async with self._conn.transaction():
            yield


class Connections:
    """At most `size` asyncpg connections of one event loop, lent one request at a time.

    A connection comes back to the idle list only in a known state: not closed, not inside a
    transaction, and not interrupted (a cancelled request may have left a statement half
    done, so its connection is closed instead). A refusal raised inside `transaction()` is
    fine: the transaction has rolled back by the time the connection is returned.
    """

    def __init__(self, connect: Any, size: int) -> None:
        self._connect = connect
        self._size = size
        self._open = 0  # connections that exist: idle or lent
        self._idle: deque[asyncpg.Connection] = deque()
        # Each waiter gets a connection, or None: "one was dropped, open your own".
        self._waiters: deque[asyncio.Future[asyncpg.Connection | None]] = deque()
        self._closed = False

    async def acquire(self) -> asyncpg.Connection:
        if self._closed:
            raise RuntimeError("the connections are closed")
        if self._idle:
            return self._idle.pop()
        if self._open >= self._size:
            waiter: asyncio.Future[asyncpg.Connection | None]
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                lent = await waiter
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled():
                    self._hand_on(waiter.result())  # given to us as we were cancelled
                raise
            if lent is not None:
                return lent
        self._open += 1
        try:
            conn: asyncpg.Connection = await self._connect()
        except BaseException:
            self._hand_on(None)
            raise
        return conn

    def release(self, conn: asyncpg.Connection, *, interrupted: bool = False) -> None:
        if interrupted or self._closed or conn.is_closed() or conn.is_in_transaction():
            conn.terminate()
            self._hand_on(None)
            return
        self._hand_on(conn)

    def _hand_on(self, conn: asyncpg.Connection | None) -> None:
        """Give a connection (or, for None, the right to open one) to the first waiter."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(conn)
                return
        if conn is None:
            self._open -= 1
        else:
            self._idle.append(conn)

    @asynccontextmanager
    async def lend(self) -> AsyncIterator[asyncpg.Connection]:
        conn = await self.acquire()
        try:
            yield conn
        except BaseException as exc:
            self.release(conn, interrupted=not isinstance(exc, Exception))
            raise
        self.release(conn)

    async def close(self) -> None:
        self._closed = True
        while self._idle:
            await self._idle.pop().close()

    def terminate(self) -> None:
        self._closed = True
        while self._idle:
            self._idle.pop().terminate()


def _drop(pool: Connections) -> None:
    """Close the connections of another (possibly closed) event loop without waiting."""
    with suppress(RuntimeError):  # its loop is closed: the sockets go with the garbage
        pool.terminate()


class AsyncDatabase:
    """`fetchrow` on the primary (or a replica): one statement, autocommit."""

    def __init__(self, url: str, *, pool_size: int = 10, busy_timeout_ms: int = 15000) -> None:
        self.url = normalise_url(url)
        self.sqlite = is_sqlite(self.url)
        self.pool_size = pool_size
        self.busy_timeout_ms = busy_timeout_ms
        self._pools: dict[asyncio.AbstractEventLoop, Connections] = {}
        self._local = threading.local()

    # --- PostgreSQL ---------------------------------------------------------------------

    def _dsn(self) -> str:
        return make_url(self.url).set(drivername="postgresql").render_as_string(False)

    def _postgres(self) -> Connections:
        """This event loop's connections. A server worker has one loop; tests may run several
        (an in-process client per thread), and a connection belongs to the loop that made it."""
        loop = asyncio.get_running_loop()
        pool = self._pools.get(loop)
        if pool is not None:
            return pool
        for other in [other for other in self._pools if other.is_closed()]:
            _drop(self._pools.pop(other))
        dsn = self._dsn()

        async def connect() -> asyncpg.Connection:
            return await asyncpg.connect(
                dsn,
                # The hot statements look rows up by unique keys, where PostgreSQL's cached
                # generic plan is right and planning each execution cost half a GET
                # (measured: 2,075 -> 4,060 req/s). A plan made while a table was tiny is
                # replaced within a minute: prepared statements are dropped after 60 s.
                max_cached_statement_lifetime=60,
            )

        pool = self._pools[loop] = Connections(connect, self.pool_size)
        return pool

    # --- SQLite -------------------------------------------------------------------------

    def _sqlite_connection(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            path = make_url(self.url).database or ":memory:"
            conn = sqlite3.connect(
                path,
                timeout=self.busy_timeout_ms / 1000,
                isolation_level=None,
                check_same_thread=False,
            )
            conn.row_factory = sqlite3.Row
            conn.execute(f"PRAGMA busy_timeout={int(self.busy_timeout_ms)}")
            conn.execute("PRAGMA foreign_keys=ON")
            self._local.conn = conn
        return conn

    def _sqlite_fetchrow(self, query: Query, params: Mapping[str, Any]) -> Any:
        cursor = self._sqlite_connection().execute(query.sqlite, dict(params))
        try:
            return cursor.fetchone()
        finally:
            cursor.close()

    # --- both ---------------------------------------------------------------------------

    async def fetchrow(self, query: Query, params: Mapping[str, Any]) -> Any:
        """The first row (mapping access by column name) or None."""
        if self.sqlite:
            return await run_in_threadpool(self._sqlite_fetchrow, query, params)
        pool = self._postgres()
        conn = await pool.acquire()  # not `lend()`: a context manager per read cost 4 us
        try:
            row = await conn.fetchrow(query.postgres, *query.positional(params))
        except BaseException as exc:
            pool.release(conn, interrupted=not isinstance(exc, Exception))
            raise
        pool.release(conn)
        return row

    async def execute(self, query: Query, params: Mapping[str, Any]) -> None:
        """One statement on its own (PostgreSQL), committed when it returns."""
        await self.fetchrow(query, params)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncTransaction]:
        """A PostgreSQL transaction, committed when the block ends, rolled back if it raises.

        SQLite's write transactions still run on the synchronous engine, in a thread, after
        the writer's turn (store/db.py).
        """
        if self.sqlite:
            raise RuntimeError("SQLite writes go through the synchronous Database")
        async with self._postgres().lend() as conn, conn.transaction():
            yield AsyncTransaction(conn)

    async def close(self) -> None:
        loop = asyncio.get_running_loop()
        for owner, pool in list(self._pools.items()):
            if owner is loop:
                await pool.close()
            else:  # another loop's pool: nothing of it can be awaited here
                _drop(pool)
        self._pools.clear()
