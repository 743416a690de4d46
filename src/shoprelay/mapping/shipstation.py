"""ShipStation order status changes to Klaviyo events: pure, no clock, no settings, no I/O."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from shoprelay.mapping.klaviyo import (
    KlaviyoEvent,
    KlaviyoProfile,
    check_metric_names,
    json_number,
    klaviyo_time,
    unique_id,
)
from shoprelay.mapping.values import money, sortable_utc

SOURCE = "shipstation"
# ShipStation stamps every time in US Pacific wall-clock time, without an offset.
PACIFIC = ZoneInfo("America/Los_Angeles")
SHIPPED = "shipped"


@dataclass(frozen=True)
class ShipStationMetrics:
    """Klaviyo metric names per ShipStation order status; defaults match Klaviyo's own."""

    awaiting_shipment: str = "Order Awaiting Shipment"
    awaiting_payment: str = "Order Awaiting Payment"
    on_hold: str = "Order On Hold"
    shipped: str = "Order Shipped"
    cancelled: str = "Order Cancelled"

    def __post_init__(self) -> None:
        check_metric_names(self)

    def for_status(self, status: str) -> str | None:
        """The metric of an order status; None for statuses with none (pending_fulfillment)."""
        name: str | None = getattr(self, status, None) if status in self.statuses() else None
        return name

    @staticmethod
    def statuses() -> frozenset[str]:
        return frozenset(field.name for field in dataclasses.fields(ShipStationMetrics))


def pacific_to_utc(raw: object) -> datetime | None:
    """A ShipStation timestamp (naive Pacific; fold=0 in the repeated hour) as aware UTC."""
    if not isinstance(raw, str) or not raw.strip():
        return None
    naive = datetime.fromisoformat(raw.strip())
    if naive.tzinfo is not None:
        return naive.astimezone(UTC)
    return naive.replace(tzinfo=PACIFIC, fold=0).astimezone(UTC)


def latest_pacific_to_utc(raw: object) -> datetime | None:
    """The latest instant a ShipStation timestamp can mean: fold=1 in the repeated hour."""
    earliest = pacific_to_utc(raw)
    if earliest is None:
        return None
    naive = datetime.fromisoformat(str(raw).strip())
    if naive.tzinfo is not None:
        return earliest
    return max(earliest, naive.replace(tzinfo=PACIFIC, fold=1).astimezone(UTC))


def _version(order: dict[str, Any], moment: datetime | None) -> str:
    if moment is None:
        raise ValueError(f"order {order.get('orderId')} has no modifyDate")
    return sortable_utc(moment)


def order_version(order: dict[str, Any]) -> str:
    """The order's modifyDate as sortable UTC ISO-8601, its stored version."""
    return _version(order, pacific_to_utc(order.get("modifyDate")))


def order_version_ceiling(order: dict[str, Any]) -> str:
    """The newest version the order's modifyDate may stand for: an hour on in the repeated hour.

    Versions read fold=0, so a change at 01:10 PST sorts before one at 01:40 PDT; a stored
    version counts as newer than an order only when it is newer than this.
    """
    return _version(order, latest_pacific_to_utc(order.get("modifyDate")))


def customer_email(order: dict[str, Any]) -> str | None:
    """The order's email, or None when ShipStation has none (null or empty is common)."""
    email = order.get("customerEmail")
    if not isinstance(email, str) or "@" not in email:
        return None
    return email.strip()


