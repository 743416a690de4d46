"""A fake Shopify store's orders and what happens to them: fulfilled, refunded, cancelled.

Money is Decimal arithmetic rendered as Shopify's strings, so every total adds up to its lines.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Collection
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import orjson

from shoprelay.sim.shopify_payloads import (
    CENT,
    START,
    TAX_RATE,
    Cart,
    Product,
    fake_cart,
    gid,
    money,
    money_set,
    new_id,
    stamp,
)

DISCOUNT_CODE, DISCOUNT_RATE = "WELCOME10", Decimal("0.10")


def _json_copy(value: Any) -> Any:
    """A deep copy of JSON data; ten times faster than copy.deepcopy, which seeding feels."""
    return orjson.loads(orjson.dumps(value))


# --- orders ----------------------------------------------------------------------------------


def _order_line(
    rng: random.Random, product: Product, quantity: int, discount: Decimal
) -> dict[str, Any]:
    line_id, price = new_id(rng), Decimal(product.price)
    tax = ((price * quantity - discount) * TAX_RATE).quantize(CENT, ROUND_HALF_UP)
    allocation = {"amount": money(discount), "amount_set": money_set(discount, "USD")}
    return {
        "id": line_id,
        "admin_graphql_api_id": gid("LineItem", line_id),
        "current_quantity": quantity,
        "fulfillable_quantity": quantity,
        "fulfillment_service": "manual",
        "fulfillment_status": None,
        "gift_card": False,
        "grams": product.grams,
        "name": " - ".join(filter(None, (product.title, product.variant_title))),
        "price": product.price,
        "price_set": money_set(price, "USD"),
        "product_exists": True,
        "product_id": product.product_id,
        "properties": [],
        "quantity": quantity,
        "requires_shipping": True,
        "sku": product.sku,
        "taxable": True,
        "title": product.title,
        "total_discount": "0.00",
        "total_discount_set": money_set(Decimal(0), "USD"),
        "variant_id": product.variant_id,
        "variant_title": product.variant_title,
        "vendor": product.vendor,
        "tax_lines": [{"price": money(tax), "rate": float(TAX_RATE), "title": "Tax"}],
        "duties": [],
        "discount_allocations": [allocation | {"discount_application_index": 0}]
        if discount
        else [],
    }


def _order_lines(rng: random.Random, cart: Cart, discounted: bool) -> list[dict[str, Any]]:
    rate = DISCOUNT_RATE if discounted else Decimal(0)
    return [
        _order_line(
            rng, product, quantity, (Decimal(product.price) * quantity * rate).quantize(CENT)
        )
        for product, quantity in cart
    ]


def _sum(lines: list[dict[str, Any]], amount: Callable[[dict[str, Any]], Any]) -> Decimal:
    return sum((Decimal(amount(line)) for line in lines), Decimal(0))


def _order_totals(lines: list[dict[str, Any]], shipping: Decimal) -> dict[str, Any]:
    """The order-level money fields, each with its *_set twin, consistent with the lines."""
    items = _sum(lines, lambda line: Decimal(line["price"]) * line["quantity"])
    discounts = _sum(lines, lambda line: _sum(line["discount_allocations"], lambda a: a["amount"]))
    tax = _sum(lines, lambda line: _sum(line["tax_lines"], lambda t: t["price"]))
    amounts = {
        "subtotal_price": items - discounts,
        "total_discounts": discounts,
        "total_line_items_price": items,
        "total_price": items - discounts + shipping + tax,
        "total_tax": tax,
    }
    fields: dict[str, Any] = {"total_shipping_price_set": money_set(shipping, "USD")}
    for name, amount in amounts.items():
        fields[name], fields[f"{name}_set"] = money(amount), money_set(amount, "USD")
        fields[f"current_{name}"] = fields[name]
    return fields


def fake_order(
    rng: random.Random,
    customer: dict[str, Any],
    *,
    at: datetime = START,
    cart: Cart | None = None,
    number: int = 1001,
    checkout_token: str | None = None,
) -> dict[str, Any]:
    """An orders/create payload: paid, unfulfilled, a third of them with a discount code."""
    order_id, discounted = new_id(rng), rng.random() < 0.3
    lines = _order_lines(rng, cart or fake_cart(rng), discounted)
    shipping = Decimal(rng.choice(("0.00", "5.99", "9.99")))
    totals = _order_totals(lines, shipping)
    codes = [{"code": DISCOUNT_CODE, "amount": totals["total_discounts"], "type": "percentage"}]
    address, token = customer["default_address"], f"{rng.getrandbits(128):032x}"
    return {
        "id": order_id,
        "admin_graphql_api_id": gid("Order", order_id),
        "buyer_accepts_marketing": False,
        "cancel_reason": None,
        "cancelled_at": None,
        "checkout_token": checkout_token,
        "closed_at": None,
        "confirmation_number": f"{rng.getrandbits(40):010X}",
        "confirmed": True,
        "contact_email": customer.get("email"),
        "created_at": stamp(at),
        "currency": "USD",
        "customer_locale": "en",
        "discount_codes": codes if discounted else [],
        "email": customer.get("email"),
        "financial_status": "paid",
        "fulfillment_status": None,
        "name": f"#{number}",
        "note": None,
        "number": number - 1000,
        "order_number": number,
        "order_status_url": f"https://shop.example/orders/{token}/authenticate?key={token[:8]}",
        "payment_gateway_names": ["bogus"],
        "phone": customer.get("phone"),
        "presentment_currency": "USD",
        "processed_at": stamp(at),
        "source_name": "web",
        "tags": "",
        "test": False,
        "token": token,
        **totals,
        "updated_at": stamp(at),
        "billing_address": address,
        "customer": customer,
        "discount_applications": _discount_applications() if discounted else [],
        "fulfillments": [],
        "line_items": lines,
        "refunds": [],
        "shipping_address": address,
        "shipping_lines": [_shipping_line(rng, shipping)],
    }


def _discount_applications() -> list[dict[str, Any]]:
    percent = str(DISCOUNT_RATE * 100)
    return [
        {
            "target_type": "line_item",
            "type": "discount_code",
            "value": percent,
            "value_type": "percentage",
            "allocation_method": "across",
            "target_selection": "all",
            "code": DISCOUNT_CODE,
        }
    ]


def _shipping_line(rng: random.Random, price: Decimal) -> dict[str, Any]:
    return {
        "id": new_id(rng),
        "code": "Standard",
        "discounted_price": money(price),
        "discounted_price_set": money_set(price, "USD"),
        "price": money(price),
        "price_set": money_set(price, "USD"),
        "source": "shopify",
        "title": "Standard Shipping",
        "tax_lines": [],
        "discount_allocations": [],
    }


# --- what happens to an order afterwards -----------------------------------------------------


def fulfill_order(rng: random.Random, order: dict[str, Any], *, at: datetime) -> dict[str, Any]:
    """The order after every line shipped in one fulfillment (orders/fulfilled)."""
    shipped: dict[str, Any] = _json_copy(order)
    for line in shipped["line_items"]:
        line.update(fulfillment_status="fulfilled", fulfillable_quantity=0)
    fulfillment_id, tracking = new_id(rng), f"1Z{rng.getrandbits(48):012X}"
    shipped["fulfillments"].append(
        {
            "id": fulfillment_id,
            "admin_graphql_api_id": gid("Fulfillment", fulfillment_id),
            "created_at": stamp(at),
            "name": f"{order['name']}.1",
            "order_id": order["id"],
            "service": "manual",
            "shipment_status": None,
            "status": "success",
            "tracking_company": "UPS",
            "tracking_number": tracking,
            "tracking_numbers": [tracking],
            "tracking_url": f"https://www.ups.com/track?tracknum={tracking}",
            "tracking_urls": [f"https://www.ups.com/track?tracknum={tracking}"],
            "updated_at": stamp(at),
            "line_items": _json_copy(shipped["line_items"]),
        }
    )
    shipped.update(fulfillment_status="fulfilled", updated_at=stamp(at))
    return shipped


def fake_refund(
    rng: random.Random,
    order: dict[str, Any],
    *,
    at: datetime,
    line_ids: Collection[int] | None = None,
    note: str | None = None,
) -> dict[str, Any]:
    """A refunds/create payload for some (default: all) of the order's lines, tax included."""
    lines = [line for line in order["line_items"] if line_ids is None or line["id"] in line_ids]
    refund_id = new_id(rng)
    refund_lines = [_refund_line(rng, line) for line in lines]
    amount = sum(
        (Decimal(str(line["subtotal"])) + Decimal(str(line["total_tax"])) for line in refund_lines),
        Decimal(0),
    )
    return {
        "id": refund_id,
        "order_id": order["id"],
        "created_at": stamp(at),
        "note": note,
        "user_id": None,
        "processed_at": stamp(at),
        "duties": [],
        "total_duties_set": money_set(Decimal(0), "USD"),
        "return": None,
        "refund_shipping_lines": [],
        "restock": False,
        "admin_graphql_api_id": gid("Refund", refund_id),
        "order_adjustments": [],
        "refund_line_items": refund_lines,
        "transactions": [_refund_transaction(rng, order, amount, at)],
    }


