"""Shipped events read the newest live label: split, voided, return and same-time labels."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import orjson
from tests.integration.shipstation.harness import START, Account, SyncOnce, queued_events

from shoprelay.mapping.shipstation import ShipStationMetrics, label_shipment, status_change_to_event
from shoprelay.store.database import Store


def expected_body(account: Account, order_id: int) -> dict[str, Any]:
    """The event body the mapping makes from the order and every field of its shipments."""
    sim = account.sim
    order = sim.orders[order_id]
    shipments = [s for s in sim.shipments if s["orderId"] == order_id]
    store_id = order["advancedOptions"]["storeId"]
    (store,) = [s for s in sim.store_records if s["storeId"] == store_id]
    event = status_change_to_event(
        order,
        {"storeName": store["storeName"], "marketplaceName": store["marketplaceName"]},
        label_shipment(shipments),
        None,
        ShipStationMetrics(),
        account="default",
        currency="USD",
        backfill=True,
    )
    assert event is not None
    body: dict[str, Any] = orjson.loads(orjson.dumps(event.to_attributes()))
    return body


async def test_shipped_events_are_those_of_the_whole_shipments(
    store: Store, account: Account, sync_once: SyncOnce
) -> None:
    """Each order's queued event equals the mapping's event from its full shipment records."""
    sim = account.sim
    # Fixed instants, not clock.now(): the sim clock runs on with real time while tests run.
    orders = sim.create_orders(5, start=START - timedelta(days=3), end=START - timedelta(days=1))
    single, split, voided, returned, same_time = (order["orderId"] for order in orders)
    first, second = START - timedelta(hours=6), START - timedelta(hours=5)
    sim.ship_label(single, first)
    sim.ship_label(split, first)
    sim.ship_label(split, second)  # the newer of two live labels wins
    sim.ship_label(voided, first)
    sim.ship_label(voided, second)["voided"] = True  # the older label is the live one
    sim.ship_label(returned, first)
    sim.ship_label(returned, second)["isReturnLabel"] = True
    sim.ship_label(same_time, first)
    sim.ship_label(same_time, first)  # equal createDate: the first one listed wins
    await sync_once()
    queued = {event["properties"]["OrderId"]: event for event in await queued_events(store)}
    expected = {str(order["orderId"]): expected_body(account, order["orderId"]) for order in orders}
    assert queued == expected
    labels = {single: 0, split: 2, voided: 3, returned: 5, same_time: 7}
    for order_id, index in labels.items():
        label = sim.shipments[index]
        properties = queued[str(order_id)]["properties"]
        assert properties["ShipmentId"] == label["shipmentId"]
        assert properties["TrackingNumber"] == label["trackingNumber"]
