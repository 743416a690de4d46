"""The dashboard's overview: `status` and what only a running process knows (its Klaviyo
budget, rates over the last minute, stopped tasks), with whatever looks stalled spelled out."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from shoprelay.operations import status
from shoprelay.store.database import Store

# Items pending this long, with nothing delivered meanwhile, make a stalled pipeline
# (ADMIN_STALL_MINUTES).
STALL_MINUTES = 10.0


@dataclass(frozen=True)
class ProcessView:
    """What the process serving the dashboard knows beyond the database."""

    budget: Sequence[dict[str, Any]] = ()
    rates: dict[str, float | None] = field(default_factory=dict)
    last_delivered_at: float | None = None
    stopped_tasks: Sequence[str] = ()
    lanes_failing: int = 0
    started_at: float = 0.0


async def overview(
    store: Store,
    *,
    shipstation_enabled: bool,
    process: ProcessView,
    now: float | None = None,
    stall_minutes: float = STALL_MINUTES,
) -> dict[str, Any]:
    """One document for the dashboard's live panels."""
    now = time.time() if now is None else now
    document = await status.collect(store, shipstation_enabled=shipstation_enabled, now=now)
    rates = process.rates
    outbox = document["outbox"]
    sources = {"shipstation": document["shipstation"]}
    if "shopify_admin" in document:
        sources["shopify"] = shopify_source(document["shopify_admin"])
    return {
        "generated_at": now,
        "queue": {
            "pending": outbox["pending"],
            "in_flight": outbox["in_flight"],
            "delivered": outbox["delivered"],
            "dead_lettered": outbox["dead_lettered"],
            "oldest_pending_age_seconds": outbox["oldest_pending_age_seconds"],
            "delivered_per_minute": rates.get("delivered"),
            "last_delivered_at": process.last_delivered_at,
        },
        "dead_letters": document["dead_letters"],
        "klaviyo": {
            "endpoints": list(process.budget),
            "pauses": document["delivery"]["pauses"],
            "last_error": document["delivery"]["last_error"],
        },
        "webhooks": {
            "total": document["webhooks"],
            "per_minute": {
                key.removeprefix("webhooks:"): value
                for key, value in sorted(rates.items())
                if key.startswith("webhooks:")
            },
        },
        "sources": sources,
        "database": document["database"],
        "alerts": alerts(document, process, now, stall_minutes),
    }


def shopify_source(admin: dict[str, Any]) -> dict[str, Any]:
    """Shopify's catch-up in the shape of ShipStation's block: phase, last sync, watermark."""
    if admin.get("catchup") != "on":
        return {"enabled": False}
    backfill = admin.get("backfill") or {}
    phase = "catch-up" if backfill.get("done") else f"backfill {backfill.get('phase') or 'due'}"
    return {
        "phase": phase,
        "last_sync_finished_at": (admin.get("last_catchup") or {}).get("at"),
        "watermark": admin.get("watermark"),
        "api_budget": admin.get("api_budget"),
        "last_error": admin.get("last_error"),
    }


def alerts(
    document: dict[str, Any], process: ProcessView, now: float, stall_minutes: float
) -> list[dict[str, str]]:
    """What an operator must act on, most urgent first: each a level and one sentence."""
    found: list[dict[str, str]] = []
    for pause in document["delivery"]["pauses"]:
        until = "until resumed" if pause["until"] is None else f"for {pause['until'] - now:.0f} s"
        found.append(
            _alert(
                "stalled",
                f"Delivery paused for {pause['account']}/{pause['endpoint']} {until}: "
                f"{pause['reason']}{' (' + pause['detail'] + ')' if pause['detail'] else ''}",
            )
        )
    if process.stopped_tasks:
        found.append(
            _alert("stalled", f"Background task stopped: {', '.join(process.stopped_tasks)}")
        )
    if process.lanes_failing:
        found.append(_alert("stalled", f"Delivery failing in {process.lanes_failing} lane(s)"))
    if stalled := _nothing_delivered(document, process, now, stall_minutes):
        found.append(_alert("stalled", stalled))
    for name, source in (
        ("ShipStation", document["shipstation"]),
        ("Shopify", document.get("shopify_admin")),
    ):
        error = (source or {}).get("last_error")
        if error and error.get("kind") == "auth":
            found.append(_alert("stalled", f"{name} refused the API key: {error.get('message')}"))
        elif error:
            found.append(_alert("warning", f"{name} catch-up failed: {error.get('message')}"))
    if opened := document["dead_letters"]["open"]:
        found.append(_alert("warning", f"{opened} dead letter(s) wait for a decision"))
    found.extend(_alert("warning", warning) for warning in document["database"]["warnings"])
    return found


def _nothing_delivered(
    document: dict[str, Any], process: ProcessView, now: float, stall_minutes: float
) -> str | None:
    outbox = document["outbox"]
    pending, oldest = outbox["pending"], outbox["oldest_pending_age_seconds"]
    if not pending or oldest is None or oldest < stall_minutes * 60:
        return None
    # Before anything was delivered, the time since this process started stands for it.
    quiet_since = max(process.last_delivered_at or 0.0, process.started_at)
    quiet_minutes = (now - quiet_since) / 60
    if quiet_minutes < stall_minutes:
        return None
    return f"Nothing delivered for {quiet_minutes:.0f} min while {pending} item(s) are pending"


def _alert(level: str, message: str) -> dict[str, str]:
    return {"level": level, "message": message}
