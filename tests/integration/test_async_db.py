"""The async database's own machinery, on real databases: the pool of asyncpg connections
(`Connections`) and SQLite's writer (`SqliteWriter`). What a request sees of them is tested
everywhere else; this checks what only shows under pressure: at most `size` connections,
first come first served, nothing lost when a request is cancelled or a connection dies, and
a writer's turn never left held."""

from __future__ import annotations

import asyncio
import itertools
import sqlite3
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from couponry.store.async_db import AsyncDatabase, Connections, Query, SqliteWriter
from couponry.store.db import normalise_url


def _dsn(database_url: str) -> str:
    return normalise_url(database_url).replace("postgresql+psycopg://", "postgresql://")


def _connections(database_url: str, size: int) -> tuple[Connections, list[asyncpg.Connection]]:
    opened: list[asyncpg.Connection] = []

    async def connect() -> asyncpg.Connection:
        conn = await asyncpg.connect(_dsn(database_url))
        opened.append(conn)
        return conn

    return Connections(connect, size), opened


def test_at_most_size_connections_and_waiters_served_in_order(
    database_url: str, backend: str
) -> None:
    if backend != "postgres":
        pytest.skip("the asyncpg pool")

    async def scenario() -> None:
        pool, opened = _connections(database_url, 2)
        first, second = await pool.acquire(), await pool.acquire()
        order: list[int] = []

        async def wait(n: int) -> None:
            conn = await pool.acquire()
            order.append(n)
            pool.release(conn)

        waiting = [asyncio.create_task(wait(n)) for n in range(5)]
        await asyncio.sleep(0.05)
        assert order == [] and len(opened) == 2  # all five wait; nobody opened a third
        pool.release(first)
        pool.release(second)
        await asyncio.gather(*waiting)
        assert order == [0, 1, 2, 3, 4] and len(opened) == 2
        await pool.close()

    asyncio.run(scenario())


def test_a_cancelled_waiter_loses_no_connection(database_url: str, backend: str) -> None:
    if backend != "postgres":
        pytest.skip("the asyncpg pool")

    async def scenario() -> None:
        pool, opened = _connections(database_url, 1)
        held = await pool.acquire()
        waiter = asyncio.create_task(pool.acquire())
        await asyncio.sleep(0.01)
        pool.release(held)  # handed to the waiter...
        waiter.cancel()  # ...which is cancelled before it runs
        with pytest.raises(asyncio.CancelledError):
            await waiter
        again = await asyncio.wait_for(pool.acquire(), 2)  # not lost: lent again
        assert again is held and len(opened) == 1
        pool.release(again)
        await pool.close()

    asyncio.run(scenario())


def test_a_connection_in_doubt_is_not_lent_again(database_url: str, backend: str) -> None:
    if backend != "postgres":
        pytest.skip("the asyncpg pool")

    async def scenario() -> None:
        pool, opened = _connections(database_url, 1)
        async with pool.lend() as conn:
            assert await conn.fetchval("SELECT 1") == 1
        with pytest.raises(asyncpg.DivisionByZeroError):
            async with pool.lend() as conn:
                await conn.fetchval("SELECT 1 / 0")  # an error: the connection is still good
        async with pool.lend() as conn:
            assert conn is opened[0]
        task = asyncio.create_task(_sleep_in_sql(pool))
        await asyncio.sleep(0.2)
        task.cancel()  # cancelled mid-statement: that connection is closed, not reused
        with pytest.raises(asyncio.CancelledError):
            await task
        async with pool.lend() as conn:
            assert conn is not opened[0] and await conn.fetchval("SELECT 2") == 2
        assert opened[0].is_closed() and len(opened) == 2
        opened[1].terminate()  # lost while idle (as when PostgreSQL restarts): replaced
        async with pool.lend() as conn:
            assert conn is opened[2] and await conn.fetchval("SELECT 3") == 3
        await pool.close()

    asyncio.run(scenario())


async def _sleep_in_sql(pool: Connections) -> None:
    async with pool.lend() as conn:
        await conn.execute("SELECT pg_sleep(5)")


