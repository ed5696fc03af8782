"""SQLite writers take turns through a lock file, across processes, before SQLite's own lock."""

from __future__ import annotations

import fcntl
import os
import threading
import time
from pathlib import Path

import pytest

from couponry.store.db import Database
from couponry.store.migrate import upgrade


def test_writers_of_two_databases_on_one_file_take_turns(tmp_path: Path) -> None:
    # Two Database objects open the lock file separately, as two server processes do: flock
    # excludes across open files, so this is the cross-process case.
    url = f"sqlite:///{tmp_path / 'turns.db'}"
    first, second = Database.from_urls(url), Database.from_urls(url)
    upgrade(first.primary)
    events: list[tuple[str, float]] = []
    inside = threading.Event()

    def hold() -> None:
        with first.transaction():
            events.append(("first in", time.monotonic()))
            inside.set()
            time.sleep(0.3)
            events.append(("first out", time.monotonic()))

    holder = threading.Thread(target=hold)
    holder.start()
    inside.wait(5)
    with second.transaction():
        events.append(("second in", time.monotonic()))
    holder.join()
    assert [name for name, _ in events] == ["first in", "first out", "second in"]
    assert (tmp_path / "turns.db-writer.lock").exists()
    first.dispose()
    second.dispose()


def test_the_turn_is_a_lock_another_process_sees(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'seen.db'}"
    database = Database.from_urls(url)
    upgrade(database.primary)
    lock_file = f"{tmp_path / 'seen.db'}-writer.lock"
    other = os.open(lock_file, os.O_RDWR | os.O_CREAT)
    try:
        with database.transaction(), pytest.raises(BlockingIOError):
            fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)  # free once the transaction ends
        fcntl.flock(other, fcntl.LOCK_UN)
    finally:
        os.close(other)
        database.dispose()


def test_an_in_memory_database_needs_no_lock_file(tmp_path: Path) -> None:
    database = Database.from_urls("sqlite://")
    with database.transaction() as conn:
        assert conn.exec_driver_sql("SELECT 1").scalar() == 1
    assert list(tmp_path.iterdir()) == []
    database.dispose()
