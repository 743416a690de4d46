"""Replay dead letters: requeue undelivered items, re-plan kept webhooks with today's mapping."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from shoprelay.mapping.shopify_fields import ShopifyMetrics
from shoprelay.sources.shopify.receive import plan_body
from shoprelay.sources.shopify.topics import SOURCE
from shoprelay.store import deadletters
from shoprelay.store.database import Store
from shoprelay.store.deadletters import DeadLetter
from shoprelay.store.ingest import IngestWriter, WebhookDelivery

# Dead letters read, held and committed at once by a replay of every open one.
BATCH = 500


@dataclass(frozen=True)
class ReplayReport:
    requeued: int
    reprocessed: int
    still_unprocessable: int
    # ShipStation orders: the sync maps an order again whenever it changes; left open here.
    not_replayable: int = 0

    def __add__(self, other: ReplayReport) -> ReplayReport:
        return ReplayReport(
            self.requeued + other.requeued,
            self.reprocessed + other.reprocessed,
            self.still_unprocessable + other.still_unprocessable,
            self.not_replayable + other.not_replayable,
        )


def _redelivery(letter: DeadLetter, metrics: ShopifyMetrics) -> WebhookDelivery:
    raw = letter.payload or b""
    topic, shop = letter.topic or "", letter.scope or ""
    return WebhookDelivery(
        source=SOURCE,
        shop=shop,
        # Not the original delivery id, which is already recorded as received, but one of the
        # letter's own: a replay cut short after this commit, run again, finds the receipt
        # and writes nothing twice. The creation time keeps apart a letter that gets the id of
        # a purged one, as SQLite may give the highest id again once it is deleted.
        webhook_id=f"replay:{letter.id}:{letter.created_at!r}",
        topic=topic,
        plan=plan_body(topic, shop, raw, metrics),
        raw_body=raw,
    )


async def replay(
    store: Store, letters: Sequence[DeadLetter], metrics: ShopifyMetrics
) -> ReplayReport:
    """Send each dead letter through again; one still unprocessable gets a new dead letter.

    An undelivered item is requeued in the transaction that marks its letter replayed. A
    webhook's letter is marked after its replay is committed; if the run stops in between,
    the next one finds the replay's receipt, counts it reprocessed and marks the letter.
    """
    now = time.time()
    undelivered = [letter for letter in letters if letter.origin == "delivery"]
    kept = [letter for letter in letters if letter.origin == "webhook" and letter.payload]
    async with store.transaction() as conn:
        requeued = await deadletters.requeue_deliveries(conn, undelivered, now)
    outcomes = []
    if kept:
        writer = IngestWriter(store)
        outcomes = await writer.commit([_redelivery(letter, metrics) for letter in kept])
        async with store.transaction() as conn:
            await deadletters.mark_replayed(conn, [letter.id for letter in kept], now)
    failed = sum(1 for outcome in outcomes if outcome.outcome == "unprocessable")
    skipped = sum(1 for letter in letters if letter.origin == "source")
    return ReplayReport(requeued, len(outcomes) - failed, failed, skipped)


async def replay_open(
    store: Store,
    metrics: ShopifyMetrics,
    *,
    since: float | None = None,
    batch: int = BATCH,
    progress: Callable[[int, ReplayReport], None] | None = None,
) -> ReplayReport:
    """Replay every open dead letter (created since `since`), oldest first, a batch of
    letters a read and a commit: memory holds one batch however many letters are open.

    Letters recorded once it has started, such as those of webhooks still unprocessable,
    wait for the next replay. `progress` hears, after each full batch, how many letters have
    been gone through and the report so far.
    """
    async with store.read() as conn:
        through_id = await deadletters.last_id(conn)
    report, seen = ReplayReport(0, 0, 0), 0
    last: DeadLetter | None = None
    while True:
        async with store.read() as conn:
            letters = await deadletters.open_after(
                conn, last, through_id=through_id, since=since, limit=batch
            )
        if letters:
            report += await replay(store, letters, metrics)
            seen, last = seen + len(letters), letters[-1]
        if len(letters) < batch:
            return report
        if progress is not None:
            progress(seen, report)
