"""The outbox on both dialects: enqueue, dedup, claim, leases, outcomes."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event

from shoprelay.store import deadletters, outbox
from shoprelay.store.database import Store
from shoprelay.store.outbox import Failure, Item, NewItem, Status


def _items(n: int, prefix: str = "k") -> list[NewItem]:
    return [
        NewItem(kind="event", dedup_key=f"{prefix}{i}", body={"n": i}, source="shopify")
        for i in range(n)
    ]


async def _enqueue(store: Store, items: list[NewItem], now: float = 100.0) -> int:
    async with store.transaction() as conn:
        return await outbox.enqueue(store, conn, items, now)


async def _counts(store: Store) -> dict[str, int]:
    async with store.read() as conn:
        return await outbox.counts(conn)


async def test_enqueue_skips_known_dedup_keys(store: Store) -> None:
    """An item whose dedup_key is already queued is not queued twice."""
    assert await _enqueue(store, _items(3)) == 3
    assert await _enqueue(store, _items(5)) == 2
    assert (await _counts(store))["pending"] == 5


async def test_claim_leases_oldest_ready_items_once(store: Store) -> None:
    """Two claims never return the same item, and items not yet ready stay queued."""
    await _enqueue(store, _items(5))
    first = await outbox.claim(
        store, account="default", kind="event", limit=3, owner="a", now=100, lease_seconds=30
    )
    second = await outbox.claim(
        store, account="default", kind="event", limit=3, owner="b", now=100, lease_seconds=30
    )
    assert [item.body["n"] for item in first] == [0, 1, 2]
    assert [item.body["n"] for item in second] == [3, 4]
    assert (await _counts(store))["in_flight"] == 5
    early = await outbox.claim(
        store, account="default", kind="event", limit=3, owner="c", now=50, lease_seconds=30
    )
    assert early == []


async def test_concurrent_claims_partition_the_queue(store: Store) -> None:
    """Many workers claiming at once each get distinct items, and all items are claimed."""
    await _enqueue(store, _items(200))

    async def worker(name: str) -> list[int]:
        got: list[int] = []
        while batch := await outbox.claim(
            store, account="default", kind="event", limit=7, owner=name, now=100, lease_seconds=30
        ):
            got.extend(item.id for item in batch)
        return got

    results = await asyncio.gather(*(worker(f"w{i}") for i in range(6)))
    claimed = [item_id for result in results for item_id in result]
    assert len(claimed) == 200
    assert len(set(claimed)) == 200


LIMITS = outbox.AttemptLimits(max_attempts=3, max_age_seconds=10_000)


async def test_an_expired_lease_is_reclaimed_with_its_attempt_spent(store: Store) -> None:
    """Items held by a worker that died go back to the queue when the lease expires; the
    claim that died counts, so the next claim is their second attempt."""
    await _enqueue(store, _items(2))
    await outbox.claim(
        store, account="default", kind="event", limit=2, owner="dead", now=100, lease_seconds=30
    )
    assert await outbox.reclaim_expired(store, now=120, limits=LIMITS) == 0
    assert await outbox.reclaim_expired(store, now=131, limits=LIMITS) == 2
    again = await outbox.claim(
        store, account="default", kind="event", limit=5, owner="b", now=131, lease_seconds=30
    )
    assert [item.attempts for item in again] == [2, 2]
    assert {item.last_error for item in again} == {outbox.LEASE_EXPIRED}


async def test_an_item_that_kills_its_sender_is_dead_lettered_after_its_attempts(
    store: Store,
) -> None:
    """A poison item, whose every send ends the worker before an outcome, is reclaimed until
    it runs out of attempts, then dead-lettered with the reason; it never loops forever."""
    await _enqueue(store, _items(1))
    now = 100.0
    for _ in range(LIMITS.max_attempts):
        claimed = await outbox.claim(
            store, account="default", kind="event", limit=1, owner="w", now=now, lease_seconds=5
        )
        assert len(claimed) == 1
        now += 10
        assert await outbox.reclaim_expired(store, now=now, limits=LIMITS) == 1
    counts = await _counts(store)
    assert (counts["pending"], counts["in_flight"], counts["dead_lettered"]) == (0, 0, 1)
    async with store.read() as conn:
        (letter,) = await deadletters.list_open(conn)
    assert letter.reason == f"gave up after 3 attempts: {outbox.LEASE_EXPIRED}"


async def test_an_expired_lease_past_the_age_limit_is_dead_lettered(store: Store) -> None:
    await _enqueue(store, _items(1), now=100)
    await outbox.claim(
        store, account="default", kind="event", limit=1, owner="w", now=100, lease_seconds=5
    )
    aged = outbox.AttemptLimits(max_attempts=8, max_age_seconds=50)
    assert await outbox.reclaim_expired(store, now=160, limits=aged) == 1
    assert (await _counts(store))["dead_lettered"] == 1


async def test_a_release_gives_the_claims_attempt_back(store: Store) -> None:
    """A pause or a rate limit is not an attempt: a released item keeps its count."""
    await _enqueue(store, _items(1))
    for _ in range(5):
        claimed = await outbox.claim(
            store, account="default", kind="event", limit=1, owner="w", now=100, lease_seconds=5
        )
        await outbox.release(store, claimed, available_at=100)
    (item,) = await outbox.claim(
        store, account="default", kind="event", limit=1, owner="w", now=100, lease_seconds=5
    )
    assert item.attempts == 1


async def test_outcomes_move_items_between_states(store: Store) -> None:
    """Delivered, retried and dead-lettered items land in their states with attempts counted."""
    await _enqueue(store, _items(3))
    a, b, c = await outbox.claim(
        store, account="default", kind="event", limit=3, owner="w", now=100, lease_seconds=30
    )
    await outbox.mark_delivered(store, [a], now=101)
    await outbox.schedule_retry(store, [b], available_at=200, error="503")
    await outbox.dead_letter(store, [c], [Failure("invalid", "bad time", "/data", 400)], now=101)
    assert await _counts(store) == {
        "pending": 1,
        "in_flight": 0,
        "delivered": 1,
        "dead_lettered": 1,
        "superseded": 0,
        "erased": 0,
    }
    retried = await outbox.claim(
        store, account="default", kind="event", limit=3, owner="w", now=200, lease_seconds=30
    )
    assert [(item.id, item.attempts) for item in retried] == [(b.id, 2)]
    assert Status.DELIVERED in outbox.TERMINAL_STATUSES


async def test_a_late_answer_under_an_expired_lease_changes_nothing(store: Store) -> None:
    """Once a lease expired and another worker took the item, the first worker's word is void."""
    await _enqueue(store, _items(1))
    (first,) = await outbox.claim(
        store, account="default", kind="event", limit=1, owner="w1", now=100, lease_seconds=5
    )
    await outbox.reclaim_expired(store, now=106, limits=LIMITS)
    (second,) = await outbox.claim(
        store, account="default", kind="event", limit=1, owner="w2", now=106, lease_seconds=5
    )
    await outbox.mark_delivered(store, [second], now=107)
    await outbox.release(store, [first], available_at=107)
    await outbox.schedule_retry(store, [first], available_at=107, error="late 503")
    await outbox.dead_letter(store, [first], [Failure("late 400")], now=107)
    assert (await _counts(store))["delivered"] == 1
    async with store.read() as conn:
        assert await deadletters.count_open(conn) == 0


