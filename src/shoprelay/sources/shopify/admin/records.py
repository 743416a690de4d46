"""Commit converted Admin API records through the webhook path: same plan, same transaction.

Each record becomes a delivery of `orders/updated` or `customers/update` with a receipt id of
its own (`catchup:order:ID:VERSION:DIGEST`), so a state seen twice is a duplicate, an older one than
a webhook already applied is stale, and an event a webhook queued already is not queued again:
its outbox key is the same. A customer's marketing consent rides in the same transaction, one
delivery per channel on the consent topics' own terms (`consents.py`).
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections import Counter
from collections.abc import Sequence
from typing import Any

import orjson

from shoprelay.mapping.shopify import updated_at
from shoprelay.mapping.shopify_fields import ShopifyMetrics
from shoprelay.sources.shopify.topics import SOURCE, plan, version
from shoprelay.store.ingest import IngestWriter, WebhookDelivery
from shoprelay.store.plans import Plan

TOPIC_OF = {"order": "orders/updated", "customer": "customers/update"}
# How their receipt ids begin, so `status` counts them apart from webhooks.
ORIGINS = ("catchup", "backfill")
RECEIPT_PREFIXES = tuple(f"{origin}:" for origin in ORIGINS)


def as_backfill(planned: Plan) -> Plan:
    """The same plan with every event marked `backfill: true`, so it starts no flow."""
    items = [
        dataclasses.replace(item, body=item.body | {"backfill": True})
        if item.kind == "event"
        else item
        for item in planned.items
    ]
    return dataclasses.replace(planned, items=items)


def delivery(
    shop: str, kind: str, payload: dict[str, Any], metrics: ShopifyMetrics, origin: str
) -> WebhookDelivery:
    topic = TOPIC_OF[kind]
    planned = plan(topic, shop, payload, metrics)
    if origin == "backfill":
        planned = as_backfill(planned)
    raw = orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)
    # updated_at has whole seconds: two states within one second differ in their bytes.
    digest = hashlib.sha256(raw).hexdigest()[:16]
    receipt = f"{origin}:{kind}:{payload.get('id')}:{version(updated_at(payload))}:{digest}"
    return WebhookDelivery(SOURCE, shop, receipt, topic, planned, raw)


async def commit_records(
    writer: IngestWriter,
    shop: str,
    kind: str,
    payloads: Sequence[dict[str, Any]],
    metrics: ShopifyMetrics,
    *,
    origin: str,
    consents: Sequence[WebhookDelivery] = (),
) -> Counter[str]:
    """Commit a page of records, and their customers' consent, in one transaction; how many of
    each outcome, and items queued."""
    if not payloads and not consents:
        return Counter()
    records = [delivery(shop, kind, p, metrics, origin) for p in payloads]
    outcomes = await writer.commit([*records, *consents])
    counts: Counter[str] = Counter(outcome.outcome for outcome in outcomes)
    counts["items"] = sum(outcome.items for outcome in outcomes)
    return counts
