"""A group commit tells delivery which lanes got new items, so only those are woken."""

from __future__ import annotations

import random

from shoprelay.mapping.shopify_fields import ShopifyMetrics
from shoprelay.sim.shopify import encode, headers
from shoprelay.sim.shopify_orders import fake_order
from shoprelay.sim.shopify_payloads import START, fake_customer
from shoprelay.sources.shopify.ingest import Delivery, IngestWriter
from shoprelay.sources.shopify.receive import Receiver
from shoprelay.store.database import Store

SECRET = b"lanes-secret"
SHOP = "lanes.myshopify.com"


def delivery(receiver: Receiver, topic: str, payload: dict[str, object]) -> Delivery:
    body = encode(payload)
    signed = {name.lower(): value for name, value in headers(topic, body, SECRET, SHOP).items()}
    prepared = receiver.prepare(signed, body)
    assert prepared is not None
    return prepared


async def test_each_commit_reports_the_lanes_its_items_joined(store: Store) -> None:
    woken: list[frozenset[tuple[str, str]]] = []
    writer = IngestWriter(store, on_commit=woken.append)
    receiver = Receiver(writer, [SECRET], ShopifyMetrics())
    rng = random.Random(3)
    customer = fake_customer(rng)
    order = delivery(receiver, "orders/create", fake_order(rng, customer, at=START, number=1))
    await writer.start()
    try:
        assert (await writer.submit(order)).lanes == {("default", "event")}
        await writer.submit(delivery(receiver, "customers/create", customer))
        duplicate = await writer.submit(order)
        await writer.submit(delivery(receiver, "app/uninstalled", {"id": 1}))
    finally:
        await writer.stop()
    assert woken == [{("default", "event")}, {("default", "profile")}]
    assert duplicate.outcome == "duplicate"
    assert duplicate.lanes == frozenset()
