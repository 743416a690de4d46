"""Orders with equal modifyDates that come back in another order from one page to the next."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from tests.integration.shipstation.harness import Account, SyncOnce, by_order, queued_events

from shoprelay.sim.shipstation import ShipStationSim
from shoprelay.sources.shipstation.session import SyncOptions
from shoprelay.sources.shipstation.status import shipstation_status
from shoprelay.store.database import Store

TWO_PER_PAGE = SyncOptions(page_size=2)


def ascending_ids(order: Mapping[str, Any]) -> int:
    """A tie order opposite to the default (orderId descending under sortDir=DESC)."""
    return -int(order["orderId"])


async def hold_four_at_one_instant(account: Account, sync_once: SyncOnce) -> list[int]:
    """Four synced orders, then put on hold with the same modifyDate, well before the next sync."""
    now = account.clock.now()
    orders = account.sim.create_orders(4, start=now - timedelta(days=3), end=now)
    await sync_once()
    account.clock.advance(timedelta(minutes=30))
    held_at = account.clock.now() - timedelta(minutes=20)
    for order in orders:
        account.sim.hold(order["orderId"], held_at + timedelta(days=3), held_at)
    return sorted(order["orderId"] for order in orders)


def on_hold_events(found: dict[str, list[str]], ids: list[int]) -> list[int]:
    return [order_id for order_id in ids if "Order On Hold" in found.get(str(order_id), [])]


async def watermark(store: Store) -> str:
    async with store.read() as conn:
        return str((await shipstation_status(conn))["watermark"])


async def test_orders_skipped_by_reshuffled_ties_are_read_again(
    store: Store, account: Account, sync_once: SyncOnce
) -> None:
    """Tied orders skipped when their order changes between pages are caught by the re-read."""
    ids = await hold_four_at_one_instant(account, sync_once)

    def reshuffle_on_page_two(sim: ShipStationSim, params: dict[str, str]) -> None:
        if params.get("page") == "2" and "modifyDateStart" in params:
            sim.order_ties = ascending_ids
            sim.on_orders_request = None

    account.sim.on_orders_request = reshuffle_on_page_two
    await sync_once(TWO_PER_PAGE)
    found = by_order(await queued_events(store))
    assert on_hold_events(found, ids) == ids
    assert all(found[str(order_id)].count("Order On Hold") == 1 for order_id in ids)


async def test_range_missed_twice_is_read_by_the_next_sync(
    store: Store, account: Account, sync_once: SyncOnce
) -> None:
    """If both passes miss the same tied orders, the watermark stays; the next sync reads them."""
    ids = await hold_four_at_one_instant(account, sync_once)
    before = await watermark(store)

    def reshuffle_every_page_two(sim: ShipStationSim, params: dict[str, str]) -> None:
        sim.order_ties = ascending_ids if params.get("page") == "2" else None

    account.sim.on_orders_request = reshuffle_every_page_two
    await sync_once(TWO_PER_PAGE)
    assert on_hold_events(by_order(await queued_events(store)), ids) == ids[2:]
    assert await watermark(store) == before
    account.sim.on_orders_request = None
    account.sim.order_ties = None
    account.clock.advance(timedelta(minutes=30))
    await sync_once(TWO_PER_PAGE)
    found = by_order(await queued_events(store))
    assert on_hold_events(found, ids) == ids
    assert all(found[str(order_id)].count("Order On Hold") == 1 for order_id in ids)
    assert await watermark(store) > before
