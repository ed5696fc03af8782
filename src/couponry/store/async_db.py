"""The asynchronous way into the database, for the hot paths (issue 9).

PostgreSQL: asyncpg straight from the event loop (no thread hop, no SQLAlchemy between the
request and the driver), with a small pool of our own per worker (`Connections`): asyncpg's
`Pool` costs about 35 us of CPU per checkout here (a proxy object, a timeout context and an
inactivity timer armed and cancelled each time, measured against a bare connection), and it
would send a reset query on every release unless told not to (we change no session state).
SQLite: reads with the plain `sqlite3` driver in worker threads, one connection per thread;
write transactions through `SqliteWriter`, which waits for the writer's turn in a thread (so
a write lock held by another process never stalls the event loop) and then runs the
statements on the loop.

SQL is written once, with `:name` parameters; `Query` gives each driver its form.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import re
import sqlite3
import threading
from collections import deque
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager, suppress
from datetime import UTC, date, datetime
from typing import Any

import asyncpg
from sqlalchemy.engine import make_url
from starlette.concurrency import run_in_threadpool

from couponry.store.db import LOST_CONNECTION, is_sqlite, normalise_url

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
        while self._idle:
            idle = self._idle.pop()
            if not idle.is_closed():
                return idle
            self._open -= 1  # lost while idle (PostgreSQL went away): open another
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
            # Handed the place of a connection that was dropped: `_open` counts it already.
        else:
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
            self.release(conn, interrupted=_interrupted(exc))
            _raise_if_lost(exc, conn)
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


def sqlite_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """Instants as the tables store them on SQLite (SQLAlchemy's text form: UTC, always six
    fractional digits; days as ISO dates), so rows written here and there compare and read
    back alike."""
    return {
        name: _stored_instant(value)
        if isinstance(value, datetime)
        else value.isoformat()
        if isinstance(value, date)
        else value
        for name, value in params.items()
    }


def _stored_instant(value: datetime) -> str:
    if value.tzinfo is not None:  # naive ones are UTC already
        value = value.astimezone(UTC)
    return value.replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")


class SqliteTransaction:
    """Statements inside one SQLite write transaction, run on the event loop: the writer's
    turn is already held, so none of them waits for a lock, and each takes microseconds."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    async def fetchrow(self, query: Query, params: Mapping[str, Any]) -> Any:
        cursor = self._conn.execute(query.sqlite, sqlite_params(params))
        try:
            return cursor.fetchone()
        finally:
            cursor.close()

    async def execute(self, query: Query, params: Mapping[str, Any]) -> None:
        self._conn.execute(query.sqlite, sqlite_params(params)).close()

    @asynccontextmanager
    async def savepoint(self) -> AsyncIterator[None]:
        self._conn.execute("SAVEPOINT claim")
        try:
            yield
        except BaseException:
            self._conn.execute("ROLLBACK TO claim")
            self._conn.execute("RELEASE claim")
            raise
        self._conn.execute("RELEASE claim")


class SqliteWriter:
    """This process's SQLite writes on the async path, one at a time, first come first served:
    an asyncio lock in the process (fair, unlike a thread lock), then the machine-wide turn
    (an exclusive flock on `<database>-writer.lock`, as the synchronous writers take it, see
    store/db.py) and `BEGIN IMMEDIATE`, both in a worker thread, so a wait never stalls the
    event loop. The statements then run on the loop, and COMMIT and the unlock go back to a
    thread (a commit may checkpoint the WAL). Measured: the write lock is held about a fifth
    as long as by a SQLAlchemy transaction in a thread, where each statement also waited for
    the GIL."""

    def __init__(self, path: str, busy_timeout_ms: int) -> None:
        self._path = path
        self._busy_timeout_ms = busy_timeout_ms
        self._lock_file = None if path in ("", ":memory:") else f"{path}-writer.lock"
        self._threads = threading.Lock()
        self._holding = False  # the turn is taken and a transaction begun
        self._fd: int | None = None
        self._conn: sqlite3.Connection | None = None
        self._turns: dict[asyncio.AbstractEventLoop, asyncio.Lock] = {}

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            self._conn = _sqlite_connect(self._path, self._busy_timeout_ms)
        return self._conn

    def _begin(self) -> None:
        # A server worker has one event loop; tests run several in one process (a client per
        # thread), and they share this connection: a thread lock keeps their turns apart too.
        self._threads.acquire()
        try:
            if self._lock_file is not None:
                if self._fd is None:
                    self._fd = os.open(self._lock_file, os.O_RDWR | os.O_CREAT, 0o600)
                fcntl.flock(self._fd, fcntl.LOCK_EX)
        except BaseException:
            self._threads.release()
            raise
        try:
            self._connection().execute("BEGIN IMMEDIATE")
        except BaseException:
            self._unlock()
            raise
        self._holding = True

    def _end(self, commit: bool) -> None:
        conn = self._connection()
        try:
            if commit:
                try:
                    conn.execute("COMMIT")
                except BaseException:
                    if conn.in_transaction:  # the connection is shared: leave none open
                        conn.execute("ROLLBACK")
                    raise
            elif conn.in_transaction:
                conn.execute("ROLLBACK")
        finally:
            self._unlock()

    def _unlock(self) -> None:
        self._holding = False
        try:
            if self._fd is not None:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._threads.release()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[SqliteTransaction]:
        turn = self._turns.setdefault(asyncio.get_running_loop(), asyncio.Lock())
        async with turn:
            try:
                await _to_the_end(self._begin)
            except asyncio.CancelledError:
                # Cancelled while the turn was being taken: it was taken all the same (the
                # thread ran on), unless taking it failed; either way, give it back.
                if self._holding:
                    await _to_the_end(self._end, False)
                raise
            try:
                yield SqliteTransaction(self._connection())
            except BaseException:
                await _to_the_end(self._end, False)
                raise
            await _to_the_end(self._end, True)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


