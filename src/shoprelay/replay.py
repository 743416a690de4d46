"""Replay dead letters: requeue undelivered items, re-plan kept webhooks with today's mapping."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from shoprelay.mapping.shopify_fields import ShopifyMetrics
from shoprelay.sources.shopify.ingest import Delivery, IngestWriter
from shoprelay.sources.shopify.receive import plan_body
from shoprelay.store import deadletters
from shoprelay.store.database import Store
from shoprelay.store.deadletters import DeadLetter


@dataclass(frozen=True)
class ReplayReport:
    requeued: int
    reprocessed: int
    still_unprocessable: int
    # ShipStation orders: the sync maps an order again whenever it changes; left open here.
    not_replayable: int = 0


def _redelivery(letter: DeadLetter, metrics: ShopifyMetrics, now: float) -> Delivery:
    raw = letter.payload or b""
    topic, shop = letter.topic or "", letter.scope or ""
    return Delivery(
        shop=shop,
        # A fresh delivery id: the original one is already recorded as received.
        webhook_id=f"replay:{letter.id}:{now}",
        topic=topic,
        plan=plan_body(topic, shop, raw, metrics),
        raw_body=raw,
    )


async def replay(
    store: Store, letters: Sequence[DeadLetter], metrics: ShopifyMetrics
) -> ReplayReport:
    """Send each dead letter through again; one still unprocessable gets a new dead letter."""
    now = time.time()
    undelivered = [letter for letter in letters if letter.origin == "delivery"]
    kept = [letter for letter in letters if letter.origin == "webhook" and letter.payload]
    async with store.transaction() as conn:
        requeued = await deadletters.requeue_deliveries(conn, undelivered, now)
    outcomes = []
    if kept:
        writer = IngestWriter(store)
        outcomes = await writer.commit([_redelivery(letter, metrics, now) for letter in kept])
        async with store.transaction() as conn:
            await deadletters.mark_replayed(conn, [letter.id for letter in kept], now)
    failed = sum(1 for outcome in outcomes if outcome.outcome == "unprocessable")
    skipped = sum(1 for letter in letters if letter.origin == "source")
    return ReplayReport(requeued, len(outcomes) - failed, failed, skipped)
