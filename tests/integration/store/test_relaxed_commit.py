"""Delivery's bookkeeping commits without waiting for the disk; what must last still waits."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from sqlalchemy import Connection, Engine, event, func, select

from shoprelay.store import outbox
from shoprelay.store.database import Store
from shoprelay.store.dialects import READ_ONLY
from shoprelay.store.outbox import Failure, NewItem
from shoprelay.store.schema import dead_letters
from shoprelay.store.schema import outbox as outbox_table


def _commit_mode(conn: Connection) -> str:
    """How the transaction on `conn` will commit, as the database itself reports it."""
    if conn.dialect.name == "sqlite":
        level = conn.exec_driver_sql("PRAGMA synchronous").scalar()
        return {1: "relaxed", 2: "durable"}[level]
    setting = conn.exec_driver_sql("SHOW synchronous_commit").scalar()
    return {"off": "relaxed", "on": "durable"}[setting]


@contextlib.contextmanager
def commit_modes() -> Iterator[list[str]]:
    """The commit mode of every write transaction committed meanwhile, in order."""
    seen: list[str] = []

    def record(conn: Connection) -> None:
        if not conn.get_execution_options().get(READ_ONLY):
            seen.append(_commit_mode(conn))

    event.listen(Engine, "commit", record)
    try:
        yield seen
    finally:
        event.remove(Engine, "commit", record)


async def test_each_transaction_commits_as_durably_as_it_asks(store: Store) -> None:
    """Alternating on the same pooled connections: no setting leaks into the next commit."""
    seen = [await store.run_in_transaction(_commit_mode, durable=d) for d in (False, True) * 2]
    async with store.transaction(durable=False) as conn:
        seen.append(await conn.run_sync(_commit_mode))
    async with store.transaction() as conn:
        seen.append(await conn.run_sync(_commit_mode))
    assert seen == ["relaxed", "durable"] * 3


async def test_a_relaxed_write_is_committed(store: Store) -> None:
    """Relaxed waits less for the disk, not for the commit: other connections see it at once."""
    statement = outbox_table.insert().values(
        kind="event",
        account="default",
        dedup_key="k1",
        body="{}",
        source="shopify",
        status="pending",
        created_at=1.0,
        available_at=1.0,
    )
    assert (await store.write(statement, durable=False)).rowcount == 1
    async with store.read() as conn:
        stored = await conn.execute(select(func.count()).select_from(outbox_table))
        assert stored.scalar() == 1


async def test_only_delivery_bookkeeping_is_relaxed(store: Store) -> None:
    """Enqueues and dead letters wait for the disk; claims, leases and outcomes do not."""
    items = [NewItem("event", f"k{n}", {"n": n}, "shopify") for n in range(3)]
    with commit_modes() as seen:
        async with store.transaction() as conn:
            await outbox.enqueue(store, conn, items, 100.0)
        claimed = await outbox.claim(
            store, account="default", kind="event", limit=3, owner="w", now=100, lease_seconds=30
        )
        await outbox.extend_lease(store, claimed, until=200.0)
        await outbox.mark_delivered(store, claimed[:1], now=101.0)
        await outbox.schedule_retry(store, claimed[1:2], available_at=100.0, error="503")
        await outbox.dead_letter(store, claimed[2:], [Failure("400 Bad Request")], now=102.0)
        await outbox.reclaim_expired(
            store, now=300.0, limits=outbox.AttemptLimits(max_attempts=8, max_age_seconds=1e6)
        )
    enqueue, claim, extend, delivered, retry, letter, reclaim = seen
    assert [enqueue, letter] == ["durable"] * 2
    assert [claim, extend, delivered, retry, reclaim] == ["relaxed"] * 5
    async with store.read() as conn:
        counts = await outbox.counts(conn)
        letters = await conn.execute(select(func.count()).select_from(dead_letters))
        assert letters.scalar() == 1
    assert counts["delivered"] == 1
    assert counts["pending"] == 1
    assert counts["dead_lettered"] == 1
