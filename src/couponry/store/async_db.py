"""The asynchronous way into the database, for the hot paths (issue 9).

PostgreSQL: asyncpg straight from the event loop (no thread hop, no SQLAlchemy between the
request and the driver), one small pool per worker that never overflows, without the reset
query asyncpg's pool otherwise sends on every release (we change no session state).
SQLite: the plain `sqlite3` driver in worker threads, one connection per thread, so a write
lock held by another process waits in a thread and never stalls the event loop.

SQL is written once, with `:name` parameters; `Query` gives each driver its form.
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
import threading
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager, suppress
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


def _drop(pool: asyncpg.Pool) -> None:
    """Close a pool of another (possibly closed) event loop without waiting for it."""
    with suppress(RuntimeError):  # its loop is closed: the sockets go with the garbage
        pool.terminate()


async def _no_reset(connection: asyncpg.Connection) -> None:
    """Released connections keep their (unchanged) session state: one round trip saved."""


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
        self._pools: dict[asyncio.AbstractEventLoop, asyncpg.Pool] = {}
        self._locks: dict[asyncio.AbstractEventLoop, asyncio.Lock] = {}
        self._local = threading.local()

    # --- PostgreSQL ---------------------------------------------------------------------

    def _dsn(self) -> str:
        return make_url(self.url).set(drivername="postgresql").render_as_string(False)

    async def _postgres(self) -> asyncpg.Pool:
        """This event loop's pool. A server worker has one loop; tests may run several (an
        in-process client per thread), and a pool belongs to the loop that made it."""
        loop = asyncio.get_running_loop()
        pool = self._pools.get(loop)
        if pool is not None:
            return pool
        for other in [other for other in self._pools if other.is_closed()]:
            _drop(self._pools.pop(other))
        lock = self._locks.setdefault(loop, asyncio.Lock())
        async with lock:
            pool = self._pools.get(loop)
            if pool is None:
                pool = await asyncpg.create_pool(
                    self._dsn(),
                    # Connections are opened as requests need them. With a floor, asyncpg
                    # reopens lost ones in the background while PostgreSQL is away, logging
                    # every failed attempt with a traceback; requests answer 503 meanwhile.
                    min_size=0,
                    max_size=self.pool_size,
                    reset=_no_reset,
                    # The hot statements look rows up by unique keys, where PostgreSQL's cached
                    # generic plan is right and planning each execution cost half a GET
                    # (measured: 2,075 -> 4,060 req/s). A plan made while a table was tiny is
                    # replaced within a minute: prepared statements are dropped after 60 s.
                    max_cached_statement_lifetime=60,
                )
                self._pools[loop] = pool
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
        try:
            pool = await self._postgres()
            async with pool.acquire() as conn:
                return await conn.fetchrow(query.postgres, *query.positional(params))
        except LOST_CONNECTION:
            self._lost()
            raise

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncTransaction]:
        """A PostgreSQL transaction, committed when the block ends, rolled back if it raises.

        SQLite's write transactions still run on the synchronous engine, in a thread, after
        the writer's turn (store/db.py).
        """
        if self.sqlite:
            raise RuntimeError("SQLite writes go through the synchronous Database")
        try:
            pool = await self._postgres()
            async with pool.acquire() as conn, conn.transaction():
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
        self._locks.clear()
