"""Shopify payloads to Klaviyo profiles and events, checked on Shopify's real samples."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from shoprelay.mapping.klaviyo import KlaviyoEvent, KlaviyoLocation, KlaviyoProfile
from shoprelay.mapping.shopify import (
    checkout_to_event,
    order_to_events,
    refund_to_event,
    updated_at,
)
from shoprelay.mapping.shopify_customers import customer_to_profile, order_profile
from shoprelay.mapping.shopify_fields import ShopifyMetrics, UnmappableError

SAMPLES = Path(__file__).parents[2] / "fixtures" / "shopify"
SHOP = "jsmith.myshopify.com"
METRICS = ShopifyMetrics()


def sample(name: str) -> dict[str, Any]:
    payload = json.loads((SAMPLES / name).read_text(encoding="utf-8"))
    assert isinstance(payload, dict)
    return payload


def rest_order() -> dict[str, Any]:
    order = sample("order.rest-fixture.shopify_python_api.json")["order"]
    assert isinstance(order, dict)
    return order


def nulls_in(value: Any, path: str = "") -> list[str]:
    """Paths of every None in a JSON-like value."""
    if value is None:
        return [path or "/"]
    if isinstance(value, dict):
        return [p for key, item in value.items() for p in nulls_in(item, f"{path}/{key}")]
    if isinstance(value, list):
        return [p for i, item in enumerate(value) for p in nulls_in(item, f"{path}/{i}")]
    return []


def by_metric(events: list[KlaviyoEvent]) -> dict[str, list[KlaviyoEvent]]:
    grouped: dict[str, list[KlaviyoEvent]] = {}
    for event in events:
        grouped.setdefault(event.metric, []).append(event)
    return grouped


# --- customers -------------------------------------------------------------------------------


def test_customers_create_sample_maps_to_the_seed_profile() -> None:
    """The customers/create sample becomes the seed's profile, without its nulls."""
    assert customer_to_profile(sample("customers-create.json"), SHOP) == KlaviyoProfile(
        email="bob@biller.com",
        external_id=f"shopify:{SHOP}:706405506930370084",
        first_name="Bob",
        last_name="Biller",
        location=KlaviyoLocation(
            address1="151 O'Connor Street", city="Ottawa", region="ON", zip="K2P 2L8", country="CA"
        ),
        properties={
            "Shopify ID": 706405506930370084,
            "Verified Email": True,
            "Customer State": "disabled",
            "Address1": "151 O'Connor Street",
            "City": "Ottawa",
            "Region": "ON",
            "Zip": "K2P 2L8",
            "Country": "CA",
        },
    )


def test_seed_customer_example_maps_its_address_from_addresses() -> None:
    """The seed's own example, whose only address is in `addresses`, gives the seed's properties."""
    seed_customer = {
        "id": 123456789,
        "email": "customer@example.com",
        "first_name": "Jane",
        "last_name": "Doe",
        "phone": "+16135550142",
        "verified_email": True,
        "state": "enabled",
        "addresses": [
            {
                "address1": "123 Main St",
                "city": "Anytown",
                "province": "CA",
                "zip": "90210",
                "country": "United States",
            }
        ],
    }
    attributes = customer_to_profile(seed_customer, SHOP).to_attributes()
    assert attributes["phone_number"] == "+16135550142"
    assert attributes["properties"] == {
        "Shopify ID": 123456789,
        "Verified Email": True,
        "Customer State": "enabled",
        "Address1": "123 Main St",
        "City": "Anytown",
        "Region": "CA",
        "Zip": "90210",
        "Country": "United States",
    }
    assert not {"organization", "title", "image"} & attributes.keys()


def test_a_phone_that_is_not_e164_is_dropped_and_noted() -> None:
    """An invalid phone is left out of the profile and the note says why."""
    customer = sample("customers-create.json") | {"phone": "555-555-5555"}
    profile = customer_to_profile(customer, SHOP)
    assert profile.phone_number is None
    assert profile.notes == ("phone_number dropped: not E.164",)


def test_a_local_phone_is_read_in_the_address_country() -> None:
    """A phone without +country is read in the default address's country."""
    customer = sample("customers-create.json") | {"phone": "(613) 555-0142"}
    assert customer_to_profile(customer, SHOP).phone_number == "+16135550142"


def test_a_phone_only_customer_is_identified_by_phone() -> None:
    """A customer with no email still maps when the phone is valid."""
    customer = {"id": 7, "phone": "+16135550142"}
    profile = customer_to_profile(customer, SHOP)
    assert (profile.email, profile.phone_number) == (None, "+16135550142")