def label_shipment(shipments: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The newest label that was not voided, or None when the order has no live label."""
    live = [s for s in shipments if not s.get("voided") and not s.get("isReturnLabel")]
    return max(live, key=lambda s: str(s.get("createDate") or ""), default=None)


def event_metric(
    order: dict[str, Any], shipment: dict[str, Any] | None, metrics: ShipStationMetrics
) -> str | None:
    """The metric an order's current status earns; Shipped only for a label made in ShipStation."""
    status = str(order.get("orderStatus") or "")
    if status == SHIPPED and (shipment is None or order.get("externallyFulfilled")):
        return None
    return metrics.for_status(status)


def _items(order: dict[str, Any]) -> list[dict[str, Any]]:
    """Product lines: adjustment lines are discounts and fees, not products."""
    lines = [line for line in order.get("items") or [] if not line.get("adjustment")]
    return [
        {
            "SKU": line.get("sku"),
            "Name": line.get("name"),
            "Quantity": line.get("quantity"),
            "UnitPrice": _number(line.get("unitPrice")),
        }
        for line in lines
    ]


def _number(raw: object) -> float | int | None:
    return None if raw is None or raw == "" else json_number(money(raw))


def _order_date(order: dict[str, Any]) -> str | None:
    moment = pacific_to_utc(order.get("orderDate"))
    return None if moment is None else klaviyo_time(moment)


def _shipment_properties(shipment: dict[str, Any] | None) -> dict[str, Any]:
    if shipment is None:
        return {}
    return {
        "Carrier": shipment.get("carrierCode"),
        "Service": shipment.get("serviceCode"),
        "TrackingNumber": shipment.get("trackingNumber"),
        "ShipDate": shipment.get("shipDate"),
        "ShipmentId": shipment.get("shipmentId"),
    }


def _properties(
    order: dict[str, Any],
    store: dict[str, Any],
    shipment: dict[str, Any] | None,
    previous_status: str | None,
) -> dict[str, Any]:
    items = _items(order)
    ship_to = order.get("shipTo") or {}
    status = order.get("orderStatus")
    properties = {
        "OrderId": str(order.get("orderId")),
        "OrderNumber": order.get("orderNumber"),
        "OrderStatus": status,
        "PreviousStatus": previous_status,
        "StoreId": (order.get("advancedOptions") or {}).get("storeId"),
        "StoreName": store.get("storeName"),
        "MarketplaceName": store.get("marketplaceName"),
        "OrderDate": _order_date(order),
        "OrderTotal": _number(order.get("orderTotal")),
        "Items": items,
        "ItemNames": [item["Name"] for item in items if item["Name"]],
        "ItemCount": sum(int(item["Quantity"] or 0) for item in items),
        "ShipToCity": ship_to.get("city"),
        "ShipToState": ship_to.get("state"),
        "ShipToCountry": ship_to.get("country"),
        "HoldUntilDate": order.get("holdUntilDate") if status == "on_hold" else None,
        **_shipment_properties(shipment),
    }
    return {key: value for key, value in properties.items() if value not in (None, "")}


def change_time(order: dict[str, Any], shipment: dict[str, Any] | None) -> datetime:
    """When the status changed: the label's creation for Shipped, else the order's modifyDate."""
    labelled = pacific_to_utc((shipment or {}).get("createDate"))
    if labelled is not None and order.get("orderStatus") == SHIPPED:
        return labelled
    moment = pacific_to_utc(order.get("modifyDate"))
    if moment is None:
        raise ValueError(f"order {order.get('orderId')} has no modifyDate")
    return moment


def status_change_to_event(
    order: dict[str, Any],
    store: dict[str, Any],
    shipment: dict[str, Any] | None,
    previous_status: str | None,
    metrics: ShipStationMetrics,
    *,
    account: str,
    currency: str,
    backfill: bool,
) -> KlaviyoEvent | None:
    """The event for an order now in a new status; None when it earns none or has no email."""
    metric = event_metric(order, shipment, metrics)
    email = customer_email(order)
    if metric is None or email is None or order.get("orderStatus") == previous_status:
        return None
    total = order.get("orderTotal")
    status = order["orderStatus"]
    return KlaviyoEvent(
        metric=metric,
        profile=KlaviyoProfile(email=email),
        properties=_properties(order, store, shipment, previous_status),
        time=change_time(order, shipment),
        unique_id=unique_id(SOURCE, account, order.get("orderId"), status, order_version(order)),
        value=None if total is None or total == "" else money(total),
        value_currency=currency,
        backfill=backfill,
    )
