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
    cast,
    event,
    func,
    select,
    text,
    true,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, insert
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
        # its claims: up to ~34 connections at once. A smaller pool overflows, and each
        # overflow connection, closed at check-in, is opened again (TLS attempt, auth) for a
        # later record. A pool opens only what is used at once, so a receiver still holds a
        # handful.
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

    def one_process_only(self, url: str) -> bool:
        # A server: every process that can reach it sees the same database.
        return False

    def writer_lock(self, url: str) -> None:
        # Row locks and SKIP LOCKED already let writers from many processes run side by side.
        return None

    def insert(self, table: Table) -> Any:
        return insert(table)

    def insert_rows(
        self, conn: Connection, statement: Any, rows: Sequence[Mapping[str, Any]]
    ) -> None:
        # asyncpg pipelines an executemany; INSERT … SELECT FROM unnest(…) saves PostgreSQL
        # little and costs the client more, building the arrays.
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

    def bytes_as_text(self, column: Any) -> Any:
        # convert_from() fails on bytes that are not UTF-8, which a dead letter may hold;
        # 'escape' keeps ASCII as it is and writes the rest as octal escapes.
        return func.encode(column, "escape")

    def claimable(self, query: Select[Any]) -> Select[Any]:
        return query.with_for_update(skip_locked=True)

    def claim_one_at_a_time(self, conn: Connection, lane: str) -> None:
        # SKIP LOCKED lets two claims run side by side, each blind to the other's uncommitted
        # leases: two versions of one customer could both go out. A lock per ordered lane,
        # held to the transaction's end, makes the next claim see this one's leases.
        conn.execute(_CLAIM_LOCK, {"lane": lane})

    def webhooks_statement(self) -> Any:
        return _WEBHOOKS

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

    def json_text(self, column: Any, path: Sequence[str]) -> Any:
        return cast(column, JSONB)[tuple(path)].astext

    def database_missing(self, url: str) -> bool:
        # A missing PostgreSQL database is an error on connect, never created by it.
        return False


# A group commit of webhooks in one statement over column arrays (store/webhooks.py binds
# them): the receipts that are new decide which items, states and dead letters are written.
# One statement commits atomically by itself, so the writer needs no BEGIN and COMMIT round
# trips, and PostgreSQL runs one execution per table instead of one per row. Each CTE's rows
# are sorted, and every copy of the statement runs its CTEs in one order (PostgreSQL 15 runs
# the unread ones last to first; its docs promise no order), so concurrent groups lock rows in
# one order. A deadlock with an older release's transaction, in a rolling upgrade, aborts one
# group, which the writer retries one delivery at a time: nothing acknowledged is lost.
_WEBHOOKS = text(
    """
WITH fresh AS (
    INSERT INTO webhook_receipts (shop, webhook_id, topic, outcome, items, received_at)
    SELECT r.shop, r.webhook_id, r.topic, r.outcome, r.items, CAST(:now AS float8)
    FROM unnest(
        CAST(:receipt_shop AS text[]), CAST(:receipt_id AS text[]),
        CAST(:receipt_topic AS text[]), CAST(:receipt_outcome AS text[]),
        CAST(:receipt_items AS integer[])
    ) AS r (shop, webhook_id, topic, outcome, items)
    ORDER BY r.shop, r.webhook_id
    ON CONFLICT DO NOTHING
    RETURNING shop, webhook_id
), queued AS (
    INSERT INTO outbox (account, kind, dedup_key, body, ordering_key, ordering_version, source,
                        status, attempts, created_at, available_at)
    SELECT i.account, i.kind, i.dedup_key, i.body, i.ordering_key, i.ordering_version,
           i.source, 'pending', 0, CAST(:now AS float8), CAST(:now AS float8)
    FROM unnest(
        CAST(:item_shop AS text[]), CAST(:item_webhook AS text[]),
        CAST(:item_account AS text[]), CAST(:item_kind AS text[]),
        CAST(:item_key AS text[]), CAST(:item_body AS text[]),
        CAST(:item_ordering AS text[]), CAST(:item_version AS text[]),
        CAST(:item_source AS text[])
    ) AS i (shop, webhook_id, account, kind, dedup_key, body, ordering_key, ordering_version,
            source)
    JOIN fresh ON fresh.shop = i.shop AND fresh.webhook_id = i.webhook_id
    ORDER BY i.dedup_key
    ON CONFLICT DO NOTHING
), applied AS (
    INSERT INTO resource_state AS stored (source, scope, kind, resource_id, version, state,
                                          updated_at)
    SELECT DISTINCT ON (s.source, s.scope, s.kind, s.resource_id)
           s.source, s.scope, s.kind, s.resource_id, s.version, s.state, CAST(:now AS float8)
    FROM unnest(
        CAST(:state_shop AS text[]), CAST(:state_webhook AS text[]),
        CAST(:state_source AS text[]), CAST(:state_kind AS text[]),
        CAST(:state_id AS text[]), CAST(:state_version AS text[]),
        CAST(:state_value AS text[])
    ) WITH ORDINALITY AS s (scope, webhook_id, source, kind, resource_id, version, state, n)
    JOIN fresh ON fresh.shop = s.scope AND fresh.webhook_id = s.webhook_id
    ORDER BY s.source, s.scope, s.kind, s.resource_id, s.version DESC, s.n DESC
    ON CONFLICT (source, scope, kind, resource_id) DO UPDATE
    SET version = excluded.version, state = excluded.state, updated_at = excluded.updated_at
    -- Another writer may have applied a newer version since this one was read.
    WHERE stored.version <= excluded.version
), kept AS (
    INSERT INTO dead_letters (origin, source, reason, topic, scope, payload, created_at)
    SELECT 'webhook', d.source, d.reason, d.topic, d.scope, d.payload, CAST(:now AS float8)
    FROM unnest(
        CAST(:letter_shop AS text[]), CAST(:letter_webhook AS text[]),
        CAST(:letter_source AS text[]), CAST(:letter_reason AS text[]),
        CAST(:letter_topic AS text[]), CAST(:letter_payload AS bytea[])
    ) AS d (scope, webhook_id, source, reason, topic, payload)
    JOIN fresh ON fresh.shop = d.scope AND fresh.webhook_id = d.webhook_id
), linked AS (
    INSERT INTO customer_identifiers (shop, customer_id, identifier, value, seen_at)
    SELECT DISTINCT l.shop, l.customer_id, l.identifier, l.value, CAST(:now AS float8)
    FROM unnest(
        CAST(:link_shop AS text[]), CAST(:link_webhook AS text[]),
        CAST(:link_customer AS text[]), CAST(:link_identifier AS text[]),
        CAST(:link_value AS text[])
    ) AS l (shop, webhook_id, customer_id, identifier, value)
    JOIN fresh ON fresh.shop = l.shop AND fresh.webhook_id = l.webhook_id
    ORDER BY l.shop, l.customer_id, l.identifier, l.value
    ON CONFLICT DO NOTHING
)
SELECT shop, webhook_id FROM fresh
"""
)


_CLAIM_LOCK = text("SELECT pg_advisory_xact_lock(hashtext('shoprelay.claim:' || :lane))")

DIALECT = PostgreSQLDialect()
