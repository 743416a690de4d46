"""Reading open dead letters a batch at a time: each batch costs the same however many are open."""

from __future__ import annotations

from tests.support.query_plans import sqlite_plan, table_rows_read

from shoprelay.store import deadletters, outbox
from shoprelay.store.database import Store
from shoprelay.store.outbox import Failure, NewItem
from shoprelay.store.schema import dead_letters

OPEN = 3_000
BATCH = 100


async def test_a_batch_of_open_letters_is_read_from_its_place_not_sorted_from_all(
    store: Store,
) -> None:
    """The batch after a letter seeks its place among the open letters, oldest first: no
    batch reads or sorts every open letter, which would make replaying many of them cost the
    square of their number."""
    async with store.transaction() as conn:
        await conn.execute(
            dead_letters.insert(),
            [
                {
                    "origin": "webhook",
                    "source": "shopify",
                    "reason": "not JSON",
                    "payload": b"{",
                    "created_at": 1_000.0 + n // 2,  # ties: the id orders them
                    "replayed_at": 5_000.0 if n % 4 == 0 else None,
                }
                for n in range(OPEN * 4 // 3)
            ],
        )
    async with store.read() as conn:
        through_id = await deadletters.last_id(conn)
        first = await deadletters.open_after(conn, None, through_id=through_id, limit=BATCH)
        second = await deadletters.open_after(conn, first[-1], through_id=through_id, limit=BATCH)
        query = deadletters.open_after_query(second[-1], through_id=through_id, limit=BATCH)
        if store.dialect.name == "sqlite":
            plan = await sqlite_plan(store, conn, query)
            assert "SEARCH dead_letters USING INDEX" in plan
            assert "TEMP B-TREE" not in plan
        else:
            rows_read = await table_rows_read(store, conn, query, "dead_letters")
            assert rows_read <= BATCH, f"read {rows_read} dead letters for a batch of {BATCH}"

    ordered = [(letter.created_at, letter.id) for letter in first + second]
    assert ordered == sorted(ordered)
    assert len(set(ordered)) == 2 * BATCH
    assert all(letter.replayed_at is None and letter.payload == b"{" for letter in first)


async def test_a_letter_purged_before_its_replay_commits_requeues_nothing(store: Store) -> None:
    """A replay that read a letter which a purge then removed (and whose item's body it
    cleared) must not send that empty item: only letters still open are requeued."""
    async with store.transaction() as conn:
        await outbox.enqueue(store, conn, [NewItem("event", "e1", {"n": 1}, "shopify")], 100.0)
    claimed = await outbox.claim(
        store, account="default", kind="event", limit=1, owner="w", now=100, lease_seconds=30
    )
    await outbox.dead_letter(store, claimed, [Failure("400 invalid")], now=101)
    async with store.read() as conn:
        letters = await deadletters.get(conn, [d.id for d in await deadletters.list_open(conn)])
    assert await deadletters.purge(store, ids=[letter.id for letter in letters]) == 1
    async with store.transaction() as conn:
        assert await deadletters.requeue_deliveries(conn, letters, now=102) == 0
    async with store.read() as conn:
        assert (await outbox.counts(conn))["pending"] == 0
