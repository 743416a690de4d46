"""ShipStation orders to Klaviyo status events: pure, from the documentation's own samples."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from tests.conftest import FIXTURES

from shoprelay.mapping.klaviyo import KlaviyoEvent
from shoprelay.mapping.shipstation import (
    ShipStationMetrics,
    label_shipment,
    order_version,
    order_version_ceiling,
    status_change_to_event,
)

SAMPLES = FIXTURES / "shipstation"
METRICS = ShipStationMetrics()


def sample(name: str) -> Any:
    return json.loads((SAMPLES / name).read_text())


@pytest.fixture
def order() -> dict[str, Any]:
    found: dict[str, Any] = sample("get-order.json")
    return found


@pytest.fixture
def store() -> dict[str, Any]:
    found: dict[str, Any] = sample("list-stores.json")[0]
    return found


def event_for(
    order: dict[str, Any],
    store: dict[str, Any],
    shipment: dict[str, Any] | None = None,
    previous: str | None = None,
    metrics: ShipStationMetrics = METRICS,
) -> KlaviyoEvent | None:
    return status_change_to_event(
        order, store, shipment, previous, metrics, account="default", currency="USD", backfill=False
    )


def test_awaiting_shipment_event_from_the_docs_sample(
    order: dict[str, Any], store: dict[str, Any]
) -> None:
    """The sample order becomes Order Awaiting Shipment with store, items, total and ship-to."""
    event = event_for(order, store)
    assert event is not None
    assert event.metric == "Order Awaiting Shipment"
    assert event.profile.email == "headhoncho@whitehouse.gov"
    assert event.value == Decimal("194.43")
    assert event.value_currency == "USD"
    assert event.time == datetime(2015, 9, 8, 18, 3, 12, 380000, tzinfo=UTC)
    properties = event.properties
    assert properties["StoreName"] == "ShipStation Manual Store"
    assert properties["StoreId"] == 26815
    assert properties["OrderNumber"] == "TEST-ORDER-API-DOCS"
    assert properties["Items"] == [
        {"SKU": "ABC123", "Name": "Test item #1", "Quantity": 2, "UnitPrice": 99.99}
    ]
    assert (properties["ShipToCity"], properties["ShipToState"]) == ("Washington", "DC")
    assert properties["ShipToCountry"] == "US"
    assert "HoldUntilDate" not in properties


def test_unique_id_is_deterministic(order: dict[str, Any], store: dict[str, Any]) -> None:
    """The same order, status and modifyDate always give the same unique_id."""
    first, second = event_for(order, store), event_for(copy.deepcopy(order), store)
    assert first is not None
    assert second is not None
    assert first.unique_id == second.unique_id
    assert (
        first.unique_id
        == "shipstation:default:94113592:awaiting_shipment:2015-09-08T18:03:12.380000Z"
    )


def test_shipped_with_a_label_carries_tracking(
    order: dict[str, Any], store: dict[str, Any]
) -> None:
    """A shipped order with a live label is Order Shipped, timed at the label's creation."""
    label = sample("list-shipments.json")["shipments"][0]
    event = event_for(order | {"orderStatus": "shipped"}, store, label, "awaiting_shipment")
    assert event is not None
    assert event.metric == "Order Shipped"
    assert event.properties["TrackingNumber"] == "9400111899561704681189"
    assert (event.properties["Carrier"], event.properties["Service"]) == (
        "stamps_com",
        "usps_first_class_mail",
    )
    assert event.properties["PreviousStatus"] == "awaiting_shipment"
    assert event.time == datetime(2014, 10, 3, 13, 51, 33, 627000, tzinfo=UTC)


def test_shipped_without_a_label_is_no_event(order: dict[str, Any], store: dict[str, Any]) -> None:
    """Marked as shipped by hand (no label), or fulfilled externally, gives no Order Shipped."""
    label = sample("list-shipments.json")["shipments"][0]
    assert event_for(order | {"orderStatus": "shipped"}, store, None) is None
    external = order | {"orderStatus": "shipped", "externallyFulfilled": True}
    assert event_for(external, store, label) is None


def test_voided_labels_do_not_count() -> None:
    """Only a label that was not voided makes an order label-shipped."""
    live, voided = sample("list-shipments.json")["shipments"]
    assert label_shipment([voided | {"voided": True}]) is None
    assert label_shipment([live, voided | {"voided": True}]) == live


def test_hold_carries_the_date(order: dict[str, Any], store: dict[str, Any]) -> None:
    """Order On Hold names the date the hold ends."""
    held = order | {"orderStatus": "on_hold", "holdUntilDate": "2015-09-20"}
    event = event_for(held, store)
    assert event is not None
    assert event.metric == "Order On Hold"
    assert event.properties["HoldUntilDate"] == "2015-09-20"


def test_no_email_no_change_or_no_metric_is_no_event(
    order: dict[str, Any], store: dict[str, Any]
) -> None:
    """No email, the same status as stored, or a status without a metric give no event."""
    assert event_for(order | {"customerEmail": ""}, store) is None
    assert event_for(order | {"customerEmail": None}, store) is None
    assert event_for(order, store, previous="awaiting_shipment") is None
    assert event_for(order | {"orderStatus": "pending_fulfillment"}, store) is None


def test_metric_names_are_configurable(order: dict[str, Any], store: dict[str, Any]) -> None:
    """Metric names come from ShipStationMetrics, never from the mapping itself."""
    metrics = ShipStationMetrics(cancelled="SS Cancelled")
    event = event_for(order | {"orderStatus": "cancelled"}, store, metrics=metrics)
    assert event is not None
    assert event.metric == "SS Cancelled"
    with pytest.raises(ValueError, match="on_hold"):
        ShipStationMetrics(on_hold=" ")


def test_list_sample_orders_map(store: dict[str, Any]) -> None:
    """Both orders of the list sample map, adjustment lines excluded from the items."""
    for order in sample("list-orders.json")["orders"]:
        event = event_for(order, store)
        assert event is not None
        assert all(item["SKU"] != "DISCOUNT CODE" for item in event.properties["Items"])


@pytest.mark.parametrize(
    ("stamp", "version", "ceiling"),
    [
        ("2025-11-02T01:30:00.0000000", "2025-11-02T08:30:00", "2025-11-02T09:30:00"),
        ("2025-11-02T02:30:00.0000000", "2025-11-02T10:30:00", "2025-11-02T10:30:00"),
        ("2025-07-01T12:00:00.0000000", "2025-07-01T19:00:00", "2025-07-01T19:00:00"),
    ],
)
def test_version_ceiling_covers_the_repeated_hour(stamp: str, version: str, ceiling: str) -> None:
    """A stamp in the repeated fall-back hour may mean an hour later; elsewhere it is exact."""
    order = {"orderId": 1, "modifyDate": stamp}
    assert order_version(order) == version + ".000000Z"
    assert order_version_ceiling(order) == ceiling + ".000000Z"
