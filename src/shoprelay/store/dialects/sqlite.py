"""SQLite: WAL, a busy timeout, BEGIN IMMEDIATE for writes, claim by UPDATE … RETURNING."""

from __future__ import annotations

import fcntl
import functools
import os
import sqlite3
from collections.abc import Mapping, Sequence
from typing import Any

import orjson
from sqlalchemy import (
    Connection,
    Engine,
    Select,
    Table,
    Text,
    bindparam,
    cast,
    create_engine,
    event,
    func,
    make_url,
    select,
)
from sqlalchemy.dialects.sqlite import insert
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import UnaryExpression
from sqlalchemy.sql.operators import custom_op

from shoprelay.errors import ConfigError
from shoprelay.store.dialects import READ_ONLY, RELAXED_COMMIT

# WAL commits: FULL syncs the log at each commit, NORMAL leaves it to the next sync.
DURABLE, RELAXED = "FULL", "NORMAL"
SYNCHRONOUS = "shoprelay_synchronous"  # what this connection is set to, in its pool record
# RETURNING, which claims, dead letters and enqueues use, came in 3.35.
OLDEST_SQLITE = (3, 35, 0)
# Bound parameters per statement where the driver cannot tell: SQLite's default since 3.32.
MAX_PARAMETERS = 32_766
# Most rows in one multi-row INSERT. pysqlite keeps a connection's last 128 prepared
# statements, and a prepared statement's program grows with its rows (over 2 KiB a row of
# the outbox). Sized to each group, nearly every group's text was new, and the writer's one
# connection kept up to 128 of them, MiBs each, for its life. Sizes in powers of two up to
# this, and fewer rows than the smallest in one statement, give a table at most 19 texts,
# under 1 MiB together, and a group of fewer than 128 rows at most 4 statements a table.
MAX_ROWS_PER_INSERT = 128
SMALLEST_POWER = 16


def require_supported(version: tuple[int, ...]) -> None:
    """Refuse, with what to do about it, a SQLite too old for the statements shoprelay runs."""
    if version < OLDEST_SQLITE:
        found, oldest = ".".join(map(str, version)), ".".join(map(str, OLDEST_SQLITE))
        raise ConfigError(
            f"this Python's SQLite is {found}; shoprelay needs {oldest} or newer. Use a "
            "Python built against a newer SQLite, or PostgreSQL in DATABASE_URL"
        )


def in_memory(url: str) -> bool:
    """Whether a SQLite URL names a database in memory, which one process alone can see."""
    database = make_url(url).database
    return not database or database == ":memory:" or "mode=memory" in url