def test_a_lost_connection_frees_its_place(database_url: str, backend: str) -> None:
    if backend != "postgres":
        pytest.skip("the asyncpg pool")

    async def scenario() -> None:
        pool, _opened = _connections(database_url, 1)
        held = await pool.acquire()
        waiter = asyncio.create_task(pool.acquire())
        await asyncio.sleep(0.01)
        held.terminate()
        pool.release(held)  # closed: dropped, and the waiter opens its own
        fresh = await asyncio.wait_for(waiter, 5)
        assert fresh is not held and await fresh.fetchval("SELECT 1") == 1
        assert pool._open == 1  # the place passed on, not counted twice
        pool.release(fresh)
        await pool.close()

    asyncio.run(scenario())


# --- SQLite's writer ---------------------------------------------------------------------


def _writer_db(tmp_path: Path) -> str:
    path = tmp_path / "w.db"
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("CREATE TABLE t (n INTEGER)")
    return str(path)


INSERT = Query("INSERT INTO t (n) VALUES (:n)")


def test_writers_of_one_process_take_turns_in_order(tmp_path: Path) -> None:
    writer = SqliteWriter(_writer_db(tmp_path), 5000)
    order: list[int] = []

    async def write(n: int) -> None:
        async with writer.transaction() as tx:
            order.append(n)
            await tx.execute(INSERT, {"n": n})
            await asyncio.sleep(0)  # another writer may run now: it must still wait its turn

    async def scenario() -> None:
        await asyncio.gather(*(write(n) for n in range(20)))

    asyncio.run(scenario())
    writer.close()
    assert order == list(range(20))
    with sqlite3.connect(tmp_path / "w.db") as conn:
        assert conn.execute("SELECT count(*) FROM t").fetchone()[0] == 20


def test_a_failed_or_cancelled_writer_gives_its_turn_back(tmp_path: Path) -> None:
    path = _writer_db(tmp_path)
    writer = SqliteWriter(path, 5000)

    async def failing() -> None:
        async with writer.transaction() as tx:
            await tx.execute(INSERT, {"n": 1})
            raise RuntimeError("refused")

    async def slow() -> None:
        async with writer.transaction() as tx:
            await tx.execute(INSERT, {"n": 2})
            await asyncio.sleep(10)

    async def scenario() -> None:
        with pytest.raises(RuntimeError):
            await failing()
        task = asyncio.create_task(slow())
        await asyncio.sleep(0.2)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        async with writer.transaction() as tx:  # the turn is free again
            await tx.execute(INSERT, {"n": 3})

    asyncio.run(asyncio.wait_for(scenario(), 10))
    writer.close()
    with sqlite3.connect(path) as conn:
        assert [r[0] for r in conn.execute("SELECT n FROM t")] == [3]


def test_a_writer_waiting_for_another_process_leaves_the_loop_free(tmp_path: Path) -> None:
    """Another program holds SQLite's write lock: the writer waits in a thread, and the event
    loop goes on serving (here: a ticker that keeps ticking)."""
    path = _writer_db(tmp_path)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    writer = SqliteWriter(path, 5000)
    ticks: list[float] = []

    async def ticker(stop: asyncio.Event) -> None:
        while not stop.is_set():
            ticks.append(asyncio.get_running_loop().time())
            await asyncio.sleep(0.01)

    async def scenario() -> Any:
        stop = asyncio.Event()
        ticking = asyncio.create_task(ticker(stop))
        loop = asyncio.get_running_loop()
        loop.call_later(0.5, holder.execute, "ROLLBACK")
        async with writer.transaction() as tx:
            await tx.execute(INSERT, {"n": 7})
        stop.set()
        await ticking

    asyncio.run(scenario())
    writer.close()
    holder.close()
    assert len(ticks) > 20  # the loop kept running for the half second of waiting
    gaps = [b - a for a, b in itertools.pairwise(ticks)]
    assert max(gaps) < 0.2


