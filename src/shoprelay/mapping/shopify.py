"""Shopify orders, refunds and checkouts to Klaviyo events: pure, no clock, no settings, no I/O."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from shoprelay.mapping.klaviyo import (
    KlaviyoEvent,
    KlaviyoProfile,
    json_number,
    unique_id,
)
from shoprelay.mapping.shopify_customers import order_profile, person
from shoprelay.mapping.shopify_fields import (
    ShopifyMetrics,
    UnmappableError,
    amount,
    bounded,
    event_time,
    number,
    payload_of,
    time_of,
)
from shoprelay.mapping.values import (
    as_dict,
    as_dicts,
    count,
    email_address,
    identifier,
    known,
    optional_time,
    text,
)

# --- order events ----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Line:
    id: int | str | None
    sku: str | None
    name: str | None
    product_id: int | str | None
    variant_id: int | str | None
    variant_name: str | None
    quantity: int
    price: Decimal

    def item(self) -> dict[str, Any]:
        """The seed's `Items` entry."""
        return known(
            {
                "SKU": self.sku,
                "Name": self.name,
                "Price": json_number(self.price),
                "Quantity": self.quantity,
            }
        )


def _line(line: dict[str, Any], what: str) -> _Line:
    price = amount(line, "price", f"{what} line item")
    quantity = count(line.get("quantity"))
    if price is None:
        raise UnmappableError(f"{what}: a line item has no price")
    if quantity is None:
        raise UnmappableError(f"{what}: a line item has no whole-number quantity")
    return _Line(
        id=identifier(line.get("id")),
        sku=text(line.get("sku")),
        name=text(line.get("title")) or text(line.get("name")),
        product_id=identifier(line.get("product_id")),
        variant_id=identifier(line.get("variant_id")),
        variant_name=text(line.get("variant_title")),
        quantity=quantity,
        price=price,
    )


def _cart_properties(lines: list[_Line]) -> dict[str, Any]:
    items = [line.item() for line in lines]
    return {
        "Items": items,
        "Item Count": len(items),
        "ItemNames": [line.name for line in lines if line.name],
    }


def _address_line(address: dict[str, Any]) -> str | None:
    """One line, as the seed shows: "123 Main St, Anytown, CA 90210, United States"."""
    region_zip = " ".join(filter(None, (text(address.get(k)) for k in ("province", "zip"))))
    parts = [text(address.get(k)) for k in ("address1", "address2", "city")]
    parts += [region_zip, text(address.get("country"))]
    return ", ".join(part for part in parts if part) or None


@dataclass(frozen=True)
class _Order:
    """What every event of one order shares."""

    id: int | str
    profile: KlaviyoProfile
    placed_at: datetime
    total: Decimal | None
    currency: str | None
    lines: list[_Line]
    properties: dict[str, Any]


def _read_order(order: dict[str, Any], shop: str) -> _Order:
    order = payload_of(order, "order")
    order_id = identifier(order.get("id"))
    if order_id is None:
        raise UnmappableError("order has no id")
    what = f"order {order_id}"
    total = amount(order, "total_price", what)
    currency = text(order.get("currency"))
    lines = [_line(line, what) for line in as_dicts(order.get("line_items"))]
    codes = [text(code.get("code")) for code in as_dicts(order.get("discount_codes"))]
    properties = {
        "OrderId": order_id,
        "OrderNumber": text(order.get("name")) or identifier(order.get("order_number")),
        "Value": number(total),
        "Currency": currency,
        **_cart_properties(lines),
        "ShippingAddress": _address_line(as_dict(order.get("shipping_address"))),
        "Discount Codes": [code for code in codes if code],
        "Total Discounts": number(amount(order, "total_discounts", what)),
        "Source Name": text(order.get("source_name")),
    }
    return _Order(
        id=order_id,
        profile=order_profile(order, shop),
        placed_at=event_time(order, what, "created_at", "processed_at"),
        total=total,
        currency=currency,
        lines=lines,
        # Bounded once here, not again for each event of the order that carries them.
        properties=bounded(known(properties)),
    )


def _order_event(
    shop: str, order: _Order, metric: str, time: datetime, extra: dict[str, Any]
) -> KlaviyoEvent:
    return KlaviyoEvent(
        metric=metric,
        profile=order.profile,
        properties=order.properties | bounded(known(extra)),
        time=time,
        # One id for Placed, Fulfilled and Cancelled: Klaviyo dedups per metric, not across.
        unique_id=unique_id("shopify", shop, "order", order.id),
        value=order.total,
        value_currency=order.currency,
    )


def _ordered_product(shop: str, order: _Order, line: _Line, metric: str) -> KlaviyoEvent:
    if line.id is None:
        raise UnmappableError(f"order {order.id}: a line item has no id")
    properties = {
        "OrderId": order.id,
        "OrderNumber": order.properties.get("OrderNumber"),
        "SKU": line.sku,
        "Name": line.name,
        "ProductID": line.product_id,
        "VariantID": line.variant_id,
        "Variant Name": line.variant_name,
        "Quantity": line.quantity,
        "Price": json_number(line.price),
    }
    return KlaviyoEvent(
        metric=metric,
        profile=order.profile,
        properties=bounded(known(properties)),
        time=order.placed_at,
        unique_id=unique_id("shopify", shop, "line", line.id),
        value=line.price * line.quantity,
        value_currency=order.currency,
    )


def _shipped(fulfillment: dict[str, Any]) -> bool:
    return fulfillment.get("status") not in {"cancelled", "error", "failure"}


