"""The ShipStation part of `shoprelay status`: sync times, watermark, counts, rate limit, errors."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from shoprelay.mapping.shipstation import SOURCE
from shoprelay.sources.shipstation.session import KIND, SyncOptions
from shoprelay.store.cursors import get_cursor
from shoprelay.store.states import count_states

EVENTS_PREFIX = "events:"


def _backfill(cursor: dict[str, Any]) -> dict[str, Any] | None:
    plan = cursor.get("backfill")
    if not plan:
        return None
    return {"from": plan["from"], "to": plan["to"], "reached": plan["next"]}


async def shipstation_status(conn: AsyncConnection, account: str = "default") -> dict[str, Any]:
    """Stable keys for `status --json`; holds no customer data and no secret."""
    options = SyncOptions(account=account)
    cursor = await get_cursor(conn, options.cursor_name) or {}
    report = await get_cursor(conn, options.report_name) or {}
    totals: dict[str, int] = cursor.get("totals", {})
    return {
        "account": account,
        "phase": cursor.get("phase", "not_started"),
        "last_sync_started_at": report.get("started_at"),
        "last_sync_finished_at": report.get("finished_at"),
        "watermark": cursor.get("watermark"),
        "backfill": _backfill(cursor),
        "orders_tracked": await count_states(conn, SOURCE, KIND),
        "events_queued": {
            key.removeprefix(EVENTS_PREFIX): n
            for key, n in sorted(totals.items())
            if key.startswith(EVENTS_PREFIX)
        },
        "orders_without_email": totals.get("orders_without_email", 0),
        "orders_dead_lettered": totals.get("orders_dead_lettered", 0),
        "api_budget": report.get("budget"),
        "last_sync": report.get("last_sync"),
        "last_error": report.get("last_error"),
    }
