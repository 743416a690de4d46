"""A GraphQL record and the webhook JSON of the same object make identical Klaviyo requests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from shoprelay.mapping.shopify_fields import ShopifyMetrics
from shoprelay.sources.shopify.admin import convert
from shoprelay.sources.shopify.topics import plan
from shoprelay.store.plans import Plan

SAMPLES = Path(__file__).parents[3] / "fixtures" / "shopify"
SHOP = "jsmith.myshopify.com"
METRICS = ShopifyMetrics()
ORDERS = [
    "orders-create.json",
    "orders-create.real-discounts.json",
    "orders-cancelled.real.json",
    "order.rest-fixture.shopify_python_api.json",
]


def _load(name: str) -> dict[str, Any]:
    payload = json.loads((SAMPLES / name).read_text(encoding="utf-8"))
    assert isinstance(payload, dict)
    return payload


def _graphql(name: str) -> dict[str, Any]:
    return _load("graphql/" + name.replace(".json", ".graphql.json"))


def _requests(planned: Plan) -> list[tuple[str, str, dict[str, Any]]]:
    """Each item's kind, dedup key and body: metric, profile, properties, value, time, unique_id."""
    assert planned.outcome == "processed", planned.reason
    return [(item.kind, item.dedup_key, item.body) for item in planned.items]


@pytest.mark.parametrize("name", ORDERS)
@pytest.mark.parametrize("topic", ["orders/updated", "orders/create"])
def test_an_order_both_ways_makes_the_same_requests(name: str, topic: str) -> None:
    webhook = _load(name)
    webhook = webhook.get("order", webhook)
    by_webhook = plan(topic, SHOP, webhook, METRICS)
    by_graphql = plan(topic, SHOP, convert.order(_graphql(name)), METRICS)
    assert _requests(by_graphql) == _requests(by_webhook)
    assert by_graphql.resource == by_webhook.resource
    assert by_graphql.state == by_webhook.state


def test_every_event_kind_is_covered() -> None:
    # The samples between them reach Placed, Ordered Product, Cancelled and Refunded.
    metrics = set()
    for name in ORDERS:
        for _, _, body in _requests(
            plan("orders/updated", SHOP, convert.order(_graphql(name)), METRICS)
        ):
            metrics.add(body["metric"]["data"]["attributes"]["name"])
    assert {"Placed Order", "Ordered Product", "Cancelled Order", "Refunded Order"} <= metrics


def test_a_fulfilled_order_both_ways() -> None:
    webhook = _load("orders-create.real-discounts.json")
    webhook |= {
        "fulfillment_status": "fulfilled",
        "fulfillments": [{"id": 5, "status": "success", "created_at": "2025-01-24T10:00:00+08:00"}],
    }
    record = _graphql("orders-create.real-discounts.json")
    record |= {
        "displayFulfillmentStatus": "FULFILLED",
        "fulfillments": [
            {
                "id": "gid://shopify/Fulfillment/5",
                "status": "SUCCESS",
                "createdAt": "2025-01-24T02:00:00Z",
            }
        ],
    }
    by_webhook = _requests(plan("orders/fulfilled", SHOP, webhook, METRICS))
    assert _requests(plan("orders/fulfilled", SHOP, convert.order(record), METRICS)) == by_webhook
    assert "Fulfilled Order" in {
        body["metric"]["data"]["attributes"]["name"] for _, _, body in by_webhook
    }


def test_a_customer_both_ways_makes_the_same_request() -> None:
    webhook = _load("customers-create.json")
    by_webhook = plan("customers/update", SHOP, webhook, METRICS)
    by_graphql = plan(
        "customers/update", SHOP, convert.customer(_graphql("customers-create.json")), METRICS
    )
    assert _requests(by_graphql) == _requests(by_webhook)
    assert by_graphql.resource == by_webhook.resource


def test_the_order_customer_both_ways() -> None:
    # The profile an order's events carry comes from its customer block.
    for name in ORDERS:
        record = convert.order(_graphql(name))
        webhook = _load(name)
        webhook = webhook.get("order", webhook)
        assert record["customer"]["id"] == webhook["customer"]["id"]
        assert record["customer"]["email"] == webhook["customer"]["email"]


def test_conversion_details() -> None:
    record = {
        "id": "gid://shopify/Order/820982911946154508",
        "createdAt": "2026-11-01T10:00:00Z",
        "updatedAt": "2026-11-02T10:00:00-05:00",
        "displayFulfillmentStatus": "PARTIALLY_FULFILLED",
        "cancelReason": "FRAUD",
        "tags": ["vip", "wholesale"],
        "lineItems": {"nodes": [{"id": "gid://shopify/LineItem/7", "quantity": 1}]},
    }
    converted = convert.order(record)
    assert converted["id"] == 820982911946154508  # from the gid: exact, never a float
    assert converted["updated_at"] == "2026-11-02T15:00:00Z"
    assert converted["fulfillment_status"] == "partial"
    assert converted["cancel_reason"] == "fraud"
    assert converted["tags"] == "vip, wholesale"
    assert [line["id"] for line in converted["line_items"]] == [7]
