"""The Shopify webhook sender: signatures, headers, deterministic payloads that map cleanly."""

from __future__ import annotations

import json
import random
from decimal import Decimal
from typing import Any

import httpx

from shoprelay.mapping.klaviyo import KlaviyoProfile
from shoprelay.mapping.shopify import checkout_to_event, order_to_events, refund_to_event
from shoprelay.mapping.shopify_customers import customer_to_profile, order_profile
from shoprelay.mapping.shopify_fields import ShopifyMetrics
from shoprelay.mapping.values import parse_time
from shoprelay.sim.shopify import WebhookSender, encode, generate_stream, headers, sign

SHOP = "sim-store.myshopify.com"
SECRET = b"sim-secret"


def test_shopify_published_hmac_test_vector() -> None:
    """Shopify's own test vector signs to the documented digest."""
    expected = "B23tXN681gZ0qIWNRrgtzBE9XSDo5yaUu6wfmhu3a7g="
    assert sign(b'{"foo": "bar"}', b"test_secret_key") == expected


def test_headers_carry_every_shopify_header() -> None:
    """A delivery carries topic, HMAC of the body, shop, version, ids and trigger time."""
    body = encode({"id": 1})
    sent = headers("orders/create", body, SECRET, SHOP, "wh-1")
    assert sent["X-Shopify-Topic"] == "orders/create"
    assert sent["X-Shopify-Hmac-Sha256"] == sign(body, SECRET)
    assert sent["X-Shopify-Shop-Domain"] == SHOP
    assert sent["X-Shopify-API-Version"] == "2026-07"
    assert sent["X-Shopify-Webhook-Id"] == "wh-1"
    assert sent["X-Shopify-Event-Id"]
    assert parse_time(sent["X-Shopify-Triggered-At"]).tzinfo is not None


def test_bodies_are_compact_json_with_shopify_escaping() -> None:
    """Bodies are compact and escape "/" as Shopify does, and still parse to the payload."""
    payload = {"url": "https://x.test/a", "n": 1}
    body = encode(payload)
    assert body == b'{"url":"https:\\/\\/x.test\\/a","n":1}'
    assert json.loads(body) == payload


def test_streams_are_deterministic_per_seed() -> None:
    """The same seed gives byte-identical webhooks; another seed gives others."""
    first = [encode(p) for _, p in generate_stream(random.Random(7), 10)]
    again = [encode(p) for _, p in generate_stream(random.Random(7), 10)]
    other = [encode(p) for _, p in generate_stream(random.Random(8), 10)]
    assert first == again
    assert first != other


def test_stream_topics_follow_shopifys_order() -> None:
    """Each order is preceded by its checkout, and refunds follow the orders they refund."""
    seen_orders: set[int] = set()
    topics = set()
    for topic, payload in generate_stream(random.Random(3), 40):
        topics.add(topic)
        if topic == "orders/create":
            seen_orders.add(payload["id"])
        elif topic.startswith("orders/") or topic == "refunds/create":
            assert payload.get("order_id", payload.get("id")) in seen_orders
    assert topics >= {
        "customers/create",
        "checkouts/create",
        "orders/create",
        "orders/updated",
        "orders/fulfilled",
        "orders/cancelled",
        "refunds/create",
    }


def test_generated_orders_add_up() -> None:
    """Every order's total is its subtotal plus shipping plus tax, to the cent."""
    for topic, order in generate_stream(random.Random(11), 30):
        if topic == "orders/create":
            shipping = order["total_shipping_price_set"]["shop_money"]["amount"]
            parts = (order["subtotal_price"], shipping, order["total_tax"])
            assert Decimal(order["total_price"]) == sum(map(Decimal, parts), Decimal(0))


def _map(topic: str, payload: dict[str, Any], orders: dict[int, KlaviyoProfile]) -> int:
    """Map one generated webhook; returns how many Klaviyo items it became."""
    metrics = ShopifyMetrics()
    if topic == "customers/create":
        return 1 if customer_to_profile(payload, SHOP).identified else 0
    if topic == "checkouts/create":
        return 0 if checkout_to_event(payload, SHOP, metrics) is None else 1
    if topic == "refunds/create":
        refund_to_event(payload, SHOP, metrics, orders[payload["order_id"]], "USD")
        return 1
    orders[payload["id"]] = order_profile(payload, SHOP)
    return len(order_to_events(payload, SHOP, metrics))


def test_generated_webhooks_map_cleanly() -> None:
    """Every generated payload maps without error, with no phone dropped."""
    orders: dict[int, KlaviyoProfile] = {}
    mapped = sum(_map(t, p, orders) for t, p in generate_stream(random.Random(5), 60))
    assert mapped > 60
    assert all(not profile.notes for profile in orders.values())


async def test_sender_posts_signed_webhooks_and_returns_status_codes() -> None:
    """The sender POSTs to /webhooks/shopify with a valid HMAC over the exact bytes sent."""
    received: list[httpx.Request] = []

    def shoprelay(request: httpx.Request) -> httpx.Response:
        received.append(request)
        valid = request.headers["X-Shopify-Hmac-Sha256"] == sign(request.content, SECRET)
        return httpx.Response(200 if valid else 401)

    transport = httpx.MockTransport(shoprelay)
    async with WebhookSender("http://relay.test", SECRET, SHOP, transport=transport) as sender:
        webhooks = list(generate_stream(random.Random(1), 2))
        assert await sender.send_all(webhooks) == [200] * len(webhooks)
        assert await sender.send("orders/create", {"id": 1}, secret=b"wrong") == 401
    assert {request.url.path for request in received} == {"/webhooks/shopify"}
    assert [r.headers["X-Shopify-Topic"] for r in received[:-1]] == [t for t, _ in webhooks]
    assert json.loads(received[0].content) == webhooks[0][1]


async def test_redelivery_reuses_the_webhook_id() -> None:
    """Passing the same webhook_id redelivers under the same X-Shopify-Webhook-Id."""
    ids: list[str] = []

    def shoprelay(request: httpx.Request) -> httpx.Response:
        ids.append(request.headers["X-Shopify-Webhook-Id"])
        return httpx.Response(200)

    transport = httpx.MockTransport(shoprelay)
    async with WebhookSender("http://relay.test", SECRET, SHOP, transport=transport) as sender:
        for _ in range(2):
            await sender.send("customers/create", {"id": 1}, webhook_id="wh-42")
    assert ids == ["wh-42", "wh-42"]
