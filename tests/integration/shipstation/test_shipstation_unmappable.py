"""Orders the mapping cannot read go to the dead-letter queue; the sync goes on without them."""

from __future__ import annotations

from datetime import timedelta

import orjson
from tests.integration.shipstation.harness import Account, SyncOnce, by_order, queued_events

from shoprelay.sim.shipstation_records import pacific_stamp
from shoprelay.store import deadletters
from shoprelay.store.database import Store


async def open_letters(store: Store) -> list[deadletters.DeadLetter]:
    async with store.read() as conn:
        found = await deadletters.list_open(conn)
        return await deadletters.get(conn, [letter.id for letter in found])


async def test_unmappable_orders_are_dead_lettered_and_the_sync_goes_on(
    store: Store, account: Account, sync_once: SyncOnce
) -> None:
    """Orders without modifyDate or with odd items are kept as dead letters; others sync."""
    sim, now = account.sim, account.clock.now()
    good, undated, odd = (sim.create_order(at=now - timedelta(days=d)) for d in (3, 2, 1))
    del undated["modifyDate"]
    odd["items"] = ["not an item"]
    # Modified just before the first sync: read by the backfill and by its incremental read.
    odd["modifyDate"] = pacific_stamp(now - timedelta(seconds=30))
    report = await sync_once()
    assert by_order(await queued_events(store)) == {
        str(good["orderId"]): ["Order Awaiting Shipment"]
    }
    assert report.orders_dead_lettered == 2
    letters = await open_letters(store)
    assert sorted(orjson.loads(letter.payload or b"")["orderId"] for letter in letters) == sorted(
        [undated["orderId"], odd["orderId"]]
    )
    assert {(letter.origin, letter.source, letter.scope) for letter in letters} == {
        ("source", "shipstation", "default")
    }
    assert all(letter.reason.startswith("unmappable order") for letter in letters)


async def test_a_later_sync_is_not_stopped_by_an_unmappable_order(
    store: Store, account: Account, sync_once: SyncOnce
) -> None:
    """An odd order changed again is read by later syncs without failing them or re-recording it."""
    sim = account.sim
    odd, good = (sim.create_order(at=account.clock.now() - timedelta(days=1)) for _ in range(2))
    await sync_once()
    account.clock.advance(timedelta(minutes=30))
    odd["items"] = [42]
    sim.cancel(odd["orderId"])
    sim.cancel(good["orderId"])
    first = await sync_once()
    account.clock.advance(timedelta(minutes=1))
    second = await sync_once()  # the overlap reads the odd order again
    assert by_order(await queued_events(store))[str(good["orderId"])][-1] == "Order Cancelled"
    assert (first.orders_dead_lettered, second.orders_dead_lettered) == (1, 0)
    assert len(await open_letters(store)) == 1
