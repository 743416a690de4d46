"""The label index keeps only what the label check reads, so a backfill's labels stay small."""

from __future__ import annotations

import contextlib
import copy
import gc
import json
import tracemalloc
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from tests.conftest import FIXTURES

from shoprelay.mapping.shipstation import ShipStationMetrics, status_change_to_event
from shoprelay.sources.shipstation.client import ShipStationClient
from shoprelay.sources.shipstation.labels import PAGE_SIZE, LabelIndex

SAMPLES = FIXTURES / "shipstation"
NOW = datetime(2025, 4, 15, 17, 0, tzinfo=UTC)
NOW_PACIFIC = "2025-04-15T10:00:00.0000000"
# What the label check and the Shipped event read of a shipment.
LABEL_FIELDS = {
    "shipmentId",
    "createDate",
    "voided",
    "isReturnLabel",
    "carrierCode",
    "serviceCode",
    "trackingNumber",
    "shipDate",
}

Shipment = dict[str, Any]


def sample_shipments() -> list[Shipment]:
    found: list[Shipment] = json.loads((SAMPLES / "list-shipments.json").read_text())["shipments"]
    return found


class ShipmentPages:
    """`GET /shipments` for the index: each load reads the next list, built only when asked for.

    Pages are built on request so that, once read, nothing but the index holds on to them.
    """

    def __init__(self, *loads: Callable[[], list[Shipment]]) -> None:
        self._loads = list(loads)
        self._current: list[Shipment] = []

    async def page(self, path: str, params: dict[str, str | int]) -> dict[str, Any]:
        assert path == "/shipments"
        number = int(params["page"])
        if number == 1:
            self._current = self._loads.pop(0)()
        shipments = self._current[(number - 1) * PAGE_SIZE : number * PAGE_SIZE]
        pages = -(-len(self._current) // PAGE_SIZE)
        if number >= pages:
            self._current = []
        return {"shipments": shipments, "total": -1, "page": number, "pages": pages}


async def no_lease() -> None:
    return None


def index_over(pages: ShipmentPages) -> LabelIndex:
    client = cast(ShipStationClient, pages)
    return LabelIndex(
        client, NOW - timedelta(days=90), lambda: NOW, timedelta(minutes=5), keep_lease=no_lease
    )


def shipped(order_id: int) -> dict[str, Any]:
    return {"orderId": order_id, "orderStatus": "shipped", "modifyDate": NOW_PACIFIC}


async def test_the_index_keeps_no_address_items_or_weight() -> None:
    """A label as the index returns it has the fields the mapping reads, and no others."""
    index = index_over(ShipmentPages(sample_shipments))
    await index.prepare([shipped(43945660)])
    label = index.label_for(43945660)
    assert label is not None
    assert set(label) == LABEL_FIELDS
    assert label == {key: sample_shipments()[0][key] for key in LABEL_FIELDS}


async def test_shipped_event_is_the_same_from_the_kept_label() -> None:
    """The Shipped event made from the kept fields equals the one from the whole shipment."""
    order: dict[str, Any] = json.loads((SAMPLES / "get-order.json").read_text())
    whole = sample_shipments()[0]
    order |= {"orderId": whole["orderId"], "orderStatus": "shipped"}
    index = index_over(ShipmentPages(sample_shipments))
    await index.prepare([order])

    def event(shipment: Shipment | None) -> Any:
        return status_change_to_event(
            order, {"storeName": "Shop"}, shipment, "awaiting_shipment", ShipStationMetrics(),
            account="default", currency="USD", backfill=True,
        )  # fmt: skip

    kept = event(index.label_for(int(order["orderId"])))
    assert kept is not None
    assert kept == event(whole)
    assert kept.properties["TrackingNumber"] == whole["trackingNumber"]


async def test_a_label_read_again_as_voided_leaves_the_order_its_other_label() -> None:
    """A later read replaces a label's earlier copy: voided, the order's older label is live."""
    older, newer = copy.deepcopy(sample_shipments()[:2])
    newer["orderId"] = older["orderId"]
    voided = copy.deepcopy(newer) | {"voided": True}
    index = index_over(ShipmentPages(lambda: [older, newer], lambda: [voided]))
    order_id = int(older["orderId"])
    await index.prepare([shipped(order_id)])
    assert (index.label_for(order_id) or {}).get("shipmentId") == newer["shipmentId"]
    # An order with no label, changed since the read, makes the index read the newest labels.
    await index.prepare([shipped(1)])
    assert (index.label_for(order_id) or {}).get("shipmentId") == older["shipmentId"]


def many_shipments(count: int) -> list[Shipment]:
    """`count` labels shaped as the sample, one per order, each with its own address."""
    template = sample_shipments()[0]
    found = []
    for n in range(count):
        shipment = copy.deepcopy(template)
        shipment |= {
            "shipmentId": 50_000_000 + n,
            "orderId": 60_000_000 + n,
            "createDate": f"2025-03-{1 + n % 28:02d}T{n % 24:02d}:{n % 60:02d}:07.{n:07d}",
            "trackingNumber": f"9400111899561{n:09d}",
        }
        shipment["shipTo"]["street1"] = f"{n} Main St"
        found.append(shipment)
    return found


@contextlib.contextmanager
def traced() -> Iterator[list[int]]:
    """Bytes allocated in the block and still held at its end, garbage collected first."""
    gc.collect()
    tracemalloc.start()
    held: list[int] = []
    try:
        before = tracemalloc.get_traced_memory()[0]
        yield held
        gc.collect()
        held.append(tracemalloc.get_traced_memory()[0] - before)
    finally:
        tracemalloc.stop()


async def test_memory_per_label_is_a_small_part_of_a_shipment() -> None:
    """Each label held costs under a quarter of the shipment it came from, and under 1 KiB."""
    count = 4 * PAGE_SIZE
    with traced() as whole:
        shipments = many_shipments(count)
    del shipments
    index = index_over(ShipmentPages(lambda: many_shipments(count)))
    with traced() as kept:
        await index.prepare([shipped(60_000_000)])
    assert index.label_for(60_000_000 + count - 1) is not None
    per_shipment, per_label = whole[0] / count, kept[0] / count
    assert per_label < per_shipment / 4
    assert per_label < 1024
