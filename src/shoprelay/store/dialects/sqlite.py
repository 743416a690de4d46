"""SQLite: WAL, a busy timeout, BEGIN IMMEDIATE for writes, claim by UPDATE … RETURNING."""

from __future__ import annotations

import fcntl
import os
from typing import Any

from sqlalchemy import Engine, Select, Table, create_engine, event, make_url
from sqlalchemy.dialects.sqlite import insert

READ_ONLY = "shoprelay_read_only"


class SQLiteDialect:
    name = "sqlite"
    single_writer = True

    def engine_options(self) -> dict[str, Any]:
        return {"connect_args": {"timeout": 30}}

    def configure(self, engine: Engine) -> None:
        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_connection: Any, _record: Any) -> None:
            # Take over BEGIN from pysqlite so that writes can lock up front.
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=FULL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Any) -> None:
            # IMMEDIATE: a writer that only locks at its first write can deadlock another.
            mode = "DEFERRED" if conn.get_execution_options().get(READ_ONLY) else "IMMEDIATE"
            conn.exec_driver_sql(f"BEGIN {mode}")

    def writer_engine(self, url: str) -> Engine:
        """A synchronous engine for batched writes: a whole transaction in one thread hop,
        where aiosqlite pays a hop per statement."""
        engine = create_engine(
            url.replace("+aiosqlite", "+pysqlite", 1),
            hide_parameters=True,
            pool_size=1,
            connect_args={"timeout": 30, "check_same_thread": False},
        )
        self.configure(engine)
        return engine

    def writer_lock(self, url: str) -> FileLock | None:
        database = make_url(url).database
        if not database or database == ":memory:" or database.startswith("file:"):
            return None
        return FileLock(f"{database}-lock")

    def insert(self, table: Table) -> Any:
        return insert(table)

    def claimable(self, query: Select[Any]) -> Select[Any]:
        # BEGIN IMMEDIATE already excludes every other writer.
        return query


class FileLock:
    """flock on a file beside the database, for `serve --workers N` on one SQLite file.

    SQLite's busy handler makes a waiting writer sleep and retry (up to 100 ms a time), so
    the other process can keep the lock for long stretches; the kernel queues flock waiters
    and wakes one as soon as the lock is free.
    """

    def __init__(self, path: str) -> None:
        # Opened per process (after any fork): flock belongs to the open file, not the path.
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)

    def acquire(self) -> None:
        fcntl.flock(self._fd, fcntl.LOCK_EX)

    def try_acquire(self) -> bool:
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def release(self) -> None:
        fcntl.flock(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        os.close(self._fd)


DIALECT = SQLiteDialect()