def _refund_line(rng: random.Random, line: dict[str, Any]) -> dict[str, Any]:
    discount = _sum(line["discount_allocations"], lambda a: a["amount"])
    subtotal = Decimal(line["price"]) * line["quantity"] - discount
    tax = _sum(line["tax_lines"], lambda t: t["price"])
    return {
        "id": new_id(rng),
        "quantity": line["quantity"],
        "line_item_id": line["id"],
        "location_id": None,
        "restock_type": "no_restock",
        # Shopify sends these two as JSON numbers, unlike every other amount.
        "subtotal": float(subtotal),
        "total_tax": float(tax),
        "subtotal_set": money_set(subtotal, "USD"),
        "total_tax_set": money_set(tax, "USD"),
        "line_item": _json_copy(line),
    }


def _refund_transaction(
    rng: random.Random, order: dict[str, Any], amount: Decimal, at: datetime
) -> dict[str, Any]:
    transaction_id = new_id(rng)
    return {
        "id": transaction_id,
        "order_id": order["id"],
        "kind": "refund",
        "gateway": "bogus",
        "status": "success",
        "message": f"Refunded {money(amount)} USD",
        "created_at": stamp(at),
        "test": False,
        "parent_id": new_id(rng),
        "processed_at": stamp(at),
        "source_name": "web",
        "receipt": {},
        "amount": money(amount),
        "currency": "USD",
        "payment_id": f"{order['name']}.2",
        "admin_graphql_api_id": gid("OrderTransaction", transaction_id),
    }


def refund_order(order: dict[str, Any], refund: dict[str, Any]) -> dict[str, Any]:
    """The order as orders/updated shows it once `refund` is applied."""
    refunded: dict[str, Any] = _json_copy(order)
    refunded["refunds"].append(_json_copy(refund))
    every_line = {line["id"] for line in order["line_items"]}
    back = {line["line_item_id"] for line in refund["refund_line_items"]}
    whole = back >= every_line
    refunded.update(
        financial_status="refunded" if whole else "partially_refunded",
        updated_at=refund["created_at"],
    )
    return refunded


def cancel_order(
    rng: random.Random, order: dict[str, Any], *, at: datetime, reason: str = "customer"
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The cancelled order (orders/cancelled) and the full refund Shopify issues with it."""
    refund = fake_refund(rng, order, at=at, note="Order canceled")
    cancelled = refund_order(order, refund)
    for line in cancelled["line_items"]:
        line.update(current_quantity=0, fulfillable_quantity=0)
    cancelled.update(cancelled_at=stamp(at), cancel_reason=reason, closed_at=stamp(at))
    return cancelled, refund