class SQLiteDialect:
    name = "sqlite"
    single_writer = True
    # A large claim or record holds the one write lock, and every acknowledgement queues
    # behind it; in steps of 100 rows the webhooks' group commits slip in between.
    rows_per_write: int | None = 100

    def engine_options(self) -> dict[str, Any]:
        return {"connect_args": {"timeout": 30}}

    def configure(self, engine: Engine) -> None:
        require_supported(sqlite3.sqlite_version_info)

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_connection: Any, record: Any) -> None:
            # Take over BEGIN from pysqlite so that writes can lock up front.
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute(f"PRAGMA synchronous={DURABLE}")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()
            record.info[SYNCHRONOUS] = DURABLE

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Any) -> None:
            options = conn.get_execution_options()
            if options.get(READ_ONLY):
                conn.exec_driver_sql("BEGIN DEFERRED")
                return
            # WAL is one log in commit order: the next durable commit's sync also covers every
            # relaxed commit before it, so a power loss can only drop a tail of relaxed ones.
            wanted = RELAXED if options.get(RELAXED_COMMIT) else DURABLE
            info = conn.connection.info
            if info.get(SYNCHRONOUS) != wanted:
                conn.exec_driver_sql(f"PRAGMA synchronous={wanted}")
                info[SYNCHRONOUS] = wanted
            # IMMEDIATE: a writer that only locks at its first write can deadlock another.
            conn.exec_driver_sql("BEGIN IMMEDIATE")

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

    def one_process_only(self, url: str) -> bool:
        return in_memory(url)

    def writer_lock(self, url: str) -> FileLock | None:
        if in_memory(url) or str(make_url(url).database).startswith("file:"):
            return None
        return FileLock(f"{make_url(url).database}-lock")

    def insert(self, table: Table) -> Any:
        return insert(table)

    def insert_rows(
        self, conn: Connection, statement: Any, rows: Sequence[Mapping[str, Any]]
    ) -> None:
        """Multi-row VALUES, not an executemany.

        pysqlite releases the GIL around each row it steps, and in a busy process retaking it
        means waiting for the event loop's thread, all while holding SQLite's one write lock.
        One step per statement leaves the lock free sooner for the next group commit.
        """
        if not rows:
            return
        form = _multi_row_form(statement, tuple(rows[0]), conn.dialect)
        if form is None:
            conn.execute(statement, rows)
            return
        sql, values, order = form
        largest = min(MAX_ROWS_PER_INSERT, _parameter_cap(conn) // len(order))
        start = 0
        for size in chunk_sizes(len(rows), largest):
            chunk = rows[start : start + size]
            start += size
            flat = tuple(row[name] for row in chunk for name in order)
            conn.exec_driver_sql(_with_rows(sql, values, size), flat)

    def one_of(self, column: Any, values: Sequence[Any]) -> Any:
        # One JSON array, not a parameter per value: binding 1,000 of them is Python work done
        # while the write lock is held, and a build may cap parameters at 999.
        given = func.json_each(orjson.dumps(list(values)).decode()).table_valued("value")
        return column.in_(select(given.c.value))

    def not_indexed(self, column: Any) -> Any:
        # `+column`: SQLite's own way to bar an index. Without statistics its planner took
        # ix_outbox_lease for `status = ?` over the list of ids, and walked every in-flight row
        # for each 100 settled, in the write lock; by the ids it reads only the rows it settles.
        return UnaryExpression(column, operator=custom_op("+"), type_=column.type)

    def each_by_key(self, query: Select[Any], column: Any, values: str) -> Select[Any]:
        # SQLite's planner seeks the index once per IN value, whatever it knows of the table.
        return query.where(column.in_(bindparam(values, expanding=True)))

    def bytes_as_text(self, column: Any) -> Any:
        # SQLite reads a blob's bytes as text without checking them.
        return cast(column, Text)

    def claimable(self, query: Select[Any]) -> Select[Any]:
        # BEGIN IMMEDIATE already excludes every other writer.
        return query

    def claim_one_at_a_time(self, conn: Connection, lane: str) -> None:
        # BEGIN IMMEDIATE already makes every write transaction wait for the one before.
        return

    def webhooks_statement(self) -> None:
        # The only writer looks receipts up, then writes each table's multi-row VALUES.
        return None

    async def warnings(self, conn: AsyncConnection) -> list[str]:
        return []

    def json_text(self, column: Any, path: Sequence[str]) -> Any:
        return func.json_extract(column, "$." + ".".join(path))

    def database_missing(self, url: str) -> bool:
        database = make_url(url).database
        if in_memory(url) or not database or database.startswith("file:"):
            return False
        return not os.path.exists(database)


def _parameter_cap(conn: Connection) -> int:
    """This connection's limit on bound parameters: a build may set it as low as 999."""
    getlimit = getattr(conn.connection.dbapi_connection, "getlimit", None)
    return int(getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)) if getlimit else MAX_PARAMETERS


def chunk_sizes(rows: int, largest: int) -> list[int]:
    """`rows` as statements of a few sizes, largest first: as many of the largest power of two
    up to `largest` as fit, the rest's binary digits down to SMALLEST_POWER, then what is left
    (fewer rows than that) in one."""
    top = 1 << (max(1, largest).bit_length() - 1)
    smallest = min(SMALLEST_POWER, top)
    sizes = [top] * (rows // top)
    rest = rows % top
    sizes += [1 << bit for bit in reversed(range(top.bit_length())) if rest >> bit & 1]
    sizes = [size for size in sizes if size >= smallest]
    return [*sizes, rest % smallest] if rest % smallest else sizes


@functools.lru_cache(maxsize=32)
def _multi_row_form(
    statement: Any, names: tuple[str, ...], dialect: Any
) -> tuple[str, str, tuple[str, ...]] | None:
    """The one-row SQL text, its VALUES group, and the parameter order; None if the statement
    binds anything besides the row's own values."""
    compiled = statement.compile(dialect=dialect, column_keys=list(names))
    order = tuple(compiled.positiontup or ())
    values = "(" + ", ".join("?" * len(order)) + ")"
    sql = str(compiled)
    if sorted(order) != sorted(names) or sql.count(values) != 1:
        return None
    return sql, values, order


@functools.lru_cache(maxsize=128)
def _with_rows(sql: str, values: str, rows: int) -> str:
    return sql.replace(values, ", ".join([values] * rows), 1)


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