def test_external_id_is_stable_per_shop_and_customer() -> None:
    """The same customer in the same shop always gets the same external_id."""
    first = customer_to_profile(sample("customers-create.json"), SHOP)
    again = customer_to_profile(sample("customers-create.json"), SHOP)
    assert first.external_id == again.external_id == f"shopify:{SHOP}:706405506930370084"


# --- orders ----------------------------------------------------------------------------------


def test_orders_create_sample_maps_to_placed_products_and_cancelled() -> None:
    """The docs' orders/create sample (cancelled) gives Placed, 3 Ordered Product, Cancelled."""
    events = order_to_events(sample("orders-create.json"), SHOP, METRICS)
    assert [event.metric for event in events] == [
        "Placed Order",
        "Ordered Product",
        "Ordered Product",
        "Ordered Product",
        "Cancelled Order",
    ]
    placed = events[0]
    assert placed.properties == {
        "OrderId": 820982911946154508,
        "OrderNumber": "#9999",
        "Value": 359.97,
        "Currency": "USD",
        "Items": [
            {"SKU": "SKU2006-001", "Name": "Aviator sunglasses", "Price": 89.99, "Quantity": 1},
            {"SKU": "SKU2006-020", "Name": "Mid-century lounger", "Price": 159.99, "Quantity": 1},
            {"SKU": "SKU2006-035", "Name": "Coffee table", "Price": 119.99, "Quantity": 1},
        ],
        "Item Count": 3,
        "ItemNames": ["Aviator sunglasses", "Mid-century lounger", "Coffee table"],
        "ShippingAddress": "123 Shipping Street, Shippington, Kentucky 40003, United States",
        "Discount Codes": [],
        "Total Discounts": 20,
        "Source Name": "web",
    }
    assert (placed.value, placed.value_currency) == (Decimal("359.97"), "USD")
    assert placed.unique_id == f"shopify:{SHOP}:order:820982911946154508"
    assert placed.to_attributes()["time"] == "2022-01-01T00:00:00Z"
    assert events[-1].properties["Cancel Reason"] == "customer"
    assert events[-1].unique_id == placed.unique_id


def test_real_discounted_order_maps_codes_totals_and_drops_the_scrubbed_phone() -> None:
    """The real HKD order maps its discount code and totals; its fake phone is dropped and noted."""
    events = order_to_events(sample("orders-create.real-discounts.json"), SHOP, METRICS)
    placed, products = events[0], events[1:]
    assert [event.metric for event in events] == ["Placed Order"] + ["Ordered Product"] * 4
    assert placed.properties["Discount Codes"] == ["Alan Test 0123B"]
    assert placed.properties["Total Discounts"] == 25
    assert placed.properties["Source Name"] == "shopify_draft_order"
    assert placed.properties["ShippingAddress"] == "Hong Kong"
    assert (placed.value, placed.value_currency) == (Decimal("394.00"), "HKD")
    assert placed.to_attributes()["time"] == "2025-01-23T06:59:37Z"
    assert placed.profile.notes == ("phone_number dropped: not E.164",)
    assert "SKU" not in products[0].properties  # Shopify sent "", which is not a SKU
    assert sum((event.value or Decimal(0) for event in products), Decimal(0)) == Decimal("399.00")


def test_real_cancelled_order_maps_cancel_and_its_embedded_refund() -> None:
    """The real orders/cancelled payload gives Placed, Ordered Product, Cancelled and Refunded."""
    events = by_metric(order_to_events(sample("orders-cancelled.real.json"), SHOP, METRICS))
    cancelled, refunded = events["Cancelled Order"][0], events["Refunded Order"][0]
    assert cancelled.to_attributes()["time"] == "2025-01-24T02:57:18Z"
    assert cancelled.properties["Cancel Reason"] == "customer"
    assert refunded.unique_id == f"shopify:{SHOP}:refund:982959849772"
    assert (refunded.value, refunded.value_currency) == (Decimal("99.00"), "HKD")
    assert refunded.properties["Note"] == "訂單已取消"
    assert refunded.properties["OrderId"] == 6198821716268


def test_rest_fixture_order_maps_discount_code_and_shipping_line() -> None:
    """Shopify's REST fixture order maps its TENOFF code and one-line shipping address."""
    placed = order_to_events(rest_order(), SHOP, METRICS)[0]
    assert placed.properties["Discount Codes"] == ["TENOFF"]
    assert placed.properties["OrderNumber"] == "#1001"
    assert placed.properties["ShippingAddress"] == (
        "Chestnut Street 92, Louisville, Kentucky 40202, United States"
    )
    assert placed.to_attributes()["time"] == "2008-01-10T16:00:00Z"


