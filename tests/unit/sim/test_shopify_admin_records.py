"""The Shopify simulator's GraphQL view says what the webhook JSON of the same object says,
in GraphQL's own forms (UTC times, upper-case enums, gids, Decimal strings, connections)."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from graphql import GraphQLEnumType, get_named_type

from shoprelay.sim.shopify_admin_api import Roots
from shoprelay.sim.shopify_admin_order_records import order_record
from shoprelay.sim.shopify_admin_records import customer_record, decimal
from shoprelay.sim.shopify_admin_schema import admin_schema
from shoprelay.sim.shopify_admin_shop import Shop
from shoprelay.sim.shopify_admin_state import ShopifyAdminSim, ShopifyAdminSimConfig
from shoprelay.sim.shopify_orders import cancel_order, fake_order, fake_refund, fulfill_order
from shoprelay.sim.shopify_orders import refund_order as with_refund
from shoprelay.sim.shopify_payloads import START, fake_customer


@pytest.mark.parametrize(
    ("amount", "shown"), [("10.00", "10.0"), ("5.90", "5.9"), ("199.99", "199.99"), (0, "0.0")]
)
def test_decimals_drop_trailing_zeros_as_shopify_does(amount: str, shown: str) -> None:
    assert decimal(amount) == shown


def _same_moment(webhook_stamp: str, graphql_stamp: str) -> bool:
    assert graphql_stamp.endswith("Z")
    return datetime.fromisoformat(webhook_stamp) == datetime.fromisoformat(graphql_stamp)


def test_an_order_reads_the_same_both_ways() -> None:
    rng = random.Random(7)
    customer = fake_customer(rng)
    order = fulfill_order(rng, fake_order(rng, customer, at=START), at=START)
    refund = fake_refund(rng, order, at=START, line_ids={order["line_items"][0]["id"]})
    order = with_refund(order, refund) | {"tags": "vip, sim"}
    view = order_record(order, lambda _id: None)

    assert view["id"] == order["admin_graphql_api_id"]
    assert int(view["legacyResourceId"]) == order["id"]
    assert _same_moment(order["created_at"], view["createdAt"])
    assert _same_moment(order["updated_at"], view["updatedAt"])
    assert view["displayFinancialStatus"] == "PARTIALLY_REFUNDED"
    assert view["displayFulfillmentStatus"] == "FULFILLED"
    assert view["tags"] == ["vip", "sim"]
    assert view["discountCodes"] == [code["code"] for code in order["discount_codes"]]
    total = view["totalPriceSet"]["shopMoney"]
    assert Decimal(total["amount"]) == Decimal(order["total_price"])
    assert total["currencyCode"] == order["currency"]
    lines = view["lineItems"]
    assert [int(line["id"].rsplit("/", 1)[1]) for line in lines] == [
        line["id"] for line in order["line_items"]
    ]
    assert [line["variant"]["legacyResourceId"] for line in lines] == [
        str(line["variant_id"]) for line in order["line_items"]
    ]
    (fulfillment,) = view["fulfillments"]
    assert fulfillment["trackingInfo"][0]["number"] == order["fulfillments"][0]["tracking_number"]
    (refunded,) = view["refunds"]
    (refund_line,) = refunded["refundLineItems"]
    assert refund_line["lineItem"]["id"] == lines[0]["id"]
    expected = Decimal(refund["refund_line_items"][0]["subtotal_set"]["shop_money"]["amount"])
    assert Decimal(refund_line["subtotalSet"]["shopMoney"]["amount"]) == expected


def test_a_cancelled_order_carries_its_reason_and_time() -> None:
    rng = random.Random(8)
    order, _refund = cancel_order(rng, fake_order(rng, fake_customer(rng)), at=START)
    view = order_record(order, lambda _id: None)
    assert view["cancelReason"] == "CUSTOMER"
    assert _same_moment(order["cancelled_at"], view["cancelledAt"])
    assert view["displayFinancialStatus"] == "REFUNDED"


def test_a_customer_carries_consent_from_its_own_topics() -> None:
    rng = random.Random(9)
    customer = fake_customer(rng) | {"phone": "+12125550123", "email": "ada@example.com"}
    consent = {"state": "subscribed", "opt_in_level": "single_opt_in", "consent_updated_at": None}
    view = customer_record(customer, email_consent=consent, tags=["vip"])
    assert view["emailMarketingConsent"]["marketingState"] == "SUBSCRIBED"
    assert view["emailMarketingConsent"]["marketingOptInLevel"] == "SINGLE_OPT_IN"
    assert view["defaultEmailAddress"]["emailAddress"] == "ada@example.com"
    assert view["defaultEmailAddress"]["marketingState"] == "SUBSCRIBED"
    # No SMS consent recorded: the phone's consent reads as never asked.
    assert view["smsMarketingConsent"] is None
    assert view["defaultPhoneNumber"]["smsMarketingConsent"]["state"] == "NEVER_SUBSCRIBED"
    assert view["tags"] == ["vip"]


def _fields_outside_the_schema(value: Any, found: set[tuple[str, str]]) -> None:
    schema = admin_schema()
    if isinstance(value, list):
        for item in value:
            _fields_outside_the_schema(item, found)
    if not isinstance(value, dict):
        return
    type_name = value.get("__typename")
    if type_name:
        fields = schema.type_map[type_name].fields  # type: ignore[union-attr]
        found |= {(type_name, key) for key in value if key != "__typename" and key not in fields}
        for key, item in value.items():
            kind = get_named_type(fields[key].type) if key in fields else None
            if isinstance(kind, GraphQLEnumType):
                values = item if isinstance(item, list) else [item]
                found |= {(type_name, f"{key}={v}") for v in values if v and v not in kind.values}
    for item in value.values():
        _fields_outside_the_schema(item, found)


def test_every_field_and_enum_value_the_views_hold_is_in_shopifys_schema() -> None:
    shop = Shop(random.Random(3), lambda: datetime.now(UTC), lambda _topic, _payload: None)
    shop.seed(60, 30)
    shop.activity(60)
    for customer_id in shop.customer_ids[:5]:
        shop.set_consent(customer_id, email="SUBSCRIBED", sms="SUBSCRIBED")
    found: set[tuple[str, str]] = set()
    for order_id in shop.orders:
        view = shop.order_view(order_id)
        _fields_outside_the_schema(view | {"customer": view["customer"]({})}, found)
    roots = Roots(ShopifyAdminSim(ShopifyAdminSimConfig()), lambda _operation: "")
    query = roots.query()
    _fields_outside_the_schema([query["shop"], query["currentAppInstallation"]], found)
    assert found == set()
