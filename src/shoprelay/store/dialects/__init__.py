"""What differs between SQLite and PostgreSQL, behind one small protocol."""

from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from sqlalchemy import Connection, Engine, Select, Table
from sqlalchemy.ext.asyncio import AsyncConnection

# An execution option: commit without waiting for the disk. A crash of the process loses
# nothing; a power loss may roll back the last such commits, never an earlier durable one.
RELAXED_COMMIT = "shoprelay_relaxed_commit"
# Execution option of a read-only snapshot: a dialect may begin it without taking locks.
READ_ONLY = "shoprelay_read_only"


class WriterLock(Protocol):
    def acquire(self) -> None:
        """Block until this process holds the lock."""
        ...

    def try_acquire(self) -> bool: ...

    def release(self) -> None: ...

    def close(self) -> None: ...


class Dialect(Protocol):
    name: str
    # SQLite has one writer: serialising writers in-process beats spinning on SQLITE_BUSY.
    single_writer: bool
    # Most rows delivery leases or settles in one transaction (None: no cap). On SQLite a
    # transaction holds the one write lock, and every webhook's commit waits behind it.
    rows_per_write: int | None

    def engine_options(self) -> dict[str, Any]: ...

    def configure(self, engine: Engine) -> None:
        """Connection set-up (pragmas, BEGIN mode) on the engine's synchronous core."""
        ...

    def writer_engine(self, url: str) -> Engine | None:
        """A synchronous engine for batched writes, where that is cheaper than async."""
        ...

    def writer_lock(self, url: str) -> WriterLock | None:
        """A lock that queues this process's writes behind other processes' ones."""
        ...

    def one_process_only(self, url: str) -> bool:
        """Whether `url` names a database only one process can see (SQLite in memory)."""
        ...

    def insert(self, table: Table) -> Any:
        """The dialect's INSERT, which knows ON CONFLICT."""
        ...

    def insert_rows(
        self, conn: Connection, statement: Any, rows: Sequence[Mapping[str, Any]]
    ) -> None:
        """Execute an INSERT (ON CONFLICT and all) for many rows of one shape.

        Pass a statement built once and kept: SQLite caches what it derives from it.
        """
        ...

    def one_of(self, column: Any, values: Sequence[Any]) -> Any:
        """`column IN values` as one bound value, however many values there are."""
        ...

    def not_indexed(self, column: Any) -> Any:
        """`column`, for a filter checked on rows already found by their ids: the planner must
        not walk an index of `column` instead of seeking the ids."""
        ...

    def each_by_key(self, query: Select[Any], column: Any, values: str) -> Select[Any]:
        """`query`'s rows whose `column` is one of the list bound as `values`, each found by a
        lookup of the key. `query`'s filters and `column` together must be a unique key."""
        ...

    def bytes_as_text(self, column: Any) -> Any:
        """A binary column as text a LIKE can search, whatever bytes it holds."""
        ...

    def claimable(self, query: Select[Any]) -> Select[Any]:
        """Make a claim's row selection safe against other workers."""
        ...

    def claim_one_at_a_time(self, conn: Connection, lane: str) -> None:
        """Make claims of `lane` in other transactions wait until this one ends, so each sees
        what the one before it leased."""
        ...

    def webhooks_statement(self) -> Any | None:
        """One statement that writes a group of webhooks (`store/webhooks.py` binds it), or
        None where the writer, being the only one, runs a statement per table."""
        ...

    async def warnings(self, conn: AsyncConnection) -> list[str]:
        """Database settings that will hurt shoprelay, each with what to do."""
        ...

    def json_text(self, column: Any, path: Sequence[str]) -> Any:
        """The text at `path` inside the JSON held in a text `column`; NULL where there is none."""
        ...

    def database_missing(self, url: str) -> bool:
        """Whether `url` names a database that does not exist yet (opening it would create it)."""
        ...


_MODULES = {"sqlite": "sqlite", "postgresql": "postgresql"}


def for_url(url: str) -> Dialect:
    """Pick the dialect module from the URL's backend name, imported lazily."""
    return _named(url.split(":", 1)[0].split("+", 1)[0])


def of(conn: Any) -> Dialect:
    """The dialect of an open (sync or async) SQLAlchemy connection."""
    return _named(conn.dialect.name)


def _named(backend: str) -> Dialect:
    module = importlib.import_module(f"shoprelay.store.dialects.{_MODULES[backend]}")
    dialect: Dialect = module.DIALECT
    return dialect