def test_seed_order_example_maps_to_the_seed_properties() -> None:
    """The seed's order example gives exactly the seed's property values."""
    seed_order = {
        "id": 987654321,
        "order_number": "#1001",
        "email": "customer@example.com",
        "created_at": "2023-01-01T10:30:00-05:00",
        "total_price": "99.99",
        "currency": "USD",
        "line_items": [
            {"id": 111, "title": "Product A", "price": "49.99", "quantity": 1, "sku": "PA123"},
            {"id": 222, "title": "Product B", "price": "50.00", "quantity": 1, "sku": "PB456"},
        ],
        "shipping_address": {
            "address1": "123 Main St",
            "city": "Anytown",
            "province": "CA",
            "zip": "90210",
            "country": "United States",
        },
    }
    placed = order_to_events(seed_order, SHOP, METRICS)[0]
    attributes = placed.to_attributes()
    assert attributes["properties"] == {
        "OrderId": 987654321,
        "OrderNumber": "#1001",
        "Value": 99.99,
        "Currency": "USD",
        "Items": [
            {"SKU": "PA123", "Name": "Product A", "Price": 49.99, "Quantity": 1},
            {"SKU": "PB456", "Name": "Product B", "Price": 50, "Quantity": 1},
        ],
        "Item Count": 2,
        "ItemNames": ["Product A", "Product B"],
        "ShippingAddress": "123 Main St, Anytown, CA 90210, United States",
        "Discount Codes": [],
    }
    assert attributes["time"] == "2023-01-01T15:30:00Z"
    assert attributes["profile"]["data"]["attributes"] == {"email": "customer@example.com"}


def test_ordered_product_value_is_exact_decimal_price_times_quantity() -> None:
    """19.99 x 3 is 59.97 exactly, in Decimal and in the JSON number."""
    order = rest_order()
    order["line_items"] = [order["line_items"][0] | {"price": "19.99", "quantity": 3}]
    product = by_metric(order_to_events(order, SHOP, METRICS))["Ordered Product"][0]
    assert product.value == Decimal("59.97")
    assert product.to_attributes()["value"] == 59.97
    assert product.properties == {
        "OrderId": 450789469,
        "OrderNumber": "#1001",
        "SKU": "IPOD2008GREEN",
        "Name": "IPod Nano - 8gb",
        "ProductID": 632910392,
        "VariantID": 39072856,
        "Variant Name": "green",
        "Quantity": 3,
        "Price": 19.99,
    }
    assert product.unique_id == f"shopify:{SHOP}:line:466157049"


def test_fulfilled_order_is_timed_by_its_last_successful_fulfillment() -> None:
    """A fulfilled order adds Fulfilled Order at the latest successful fulfillment."""
    order = rest_order() | {"fulfillment_status": "fulfilled"}
    first = order["fulfillments"][0] | {"status": "success"}
    later = first | {"id": 2, "created_at": "2014-01-23T10:00:00-05:00"}
    failed = first | {"id": 3, "status": "failure", "created_at": "2014-02-01T10:00:00-05:00"}
    order["fulfillments"] = [first, later, failed]
    fulfilled = by_metric(order_to_events(order, SHOP, METRICS))["Fulfilled Order"][0]
    assert fulfilled.to_attributes()["time"] == "2014-01-23T15:00:00Z"
    assert fulfilled.unique_id == f"shopify:{SHOP}:order:450789469"


def test_fulfilled_order_without_fulfillments_uses_updated_at() -> None:
    """With no fulfillment records, Fulfilled Order is timed by the order's updated_at."""
    order = sample("orders-create.json") | {"fulfillment_status": "fulfilled"}
    order |= {"updated_at": "2022-01-02T08:00:00-05:00"}
    fulfilled = by_metric(order_to_events(order, SHOP, METRICS))["Fulfilled Order"][0]
    assert fulfilled.to_attributes()["time"] == "2022-01-02T13:00:00Z"


def test_remapping_an_order_gives_identical_events() -> None:
    """Mapping the same order twice gives equal events, so the outbox dedups them."""
    first = order_to_events(sample("orders-cancelled.real.json"), SHOP, METRICS)
    again = order_to_events(sample("orders-cancelled.real.json"), SHOP, METRICS)
    assert [e.unique_id for e in first] == [e.unique_id for e in again]
    assert first == again


