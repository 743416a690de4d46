"""ShipStation V1 records (stores, orders, shipments, fulfillments) with the real field names."""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

PACIFIC = ZoneInfo("America/Los_Angeles")

PRODUCTS = (
    ("MUG-BLK", "Black Enamel Mug", "14.00"),
    ("TEE-M-NVY", "Navy Tee (M)", "24.50"),
    ("CAP-OLV", "Olive Cap", "19.99"),
    ("SOCK-3PK", "Wool Socks, 3-pack", "21.00"),
    ("BAG-TOTE", "Canvas Tote", "32.00"),
)
PLACES = (("Portland", "OR", "US"), ("Austin", "TX", "US"), ("Toronto", "ON", "CA"))
CARRIERS = (("stamps_com", "usps_priority_mail"), ("ups", "ups_ground"), ("fedex", "fedex_2day"))


@dataclass(frozen=True)
class SimStore:
    store_id: int
    name: str
    marketplace_id: int = 0
    marketplace_name: str = "ShipStation"


DEFAULT_STORES = (
    SimStore(22766, "ShipStation Manual Store"),
    SimStore(25748, "Ashley's Test WooCommerce", 36, "WooCommerce"),
    SimStore(31002, "Harbor Goods Shopify", 1, "Shopify"),
)


def pacific_stamp(moment: datetime, digits: int = 7) -> str:
    """A timestamp as ShipStation writes it: Pacific wall clock, no offset, 7 fraction digits."""
    wall = moment.astimezone(PACIFIC).replace(tzinfo=None)
    fraction = f"{wall.microsecond:06d}0"[:digits]
    return wall.strftime("%Y-%m-%dT%H:%M:%S") + "." + fraction


def pacific_date(moment: datetime) -> str:
    """A date-only field such as `shipDate`, in Pacific."""
    return moment.astimezone(PACIFIC).strftime("%Y-%m-%d")


def store_record(store: SimStore, created: datetime) -> dict[str, Any]:
    stamp = pacific_stamp(created, 3)
    return {
        "storeId": store.store_id,
        "storeName": store.name,
        "marketplaceId": store.marketplace_id,
        "marketplaceName": store.marketplace_name,
        "accountName": None,
        "email": None,
        "integrationUrl": None,
        "active": True,
        "companyName": "",
        "phone": "",
        "publicEmail": "",
        "website": "",
        "refreshDate": stamp,
        "lastRefreshAttempt": stamp,
        "createDate": stamp,
        "modifyDate": stamp,
        "autoRefresh": store.marketplace_id != 0,
    }


def _address(rng: random.Random, name: str) -> dict[str, Any]:
    city, state, country = rng.choice(PLACES)
    return {
        "name": name,
        "company": None,
        "street1": f"{rng.randint(1, 9999)} Main St",
        "street2": "",
        "street3": None,
        "city": city,
        "state": state,
        "postalCode": f"{rng.randint(10000, 99999)}",
        "country": country,
        "phone": None,
        "residential": True,
        "addressVerified": "Address validated successfully",
    }


def _item(rng: random.Random, item_id: int, stamp: str) -> dict[str, Any]:
    sku, name, price = rng.choice(PRODUCTS)
    return {
        "orderItemId": item_id,
        "lineItemKey": None,
        "sku": sku,
        "name": name,
        "imageUrl": None,
        "weight": {"value": 12, "units": "ounces"},
        "quantity": rng.randint(1, 3),
        "unitPrice": float(price),
        "taxAmount": None,
        "shippingAmount": None,
        "warehouseLocation": None,
        "options": [],
        "productId": None,
        "fulfillmentSku": None,
        "adjustment": False,
        "upc": None,
        "createDate": stamp[:23],
        "modifyDate": stamp[:23],
    }


def _discount(item_id: int, stamp: str) -> dict[str, Any]:
    line = _item(random.Random(0), item_id, stamp)
    discount = {"sku": "DISCOUNT CODE", "name": "10% OFF", "quantity": 1, "unitPrice": -5.0}
    return line | discount | {"adjustment": True, "weight": {"value": 0, "units": "ounces"}}


