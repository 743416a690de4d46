"""PostgreSQL: claim with FOR UPDATE SKIP LOCKED so many workers never collide."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    Select,
    Table,
    any_,
    bindparam,
    event,
    func,
    select,
    text,
    true,
)
from sqlalchemy.dialects.postgresql import ARRAY, insert
from sqlalchemy.ext.asyncio import AsyncConnection

from shoprelay.store.dialects import RELAXED_COMMIT


class PostgreSQLDialect:
    name = "postgresql"
    single_writer = False
    rows_per_write: int | None = None  # row locks: a large transaction blocks no other writer

    def engine_options(self) -> dict[str, Any]:
        # No pre-ping: it costs a round trip per transaction. After a restart of PostgreSQL the
        # first statement fails, SQLAlchemy then drops every pooled connection, and the caller's
        # retry (a group commit's one-by-one pass, the delivery loop's next pass) reconnects.
        # Delivery keeps up to 32 single requests in flight, each recording its outcome, beside
        # its claims: up to ~34 connections at once. A smaller pool overflowed, and each
        # overflow connection, closed at check-in, was opened again (TLS attempt, auth) for a
        # later record: 43 openings for 400 events with a pool of 10, 46-49 with 20; 34 now.
        # A pool opens only what is used at once, so a receiver still holds a handful.
        return {"pool_size": 40, "max_overflow": 10}

    def configure(self, engine: Engine) -> None:
        @event.listens_for(engine, "begin")
        def _on_begin(conn: Any) -> None:
            # The WAL is flushed in commit order: a later synchronous commit also makes every
            # earlier relaxed one durable, so a crash of the server drops only a tail of them.
            if conn.get_execution_options().get(RELAXED_COMMIT):
                conn.exec_driver_sql("SET LOCAL synchronous_commit TO OFF")

    def writer_engine(self, url: str) -> Engine | None:
        # asyncpg does its I/O on the event loop; batched writes use run_sync instead.
        return None

    def writer_lock(self, url: str) -> None:
        # Row locks and SKIP LOCKED already let writers from many processes run side by side.
        return None

    def insert(self, table: Table) -> Any:
        return insert(table)

    def insert_rows(
        self, conn: Connection, statement: Any, rows: Sequence[Mapping[str, Any]]
    ) -> None:
        # asyncpg pipelines an executemany; measured, it beat INSERT … SELECT FROM unnest(…).
        if rows:
            conn.execute(statement, rows)

    def one_of(self, column: Any, values: Sequence[Any]) -> Any:
        # One array parameter: the statement's text, and so its prepared plan, stays the same.
        return column == any_(bindparam(None, list(values), type_=ARRAY(column.type)))

    def not_indexed(self, column: Any) -> Any:
        # PostgreSQL's statistics already show a list of ids beats a whole status.
        return column

    def each_by_key(self, query: Select[Any], column: Any, values: str) -> Select[Any]:
        # `column = ANY(…)` leaves the planner a choice, and on a table it has not analysed it
        # took the key's prefix and filtered: every resource of a shop read for each lookup.
        # One LIMIT 1 subquery per value cannot be flattened, so each is a seek on the key.
        wanted = func.unnest(bindparam(values, type_=ARRAY(column.type)))
        value = wanted.table_valued("value", name="wanted").render_derived()
        found = query.where(column == value.c.value).limit(1).lateral("found")
        return select(*found.c).select_from(value).join(found, true())

    def claimable(self, query: Select[Any]) -> Select[Any]:
        return query.with_for_update(skip_locked=True)

    async def warnings(self, conn: AsyncConnection) -> list[str]:
        # Every delivery outcome rewrites its outbox row; without vacuum the dead versions
        # pile up in the indexes, which claims and lease checks then walk.
        if (await conn.execute(text("SHOW autovacuum"))).scalar() == "on":
            return []
        return [
            "PostgreSQL autovacuum is off: the outbox's indexes fill with dead rows and "
            "delivery slows; turn it on (ALTER SYSTEM SET autovacuum = on; "
            "SELECT pg_reload_conf()) or VACUUM the outbox regularly"
        ]


DIALECT = PostgreSQLDialect()
