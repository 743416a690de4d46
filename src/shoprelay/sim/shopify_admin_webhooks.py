"""Webhook subscriptions made through the Admin API, and their deliveries as Shopify makes them.

Shopify: any non-2xx (or no answer) is a failure; a delivery is retried 8 times over 4 hours with
the original payload; "After 8 consecutive failures, the subscription is automatically deleted
if it was configured using the Admin API". Tests shrink the retry delays to milliseconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import ipaddress
import itertools
import re
import time
import uuid
from collections import Counter, deque
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import httpx

from shoprelay.sim.shopify import encode, headers

# Shopify's exponential backoff over about four hours, in seconds.
SHOPIFY_RETRY_DELAYS = (10.0, 30.0, 60.0, 300.0, 900.0, 1800.0, 3600.0, 7200.0)
NAME_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,50}")
TOPIC_STRINGS = {
    "CUSTOMERS_EMAIL_MARKETING_CONSENT_UPDATE": "customers_email_marketing_consent/update",
    "CUSTOMERS_MARKETING_CONSENT_UPDATE": "customers_marketing_consent/update",
    "CUSTOMERS_PURCHASING_SUMMARY": "customers/purchasing_summary",
    "CUSTOMER_TAGS_ADDED": "customer.tags_added",
    "CUSTOMER_TAGS_REMOVED": "customer.tags_removed",
    "ORDERS_PARTIALLY_FULFILLED": "orders/partially_fulfilled",
}
# Topics that carry orders or customers need the matching read scope.
TOPIC_SCOPES = {"ORDERS": "read_orders", "REFUNDS": "read_orders", "CHECKOUTS": "read_orders"}


def topic_string(enum: str) -> str:
    """ORDERS_CREATE -> orders/create, BULK_OPERATIONS_FINISH -> bulk_operations/finish: the
    X-Shopify-Topic header's words (the event is the last word but for a few)."""
    if enum in TOPIC_STRINGS:
        return TOPIC_STRINGS[enum]
    resource, _, event = enum.lower().rpartition("_")
    return f"{resource}/{event}"


def required_scope(enum: str) -> str | None:
    head = enum.split("_", 1)[0]
    if head.startswith("CUSTOMER"):
        return "read_customers"
    return TOPIC_SCOPES.get(head)


@dataclass
class Subscription:
    number: int
    topic: str
    uri: str
    name: str | None
    format: str
    include_fields: list[str]
    filter: str | None
    created_at: str
    updated_at: str
    api_version: str
    failures: int = 0

    @property
    def gid(self) -> str:
        return f"gid://shopify/WebhookSubscription/{self.number}"

    def record(self) -> dict[str, Any]:
        """The WebhookSubscription as the Admin API shows it."""
        return {
            "__typename": "WebhookSubscription",
            "id": self.gid,
            "legacyResourceId": str(self.number),
            "topic": self.topic,
            "uri": self.uri,
            "callbackUrl": self.uri,
            "endpoint": {"__typename": "WebhookHttpEndpoint", "callbackUrl": self.uri},
            "name": self.name,
            "format": self.format,
            "includeFields": list(self.include_fields),
            "metafieldNamespaces": [],
            "metafields": [],
            "filter": self.filter,
            "createdAt": self.created_at,
            "updatedAt": self.updated_at,
            "apiVersion": {
                "__typename": "ApiVersion",
                "handle": self.api_version,
                "displayName": self.api_version,
                "supported": True,
            },
        }


def uri_problem(uri: str | None) -> str | None:
    """Why Shopify would refuse this address, or None. Loopback http is allowed for tests."""
    if not uri:
        return "Address can't be blank"
    parts = urlsplit(uri)
    if parts.scheme == "https" and parts.hostname:
        return None
    if parts.scheme == "http" and parts.hostname and _loopback(parts.hostname):
        return None
    if parts.scheme in ("pubsub", "arn"):
        return "The simulator delivers to HTTPS addresses only"
    return (
        f"Address protocol {parts.scheme}:// is not supported"
        if parts.scheme
        else ("Address is invalid")
    )


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(order=True)
class Delivery:
    due: float
    sequence: int
    subscription: int = field(compare=False)
    topic: str = field(compare=False)
    body: bytes = field(compare=False)
    webhook_id: str = field(compare=False)
    event_id: str = field(compare=False)
    triggered_at: datetime = field(compare=False)
    attempt: int = field(compare=False, default=0)


