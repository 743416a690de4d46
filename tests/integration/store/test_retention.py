"""Retention: settled items lose their bodies past the window, however late they settled, and
keep their keys; an open dead letter's item keeps its body."""

from __future__ import annotations

import time

from sqlalchemy import delete, func, select, update
from tests.support.harness import eventually, service_settings
from tests.support.query_plans import sqlite_plan, table_rows_read

from shoprelay.service import Service
from shoprelay.store import deadletters
from shoprelay.store import outbox as queue
from shoprelay.store.database import Store
from shoprelay.store.outbox import TERMINAL_STATUSES, NewItem, Status
from shoprelay.store.retention import (
    BATCH,
    CLEARED_BODY,
    clear_old_bodies,
    cleared_through,
    past_the_window,
)
from shoprelay.store.schema import dead_letters, outbox

DAY = 86_400.0
NOW = 2_000_000_000.0
WINDOW_START = NOW - 30 * DAY
OLD = NOW - 40 * DAY
BODY = '{"profile": {"email": "jane@example.com"}}'


async def put(store: Store, key: str, status: Status, created_at: float) -> int:
    """One outbox row as delivery would have left it; its id."""
    async with store.transaction() as conn:
        result = await conn.execute(
            outbox.insert()
            .values(
                account="default",
                kind="event",
                dedup_key=key,
                body=BODY,
                source="shopify",
                status=status,
                created_at=created_at,
                available_at=created_at,
                delivered_at=created_at + 1 if status == Status.DELIVERED else None,
            )
            .returning(outbox.c.id)
        )
        return int(result.scalar_one())


async def letter_for(store: Store, outbox_id: int, *, replayed_at: float | None = None) -> int:
    """A delivery dead letter for the item; its id."""
    async with store.transaction() as conn:
        result = await conn.execute(
            dead_letters.insert()
            .values(
                origin="delivery",
                source="shopify",
                outbox_id=outbox_id,
                reason="400 invalid",
                created_at=OLD,
                replayed_at=replayed_at,
            )
            .returning(dead_letters.c.id)
        )
        return int(result.scalar_one())


async def settle(store: Store, key: str, status: Status) -> None:
    async with store.transaction() as conn:
        await conn.execute(update(outbox).where(outbox.c.dedup_key == key).values(status=status))


async def bodies(store: Store) -> dict[str, str]:
    async with store.read() as conn:
        rows = (await conn.execute(select(outbox.c.dedup_key, outbox.c.body))).all()
    return {row.dedup_key: row.body for row in rows}


async def test_past_the_window_settled_items_lose_their_body_and_keep_their_key(
    store: Store,
) -> None:
    """Every settled status is cleared past the window, whatever the id order; items still
    owed, recent ones, and those a person may still read in an open dead letter keep theirs;
    the kept key still dedups."""
    unsettled = set(Status) - TERMINAL_STATUSES
    for status in Status:
        await put(store, f"old-{status}", status, OLD)
    await put(store, "recent-delivered", Status.DELIVERED, NOW - 2 * DAY)
    await put(store, "old-but-after-a-recent-one", Status.DELIVERED, OLD + 4)
    dead_open = await put(store, "old-dead-open", Status.DEAD_LETTERED, OLD + 5)
    await letter_for(store, dead_open)
    dead_replayed = await put(store, "old-dead-replayed", Status.DEAD_LETTERED, OLD + 6)
    await letter_for(store, dead_replayed, replayed_at=OLD + 7)

    cleared = await clear_old_bodies(store, before=WINDOW_START, now=NOW)

    kept = await bodies(store)
    gone = {f"old-{status}" for status in TERMINAL_STATUSES}
    gone |= {"old-but-after-a-recent-one", "old-dead-replayed"}
    assert {key for key, body in kept.items() if body == CLEARED_BODY} == gone
    assert cleared == len(gone)
    assert {f"old-{status}" for status in unsettled} <= {
        key for key, body in kept.items() if body == BODY
    }
    assert kept["recent-delivered"] == kept["old-dead-open"] == BODY
    async with store.transaction() as conn:
        again = NewItem("event", "old-delivered", {"n": 1}, "shopify")
        assert await queue.enqueue(store, conn, [again], NOW) == 0


async def test_an_item_settled_after_a_pass_went_by_is_cleared_by_the_next(
    store: Store,
) -> None:
    """Items still owed when a pass goes by (an account paused for weeks) and a dead letter
    open then, all settled or purged since, lose their bodies at the next pass."""
    await put(store, "paused-then-delivered", Status.PENDING, OLD)
    await put(store, "paused-then-superseded", Status.IN_FLIGHT, OLD + 1)
    dead = await put(store, "dead-then-purged", Status.DEAD_LETTERED, OLD + 2)
    letter = await letter_for(store, dead)
    await put(store, "delivered", Status.DELIVERED, OLD + 3)

    assert await clear_old_bodies(store, before=WINDOW_START, now=NOW) == 1
    await settle(store, "paused-then-delivered", Status.DELIVERED)
    await settle(store, "paused-then-superseded", Status.SUPERSEDED)
    async with store.transaction() as conn:
        # As `dlq purge` did before it cleared the bodies itself.
        await conn.execute(delete(dead_letters).where(dead_letters.c.id == letter))

    assert await clear_old_bodies(store, before=WINDOW_START + 600, now=NOW + 600) == 3
    assert set((await bodies(store)).values()) == {CLEARED_BODY}


