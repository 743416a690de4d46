"""An orders/* webhook payload -> GraphQL's Order, with its line items, fulfillments, refunds.

See `shopify_admin_records` for the forms GraphQL gives values (UTC, enums, gids, Decimal).
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from shoprelay.sim.shopify_admin_records import (
    Record,
    address_record,
    bag,
    bag_of,
    decimal,
    gid,
    upper,
    utc,
)

CustomerLookup = Callable[[int], "Record | None"]
FULFILLMENT_STATUS = {
    None: "UNFULFILLED",
    "fulfilled": "FULFILLED",
    "partial": "PARTIALLY_FULFILLED",
    "restocked": "RESTOCKED",
}


def line_item_record(line: dict[str, Any]) -> Record:
    price, quantity = Decimal(line["price"]), line["quantity"]
    discount = sum((Decimal(a["amount"]) for a in line.get("discount_allocations", [])), Decimal(0))
    return {
        "__typename": "LineItem",
        "id": gid("LineItem", line["id"]),
        "name": line["name"],
        "title": line["title"],
        "variantTitle": line.get("variant_title"),
        "sku": line.get("sku"),
        "vendor": line.get("vendor"),
        "quantity": quantity,
        "currentQuantity": line.get("current_quantity", quantity),
        "unfulfilledQuantity": line.get("fulfillable_quantity", quantity),
        "fulfillableQuantity": line.get("fulfillable_quantity", quantity),
        "refundableQuantity": line.get("current_quantity", quantity),
        "nonFulfillableQuantity": quantity - line.get("fulfillable_quantity", quantity),
        "fulfillmentStatus": line.get("fulfillment_status") or "unfulfilled",
        "requiresShipping": bool(line.get("requires_shipping", True)),
        "taxable": bool(line.get("taxable", True)),
        "isGiftCard": bool(line.get("gift_card")),
        "originalUnitPriceSet": bag(line.get("price_set")) or bag_of(price),
        "originalTotalSet": bag_of(price * quantity),
        "discountedUnitPriceSet": bag_of(price - discount / quantity if quantity else price),
        "discountedTotalSet": bag_of(price * quantity - discount),
        "totalDiscountSet": bag_of(discount),
        "discountAllocations": [
            {
                "__typename": "DiscountAllocation",
                "allocatedAmountSet": bag(a.get("amount_set")) or bag_of(Decimal(a["amount"])),
            }
            for a in line.get("discount_allocations", [])
        ],
        "taxLines": [_tax_line(t) for t in line.get("tax_lines", [])],
        "customAttributes": [
            {"__typename": "Attribute", "key": p["name"], "value": p.get("value")}
            for p in line.get("properties") or []
        ],
        "variant": _variant(line),
        "product": _product(line),
    }


def _tax_line(tax: dict[str, Any]) -> Record:
    rate = tax.get("rate")
    return {
        "__typename": "TaxLine",
        "title": tax["title"],
        "rate": rate,
        "ratePercentage": None if rate is None else round(rate * 100, 4),
        "priceSet": bag(tax.get("price_set")) or bag_of(Decimal(tax["price"])),
        "channelLiable": False,
        "source": None,
    }


def _variant(line: dict[str, Any]) -> Record | None:
    variant_id = line.get("variant_id")
    if variant_id is None:
        return None
    return {
        "__typename": "ProductVariant",
        "id": gid("ProductVariant", variant_id),
        "legacyResourceId": str(variant_id),
        "sku": line.get("sku"),
        "title": line.get("variant_title") or "Default Title",
        "displayName": line["name"],
        "price": decimal(line["price"]),
    }


def _product(line: dict[str, Any]) -> Record | None:
    product_id = line.get("product_id")
    if product_id is None:
        return None
    return {
        "__typename": "Product",
        "id": gid("Product", product_id),
        "legacyResourceId": str(product_id),
        "title": line["title"],
        "vendor": line.get("vendor"),
        "handle": line["title"].lower().replace(" ", "-"),
    }


def fulfillment_record(fulfillment: dict[str, Any]) -> Record:
    numbers = fulfillment.get("tracking_numbers") or []
    urls = fulfillment.get("tracking_urls") or []
    tracking = [
        {
            "__typename": "FulfillmentTrackingInfo",
            "number": number,
            "url": urls[index] if index < len(urls) else None,
            "company": fulfillment.get("tracking_company"),
        }
        for index, number in enumerate(numbers)
    ]
    lines = fulfillment.get("line_items", [])
    return {
        "__typename": "Fulfillment",
        "id": gid("Fulfillment", fulfillment["id"]),
        "legacyResourceId": str(fulfillment["id"]),
        "name": fulfillment.get("name"),
        "status": (fulfillment.get("status") or "success").upper(),
        "displayStatus": "FULFILLED",
        "createdAt": utc(fulfillment["created_at"]),
        "updatedAt": utc(fulfillment.get("updated_at") or fulfillment["created_at"]),
        "deliveredAt": None,
        "inTransitAt": None,
        "estimatedDeliveryAt": None,
        "requiresShipping": True,
        "totalQuantity": sum(line["quantity"] for line in lines),
        "trackingInfo": tracking,
        "fulfillmentLineItems": [
            {
                "__typename": "FulfillmentLineItem",
                "id": gid("FulfillmentLineItem", line["id"]),
                "quantity": line["quantity"],
                "lineItem": line_item_record(line),
            }
            for line in lines
        ],
    }


def refund_record(refund: dict[str, Any]) -> Record:
    transactions = refund.get("transactions", [])
    refunded = sum(
        (Decimal(t["amount"]) for t in transactions if t.get("kind") == "refund"), Decimal(0)
    )
    return {
        "__typename": "Refund",
        "id": gid("Refund", refund["id"]),
        "legacyResourceId": str(refund["id"]),
        "note": refund.get("note"),
        "createdAt": utc(refund["created_at"]),
        "processedAt": utc(refund.get("processed_at") or refund["created_at"]),
        "updatedAt": utc(refund.get("processed_at") or refund["created_at"]),
        "totalRefundedSet": bag_of(refunded),
        "refundLineItems": [_refund_line_record(line) for line in refund["refund_line_items"]],
        "transactions": [_transaction_record(t) for t in transactions],
        "refundShippingLines": [],
        "orderAdjustments": [],
    }


def _refund_line_record(line: dict[str, Any]) -> Record:
    quantity = line["quantity"]
    subtotal = Decimal(line["subtotal_set"]["shop_money"]["amount"])
    return {
        "__typename": "RefundLineItem",
        "id": gid("RefundLineItem", line["id"]),
        "quantity": quantity,
        "restockType": (line.get("restock_type") or "no_restock").upper(),
        "restocked": line.get("restock_type") not in (None, "no_restock"),
        "subtotalSet": bag(line["subtotal_set"]),
        "totalTaxSet": bag(line["total_tax_set"]),
        "priceSet": bag_of(subtotal / quantity if quantity else subtotal),
        "lineItem": line_item_record(line["line_item"]),
    }


def _transaction_record(transaction: dict[str, Any]) -> Record:
    return {
        "__typename": "OrderTransaction",
        "id": gid("OrderTransaction", transaction["id"]),
        "kind": transaction["kind"].upper(),
        "status": transaction["status"].upper(),
        "gateway": transaction.get("gateway"),
        "createdAt": utc(transaction["created_at"]),
        "processedAt": utc(transaction.get("processed_at")),
        "test": bool(transaction.get("test")),
        "amountSet": bag_of(Decimal(transaction["amount"]), transaction.get("currency", "USD")),
    }


def _shipping_line_record(line: dict[str, Any]) -> Record:
    return {
        "__typename": "ShippingLine",
        "id": gid("ShippingLine", line["id"]),
        "title": line["title"],
        "code": line.get("code"),
        "source": line.get("source"),
        "custom": False,
        "isRemoved": False,
        "originalPriceSet": bag(line.get("price_set")),
        "discountedPriceSet": bag(line.get("discounted_price_set")),
        "currentDiscountedPriceSet": bag(line.get("discounted_price_set")),
        "taxLines": [_tax_line(t) for t in line.get("tax_lines", [])],
        "discountAllocations": [],
    }


def order_record(payload: dict[str, Any], customer: CustomerLookup) -> Record:
    """An orders/* payload as GraphQL's Order; `customer` finds the customer as it is now."""
    refunds = [refund_record(r) for r in payload.get("refunds", [])]
    refunded = sum(
        (Decimal(r["totalRefundedSet"]["shopMoney"]["amount"]) for r in refunds), Decimal(0)
    )
    shipping = [_shipping_line_record(line) for line in payload.get("shipping_lines", [])]
    customer_id = (payload.get("customer") or {}).get("id")
    lines = [line_item_record(line) for line in payload["line_items"]]
    tags = [tag.strip() for tag in (payload.get("tags") or "").split(",") if tag.strip()]
    codes = [code["code"] for code in payload.get("discount_codes", [])]
    currency = payload.get("currency", "USD")
    total = Decimal(payload["total_price"])
    record: Record = {
        "__typename": "Order",
        "id": gid("Order", payload["id"]),
        "legacyResourceId": str(payload["id"]),
        "name": payload["name"],
        "number": payload.get("number"),
        "email": payload.get("email"),
        "phone": payload.get("phone"),
        "note": payload.get("note"),
        "test": bool(payload.get("test")),
        "confirmed": bool(payload.get("confirmed", True)),
        "confirmationNumber": payload.get("confirmation_number"),
        "createdAt": utc(payload["created_at"]),
        "updatedAt": utc(payload["updated_at"]),
        "processedAt": utc(payload.get("processed_at") or payload["created_at"]),
        "closedAt": utc(payload.get("closed_at")),
        "closed": payload.get("closed_at") is not None,
        "cancelledAt": utc(payload.get("cancelled_at")),
        "cancelReason": upper(payload.get("cancel_reason")),
        "displayFinancialStatus": upper(payload.get("financial_status")),
        "displayFulfillmentStatus": FULFILLMENT_STATUS.get(
            payload.get("fulfillment_status"), "UNFULFILLED"
        ),
        "currencyCode": currency,
        "presentmentCurrencyCode": payload.get("presentment_currency", currency),
        "customerLocale": payload.get("customer_locale"),
        "customerAcceptsMarketing": bool(payload.get("buyer_accepts_marketing")),
        "sourceName": payload.get("source_name"),
        "checkoutToken": payload.get("checkout_token"),
        "tags": tags,
        "discountCodes": codes,
        "discountCode": codes[0] if codes else None,
        "paymentGatewayNames": list(payload.get("payment_gateway_names", [])),
        "statusPageUrl": payload.get("order_status_url"),
        "taxesIncluded": bool(payload.get("taxes_included")),
        "taxExempt": False,
        "requiresShipping": True,
        "totalWeight": str(
            sum(line.get("grams", 0) * line["quantity"] for line in payload["line_items"])
        ),
        "subtotalLineItemsQuantity": sum(line["quantity"] for line in payload["line_items"]),
        "totalPriceSet": bag(payload.get("total_price_set")),
        "subtotalPriceSet": bag(payload.get("subtotal_price_set")),
        "totalTaxSet": bag(payload.get("total_tax_set")),
        "totalDiscountsSet": bag(payload.get("total_discounts_set")),
        "totalShippingPriceSet": bag(payload.get("total_shipping_price_set")),
        "originalTotalPriceSet": bag(payload.get("total_price_set")),
        "currentTotalPriceSet": bag_of(
            Decimal(payload.get("current_total_price", total)) - refunded, currency
        ),
        "currentSubtotalPriceSet": bag_of(
            Decimal(payload.get("current_subtotal_price", payload["subtotal_price"]))
        ),
        "currentTotalTaxSet": bag_of(
            Decimal(payload.get("current_total_tax", payload["total_tax"]))
        ),
        "currentTotalDiscountsSet": bag_of(
            Decimal(payload.get("current_total_discounts", payload["total_discounts"]))
        ),
        "totalRefundedSet": bag_of(refunded, currency),
        "totalReceivedSet": bag_of(total, currency),
        "netPaymentSet": bag_of(total - refunded, currency),
        "taxLines": [],
        "customAttributes": [
            {"__typename": "Attribute", "key": a["name"], "value": a.get("value")}
            for a in payload.get("note_attributes", [])
        ],
        "billingAddress": address_record(payload.get("billing_address")),
        "shippingAddress": address_record(payload.get("shipping_address")),
        "customer": (lambda _args: customer(customer_id)) if customer_id else None,
        "lineItems": lines,
        "fulfillments": [fulfillment_record(f) for f in payload.get("fulfillments", [])],
        "refunds": refunds,
        "shippingLines": shipping,
        "shippingLine": shipping[0] if shipping else None,
    }
    return record
