"""What shoprelay keeps per shop for the Admin API: named cursors, and the lease names."""

from __future__ import annotations

import time
from typing import Any

from shoprelay.store.cursors import get_cursor, put_cursor
from shoprelay.store.database import Store


def cursor_name(shop: str, what: str) -> str:
    """`shopify:{shop}:{what}`: webhook_url, catchup, backfill, report."""
    return f"shopify:{shop}:{what}"


def lease_name(shop: str, what: str) -> str:
    """One catch-up and one backfill at a time per shop, across processes."""
    return f"shopify:{shop}:{what}"


async def read(store: Store, shop: str, what: str) -> dict[str, Any]:
    async with store.read() as conn:
        return await get_cursor(conn, cursor_name(shop, what)) or {}


async def write(store: Store, shop: str, what: str, value: dict[str, Any]) -> None:
    async with store.transaction() as conn:
        await put_cursor(store, conn, cursor_name(shop, what), value, time.time())


async def merge(store: Store, shop: str, what: str, **values: Any) -> None:
    """Update some keys of a cursor, keeping the rest."""
    async with store.transaction() as conn:
        current = await get_cursor(conn, cursor_name(shop, what)) or {}
        await put_cursor(store, conn, cursor_name(shop, what), current | values, time.time())


async def webhook_url(store: Store, shop: str) -> str | None:
    url = (await read(store, shop, "webhook_url")).get("url")
    return url if isinstance(url, str) else None