async def test_two_claims_by_one_owner_hold_different_leases(store: Store) -> None:
    """Each claim has its own lease token, even from the same worker."""
    await _enqueue(store, _items(2))
    a = await outbox.claim(
        store, account="default", kind="event", limit=1, owner="w", now=100, lease_seconds=5
    )
    b = await outbox.claim(
        store, account="default", kind="event", limit=1, owner="w", now=100, lease_seconds=5
    )
    assert a[0].lease != b[0].lease


def _outbox_updates(statements: list[tuple[str, Any]]) -> list[str]:
    return [sql for sql, _ in statements if sql.startswith("UPDATE outbox")]


@contextlib.contextmanager
def _statements() -> Iterator[list[tuple[str, Any]]]:
    """The SQL every engine runs inside the block, each with its parameters."""
    statements: list[tuple[str, Any]] = []

    def record(_conn: Any, _cursor: Any, sql: str, parameters: Any, *_: Any) -> None:
        statements.append((" ".join(sql.split()), parameters))

    event.listen(Engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(Engine, "before_cursor_execute", record)


def _transactions_for(store: Store, rows: int) -> int:
    """How many write transactions the dialect takes to lease or settle `rows`."""
    step = store.dialect.rows_per_write or rows
    return -(-rows // step)


async def test_a_claim_reads_its_rows_after_its_write_transaction(store: Store) -> None:
    """Reading 500 bodies inside the write transaction would hold SQLite's write lock for a
    step, and a wait for the GIL, per row; the transactions only mark them."""
    await _enqueue(store, _items(600))
    with _statements() as statements:
        claimed = await outbox.claim(
            store, account="default", kind="event", limit=500, owner="w", now=100, lease_seconds=30
        )
    rest = await outbox.claim(
        store, account="default", kind="event", limit=500, owner="w", now=100, lease_seconds=30
    )
    assert len({item.id for item in claimed}) == 500
    assert max(item.id for item in claimed) < min(item.id for item in rest)  # oldest first
    assert {item.body["n"] for item in claimed + rest} == set(range(600))
    assert len({item.lease for item in claimed}) == 1
    writes = _outbox_updates(statements)
    assert len(writes) == _transactions_for(store, 500)
    assert not any("RETURNING" in sql for sql in writes)
    assert (await _counts(store))["in_flight"] == 600


async def test_sqlite_leases_and_settles_a_large_batch_in_steps(store: Store) -> None:
    """On SQLite every transaction holds the one write lock that webhook commits wait for:
    a 1,000-row claim or record goes in steps of `rows_per_write`, and the steps add up to
    exactly the batch, each row once. PostgreSQL, with row locks, takes one transaction."""
    await _enqueue(store, _items(1_050))
    with _statements() as statements:
        claimed = await outbox.claim(
            store, account="default", kind="event", limit=1_000, owner="w", now=100,
            lease_seconds=30,
        )  # fmt: skip
    assert len({item.id for item in claimed}) == 1_000
    assert len({item.lease for item in claimed}) == 1
    steps = _transactions_for(store, 1_000)
    assert len(_outbox_updates(statements)) == steps
    assert steps == (10 if store.backend == "sqlite" else 1)

    with _statements() as statements:
        await outbox.mark_delivered(store, claimed, now=101)
    assert len(_outbox_updates(statements)) == steps
    counts = await _counts(store)
    assert (counts["delivered"], counts["pending"], counts["in_flight"]) == (1_000, 50, 0)


async def test_sqlite_settles_rows_found_by_id_not_by_status(store: Store) -> None:
    """With 1,000 rows in flight, settling 100 of them reads those 100. SQLite's planner, with
    no statistics, preferred the status index to the list of ids, and walked every in-flight
    row for each step of every record."""
    if store.backend != "sqlite":
        pytest.skip("PostgreSQL plans from its statistics; the plan checked is SQLite's")
    await _enqueue(store, [*_items(1_000), _profile(1), _profile(2)])
    claimed = await outbox.claim(
        store, account="default", kind="event", limit=1_000, owner="w", now=100, lease_seconds=30
    )
    with _statements() as statements:
        await outbox.mark_delivered(store, claimed[:100], now=101)
        await outbox.extend_lease(store, claimed[100:200], until=200)
        await outbox.release(store, claimed[200:300], available_at=102)
        await outbox.dead_letter(store, claimed[300:400], [Failure("bad")] * 100, now=103)
        await _claim_profiles(store)  # supersedes version 1 among the claimed ids
    updates = [(sql, params) for sql, params in statements if sql.startswith("UPDATE outbox")]
    assert len(updates) == 6
    with contextlib.closing(sqlite3.connect(str(store.engine.url.database))) as raw:
        for sql, params in updates:
            if "json_each" not in sql:
                continue  # the claims' own UPDATE, by a subquery of ready ids
            plan = [row[3] for row in raw.execute(f"EXPLAIN QUERY PLAN {sql}", params)]
            assert plan[0] == "SEARCH outbox USING INTEGER PRIMARY KEY (rowid=?)", (sql, plan)


async def _claim_at_least(store: Store, at_least: int, limit: int) -> list[Item]:
    return await outbox.claim(
        store, account="default", kind="event", limit=limit, owner="w", now=100,
        lease_seconds=5, at_least=at_least,
    )  # fmt: skip


async def test_a_claim_in_steps_counts_at_least_over_the_whole_claim(store: Store) -> None:
    """`at_least` above one step's rows still holds: a full batch, or nothing."""
    await _enqueue(store, _items(250))
    assert await _claim_at_least(store, at_least=251, limit=1_000) == []
    assert (await _counts(store))["in_flight"] == 0
    assert len(await _claim_at_least(store, at_least=250, limit=1_000)) == 250


async def test_a_claim_waits_for_at_least_as_many_as_asked(store: Store) -> None:
    await _enqueue(store, _items(3))
    few = await _claim_at_least(store, at_least=4, limit=10)
    enough = await _claim_at_least(store, at_least=3, limit=10)
    assert few == []
    assert len(enough) == 3


async def test_a_full_batch_settles_where_sqlite_allows_999_parameters(tmp_path: Path) -> None:
    """A build may cap bound parameters at 999 (SQLITE_MAX_VARIABLE_NUMBER): a bulk batch of
    1,000 ids is one parameter when it is claimed, recorded, dead-lettered, replayed, purged."""

    def limit(dbapi_connection: Any, _record: Any) -> None:
        if hasattr(dbapi_connection, "setlimit"):
            dbapi_connection.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 999)

    event.listen(Engine, "connect", limit)
    store = await Store.open(f"sqlite+aiosqlite:///{tmp_path / 'old.db'}")
    try:
        await _enqueue(store, _items(2_000))
        claimed = await outbox.claim(
            store, account="default", kind="event", limit=1_000, owner="w", now=100,
            lease_seconds=30,
        )  # fmt: skip
        await outbox.mark_delivered(store, claimed, now=101)
        assert (await _counts(store))["delivered"] == 1_000
        rest = await outbox.claim(
            store, account="default", kind="event", limit=1_000, owner="w", now=100,
            lease_seconds=30,
        )  # fmt: skip
        await outbox.dead_letter(store, rest, [Failure("400 invalid")] * len(rest), now=102)
        async with store.transaction() as conn:
            letters = await deadletters.list_open(conn, limit=None)
            letters = await deadletters.get(conn, [letter.id for letter in letters])
            assert await deadletters.requeue_deliveries(conn, letters, now=103) == 1_000
        assert await deadletters.purge(store, ids=[letter.id for letter in letters]) == 1_000
    finally:
        await store.close()
        event.remove(Engine, "connect", limit)


def _profile(
    version: int, key: str = "profile:shopify:shop:customer:1", *, stamped: bool = False
) -> NewItem:
    """A profile version; `stamped` gives it its source version, as mapping does."""
    stamp = f"2026-01-{version:02d}T00:00:00.000000Z" if stamped else None
    return NewItem(
        "profile",
        f"p{key}:{version}",
        {"v": version},
        "shopify",
        ordering_key=key,
        ordering_version=stamp,
    )


async def _claim_profiles(store: Store, now: float = 100) -> list[Item]:
    return await outbox.claim(
        store, account="default", kind="profile", limit=10, owner="w", now=now, lease_seconds=30
    )


async def test_a_newer_profile_version_supersedes_a_pending_older_one(store: Store) -> None:
    """Of two queued versions of one customer, only the newer is ever sent."""
    await _enqueue(store, [_profile(1), _profile(2), _profile(1, key="other")])
    claimed = await _claim_profiles(store)
    assert sorted(item.body["v"] for item in claimed) == [1, 2]
    assert (await _counts(store))["superseded"] == 1


async def test_a_one_item_claim_skips_superseded_versions(store: Store) -> None:
    """Superseded versions at the head of the queue do not make a small claim come back empty."""
    await _enqueue(store, [_profile(v) for v in (1, 2, 3)])
    claimed = await outbox.claim(
        store, account="default", kind="profile", limit=1, owner="w", now=100, lease_seconds=30
    )
    assert [item.body["v"] for item in claimed] == [3]
    assert (await _counts(store))["superseded"] == 2


async def test_a_newer_version_waits_while_an_older_one_is_in_flight(store: Store) -> None:
    """A customer's next version is not sent alongside the one still in flight."""
    await _enqueue(store, [_profile(1)])
    (first,) = await _claim_profiles(store)
    await _enqueue(store, [_profile(2)], now=101)
    assert await _claim_profiles(store, now=102) == []
    await outbox.mark_delivered(store, [first], now=103)
    (second,) = await _claim_profiles(store, now=104)
    assert second.body == {"v": 2}


async def test_a_retried_older_version_never_lands_after_the_newer(store: Store) -> None:
    """An older version that failed and waits for its retry is superseded by the newer one."""
    await _enqueue(store, [_profile(1)])
    (first,) = await _claim_profiles(store)
    await outbox.schedule_retry(store, [first], available_at=100, error="503")
    await _enqueue(store, [_profile(2)], now=101)
    claimed = await _claim_profiles(store, now=200)
    assert [item.body["v"] for item in claimed] == [2]


async def test_a_version_committed_after_a_newer_one_is_never_sent(store: Store) -> None:
    """Concurrent writers can commit an older version after a newer one: the source's version
    decides, not the queue order."""
    await _enqueue(store, [_profile(2, stamped=True)])
    await _enqueue(store, [_profile(1, stamped=True)], now=101)
    claimed = await _claim_profiles(store, now=102)
    assert [item.body["v"] for item in claimed] == [2]
    assert (await _counts(store))["superseded"] == 1


async def test_an_older_version_arriving_after_the_newer_was_sent_is_never_sent(
    store: Store,
) -> None:
    await _enqueue(store, [_profile(2, stamped=True)])
    (newer,) = await _claim_profiles(store)
    await _enqueue(store, [_profile(1, stamped=True)], now=101)
    assert await _claim_profiles(store, now=102) == []  # waits: its key is in flight
    await outbox.mark_delivered(store, [newer], now=103)
    assert await _claim_profiles(store, now=104) == []
    assert (await _counts(store))["superseded"] == 1


async def test_an_older_version_is_sent_when_the_newer_was_dead_lettered(store: Store) -> None:
    """Klaviyo refused the newer version: the older one is the newest it can take."""
    await _enqueue(store, [_profile(2, stamped=True)])
    (newer,) = await _claim_profiles(store)
    await outbox.dead_letter(store, [newer], [Failure("400 invalid")], now=101)
    await _enqueue(store, [_profile(1, stamped=True)], now=102)
    assert [item.body["v"] for item in await _claim_profiles(store, now=103)] == [1]


async def test_concurrent_claims_never_send_two_versions_of_a_key_at_once(store: Store) -> None:
    """Workers claiming one ordered lane side by side, across 40 customers of two versions
    each, committed older last: only newest versions are ever leased, one per key at a time."""
    keys = [f"profile:shopify:shop:customer:{n}" for n in range(40)]
    await _enqueue(store, [_profile(2, key, stamped=True) for key in keys])
    await _enqueue(store, [_profile(1, key, stamped=True) for key in keys], now=101)

    async def worker(name: str) -> list[Item]:
        got: list[Item] = []
        while batch := await outbox.claim(
            store, account="default", kind="profile", limit=3, owner=name, now=102,
            lease_seconds=30,
        ):  # fmt: skip
            got.extend(batch)
        return got

    results = await asyncio.gather(*(worker(f"w{i}") for i in range(6)))
    leased = [item for result in results for item in result]
    assert sorted(item.dedup_key for item in leased) == sorted(f"p{key}:2" for key in keys)


async def test_lanes_are_the_account_and_kind_pairs_with_pending_items(store: Store) -> None:
    items = [
        NewItem("event", "e1", {}, "shopify", account="acme"),
        NewItem("profile", "p1", {}, "shopify", account="acme"),
        NewItem("event", "e2", {}, "shopify", account="zeta"),
        NewItem("event", "e3", {}, "shopify", account="beta"),
    ]
    await _enqueue(store, items)
    (beta,) = await outbox.claim(
        store, account="beta", kind="event", limit=5, owner="w", now=100, lease_seconds=30
    )
    await outbox.mark_delivered(store, [beta], now=101)
    async with store.read() as conn:
        found = await outbox.lanes(conn)
    assert found == [("acme", "event"), ("acme", "profile"), ("zeta", "event")]


async def test_in_a_rolling_upgrade_an_item_without_a_version_orders_by_queue(
    store: Store,
) -> None:
    """A newer update queued by a release that stored no version is not beaten by an older
    versioned one queued before it: without both versions, queue order decides."""
    await _enqueue(store, [_profile(2, stamped=True)])
    await _enqueue(store, [_profile(3)], now=101)  # the old release: no version
    claimed = await _claim_profiles(store, now=102)
    assert [item.body["v"] for item in claimed] == [3]
