"""Counting a window of days of events reads that window's rows, not the whole outbox."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import text
from tests.support.query_plans import sqlite_plan, table_rows_read

from shoprelay.store import outbox
from shoprelay.store.database import Store
from shoprelay.store.event_days import count_event_days, window_query
from shoprelay.store.outbox import NewItem

OLD, RECENT = 1_000, 10
NOW = datetime(2026, 12, 3, 15, tzinfo=UTC).timestamp()


def _event(key: str, moment: str) -> NewItem:
    metric = {"data": {"type": "metric", "attributes": {"name": "Order Shipped"}}}
    body = {"properties": {}, "time": moment, "unique_id": key, "metric": metric}
    return NewItem("event", key, body, "shipstation")


async def test_a_window_reads_only_its_rows(store: Store) -> None:
    """Months of settled events stay in the outbox; a two-day count finds its ten by the
    queue-time index and counts them on their day."""
    old = [_event(f"old-{n}", "2026-06-01T12:00:00Z") for n in range(OLD)]
    recent = [_event(f"new-{n}", "2026-12-03T12:00:00Z") for n in range(RECENT)]
    async with store.transaction() as conn:
        await outbox.enqueue(store, conn, old, NOW - 180 * 86_400)
        await outbox.enqueue(store, conn, recent, NOW)
    if store.backend == "postgresql":
        async with store.transaction() as conn:
            await conn.execute(text("ANALYZE outbox"))
    zone = ZoneInfo("America/Los_Angeles")
    async with store.read() as conn:
        found = await count_event_days(conn, zone, date(2026, 12, 2), date(2026, 12, 3))
        query = window_query(store.dialect, NOW - 2 * 86_400)
        if store.backend == "sqlite":
            assert "ix_outbox_events_by_queue_time" in await sqlite_plan(store, conn, query)
        else:
            assert await table_rows_read(store, conn, query, "outbox") <= 2 * RECENT
    assert {key: tally.source for key, tally in found.tallies.items()} == {
        (date(2026, 12, 3), "Order Shipped"): RECENT
    }