def test_order_profile_falls_back_to_the_order_contact() -> None:
    """A guest order with no customer is identified by the order's email and billing names."""
    order = sample("orders-create.json")
    del order["customer"]
    profile = order_profile(order, SHOP)
    assert (profile.email, profile.external_id) == ("jon@example.com", None)
    assert (profile.first_name, profile.last_name) == ("Steve", "Shipper")


def test_metric_names_come_from_the_metrics_argument() -> None:
    """Custom metric names replace the defaults."""
    metrics = ShopifyMetrics(placed_order="Order Placed (Shop A)")
    assert order_to_events(rest_order(), SHOP, metrics)[0].metric == "Order Placed (Shop A)"


def test_metric_names_over_klaviyos_limit_are_refused() -> None:
    """A metric name Klaviyo would reject (128+ characters) fails at configuration."""
    with pytest.raises(ValueError, match="placed_order"):
        ShopifyMetrics(placed_order="x" * 128)


def test_a_huge_note_is_clipped_under_klaviyos_string_limit() -> None:
    """A refund note beyond 100 KB is cut rather than failing the event."""
    refund = sample("refunds-create.json") | {"note": "x" * 300_000}
    profile = KlaviyoProfile(email="a@example.com")
    event = refund_to_event(refund, SHOP, METRICS, profile, "USD")
    assert len(event.properties["Note"].encode()) <= 100_000


def test_an_order_before_1990_is_unmappable() -> None:
    """Klaviyo rejects event times before 1990, so the order is refused with that reason."""
    order = rest_order() | {"created_at": "1989-12-31T00:00:00-05:00"}
    with pytest.raises(UnmappableError, match="before 1990"):
        order_to_events(order, SHOP, METRICS)


# --- refunds and checkouts -------------------------------------------------------------------


def test_refunds_create_sample_is_valued_by_its_successful_transactions() -> None:
    """The refunds/create sample is worth its two successful refund transactions: 75 + 10."""
    profile = KlaviyoProfile(email="jon@example.com", external_id=f"shopify:{SHOP}:1")
    event = refund_to_event(sample("refunds-create.json"), SHOP, METRICS, profile, "USD")
    assert event.metric == "Refunded Order"
    assert (event.value, event.value_currency) == (Decimal("85.00"), "USD")
    assert event.unique_id == f"shopify:{SHOP}:refund:890088186047892319"
    assert event.to_attributes()["time"] == "2022-01-01T00:00:00Z"
    assert event.properties["OrderId"] == 820982911946154508
    assert event.properties["RefundId"] == 890088186047892319
    assert event.properties["Note"] == "Things were damaged"
    assert event.properties["Items refunded"][0] == {
        "SKU": "SKU2006-001",
        "Name": "Aviator sunglasses",
        "Price": 89.99,
        "Quantity": 1,
    }
    assert event.profile is profile


def test_refund_without_transactions_is_valued_by_its_lines() -> None:
    """With no successful transactions, a refund is worth its lines' subtotal plus tax."""
    refund = sample("refunds-create.json") | {"transactions": []}
    refund["refund_line_items"][0]["total_tax"] = 7.2
    event = refund_to_event(refund, SHOP, METRICS, KlaviyoProfile(email="a@example.com"), "USD")
    assert event.value == Decimal("89.99") + Decimal("19.99") + Decimal("24.99") + Decimal(
        "159.99"
    ) + Decimal("119.99") + Decimal("7.2")


def test_checkouts_create_sample_maps_to_started_checkout() -> None:
    """The checkouts/create sample gives Started Checkout keyed by its token."""
    event = checkout_to_event(sample("checkouts-create.json"), SHOP, METRICS)
    assert event is not None
    assert event.metric == "Started Checkout"
    assert event.unique_id == f"shopify:{SHOP}:checkout:123123123"
    assert (event.value, event.value_currency) == (Decimal("421.88"), "USD")
    assert event.properties == {
        "Items": [
            {"SKU": "IPOD2008PINK", "Name": "IPod Nano - 8GB", "Price": 199, "Quantity": 1},
            {"SKU": "IPOD2008PINK", "Name": "IPod Nano - 8GB", "Price": 199, "Quantity": 1},
        ],
        "Item Count": 2,
        "ItemNames": ["IPod Nano - 8GB", "IPod Nano - 8GB"],
        "Checkout URL": (
            "https://checkout.local/548380009/checkouts/123123123/recover?key=example-secret-token"
        ),
    }
    assert event.to_attributes()["time"] == "2022-01-01T00:00:00Z"


def test_a_checkout_without_an_email_maps_to_nothing() -> None:
    """A checkout before the shopper typed an email is not an event yet."""
    checkout = sample("checkouts-create.json") | {"email": None}
    del checkout["customer"]
    assert checkout_to_event(checkout, SHOP, METRICS) is None


