"""Signed, realistic orders/create webhooks as ready-to-send HTTP requests."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import timedelta

from bench.load import http_request
from shoprelay.sim.shopify import WEBHOOK_PATH, encode, headers
from shoprelay.sim.shopify_orders import fake_order
from shoprelay.sim.shopify_payloads import START, fake_customer

SECRET = "bench-webhook-secret"  # noqa: S105 - a test secret shared with the bench server
SHOP = "bench-shop.myshopify.com"
CUSTOMERS = 500  # returning customers, as a real store has


@dataclass(frozen=True)
class OrderWebhooks:
    """Requests in send order, and the Klaviyo unique_id of each order's Placed Order event."""

    requests: list[bytes]
    placed_order_ids: list[str]


def order_webhooks(count: int, seed: int = 7) -> OrderWebhooks:
    """`count` distinct orders/create deliveries, each signed with the bench secret."""
    rng = random.Random(seed)
    customers = [fake_customer(rng) for _ in range(CUSTOMERS)]
    requests, placed = [], []
    for number in range(count):
        at = START + timedelta(seconds=number)
        order = fake_order(rng, rng.choice(customers), at=at, number=1001 + number)
        body = encode(order)
        signed = headers("orders/create", body, SECRET.encode(), SHOP)
        requests.append(http_request(WEBHOOK_PATH, signed, body))
        placed.append(f"shopify:{SHOP}:order:{order['id']}")
    return OrderWebhooks(requests, placed)