@dataclass
class EndpointBehaviour:
    """How our endpoint answers, as far as the sim pretends: None = really send."""

    failure: str | int | None = None


class Webhooks:
    """Subscriptions and a queue of deliveries, worked by `run()` as a background task."""

    def __init__(
        self,
        shop_domain: str,
        secret: bytes,
        api_version: str,
        *,
        retry_delays: tuple[float, ...] = SHOPIFY_RETRY_DELAYS,
        delete_after_failures: int = 8,
    ) -> None:
        self.shop_domain, self.secret, self.api_version = shop_domain, secret, api_version
        self.retry_delays = retry_delays
        self.delete_after_failures = delete_after_failures
        self.subscriptions: dict[int, Subscription] = {}
        self.deleted: list[dict[str, Any]] = []
        self.attempts: deque[dict[str, Any]] = deque(maxlen=20_000)
        self.counts: Counter[str] = Counter()
        self.endpoint = EndpointBehaviour()
        self._numbers = itertools.count(1)
        self._sequence = itertools.count()
        self._queue: list[Delivery] = []
        self._wake = asyncio.Event()

    # --- subscriptions ---------------------------------------------------------------------

    def create(
        self, topic: str, spec: dict[str, Any], now: str
    ) -> tuple[Subscription | None, list[dict[str, Any]]]:
        uri = spec.get("uri") or spec.get("callbackUrl")
        errors = self._problems(topic, uri, spec.get("name"), exclude=None)
        if errors:
            return None, errors
        subscription = Subscription(
            number=next(self._numbers),
            topic=topic,
            uri=str(uri),
            name=spec.get("name"),
            format=spec.get("format") or "JSON",
            include_fields=list(spec.get("includeFields") or []),
            filter=spec.get("filter"),
            created_at=now,
            updated_at=now,
            api_version=self.api_version,
        )
        self.subscriptions[subscription.number] = subscription
        return subscription, []

    def update(
        self, number: int, spec: dict[str, Any], now: str
    ) -> tuple[Subscription | None, list[dict[str, Any]]]:
        subscription = self.subscriptions.get(number)
        if subscription is None:
            return None, [{"field": ["id"], "message": "Webhook subscription does not exist"}]
        uri = spec.get("uri") or spec.get("callbackUrl") or subscription.uri
        name = spec.get("name", subscription.name)
        errors = self._problems(subscription.topic, uri, name, exclude=number)
        if errors:
            return None, errors
        subscription.uri, subscription.name, subscription.updated_at = str(uri), name, now
        if spec.get("format"):
            subscription.format = spec["format"]
        if "includeFields" in spec:
            subscription.include_fields = list(spec["includeFields"] or [])
        if "filter" in spec:
            subscription.filter = spec["filter"]
        subscription.failures = 0
        return subscription, []

    def delete(self, number: int, *, reason: str = "api") -> Subscription | None:
        subscription = self.subscriptions.pop(number, None)
        if subscription is not None and reason != "api":
            self.deleted.append(subscription.record() | {"reason": reason})
        self._queue = [d for d in self._queue if d.subscription != number]
        heapq.heapify(self._queue)
        return subscription

    def _problems(
        self, topic: str, uri: Any, name: str | None, exclude: int | None
    ) -> list[dict[str, Any]]:
        problem = uri_problem(uri if isinstance(uri, str) else None)
        if problem:
            return [{"field": ["webhookSubscription", "uri"], "message": problem}]
        others = [s for n, s in self.subscriptions.items() if n != exclude]
        if any(s.topic == topic and s.uri == uri for s in others):
            return [
                {
                    "field": ["webhookSubscription", "uri"],
                    "message": "Address for this topic has already been taken",
                }
            ]
        if name is not None:
            if not NAME_PATTERN.fullmatch(name):
                return [{"field": ["webhookSubscription", "name"], "message": "Name is invalid"}]
            if any(s.name == name for s in others):
                return [
                    {
                        "field": ["webhookSubscription", "name"],
                        "message": "Name has already been taken",
                    }
                ]
        return []

    # --- deliveries ---------------------------------------------------------------------------

    def emit(self, topic: str, payload: dict[str, Any], triggered_at: datetime) -> None:
        """One event: a delivery for each subscription to its topic, sharing an event id."""
        body, event_id = encode(payload), str(uuid.uuid4())
        for subscription in self.subscriptions.values():
            if topic_string(subscription.topic) != topic:
                continue
            self.counts["events"] += 1
            delivery = Delivery(
                due=time.monotonic(),
                sequence=next(self._sequence),
                subscription=subscription.number,
                topic=topic,
                body=body,
                webhook_id=str(uuid.uuid4()),
                event_id=event_id,
                triggered_at=triggered_at,
            )
            heapq.heappush(self._queue, delivery)
        self._wake.set()

    @property
    def pending(self) -> int:
        return len(self._queue)

    async def run(self) -> None:
        """Deliver due webhooks one at a time, for ever (cancel the task to stop)."""
        timeout = httpx.Timeout(5.0, connect=1.0)
        async with httpx.AsyncClient(timeout=timeout) as client:
            while True:
                if not self._queue:
                    self._wake.clear()
                    await self._wake.wait()
                    continue
                wait = self._queue[0].due - time.monotonic()
                if wait > 0:
                    self._wake.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), timeout=wait)
                    continue
                await self._attempt(client, heapq.heappop(self._queue))

    async def _attempt(self, client: httpx.AsyncClient, delivery: Delivery) -> None:
        subscription = self.subscriptions.get(delivery.subscription)
        if subscription is None:
            return
        status = await self._post(client, subscription, delivery)
        ok = status is not None and 200 <= status < 300
        self.attempts.append(
            {
                "subscription": subscription.gid,
                "topic": delivery.topic,
                "webhook_id": delivery.webhook_id,
                "attempt": delivery.attempt,
                "status": status,
                "ok": ok,
            }
        )
        if ok:
            subscription.failures = 0
            self.counts["delivered"] += 1
            return
        self.counts["failed_attempts"] += 1
        subscription.failures += 1
        if subscription.failures >= self.delete_after_failures:
            self.counts["subscriptions_deleted"] += 1
            self.delete(subscription.number, reason=f"{subscription.failures} consecutive failures")
            return
        if delivery.attempt < len(self.retry_delays):
            delivery.due = time.monotonic() + self.retry_delays[delivery.attempt]
            delivery.attempt += 1
            delivery.sequence = next(self._sequence)
            heapq.heappush(self._queue, delivery)
        else:
            self.counts["abandoned"] += 1

    async def _post(
        self, client: httpx.AsyncClient, subscription: Subscription, delivery: Delivery
    ) -> int | None:
        failure = self.endpoint.failure
        if isinstance(failure, int):
            return failure
        if failure is not None:
            return None  # "refuse": as if the connection were refused
        signed = headers(
            delivery.topic,
            delivery.body,
            self.secret,
            self.shop_domain,
            delivery.webhook_id,
            api_version=subscription.api_version,
            triggered_at=delivery.triggered_at,
            event_id=delivery.event_id,
        )
        if subscription.name:
            signed["X-Shopify-Name"] = subscription.name
        try:
            response = await client.post(subscription.uri, content=delivery.body, headers=signed)
        except (httpx.HTTPError, httpx.InvalidURL):
            return None  # no answer is a failure too
        return response.status_code
