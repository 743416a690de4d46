"""Receive one Shopify webhook: verify, parse once, map, then commit with its outbox items."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass

import orjson
import structlog

from shoprelay.mapping.shopify_fields import ShopifyMetrics
from shoprelay.sources.shopify.ingest import Delivery, IngestWriter, Outcome
from shoprelay.sources.shopify.topics import Plan, plan
from shoprelay.sources.shopify.verify import verify

log = structlog.get_logger("shoprelay.shopify")


def plan_body(topic: str, shop: str, raw_body: bytes, metrics: ShopifyMetrics) -> Plan:
    """Parse the body once and plan its effects; bad bytes become an unprocessable plan."""
    if not topic or not shop:
        return Plan("unprocessable", reason="missing X-Shopify-Topic or X-Shopify-Shop-Domain")
    try:
        payload = orjson.loads(raw_body)
    except orjson.JSONDecodeError as exc:
        return Plan("unprocessable", reason=f"body is not valid JSON: {exc.msg}")
    return plan(topic, shop, payload, metrics)


@dataclass(frozen=True)
class Received:
    status_code: int
    outcome: str
    detail: str | None = None


class Receiver:
    """Turns a raw webhook request into a committed outcome."""

    def __init__(self, writer: IngestWriter, secrets: list[bytes], metrics: ShopifyMetrics) -> None:
        self._writer = writer
        self._secrets = secrets
        self._metrics = metrics
        # Bound once, under the configuration in force now: through the module's lazy proxy
        # every call built a new logger, 4.8 µs a webhook for a debug line that prints nothing.
        self._log_to = log.bind()

    def prepare(self, headers: Mapping[str, str], raw_body: bytes) -> Delivery | None:
        """Verify and map; None when the request is not from Shopify (nothing is stored)."""
        if not verify(raw_body, headers.get("x-shopify-hmac-sha256"), self._secrets):
            return None
        topic = headers.get("x-shopify-topic", "")
        shop = headers.get("x-shopify-shop-domain", "")
        # A verified delivery without an id still deserves dedup: its bytes identify it.
        webhook_id = headers.get("x-shopify-webhook-id") or (
            "sha256:" + hashlib.sha256(raw_body).hexdigest()
        )
        planned = plan_body(topic, shop, raw_body, self._metrics)
        return Delivery(shop, webhook_id, topic, planned, raw_body)

    async def receive(self, headers: Mapping[str, str], raw_body: bytes) -> Received:
        delivery = self.prepare(headers, raw_body)
        if delivery is None:
            log.warning(
                "webhook refused: HMAC does not verify", shop=headers.get("x-shopify-shop-domain")
            )
            return Received(401, "unverified", "HMAC signature does not verify")
        outcome = await self._writer.submit(delivery)
        self._log(delivery, outcome)
        return Received(200, outcome.outcome, outcome.reason)

    def _log(self, delivery: Delivery, outcome: Outcome) -> None:
        fields = {
            "shop": delivery.shop,
            "topic": delivery.topic,
            "webhook_id": delivery.webhook_id,
            "outcome": outcome.outcome,
            "items": outcome.items,
        }
        log_to = self._log_to
        if outcome.outcome == "unprocessable":
            log_to.warning("webhook kept in the dead-letter queue", reason=outcome.reason, **fields)
        elif delivery.plan.notes:
            log_to.info("webhook received", notes=list(delivery.plan.notes), **fields)
        else:
            log_to.debug("webhook received", **fields)
