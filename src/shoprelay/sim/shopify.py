"""The Shopify webhook sender: signs, heads and POSTs payloads as Shopify delivers them.

`generate_stream()` plays a store's day as the topics Shopify would send, in their usual order.
Imports nothing from the product outside `shoprelay.sim`, so it cannot share the product's bugs.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import random
import uuid
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any, Self

import httpx

from shoprelay.sim.shopify_orders import cancel_order, fake_order, fake_refund, fulfill_order
from shoprelay.sim.shopify_orders import refund_order as with_refund
from shoprelay.sim.shopify_payloads import START, fake_cart, fake_checkout, fake_customer, stamp

WEBHOOK_PATH = "/webhooks/shopify"
API_VERSION = "2026-07"
Webhook = tuple[str, dict[str, Any]]


def sign(body: bytes, secret: bytes) -> str:
    """X-Shopify-Hmac-Sha256: base64 HMAC-SHA256 of the raw body."""
    return base64.b64encode(hmac.new(secret, body, hashlib.sha256).digest()).decode()


def encode(payload: dict[str, Any]) -> bytes:
    """Compact JSON; Shopify escapes "/", so a receiver that re-serializes breaks the HMAC."""
    return json.dumps(payload, separators=(",", ":")).replace("/", "\\/").encode()


def headers(
    topic: str,
    body: bytes,
    secret: bytes,
    shop: str,
    webhook_id: str | None = None,
    *,
    api_version: str = API_VERSION,
    triggered_at: datetime | None = None,
    event_id: str | None = None,
) -> dict[str, str]:
    """Every header Shopify sets on an HTTPS webhook delivery."""
    moment = (triggered_at or datetime.now(UTC)).astimezone(UTC)
    return {
        "Content-Type": "application/json",
        "X-Shopify-Topic": topic,
        "X-Shopify-Hmac-Sha256": sign(body, secret),
        "X-Shopify-Shop-Domain": shop,
        "X-Shopify-API-Version": api_version,
        "X-Shopify-Webhook-Id": webhook_id or str(uuid.uuid4()),
        "X-Shopify-Event-Id": event_id or str(uuid.uuid4()),
        # Shopify sends nanoseconds; the padding keeps receivers honest about 9 digits.
        "X-Shopify-Triggered-At": moment.strftime("%Y-%m-%dT%H:%M:%S.%f000Z"),
    }


class WebhookSender:
    """POSTs signed webhooks to `{base_url}/webhooks/shopify` and reports the status codes."""

    def __init__(
        self,
        base_url: str,
        secret: bytes,
        shop: str,
        *,
        api_version: str = API_VERSION,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.shop = shop
        self._secret = secret
        self._api_version = api_version
        # Shopify's own limits: one second to connect, five for the whole delivery.
        timeout = httpx.Timeout(5.0, connect=1.0)
        self._client = httpx.AsyncClient(base_url=base_url, transport=transport, timeout=timeout)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._client.aclose()

    async def send(
        self,
        topic: str,
        payload: dict[str, Any],
        *,
        webhook_id: str | None = None,
        secret: bytes | None = None,
    ) -> int:
        """One delivery; reuse `webhook_id` to redeliver, pass another `secret` to forge one."""
        body = encode(payload)
        key = secret or self._secret
        signed = headers(topic, body, key, self.shop, webhook_id, api_version=self._api_version)
        response = await self._client.post(WEBHOOK_PATH, content=body, headers=signed)
        return response.status_code

    async def send_all(self, webhooks: Iterable[Webhook]) -> list[int]:
        """Deliver in order, one at a time, as Shopify does for one subscription."""
        return [await self.send(topic, payload) for topic, payload in webhooks]


def generate_stream(
    rng: random.Random, n_orders: int, *, start: datetime = START
) -> Iterator[Webhook]:
    """A store's webhooks for `n_orders` orders, in the order Shopify usually sends them."""
    clock, customers = start, list[dict[str, Any]]()
    for number in range(1001, 1001 + n_orders):
        clock += timedelta(minutes=rng.randint(5, 90))
        if not customers or rng.random() < 0.7:
            customers.append(fake_customer(rng, at=clock))
            yield "customers/create", customers[-1]
        # Mostly the newest customer buys; now and then a returning one does.
        customer = customers[-1] if rng.random() < 0.7 else rng.choice(customers)
        cart = fake_cart(rng)
        checkout = fake_checkout(rng, customer, at=clock, cart=cart)
        yield "checkouts/create", checkout
        clock += timedelta(minutes=rng.randint(1, 20))
        order = fake_order(
            rng, customer, at=clock, cart=cart, number=number, checkout_token=checkout["token"]
        )
        yield "orders/create", order
        yield from _afterwards(rng, order, clock)


def _afterwards(rng: random.Random, order: dict[str, Any], placed: datetime) -> Iterator[Webhook]:
    """What may follow an order: fulfilment, a partial refund, or cancellation with a refund."""
    fate, later = rng.random(), placed + timedelta(hours=rng.randint(1, 48))
    tagged = order | {"tags": "sim", "updated_at": stamp(placed + timedelta(minutes=1))}
    yield "orders/updated", tagged
    if fate < 0.6:
        shipped = fulfill_order(rng, tagged, at=later)
        yield "orders/fulfilled", shipped
        yield "orders/updated", shipped
        if rng.random() < 0.2:
            first_line = shipped["line_items"][0]["id"]
            refund = fake_refund(rng, shipped, at=later + timedelta(days=3), line_ids={first_line})
            yield "refunds/create", refund
            yield "orders/updated", with_refund(shipped, refund)
    elif fate < 0.75:
        cancelled, refund = cancel_order(rng, tagged, at=later)
        yield "orders/cancelled", cancelled
        yield "refunds/create", refund
        yield "orders/updated", cancelled
