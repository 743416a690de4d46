"""The store: one async engine, its dialect, and transactions that mean what they say."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, Table
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from shoprelay.errors import SchemaError
from shoprelay.store.dialects import READ_ONLY, RELAXED_COMMIT, Dialect, WriterLock, for_url
from shoprelay.store.writeturns import WriteTurns

MIGRATIONS = Path(__file__).parent / "migrations"
T = TypeVar("T")


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def _current_revisions(connection: Connection) -> tuple[str, ...]:
    return tuple(MigrationContext.configure(connection).get_current_heads())


def _upgrade(connection: Connection) -> None:
    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


@contextlib.contextmanager
def _holding(lock: WriterLock | None) -> Iterator[None]:
    """Hold `lock`, if there is one, blocking this thread until it is ours."""
    if lock is None:
        yield
        return
    lock.acquire()
    try:
        yield
    finally:
        lock.release()


def _commit_options(durable: bool) -> dict[str, Any]:
    return {} if durable else {RELAXED_COMMIT: True}


@dataclass(frozen=True)
class Written:
    """What a write statement changed, with the rows it returned, read before commit."""

    rowcount: int
    rows: Sequence[Any]


class Store:
    """A database that holds the outbox and everything that feeds it."""

    def __init__(
        self,
        engine: AsyncEngine,
        dialect: Dialect,
        writer: Engine | None = None,
        other_processes: WriterLock | None = None,
    ) -> None:
        self.engine = engine
        self.dialect = dialect
        self._writer = writer
        self._writer_thread = ThreadPoolExecutor(1, "shoprelay-writer") if writer else None
        self._write_turns = WriteTurns() if dialect.single_writer else None
        self._other_processes = other_processes

    @classmethod
    async def open(cls, url: str, *, migrate: bool = True) -> Store:
        """Connect, configure the dialect, and bring the schema to the newest revision."""
        dialect = for_url(url)
        # hide_parameters: a database error must not carry customers' data into a log.
        engine = create_async_engine(url, hide_parameters=True, **dialect.engine_options())
        dialect.configure(engine.sync_engine)
        store = cls(engine, dialect, dialect.writer_engine(url), dialect.writer_lock(url))
        if migrate:
            await store.migrate()
        return store

    @classmethod
    async def open_for_reading(cls, url: str) -> Store:
        """Connect for a read-only command: nothing is created or migrated, and a schema
        behind this release's is refused with what to run."""
        dialect = for_url(url)
        if dialect.database_missing(url):
            raise SchemaError(
                "the database in DATABASE_URL does not exist yet: run `shoprelay migrate` "
                "(or start `shoprelay serve`) to create it"
            )
        engine = create_async_engine(url, hide_parameters=True, **dialect.engine_options())
        dialect.configure(engine.sync_engine)
        store = cls(engine, dialect)
        try:
            await store.require_current_schema()
        except BaseException:
            await store.close()
            raise
        return store

    async def require_current_schema(self) -> None:
        """Raise SchemaError unless the schema is at this release's newest revision."""
        async with self.read() as conn:
            current = set(await conn.run_sync(_current_revisions))
        scripts = ScriptDirectory.from_config(alembic_config())
        heads = set(scripts.get_heads())
        if current == heads:
            return
        if not current:
            raise SchemaError(
                "the database has no shoprelay schema yet: run `shoprelay migrate` first"
            )
        known = {script.revision for script in scripts.walk_revisions()}
        found, needed = ", ".join(sorted(current)), ", ".join(sorted(heads))
        if not current <= known:
            raise SchemaError(
                f"the database's schema is at revision {found}, newer than this shoprelay "
                f"knows ({needed}): upgrade shoprelay"
            )
        raise SchemaError(
            f"the database's schema is at revision {found} and this release reads {needed}: "
            "run `shoprelay migrate` (read-only commands never change the schema)"
        )

    async def migrate(self) -> None:
        async with self.engine.begin() as conn:
            await conn.run_sync(_upgrade)

    async def close(self) -> None:
        await self.engine.dispose()
        if self._writer is not None and self._writer_thread is not None:
            self._writer.dispose()
            self._writer_thread.shutdown(wait=True)
        if self._other_processes is not None:
            self._other_processes.close()

    async def run_in_transaction(
        self, work: Callable[[Connection], T], *, urgent: bool = False, durable: bool = True
    ) -> T:
        """Run synchronous Core work in one write transaction, as cheaply as the driver allows.

        `urgent`: someone waits on this commit (a webhook's 200); it goes before other writes.
        `durable=False`: commit without waiting for the disk, for bookkeeping that a power
        loss may undo harmlessly (see `RELAXED_COMMIT`).
        """
        if self._writer is None or self._writer_thread is None:
            async with self.transaction(urgent=urgent, durable=durable) as conn:
                return await conn.run_sync(work)
        writer, other_processes = self._writer, self._other_processes
        options = _commit_options(durable)

        def in_thread() -> T:
            with (
                _holding(other_processes),
                writer.connect() as conn,
                conn.execution_options(**options).begin(),
            ):
                return work(conn)

        async with self._turn(urgent):
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self._writer_thread, in_thread)

    async def run_autocommit(self, work: Callable[[Connection], T]) -> T:
        """Run synchronous Core work outside a transaction: each statement commits by itself.

        For reads followed by one write statement, this spares a BEGIN and a COMMIT round
        trip; the one statement is atomic on its own. Never for work of several writes.
        """
        async with self.engine.connect() as raw:
            conn = await raw.execution_options(isolation_level="AUTOCOMMIT")
            return await conn.run_sync(work)

    def _turn(self, urgent: bool) -> contextlib.AbstractAsyncContextManager[None]:
        if self._write_turns is None:
            return contextlib.nullcontext()
        return self._write_turns.turn(urgent=urgent)

    async def write(self, statement: Any, *, durable: bool = True) -> Written:
        """One statement in its own write transaction; on SQLite, one hop to the writer thread."""

        def run(conn: Connection) -> Written:
            result = conn.execute(statement)
            rows = result.all() if result.returns_rows else []
            return Written(result.rowcount, rows)

        return await self.run_in_transaction(run, durable=durable)

    @contextlib.asynccontextmanager
    async def transaction(
        self, *, urgent: bool = False, durable: bool = True
    ) -> AsyncIterator[AsyncConnection]:
        """A write transaction: committed when the block ends, rolled back on error."""
        async with self._turn(urgent), self._across_processes(), self.engine.connect() as raw:
            conn = await raw.execution_options(**_commit_options(durable))
            async with conn.begin():
                yield conn

    @contextlib.asynccontextmanager
    async def _across_processes(self) -> AsyncIterator[None]:
        """Hold the other-process lock, waiting for it off the event loop."""
        other = self._other_processes
        if other is None:
            yield
            return
        if not other.try_acquire():
            acquired = asyncio.get_running_loop().run_in_executor(None, other.acquire)
            try:
                await asyncio.shield(acquired)
            except asyncio.CancelledError:
                # The thread may still get the lock: give it back as soon as it does.
                acquired.add_done_callback(lambda _: other.release())
                raise
        try:
            yield
        finally:
            other.release()

    @contextlib.asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """A read-only snapshot that never waits for writers."""
        async with self.engine.connect() as raw:
            conn = await raw.execution_options(**{READ_ONLY: True})
            async with conn.begin():
                yield conn

    def insert_ignore(self, table: Table) -> Any:
        """An INSERT that skips rows whose unique key already exists."""
        return self.dialect.insert(table).on_conflict_do_nothing()

    async def upsert(
        self, conn: AsyncConnection, table: Table, key: dict[str, Any], values: dict[str, Any]
    ) -> None:
        """Insert the row, or update `values` on the row that has `key`."""
        statement = self.dialect.insert(table).values(**key, **values)
        await conn.execute(statement.on_conflict_do_update(index_elements=list(key), set_=values))

    @property
    def backend(self) -> str:
        return self.dialect.name