def _fulfilled_at(payload: dict[str, Any], order: _Order) -> datetime:
    """The latest fulfillment's created_at, else the order's updated_at, else when it was placed."""
    what = f"order {order.id}"
    fulfillments = as_dicts(payload.get("fulfillments"))
    shipped = [time_of(item, "created_at", what) for item in fulfillments if _shipped(item)]
    if known := [moment for moment in shipped if moment is not None]:
        return max(known)
    return time_of(payload, "updated_at", what) or order.placed_at


def order_to_events(
    order: dict[str, Any], shop: str, metrics: ShopifyMetrics
) -> list[KlaviyoEvent]:
    """Every event the order's current state implies; re-mapping yields the same unique_ids."""
    placed = _read_order(order, shop)
    events = [_order_event(shop, placed, metrics.placed_order, placed.placed_at, {})]
    events += [
        _ordered_product(shop, placed, line, metrics.ordered_product) for line in placed.lines
    ]
    if order.get("fulfillment_status") == "fulfilled":
        fulfilled_at = _fulfilled_at(order, placed)
        events.append(_order_event(shop, placed, metrics.fulfilled_order, fulfilled_at, {}))
    if order.get("cancelled_at") is not None:
        cancelled_at = event_time(order, f"order {placed.id}", "cancelled_at")
        reason = {"Cancel Reason": text(order.get("cancel_reason"))}
        events.append(_order_event(shop, placed, metrics.cancelled_order, cancelled_at, reason))
    for refund in as_dicts(order.get("refunds")):
        # Refunds ride along on orders/updated too; same unique_id as refunds/create, so no double.
        with_order = {"order_id": placed.id} | refund
        events.append(refund_to_event(with_order, shop, metrics, placed.profile, placed.currency))
    return events


# --- refunds and checkouts -------------------------------------------------------------------


def _refunded_amount(refund: dict[str, Any], what: str) -> Decimal | None:
    """Successful refund transactions, else the refunded lines' subtotal plus tax."""
    paid = [
        amount(transaction, "amount", what)
        for transaction in as_dicts(refund.get("transactions"))
        if transaction.get("kind") == "refund" and transaction.get("status") == "success"
    ]
    if paid:
        return sum((amount for amount in paid if amount is not None), Decimal(0))
    lines = as_dicts(refund.get("refund_line_items"))
    if not lines:
        return None
    parts = [amount(line, key, what) for line in lines for key in ("subtotal", "total_tax")]
    return sum((amount for amount in parts if amount is not None), Decimal(0))


def _refunded_item(refund_line: dict[str, Any], what: str) -> dict[str, Any]:
    line = as_dict(refund_line.get("line_item"))
    return known(
        {
            "SKU": text(line.get("sku")),
            "Name": text(line.get("title")) or text(line.get("name")),
            "Price": number(amount(line, "price", what)),
            "Quantity": count(refund_line.get("quantity")),
        }
    )


def refund_to_event(
    refund: dict[str, Any],
    shop: str,
    metrics: ShopifyMetrics,
    profile: KlaviyoProfile,
    currency: str | None,
) -> KlaviyoEvent:
    """One Refunded Order per refund; the profile is the order's, as refunds carry no customer."""
    refund = payload_of(refund, "refund")
    refund_id = identifier(refund.get("id"))
    if refund_id is None:
        raise UnmappableError("refund has no id")
    what = f"refund {refund_id}"
    if not profile.identified:
        raise UnmappableError(f"{what}: the order's profile has no identifier")
    items = [_refunded_item(line, what) for line in as_dicts(refund.get("refund_line_items"))]
    properties = {
        "OrderId": identifier(refund.get("order_id")),
        "RefundId": refund_id,
        "Items refunded": items,
        "Note": text(refund.get("note")),
    }
    paid_in = [text(t.get("currency")) for t in as_dicts(refund.get("transactions"))]
    return KlaviyoEvent(
        metric=metrics.refunded_order,
        profile=profile,
        properties=bounded(known(properties)),
        time=event_time(refund, what, "created_at", "processed_at"),
        unique_id=unique_id("shopify", shop, "refund", refund_id),
        value=_refunded_amount(refund, what),
        value_currency=currency or next((code for code in paid_in if code), None),
    )


def checkout_to_event(
    checkout: dict[str, Any], shop: str, metrics: ShopifyMetrics
) -> KlaviyoEvent | None:
    """Started Checkout, keyed by token (checkouts lost `id` in 2026-04); None until an email."""
    checkout = payload_of(checkout, "checkout")
    token = identifier(checkout.get("token"))
    if token is None:
        raise UnmappableError("checkout has no token")
    what = f"checkout {token}"
    customer = as_dict(checkout.get("customer"))
    if not (email_address(customer.get("email")) or email_address(checkout.get("email"))):
        return None
    profile = person(
        shop,
        what,
        customer,
        emails=(customer.get("email"), checkout.get("email")),
        phones=(customer.get("phone"), checkout.get("phone")),
        fallback_address=as_dict(checkout.get("billing_address")),
    )
    lines = [_line(line, what) for line in as_dicts(checkout.get("line_items"))]
    properties = _cart_properties(lines) | {
        "Checkout URL": text(checkout.get("abandoned_checkout_url"))
    }
    return KlaviyoEvent(
        metric=metrics.started_checkout,
        profile=profile,
        properties=bounded(known(properties)),
        time=event_time(checkout, what, "created_at", "updated_at"),
        unique_id=unique_id("shopify", shop, "checkout", token),
        value=amount(checkout, "total_price", what),
        value_currency=text(checkout.get("currency")),
    )


def updated_at(payload: dict[str, Any]) -> datetime | None:
    """The resource's updated_at in UTC, to drop payloads older than one already applied."""
    if not isinstance(payload, dict):
        return None
    try:
        return optional_time(payload.get("updated_at"))
    except ValueError:
        return None