# --- versions, nulls and odd input -----------------------------------------------------------


def test_updated_at_is_the_payload_version_in_utc() -> None:
    """updated_at reads the resource version, and is None when absent or garbled."""
    assert updated_at(sample("orders-cancelled.real.json")) == datetime(
        2025, 1, 24, 2, 57, 18, tzinfo=UTC
    )
    assert updated_at(sample("refunds-create.json")) is None
    assert updated_at({"updated_at": "soon"}) is None


def every_mapped_sample() -> list[tuple[str, dict[str, Any]]]:
    profile = customer_to_profile(sample("customers-create.json"), SHOP)
    refund = refund_to_event(sample("refunds-create.json"), SHOP, METRICS, profile, "USD")
    checkout = checkout_to_event(sample("checkouts-create.json"), SHOP, METRICS)
    assert checkout is not None
    mapped = [("profile", profile.to_attributes()), ("refund", refund.to_attributes())]
    mapped.append(("checkout", checkout.to_attributes()))
    orders = [sample("orders-create.json"), sample("orders-create.real-discounts.json")]
    for order in [*orders, rest_order()]:
        mapped += [(e.metric, e.to_attributes()) for e in order_to_events(order, SHOP, METRICS)]
    return mapped


def test_no_null_anywhere_in_what_is_sent() -> None:
    """No attribute, property or nested item is null: Klaviyo would clear the field."""
    for name, attributes in every_mapped_sample():
        assert nulls_in(attributes) == [], name


ODD_INPUTS: list[tuple[str, Any]] = [
    ("not an object", ["a list"]),
    ("empty", {}),
    ("no identifier", {"id": None, "email": None, "phone": None}),
    ("id of wrong type", {"id": 1.5, "email": "not-an-email"}),
    ("nulls everywhere", dict.fromkeys(("id", "email", "customer", "line_items"))),
]


@pytest.mark.parametrize(("case", "payload"), ODD_INPUTS)
def test_odd_customers_raise_unmappable_not_key_or_type_errors(case: str, payload: Any) -> None:
    """A customer payload without a usable identifier raises UnmappableError with a reason."""
    with pytest.raises(UnmappableError, match=r"\w"):
        customer_to_profile(payload, SHOP)


@pytest.mark.parametrize(
    ("case", "payload", "reason"),
    [
        ("no id", {"email": "a@example.com"}, "order has no id"),
        ("no identifier", {"id": 1, "created_at": "2024-01-01T00:00:00Z"}, "no email"),
        ("no time", {"id": 1, "email": "a@example.com"}, "created_at or processed_at"),
        ("bad time", {"id": 1, "email": "a@example.com", "created_at": 5}, "created_at"),
        ("bad total", {"id": 1, "email": "a@x.com", "total_price": "lots"}, "total_price"),
        ("line no price", {"id": 1, "email": "a@x.com", "line_items": [{"id": 2}]}, "price"),
        ("line items wrong type", {"id": 1, "email": "a@x.com", "line_items": 7}, "created_at"),
        ("customer wrong type", {"id": 1, "customer": "x", "email": None}, "no email"),
    ],
)
def test_odd_orders_raise_unmappable_with_a_reason(
    case: str, payload: dict[str, Any], reason: str
) -> None:
    """An order that cannot be mapped says why, and never raises KeyError or TypeError."""
    with pytest.raises(UnmappableError, match=reason):
        order_to_events(payload, SHOP, METRICS)


def test_odd_refunds_and_checkouts_raise_unmappable() -> None:
    """Refunds without an id or time, and checkouts without a token, are unmappable."""
    profile = KlaviyoProfile(email="a@example.com")
    with pytest.raises(UnmappableError, match="refund has no id"):
        refund_to_event({"order_id": 1}, SHOP, METRICS, profile, None)
    with pytest.raises(UnmappableError, match="created_at"):
        refund_to_event({"id": 1}, SHOP, METRICS, profile, None)
    with pytest.raises(UnmappableError, match="no identifier"):
        refund_to_event(sample("refunds-create.json"), SHOP, METRICS, KlaviyoProfile(), None)
    with pytest.raises(UnmappableError, match="token"):
        checkout_to_event({"email": "a@example.com"}, SHOP, METRICS)


def test_sample_mapping_does_not_mutate_the_payload() -> None:
    """Mapping is pure: the payload is unchanged afterwards."""
    order = sample("orders-cancelled.real.json")
    before = copy.deepcopy(order)
    order_to_events(order, SHOP, METRICS)
    assert order == before
