"""The Shopify Admin part of `shoprelay status`: catch-up, backfill and subscriptions."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from shoprelay.sources.shopify.admin.records import ORIGINS
from shoprelay.sources.shopify.admin.shopstate import cursor_name
from shoprelay.store.cursors import get_cursor
from shoprelay.store.receipts import outcomes_of


async def shopify_admin_status(conn: AsyncConnection, shop: str | None) -> dict[str, Any]:
    """Stable keys for `status --json`; no customer data and no token."""
    if shop is None:
        return {
            "catchup": "off",
            "reason": "SHOPIFY_API_KEY and SHOPIFY_SHOP are not both set: webhooks only",
        }

    async def cursor(what: str) -> dict[str, Any]:
        return await get_cursor(conn, cursor_name(shop, what)) or {}

    catchup, backfill = await cursor("catchup"), await cursor("backfill")
    report, url = await cursor("report"), await cursor("webhook_url")
    return {
        "catchup": "on",
        "shop": shop,
        "watermark": catchup.get("watermark"),
        "last_catchup": report.get("last_catchup"),
        "last_error": report.get("last_error"),
        "api_budget": report.get("api_budget"),
        "webhook_url": url.get("url"),
        "subscriptions": report.get("subscriptions"),
        # Records read by catch-up and backfill, by what their commit made of them.
        "records": {origin: await outcomes_of(conn, f"{origin}:") for origin in ORIGINS},
        "backfill": {
            key: backfill.get(key)
            for key in ("phase", "from", "to", "days", "days_asked", "note", "done", "finished_at")
        }
        if backfill
        else None,
    }
