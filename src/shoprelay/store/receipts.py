"""Webhook receipts: whether a delivery was received before, and how many ended each way."""

from __future__ import annotations

from sqlalchemy import func, not_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from shoprelay.store.database import Store
from shoprelay.store.schema import webhook_receipts


async def has_receipt(store: Store, shop: str, webhook_id: str) -> bool:
    """Whether this delivery (shop and webhook id) was received before."""
    query = select(webhook_receipts.c.id).where(
        webhook_receipts.c.shop == shop, webhook_receipts.c.webhook_id == webhook_id
    )
    async with store.read() as conn:
        return (await conn.execute(query)).first() is not None


async def delivery_outcomes(
    conn: AsyncConnection, *, excluding: tuple[str, ...] = ()
) -> dict[str, int]:
    """Webhook deliveries by outcome: processed, ignored, stale, unprocessable; receipts whose
    id starts with one of `excluding` (records a source pulled, not webhooks) left out."""
    webhook_id = webhook_receipts.c.webhook_id
    query = (
        select(webhook_receipts.c.outcome, func.count())
        .where(*(not_(webhook_id.startswith(prefix, autoescape=True)) for prefix in excluding))
        .group_by(webhook_receipts.c.outcome)
    )
    return {str(outcome): int(n) for outcome, n in (await conn.execute(query)).all()}


async def outcomes_of(conn: AsyncConnection, prefix: str) -> dict[str, int]:
    """Receipts whose id starts with `prefix`, by outcome."""
    webhook_id = webhook_receipts.c.webhook_id
    query = (
        select(webhook_receipts.c.outcome, func.count())
        .where(webhook_id.startswith(prefix, autoescape=True))
        .group_by(webhook_receipts.c.outcome)
    )
    return {str(outcome): int(n) for outcome, n in (await conn.execute(query)).all()}
