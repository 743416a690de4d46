"""The flock that queues SQLite writers of several `serve` processes behind each other."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from shoprelay.store.dialects.sqlite import DIALECT, FileLock


def test_a_second_holder_waits_until_the_first_releases(tmp_path: Path) -> None:
    first, second = FileLock(str(tmp_path / "db-lock")), FileLock(str(tmp_path / "db-lock"))
    first.acquire()
    assert not second.try_acquire()
    acquired_at: list[float] = []
    waiter = threading.Thread(target=lambda: (second.acquire(), acquired_at.append(time.time())))
    waiter.start()
    time.sleep(0.2)
    assert not acquired_at, "the second holder got the lock while the first held it"
    released_at = time.time()
    first.release()
    waiter.join(timeout=5)
    assert acquired_at
    assert acquired_at[0] >= released_at
    second.release()
    assert first.try_acquire()
    first.release()
    first.close()
    second.close()


def test_only_a_database_file_gets_a_lock(tmp_path: Path) -> None:
    lock = DIALECT.writer_lock(f"sqlite+aiosqlite:///{tmp_path}/shoprelay.db")
    assert lock is not None
    assert (tmp_path / "shoprelay.db-lock").exists()
    lock.close()
    assert DIALECT.writer_lock("sqlite+aiosqlite:///:memory:") is None
    assert DIALECT.writer_lock("sqlite+aiosqlite://") is None
