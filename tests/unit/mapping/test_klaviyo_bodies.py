"""Every profile and event kind we map is a body Klaviyo's spec accepts."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest
from tests.support.klaviyo_schema import validate_request

from shoprelay.mapping.klaviyo import KlaviyoEvent, KlaviyoProfile
from shoprelay.mapping.shopify import checkout_to_event, order_to_events, refund_to_event
from shoprelay.mapping.shopify_customers import customer_to_profile, order_profile
from shoprelay.mapping.shopify_fields import ShopifyMetrics
from shoprelay.sim.shopify import generate_stream

SAMPLES = Path(__file__).parents[2] / "fixtures" / "shopify"
SHOP = "jsmith.myshopify.com"
METRICS = ShopifyMetrics()


def sample(name: str) -> dict[str, Any]:
    payload = json.loads((SAMPLES / name).read_text(encoding="utf-8"))
    return payload.get("order", payload) if isinstance(payload, dict) else {}


def fulfilled(order: dict[str, Any]) -> dict[str, Any]:
    return order | {"fulfillment_status": "fulfilled"}


def mapped_events() -> list[KlaviyoEvent]:
    """Every metric we emit, from the real samples."""
    events: list[KlaviyoEvent] = []
    for name in ("orders-create.json", "orders-cancelled.real.json"):
        events += order_to_events(sample(name), SHOP, METRICS)
    for name in ("orders-create.real-discounts.json", "order.rest-fixture.shopify_python_api.json"):
        events += order_to_events(fulfilled(sample(name)), SHOP, METRICS)
    profile = order_profile(sample("orders-create.json"), SHOP)
    events.append(refund_to_event(sample("refunds-create.json"), SHOP, METRICS, profile, "USD"))
    checkout = checkout_to_event(sample("checkouts-create.json"), SHOP, METRICS)
    assert checkout is not None
    return [*events, checkout]


def mapped_profiles() -> list[KlaviyoProfile]:
    """Profiles from customers, orders and the simulator's customers."""
    profiles = [customer_to_profile(sample("customers-create.json"), SHOP)]
    for name in ("orders-create.json", "orders-create.real-discounts.json"):
        profiles.append(order_profile(sample(name), SHOP))
    stream = generate_stream(random.Random(2), 20)
    profiles += [customer_to_profile(p, SHOP) for t, p in stream if t == "customers/create"]
    return profiles


def test_every_metric_kind_is_covered() -> None:
    """The events below include each of the six metrics we map."""
    assert {event.metric for event in mapped_events()} == {
        METRICS.placed_order,
        METRICS.ordered_product,
        METRICS.fulfilled_order,
        METRICS.cancelled_order,
        METRICS.refunded_order,
        METRICS.started_checkout,
    }


@pytest.mark.parametrize("event", mapped_events(), ids=lambda e: f"{e.metric}:{e.unique_id}")
def test_events_validate_for_create_event(event: KlaviyoEvent) -> None:
    """An event wrapped as a Create Event body has no schema violations."""
    body = {"data": {"type": "event", "attributes": event.to_attributes()}}
    assert validate_request("create_event", body) == []


@pytest.mark.parametrize("profile", mapped_profiles(), ids=lambda p: p.external_id or "guest")
def test_profiles_validate_for_create_or_update_profile(profile: KlaviyoProfile) -> None:
    """A profile wrapped as a profile-import body has no schema violations."""
    body = {"data": {"type": "profile", "attributes": profile.to_attributes()}}
    assert validate_request("create_or_update_profile", body) == []