def test_the_async_database_reads_what_its_writer_wrote(tmp_path: Path) -> None:
    path = _writer_db(tmp_path)
    adb = AsyncDatabase(f"sqlite:///{path}")

    async def scenario() -> Any:
        async with adb.transaction() as tx:
            await tx.execute(INSERT, {"n": 42})
        row = await adb.fetchrow(Query("SELECT n FROM t"), {})
        await adb.close()
        return row

    assert asyncio.run(scenario())["n"] == 42


def test_places_of_dropped_connections_are_counted_once(database_url: str, backend: str) -> None:
    """Connections dropped while others wait (cancelled statements, an outage) hand their
    place on; a pool that counted them twice would end with no connection and every request
    waiting for one forever."""
    if backend != "postgres":
        pytest.skip("the asyncpg pool")

    async def scenario() -> None:
        pool, opened = _connections(database_url, 2)
        for _ in range(5):
            held = [await pool.acquire(), await pool.acquire()]
            waiters = [asyncio.create_task(pool.acquire()) for _ in range(2)]
            await asyncio.sleep(0.01)
            for conn in held:
                pool.release(conn, interrupted=True)  # dropped: each waiter opens its own
            for conn in await asyncio.gather(*waiters):
                pool.release(conn)
            assert pool._open == 2
        for conn in opened:
            conn.terminate()  # every connection lost at once (PostgreSQL restarted)
        async with pool.lend() as conn:  # still served: lost idle ones are replaced
            assert await asyncio.wait_for(conn.fetchval("SELECT 1"), 5) == 1
        assert pool._open == 1
        await pool.close()

    asyncio.run(scenario())


def test_a_lost_connection_is_an_outage_not_a_fault(database_url: str, backend: str) -> None:
    """PostgreSQL ends the server side of the async database's connections: the next read
    fails as unavailable (503 for the caller), or succeeds on a fresh connection."""
    if backend != "postgres":
        pytest.skip("PostgreSQL's connections")
    from couponry.store.db import is_unavailable

    adb = AsyncDatabase(database_url, pool_size=2)
    one = Query("SELECT 1 AS one")

    async def scenario() -> list[str]:
        # Only this pool's own connection goes (others in the database serve other tests).
        pid = (await adb.fetchrow(Query("SELECT pg_backend_pid() AS pid"), {}))["pid"]
        killer = await asyncpg.connect(_dsn(database_url))
        await killer.execute("SELECT pg_terminate_backend($1)", pid)
        await killer.close()
        await asyncio.sleep(0.1)
        seen: list[str] = []
        for _ in range(4):
            try:
                seen.append(str((await adb.fetchrow(one, {}))["one"]))
            except Exception as exc:
                assert is_unavailable(exc), repr(exc)
                seen.append("unavailable")
        await adb.close()
        return seen

    seen = asyncio.run(scenario())
    assert seen[-1] == "1" and set(seen) <= {"1", "unavailable"}


def test_a_writer_cancelled_while_waiting_for_its_turn_gives_it_back(tmp_path: Path) -> None:
    path = _writer_db(tmp_path)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another program holds SQLite's write lock
    writer = SqliteWriter(path, 5000)

    async def scenario() -> None:
        async def write() -> None:
            async with writer.transaction() as tx:
                await tx.execute(INSERT, {"n": 1})

        waiting = asyncio.create_task(write())
        await asyncio.sleep(0.2)
        waiting.cancel()  # cancelled while BEGIN IMMEDIATE waits in its thread
        asyncio.get_running_loop().call_later(0.3, holder.execute, "ROLLBACK")
        with pytest.raises(asyncio.CancelledError):
            await waiting
        async with writer.transaction() as tx:  # the turn it took meanwhile was given back
            await tx.execute(INSERT, {"n": 2})

    asyncio.run(asyncio.wait_for(scenario(), 10))
    writer.close()
    holder.close()
    with sqlite3.connect(path) as conn:
        assert [r[0] for r in conn.execute("SELECT n FROM t")] == [2]