def order_record(
    rng: random.Random,
    order_id: int,
    number: str,
    store: SimStore,
    *,
    created: datetime,
    email: str,
) -> dict[str, Any]:
    """A new order awaiting shipment, shaped like `GET /orders` returns it."""
    stamp = pacific_stamp(created)
    items = [_item(rng, order_id * 10 + n, stamp) for n in range(rng.randint(1, 3))]
    if rng.random() < 0.2:
        items.append(_discount(order_id * 10 + 9, stamp))
    subtotal = sum(round(line["unitPrice"] * line["quantity"], 2) for line in items)
    name = f"Customer {order_id}"
    return {
        "orderId": order_id,
        "orderNumber": number,
        "orderKey": str(uuid.UUID(int=rng.getrandbits(128))),
        "orderDate": stamp,
        "createDate": stamp,
        "modifyDate": stamp,
        "paymentDate": stamp,
        "shipByDate": None,
        "orderStatus": "awaiting_shipment",
        "customerId": order_id + 5000,
        "customerUsername": email or None,
        "customerEmail": email,
        "billTo": _address(rng, name) | {"street1": None, "city": None, "country": None},
        "shipTo": _address(rng, name),
        "items": items,
        "orderTotal": round(subtotal + 5.0, 2),
        "amountPaid": round(subtotal + 5.0, 2),
        "taxAmount": 0,
        "shippingAmount": 5.0,
        "customerNotes": None,
        "internalNotes": None,
        "gift": False,
        "giftMessage": None,
        "paymentMethod": "Credit Card",
        "requestedShippingService": "Standard",
        "carrierCode": None,
        "serviceCode": None,
        "packageCode": None,
        "confirmation": "none",
        "shipDate": None,
        "holdUntilDate": None,
        "weight": {"value": 24, "units": "ounces"},
        "dimensions": None,
        "insuranceOptions": {"provider": None, "insureShipment": False, "insuredValue": 0},
        "internationalOptions": {"contents": None, "customsItems": None, "nonDelivery": None},
        "advancedOptions": {
            "warehouseId": 98765,
            "nonMachinable": False,
            "saturdayDelivery": False,
            "containsAlcohol": False,
            "mergedOrSplit": False,
            "mergedIds": [],
            "parentId": None,
            "storeId": store.store_id,
            "customField1": None,
            "customField2": None,
            "customField3": None,
            "source": None,
            "billToParty": None,
            "billToAccount": None,
            "billToPostalCode": None,
            "billToCountryCode": None,
        },
        "tagIds": None,
        "userId": None,
        "externallyFulfilled": False,
        "externallyFulfilledBy": None,
    }


def shipment_record(
    order: dict[str, Any], shipment_id: int, at: datetime, carrier: tuple[str, str], tracking: str
) -> dict[str, Any]:
    """A label created in ShipStation for the order."""
    return {
        "shipmentId": shipment_id,
        "orderId": order["orderId"],
        "orderKey": order["orderKey"],
        "userId": None,
        "orderNumber": order["orderNumber"],
        "createDate": pacific_stamp(at),
        "shipDate": pacific_date(at),
        "shipmentCost": 7.35,
        "insuranceCost": 0,
        "trackingNumber": tracking,
        "isReturnLabel": False,
        "batchNumber": None,
        "carrierCode": carrier[0],
        "serviceCode": carrier[1],
        "packageCode": "package",
        "confirmation": "delivery",
        "warehouseId": 98765,
        "voided": False,
        "voidDate": None,
        "marketplaceNotified": True,
        "notifyErrorMessage": None,
        "shipTo": order["shipTo"],
        "weight": order["weight"],
        "dimensions": None,
        "insuranceOptions": order["insuranceOptions"],
        "advancedOptions": None,
        "shipmentItems": None,
        "labelData": None,
        "formData": None,
    }


def fulfillment_record(
    order: dict[str, Any], fulfillment_id: int, at: datetime, carrier: str, tracking: str | None
) -> dict[str, Any]:
    """A 'mark as shipped' (or fulfillment provider) record: no label in ShipStation."""
    return {
        "fulfillmentId": fulfillment_id,
        "orderId": order["orderId"],
        "orderNumber": order["orderNumber"],
        "userId": None,
        "customerEmail": order["customerEmail"],
        "trackingNumber": tracking,
        "createDate": pacific_stamp(at),
        "shipDate": pacific_date(at) + "T00:00:00.0000000",
        "voidDate": None,
        "deliveryDate": None,
        "carrierCode": carrier,
        "fulfillmentProviderCode": None,
        "fulfillmentServiceCode": None,
        "fulfillmentFee": 0,
        "voidRequested": False,
        "voided": False,
        "marketplaceNotified": True,
        "notifyErrorMessage": None,
        "shipTo": order["shipTo"],
    }


def utc_now() -> datetime:
    return datetime.now(UTC)