async def _to_the_end(fn: Callable[..., None], *args: Any) -> None:
    """Run `fn` in a worker thread and wait for it to finish even through cancellations (a lock
    taken or a transaction begun in that thread must not be left behind), then re-raise the
    cancellation; or `fn`'s own failure."""
    done = asyncio.ensure_future(run_in_threadpool(fn, *args))
    cancelled = False
    while not done.done():
        try:
            await asyncio.shield(done)
        except asyncio.CancelledError:
            cancelled = True
        except Exception:
            break
    if cancelled:
        raise asyncio.CancelledError
    done.result()


def _sqlite_connect(path: str, busy_timeout_ms: int) -> sqlite3.Connection:
    conn = sqlite3.connect(
        path or ":memory:",
        timeout=busy_timeout_ms / 1000,
        isolation_level=None,
        check_same_thread=False,
    )
    conn.row_factory = sqlite3.Row
    conn.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
    conn.execute("PRAGMA foreign_keys=ON")
    return conn


def _raise_if_lost(error: BaseException, conn: asyncpg.Connection) -> None:
    """A failure after which the connection is closed is a lost connection, whatever asyncpg
    called it (after PostgreSQL dropped an idle connection it may say "another operation is
    in progress"): the caller answers 503, as for any outage."""
    if isinstance(error, LOST_CONNECTION):
        raise error
    if isinstance(error, Exception) and conn.is_closed():
        raise ConnectionResetError("the database connection was lost") from error


def _interrupted(error: BaseException) -> bool:
    """A connection that saw this may be mid-statement or gone: it is not lent again."""
    return not isinstance(error, Exception) or isinstance(error, LOST_CONNECTION)


def _drop(pool: Connections) -> None:
    """Close the connections of another (possibly closed) event loop without waiting."""
    with suppress(RuntimeError):  # its loop is closed: the sockets go with the garbage
        pool.terminate()


class AsyncDatabase:
    """`fetchrow` on the primary (or a replica): one statement, autocommit."""

    def __init__(
        self,
        url: str,
        *,
        pool_size: int = 10,
        busy_timeout_ms: int = 15000,
        on_lost: Callable[[], None] | None = None,
    ) -> None:
        self.url = normalise_url(url)
        self.sqlite = is_sqlite(self.url)
        self.pool_size = pool_size
        self.busy_timeout_ms = busy_timeout_ms
        # Told when PostgreSQL went away: the synchronous engine's pool then starts afresh too.
        self.on_lost = on_lost
        self._pools: dict[asyncio.AbstractEventLoop, Connections] = {}
        self._local = threading.local()
        self._writer: SqliteWriter | None = None

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
        # Tests run loops in several threads at once: each takes its own snapshot, and a pool
        # another thread dropped first is simply gone.
        for other, gone in list(self._pools.items()):
            if other.is_closed() and self._pools.pop(other, None) is not None:
                _drop(gone)
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
            conn = self._local.conn = _sqlite_connect(self._sqlite_path(), self.busy_timeout_ms)
        return conn

    def _sqlite_writer(self) -> SqliteWriter:
        if self._writer is None:
            self._writer = SqliteWriter(self._sqlite_path(), self.busy_timeout_ms)
        return self._writer

    def _sqlite_path(self) -> str:
        return make_url(self.url).database or ":memory:"

    def _sqlite_fetchrow(self, query: Query, params: Mapping[str, Any]) -> Any:
        cursor = self._sqlite_connection().execute(query.sqlite, sqlite_params(params))
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
        try:
            conn = await pool.acquire()  # not `lend()`: a context manager per read cost 4 us
        except LOST_CONNECTION:
            self._lost()
            raise
        try:
            row = await conn.fetchrow(query.postgres, *query.positional(params))
        except BaseException as exc:
            pool.release(conn, interrupted=_interrupted(exc))
            try:
                _raise_if_lost(exc, conn)
            except LOST_CONNECTION:
                self._lost()
                raise
            raise
        pool.release(conn)
        return row

    async def execute(self, query: Query, params: Mapping[str, Any]) -> None:
        """One statement on its own (PostgreSQL), committed when it returns."""
        await self.fetchrow(query, params)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncTransaction | SqliteTransaction]:
        """A write transaction, committed when the block ends, rolled back if it raises. On
        SQLite it waits for the writer's turn first (`SqliteWriter`)."""
        if self.sqlite:
            async with self._sqlite_writer().transaction() as tx:
                yield tx
            return
        try:
            async with self._postgres().lend() as conn, conn.transaction():
                yield AsyncTransaction(conn)
        except LOST_CONNECTION:
            self._lost()
            raise

    def _lost(self) -> None:
        if self.on_lost is not None:
            self.on_lost()

    async def close(self) -> None:
        loop = asyncio.get_running_loop()
        for owner, pool in list(self._pools.items()):
            if owner is loop:
                await pool.close()
            else:  # another loop's pool: nothing of it can be awaited here
                _drop(pool)
        self._pools.clear()
        if self._writer is not None:
            self._writer.close()
            self._writer = None
