"""Receive one Shopify webhook: verify, parse once, map, then commit with its outbox items."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime

import orjson
import structlog

from shoprelay.config import WEBHOOK_MAX_AGE_SECONDS
from shoprelay.mapping.shopify_fields import ShopifyMetrics
from shoprelay.sources.deletions import deletion_items
from shoprelay.sources.shopify.topics import SOURCE, plan
from shoprelay.sources.shopify.verify import verify
from shoprelay.store.database import Store
from shoprelay.store.ingest import IngestWriter, WebhookDelivery, WebhookOutcome
from shoprelay.store.plans import Plan, PrivacyRequest
from shoprelay.store.privacy import Receipt, erase
from shoprelay.store.receipts import has_receipt

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


def triggered_at(raw: str | None) -> float | None:
    """X-Shopify-Triggered-At in Unix seconds; None when it is absent or not a time."""
    if not raw:
        return None
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        return None
    # Shopify sends UTC with a Z; a time without an offset is read as UTC too.
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


@dataclass(frozen=True)
class Received:
    status_code: int
    outcome: str
    detail: str | None = None


class Receiver:
    """Turns a raw webhook request into a committed outcome.

    `max_age_seconds` (0: no limit) refuses deliveries triggered longer ago, unless already
    received; `store` is where that is looked up (without it, such a delivery is refused).
    """

    def __init__(
        self,
        writer: IngestWriter,
        secrets: list[bytes],
        metrics: ShopifyMetrics,
        *,
        store: Store | None = None,
        max_age_seconds: float = WEBHOOK_MAX_AGE_SECONDS,
        clock: Callable[[], float] = time.time,
        propagates: Mapping[str, bool] | None = None,
    ) -> None:
        self._writer = writer
        self._secrets = secrets
        self._metrics = metrics
        self._store = store
        self._max_age = max_age_seconds
        self._clock = clock
        # Per privacy topic, whether it reaches Klaviyo (SHOPIFY_DELETE_PROPAGATES).
        self._propagates = dict(propagates or {})
        # Bound once, under the configuration in force now: through the module's lazy proxy
        # every call would build a new logger, for a debug line that usually prints nothing.
        self._log_to = log.bind()

    def prepare(self, headers: Mapping[str, str], raw_body: bytes) -> WebhookDelivery | None:
        """Verify and map; None when the request is not from Shopify (nothing is stored)."""
        if not verify(raw_body, headers.get("x-shopify-hmac-sha256"), self._secrets):
            return None
        return self._delivery(headers, raw_body)

    def _delivery(self, headers: Mapping[str, str], raw_body: bytes) -> WebhookDelivery:
        topic = headers.get("x-shopify-topic", "")
        shop = headers.get("x-shopify-shop-domain", "")
        planned = plan_body(topic, shop, raw_body, self._metrics)
        return WebhookDelivery(
            SOURCE, shop, _webhook_id(headers, raw_body), topic, planned, raw_body
        )

    async def receive(self, headers: Mapping[str, str], raw_body: bytes) -> Received:
        if not verify(raw_body, headers.get("x-shopify-hmac-sha256"), self._secrets):
            log.warning(
                "webhook refused: HMAC does not verify", shop=headers.get("x-shopify-shop-domain")
            )
            return Received(401, "unverified", "HMAC signature does not verify")
        if self._max_age:
            # The header is not signed: this stops a captured delivery replayed as it was
            # sent, not one whose headers were rewritten. A delivery without the header, or
            # with one that is not a time, is taken: refusing it would lose real webhooks
            # (Shopify's libraries treat the header as optional) and stop no forger.
            sent_at = triggered_at(headers.get("x-shopify-triggered-at"))
            if sent_at is not None and self._clock() - sent_at > self._max_age:
                return await self._expired(headers, raw_body)
        delivery = self._delivery(headers, raw_body)
        if delivery.plan.privacy is not None:
            return await self._erase(delivery, delivery.plan.privacy)
        outcome = await self._writer.submit(delivery)
        self._log(delivery, outcome)
        return Received(200, outcome.outcome, outcome.reason)

    async def _erase(self, delivery: WebhookDelivery, request: PrivacyRequest) -> Received:
        """A redaction or deletion commits with its receipt, in its own transaction: the
        erasure and the deletion jobs are in before Shopify hears 200."""
        propagate = self._propagates.get(delivery.topic, request.propagate)
        request = replace(request, propagate=propagate)
        receipt = Receipt(delivery.shop, delivery.webhook_id, delivery.topic)
        request_key = f"{delivery.shop}:{delivery.webhook_id}"
        erasure = await erase(
            self._store or self._writer.store,
            request,
            self._clock(),
            deletions=lambda emails, phones: deletion_items(emails, phones, SOURCE, request_key),
            receipt=receipt,
        )
        outcome = "duplicate" if erasure.duplicate else "processed"
        # No identifier in the log: the shop, the topic and counts.
        log.info(
            "privacy request applied",
            shop=delivery.shop,
            topic=delivery.topic,
            webhook_id=delivery.webhook_id,
            outcome=outcome,
            deletion_jobs=erasure.deletion_jobs,
        )
        return Received(200, outcome)

    async def _expired(self, headers: Mapping[str, str], raw_body: bytes) -> Received:
        """A redelivery of one already received is a duplicate, as at any age; else refused."""
        shop = headers.get("x-shopify-shop-domain", "")
        webhook_id = _webhook_id(headers, raw_body)
        if self._store is not None and await has_receipt(self._store, shop, webhook_id):
            return Received(200, "duplicate")
        log.warning(
            "webhook refused: triggered too long ago",
            shop=shop,
            topic=headers.get("x-shopify-topic"),
            webhook_id=webhook_id,
            triggered_at=headers.get("x-shopify-triggered-at"),
        )
        # 403, not 401: the signature holds, the delivery is refused for its age. Not 5xx:
        # it would be refused again. Shopify retries any non-2xx, but its retries end within
        # hours, well inside the window, so this only ever answers a replay or a misconfigured
        # clock; and nothing is stored, so a corrected resend is taken.
        return Received(
            403,
            "expired",
            f"X-Shopify-Triggered-At is more than {self._max_age:g} seconds ago: "
            "refused as a replay",
        )

    def _log(self, delivery: WebhookDelivery, outcome: WebhookOutcome) -> None:
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


def _webhook_id(headers: Mapping[str, str], raw_body: bytes) -> str:
    # A verified delivery without an id still deserves dedup: its bytes identify it.
    return headers.get("x-shopify-webhook-id") or ("sha256:" + hashlib.sha256(raw_body).hexdigest())
