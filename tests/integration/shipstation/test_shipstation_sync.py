"""First sync and later syncs against the simulator, over real sockets, on both dialects."""

from __future__ import annotations

from datetime import timedelta

from tests.integration.shipstation.harness import (
    START,
    Account,
    SyncOnce,
    by_order,
    queued_events,
)

from shoprelay.store.database import Store

METRIC = {
    "awaiting_shipment": "Order Awaiting Shipment",
    "awaiting_payment": "Order Awaiting Payment",
    "on_hold": "Order On Hold",
    "shipped": "Order Shipped",
    "cancelled": "Order Cancelled",
}


def make_history(account: Account, count: int) -> dict[int, str | None]:
    """`count` orders over 88 days across the stores, moved to varied statuses in the past.

    Returns the metric each order's current status should produce (None for none).
    """
    now = account.clock.now()
    orders = account.sim.create_orders(count, start=now - timedelta(days=88), end=now)
    expected: dict[int, str | None] = {}
    for n, order in enumerate(orders):
        order_id, later = order["orderId"], account.sim.clock.now() - timedelta(hours=1)
        kind = n % 7
        if kind == 1:
            account.sim.ship_label(order_id, later)
        elif kind == 2:
            account.sim.mark_shipped(order_id, later)
        elif kind == 3:
            account.sim.hold(order_id, now + timedelta(days=2), later)
        elif kind == 4:
            account.sim.cancel(order_id, later)
        elif kind == 5:
            account.sim.await_payment(order_id, later)
        expected[order_id] = None if kind == 2 else METRIC[order_and_status(account, order_id)]
    return expected


def order_and_status(account: Account, order_id: int) -> str:
    return str(account.sim.orders[order_id]["orderStatus"])


async def test_first_sync_queues_one_event_per_order_status(
    store: Store, account: Account, sync_once: SyncOnce
) -> None:
    """A first sync of thousands of orders over three stores queues one event per current status."""
    expected = make_history(account, 3000)
    report = await sync_once()
    found = by_order(await queued_events(store))
    wanted = {str(oid): [metric] for oid, metric in expected.items() if metric is not None}
    assert found == wanted
    assert report.orders_without_email == 0
    assert report.events_queued == len(wanted)
    assert account.sim.counters.responses.get(429, 0) == 0


async def test_first_sync_events_are_backfill(
    store: Store, account: Account, sync_once: SyncOnce
) -> None:
    """Events of the first sync carry backfill: true, so Klaviyo does not trigger flows."""
    make_history(account, 50)
    await sync_once()
    assert {event.get("backfill") for event in await queued_events(store)} == {True}


async def test_later_changes_queue_exactly_the_new_events(
    store: Store, account: Account, sync_once: SyncOnce
) -> None:
    """Status changes after the first sync queue one live event each, and nothing else."""
    sim = account.sim
    orders = sim.create_orders(
        6, start=account.clock.now() - timedelta(days=3), end=account.clock.now()
    )
    ids = [order["orderId"] for order in orders]
    await sync_once()
    before = len(await queued_events(store))
    account.clock.advance(timedelta(minutes=30))
    sim.ship_label(ids[0])
    sim.hold(ids[1], account.clock.now() + timedelta(days=2))
    sim.cancel(ids[2])
    sim.mark_shipped(ids[3])
    sim.orders[ids[4]]["internalNotes"] = "re-read with no change"
    sim.orders[ids[4]]["modifyDate"] = sim.orders[ids[0]]["modifyDate"]
    sim.ship_label(ids[5])
    account.clock.advance(timedelta(minutes=1))
    sim.void_label(ids[5])
    await sync_once()
    new = (await queued_events(store))[before:]
    assert by_order(new) == {
        str(ids[0]): ["Order Shipped"],
        str(ids[1]): ["Order On Hold"],
        str(ids[2]): ["Order Cancelled"],
    }
    assert {event.get("backfill", False) for event in new} == {False}
    account.clock.advance(timedelta(minutes=30))
    sim.ship_label(ids[5])
    await sync_once()
    last = (await queued_events(store))[before + len(new) :]
    assert by_order(last) == {str(ids[5]): ["Order Shipped"]}


async def test_a_voided_label_queues_awaiting_shipment_again(
    store: Store, account: Account, sync_once: SyncOnce
) -> None:
    """A label voided after a sync saw the order shipped returns it to awaiting shipment."""
    order = account.sim.create_order(at=account.clock.now() - timedelta(days=1))
    await sync_once()
    account.clock.advance(timedelta(minutes=30))
    account.sim.ship_label(order["orderId"])
    await sync_once()
    account.clock.advance(timedelta(minutes=30))
    account.sim.void_label(order["orderId"])
    await sync_once()
    assert by_order(await queued_events(store))[str(order["orderId"])] == [
        "Order Awaiting Shipment",
        "Order Shipped",
        "Order Awaiting Shipment",
    ]


async def test_shipped_event_carries_the_label(
    store: Store, account: Account, sync_once: SyncOnce
) -> None:
    """Order Shipped names the store, carrier, service and tracking number, at the label's time."""
    # Fixed instants, not clock.now(): the sim clock runs on with real time while tests run.
    order = account.sim.create_order(store_id=31002, at=START - timedelta(days=1))
    label = account.sim.ship_label(order["orderId"], START - timedelta(hours=2))
    await sync_once()
    (event,) = await queued_events(store)
    properties = event["properties"]
    assert event["metric"]["data"]["attributes"]["name"] == "Order Shipped"
    assert properties["StoreName"] == "Harbor Goods Shopify"
    assert properties["StoreId"] == 31002
    assert properties["TrackingNumber"] == label["trackingNumber"]
    assert properties["Carrier"] == label["carrierCode"]
    assert properties["Service"] == label["serviceCode"]
    assert event["time"] == "2025-04-15T15:00:00Z"
    assert event["value_currency"] == "USD"


async def test_orders_without_email_are_counted_not_sent(
    store: Store, account: Account, sync_once: SyncOnce
) -> None:
    """An order with no customer email queues nothing and shows in the count."""
    account.sim.create_order(at=account.clock.now() - timedelta(days=1), email="")
    account.sim.create_order(at=account.clock.now() - timedelta(days=1))
    report = await sync_once()
    assert report.orders_without_email == 1
    assert len(await queued_events(store)) == 1


async def test_quiet_sync_costs_one_request(account: Account, sync_once: SyncOnce) -> None:
    """With nothing changed, an incremental sync makes a single API request."""
    account.sim.create_orders(
        20, start=account.clock.now() - timedelta(days=5), end=account.clock.now()
    )
    await sync_once()
    account.clock.advance(timedelta(minutes=30))
    report = await sync_once()
    assert report.requests_used == 1
    assert report.events_queued == 0


async def test_requests_stay_near_the_minimum(account: Account, sync_once: SyncOnce) -> None:
    """A first sync uses about one request per 500 orders plus stores and shipments."""
    expected = make_history(account, 3000)
    report = await sync_once()
    labels = len(account.sim.shipments)
    minimum = -(-len(expected) // 500) + -(-labels // 500) + 1  # orders + shipments + stores
    # One more: the catch-up read of changes made since the backfill started.
    assert report.requests_used <= minimum + 1
    account.clock.advance(timedelta(minutes=30))
    changed = list(expected)[:1200]
    for order_id in changed:
        account.sim.cancel(order_id)
    report = await sync_once()
    assert report.requests_used <= -(-len(changed) // 500) + 1  # + one shipments read at most
