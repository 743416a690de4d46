"""Migration 0006: events queued before it keep deduplicating after it, on both backends."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

from alembic import command
from sqlalchemy import Connection, select

from shoprelay.mapping.klaviyo import KlaviyoEvent, KlaviyoProfile, dedup_key
from shoprelay.sources.items import event_item
from shoprelay.store import outbox
from shoprelay.store.database import Store, alembic_config
from shoprelay.store.outbox import NewItem
from shoprelay.store.schema import outbox as outbox_table


def _migrate(connection: Connection, direction: str, revision: str) -> None:
    config = alembic_config()
    config.attributes["connection"] = connection
    getattr(command, direction)(config, revision)


def _old_key(unique: str, metric: str) -> str:
    """An event's key as revisions before 0006 wrote it."""
    return "event:" + hashlib.sha256(f"{metric}\x00{unique}".encode()).hexdigest()[:32]


def _event(order: int, metric: str = "Placed Order") -> KlaviyoEvent:
    return KlaviyoEvent(
        metric=metric,
        profile=KlaviyoProfile(email=f"buyer{order}@example.com"),
        properties={"OrderId": order},
        time=datetime(2026, 11, 30, 10, tzinfo=UTC),
        unique_id=f"shopify:s.myshopify.com:order:{order}",
    )


async def _keys(store: Store) -> list[str]:
    async with store.read() as conn:
        query = select(outbox_table.c.dedup_key).order_by(outbox_table.c.id)
        return [str(key) for key in (await conn.execute(query)).scalars()]


async def test_keys_queued_before_0006_are_rewritten_and_still_deduplicate(
    database_url: str,
) -> None:
    store = await Store.open(database_url)
    try:
        async with store.engine.begin() as conn:
            await conn.run_sync(_migrate, "downgrade", "0005")
        events = [_event(1001), _event(1001, "Fulfilled Order"), _event(1002)]
        old = [
            NewItem("event", _old_key(e.unique_id, e.metric), e.to_attributes(), "shopify")
            for e in events
        ]
        # Not an event key of ours (a profile's, a test's): the migration leaves them alone.
        others = [
            NewItem("profile", "profile:" + "0" * 32, {"email": "a@example.com"}, "shopify"),
            NewItem("event", "event:custom", {"unique_id": "x"}, "shopify"),
        ]
        # As 0005's schema holds them: without the columns later revisions add.
        rows = [
            {column: value for column, value in row.items() if column != "ordering_version"}
            for row in outbox.new_rows(old + others, now=100.0)
        ]
        async with store.transaction() as conn:
            await conn.execute(outbox_table.insert(), rows)
        before = await _keys(store)

        async with store.engine.begin() as conn:
            await conn.run_sync(_migrate, "upgrade", "head")
        after = await _keys(store)
        renamed = dict(zip(before, after, strict=True))
        for event, item in zip(events, old, strict=True):
            assert renamed[item.dedup_key] == dedup_key(event.unique_id, event.metric)
        for item in others:
            assert renamed[item.dedup_key] == item.dedup_key

        # The same events from a redelivered webhook: nothing new is queued.
        async with store.transaction() as conn:
            again = [event_item(event, "shopify") for event in events]
            assert await outbox.enqueue(store, conn, again, now=200.0) == 0
            assert (
                await outbox.enqueue(store, conn, [event_item(_event(1003), "shopify")], 200) == 1
            )

        # And back: downgrading restores the keys the old code computes.
        async with store.engine.begin() as conn:
            await conn.run_sync(_migrate, "downgrade", "0005")
        restored = await _keys(store)
        assert restored[: len(before)] == before
        assert restored[-1] == _old_key(_event(1003).unique_id, "Placed Order")
        async with store.engine.begin() as conn:
            await conn.run_sync(_migrate, "upgrade", "head")
    finally:
        await store.close()
