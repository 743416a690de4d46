"""Retention: delivered items lose their bodies past the window and keep their keys."""

from __future__ import annotations

import time

from sqlalchemy import func, select
from tests.support.harness import eventually, service_settings

from shoprelay.service import Service
from shoprelay.store import outbox as queue
from shoprelay.store.database import Store
from shoprelay.store.outbox import NewItem, Status
from shoprelay.store.receipts import get_cursor
from shoprelay.store.retention import (
    BATCH,
    CLEARED_BODY,
    CURSOR,
    clear_old_bodies,
    cleared_through,
)
from shoprelay.store.schema import outbox

DAY = 86_400.0
NOW = 2_000_000_000.0


async def put(store: Store, key: str, status: Status, created_at: float) -> None:
    """One outbox row as delivery would have left it."""
    async with store.transaction() as conn:
        await conn.execute(
            outbox.insert().values(
                account="default",
                kind="event",
                dedup_key=key,
                body='{"profile": {"email": "jane@example.com"}}',
                source="shopify",
                status=status,
                created_at=created_at,
                available_at=created_at,
                delivered_at=created_at + 1 if status == Status.DELIVERED else None,
            )
        )


async def bodies(store: Store) -> dict[str, str]:
    async with store.read() as conn:
        rows = (await conn.execute(select(outbox.c.dedup_key, outbox.c.body))).all()
    return {row.dedup_key: row.body for row in rows}


async def test_past_the_window_settled_items_lose_their_body_and_keep_their_key(
    store: Store,
) -> None:
    """Delivered and superseded items queued before the window are cleared; newer ones,
    and any still owed or dead-lettered, keep their bodies; the kept key still dedups."""
    old, recent = NOW - 40 * DAY, NOW - 2 * DAY
    await put(store, "old-delivered", Status.DELIVERED, old)
    await put(store, "old-superseded", Status.SUPERSEDED, old + 1)
    await put(store, "old-pending", Status.PENDING, old + 2)
    await put(store, "old-dead", Status.DEAD_LETTERED, old + 3)
    await put(store, "recent-delivered", Status.DELIVERED, recent)
    await put(store, "old-but-after-a-recent-one", Status.DELIVERED, old + 4)

    cleared = await clear_old_bodies(store, before=NOW - 30 * DAY, now=NOW)

    kept = await bodies(store)
    assert cleared == 2
    assert kept["old-delivered"] == CLEARED_BODY
    assert kept["old-superseded"] == CLEARED_BODY
    for key in ("old-pending", "old-dead", "recent-delivered"):
        assert "jane@example.com" in kept[key]
    # Ids follow queueing time: the pass stops at the first recent row, and this one, queued
    # after it, waits for a later pass (as real clocks only move forward, it is rare).
    assert "jane@example.com" in kept["old-but-after-a-recent-one"]
    async with store.transaction() as conn:
        again = NewItem("event", "old-delivered", {"n": 1}, "shopify")
        assert await queue.enqueue(store, conn, [again], NOW) == 0


async def test_a_pass_goes_batch_by_batch_and_the_next_starts_where_it_stopped(
    store: Store,
) -> None:
    """More rows than a batch are all cleared in one pass; the next pass reads nothing old
    again, and clears what was delivered since."""
    old = NOW - 40 * DAY
    rows = [
        {
            "account": "default",
            "kind": "event",
            "dedup_key": f"k{n}",
            "body": '{"email": "jane@example.com"}',
            "source": "shopify",
            "status": Status.DELIVERED,
            "created_at": old + n,
            "available_at": old + n,
        }
        for n in range(BATCH * 2 + 500)
    ]
    async with store.transaction() as conn:
        await conn.execute(outbox.insert(), rows)
    async with store.read() as conn:
        assert await cleared_through(conn) is None
    assert await clear_old_bodies(store, before=NOW - 30 * DAY, now=NOW) == len(rows)
    async with store.read() as conn:
        last_id = (await conn.execute(select(func.max(outbox.c.id)))).scalar()
        assert await get_cursor(conn, CURSOR) == {"after_id": last_id}
        assert await cleared_through(conn) == rows[-1]["created_at"]
    assert await clear_old_bodies(store, before=NOW - 30 * DAY, now=NOW) == 0
    await put(store, "later", Status.DELIVERED, old + len(rows))
    assert await clear_old_bodies(store, before=NOW - 30 * DAY, now=NOW) == 1
    async with store.read() as conn:
        left = await conn.execute(
            select(func.count()).select_from(outbox).where(outbox.c.body != CLEARED_BODY)
        )
    assert left.scalar() == 0


async def test_the_delivering_service_clears_old_bodies_and_a_window_of_0_keeps_them(
    database_url: str,
) -> None:
    """`serve`'s delivery process runs the pass at start, and `status` says how far it got;
    OUTBOX_RETENTION_DAYS=0 turns it off."""
    store = await Store.open(database_url)
    try:
        ancient = time.time() - 400 * DAY
        await put(store, "ancient", Status.DELIVERED, ancient)
        for days, expected in ((0, False), (30, True)):
            settings = service_settings(
                database_url, "http://127.0.0.1:9", OUTBOX_RETENTION_DAYS=days
            )
            service = await Service.open(settings)
            await service.start(receive=False)
            try:
                if expected:
                    await eventually(lambda: _cleared(store, "ancient"))
                    document = await service.status()
                    assert document["outbox"]["bodies_cleared_through"] == ancient
                else:
                    # No pass is scheduled at all, so there is nothing to wait for.
                    assert "retention" not in {task.get_name() for task in service._tasks}
                    assert not await _cleared(store, "ancient")
            finally:
                await service.stop()
                await service.close()
    finally:
        await store.close()


async def _cleared(store: Store, key: str) -> bool:
    return (await bodies(store))[key] == CLEARED_BODY
