"""`shoprelay status`: one stable JSON document, read from the database alone."""

from __future__ import annotations

import time
from typing import Any

from shoprelay.sources.shopify.admin.records import RECEIPT_PREFIXES
from shoprelay.sources.shopify.admin.status import shopify_admin_status
from shoprelay.store import deadletters, outbox, pauses, receipts, retention
from shoprelay.store.database import Store

STATUS_VERSION = 1


async def collect(
    store: Store,
    *,
    shipstation_enabled: bool,
    shopify_shop: str | None = None,
    now: float | None = None,
) -> dict[str, Any]:
    """Counts, pauses and last errors; works whether or not `serve` is running."""
    now = time.time() if now is None else now
    async with store.read() as conn:
        counts = await outbox.counts(conn)
        oldest = await outbox.oldest_pending(conn)
        cleared = await retention.cleared_through(conn)
        active = await pauses.active_pauses(conn, now)
        errors = await pauses.last_errors(conn)
        open_letters = await deadletters.count_open(conn)
        webhooks = await receipts.delivery_outcomes(conn, excluding=RECEIPT_PREFIXES)
        shipstation = await _shipstation(conn, shipstation_enabled)
        shopify_admin = await shopify_admin_status(conn, shopify_shop)
        warnings = await store.dialect.warnings(conn)
    return {
        "version": STATUS_VERSION,
        "generated_at": now,
        "database": {"backend": store.backend, "warnings": warnings},
        "outbox": counts
        | {
            "oldest_pending_age_seconds": None if oldest is None else now - oldest,
            "bodies_cleared_through": cleared,
        },
        "delivery": {
            "paused": bool(active),
            "pauses": [pause.as_json() for pause in active],
            "last_error": errors[0] if errors else None,
        },
        "dead_letters": {"open": open_letters},
        "webhooks": {
            outcome: webhooks.get(outcome, 0)
            for outcome in ("processed", "stale", "ignored", "unprocessable")
        },
        "shipstation": shipstation,
        "shopify_admin": shopify_admin,
    }


async def _shipstation(conn: Any, enabled: bool) -> dict[str, Any]:
    if not enabled:
        return {"enabled": False}
    from shoprelay.sources.shipstation.status import shipstation_status

    return {"enabled": True} | await shipstation_status(conn)