async def test_a_pass_goes_batch_by_batch_and_says_how_far_it_cleared(store: Store) -> None:
    """More rows than a batch, queued out of id order and many at one time, are all cleared
    in one pass; the pass records its window start for `status`; the next clears only what
    settled since."""
    rows = [
        {
            "account": "default",
            "kind": "event",
            "dedup_key": f"k{n}",
            "body": BODY,
            "source": "shopify",
            "status": Status.DELIVERED,
            # Against id order, and in ties across batch boundaries.
            "created_at": OLD - n // 7,
            "available_at": OLD - n // 7,
        }
        for n in range(BATCH * 2 + 500)
    ]
    async with store.transaction() as conn:
        await conn.execute(outbox.insert(), rows)
    async with store.read() as conn:
        assert await cleared_through(conn) is None
    assert await clear_old_bodies(store, before=WINDOW_START, now=NOW) == len(rows)
    async with store.read() as conn:
        assert await cleared_through(conn) == WINDOW_START
    assert await clear_old_bodies(store, before=WINDOW_START, now=NOW) == 0
    await put(store, "later", Status.DELIVERED, OLD)
    assert await clear_old_bodies(store, before=WINDOW_START, now=NOW) == 1
    async with store.read() as conn:
        left = await conn.execute(
            select(func.count()).select_from(outbox).where(outbox.c.body != CLEARED_BODY)
        )
    assert left.scalar() == 0


async def test_a_pass_reads_only_what_it_clears_however_large_the_outbox(store: Store) -> None:
    """Cleared, recent and owed items are not read: ix_outbox_settled_bodies holds only
    settled items with a body, in queue order."""
    kinds = [
        (CLEARED_BODY, Status.DELIVERED, OLD - 10 * DAY),  # cleared by earlier passes
        (BODY, Status.DELIVERED, NOW - DAY),  # within the window
        (BODY, Status.PENDING, OLD - 10 * DAY),  # still owed
    ]
    filler = [
        {
            "account": "default",
            "kind": "event",
            "dedup_key": f"filler-{kind}-{n}",
            "body": body,
            "source": "shopify",
            "status": status,
            "created_at": created_at + n,
            "available_at": created_at + n,
        }
        for kind, (body, status, created_at) in enumerate(kinds)
        for n in range(1_000)
    ]
    async with store.transaction() as conn:
        await conn.execute(outbox.insert(), filler)
    for n in range(10):
        await put(store, f"due-{n}", Status.DELIVERED, OLD + n)

    query = past_the_window(store.dialect, WINDOW_START, 100)
    async with store.read() as conn:
        due = (await conn.execute(query)).all()
        if store.dialect.name == "sqlite":
            plan = await sqlite_plan(store, conn, query)
            assert "USING INDEX ix_outbox_settled_bodies" in plan
            assert "TEMP B-TREE" not in plan
        else:
            rows_read = await table_rows_read(store, conn, query, "outbox")
            assert rows_read <= 10, f"read {rows_read} outbox rows to clear 10"
    assert len(due) == 10


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
            started = time.time()
            await service.start(receive=False)
            try:
                if expected:
                    await eventually(lambda: _cleared(store, "ancient"))
                    document = await service.status()
                    through = document["outbox"]["bodies_cleared_through"]
                    assert started - 30 * DAY <= through <= time.time() - 30 * DAY
                else:
                    # No pass is scheduled at all, so there is nothing to wait for.
                    assert "retention" not in {task.get_name() for task in service._tasks}
                    assert not await _cleared(store, "ancient")
            finally:
                await service.stop()
                await service.close()
    finally:
        await store.close()


async def test_purging_a_dead_letter_clears_its_items_body(store: Store) -> None:
    """`dlq purge` takes the customer's data with the letter, keeping the row and its key;
    an item requeued by an earlier replay keeps the body it is to be sent with."""
    purged_item = await put(store, "purged", Status.DEAD_LETTERED, NOW)
    purged = await letter_for(store, purged_item)
    requeued_item = await put(store, "requeued", Status.PENDING, NOW)
    requeued = await letter_for(store, requeued_item, replayed_at=NOW)

    assert await deadletters.purge(store, ids=[purged, requeued]) == 2

    kept = await bodies(store)
    assert kept == {"purged": CLEARED_BODY, "requeued": BODY}
    async with store.transaction() as conn:
        again = NewItem("event", "purged", {"n": 1}, "shopify")
        assert await queue.enqueue(store, conn, [again], NOW) == 0


async def _cleared(store: Store, key: str) -> bool:
    return (await bodies(store))[key] == CLEARED_BODY
