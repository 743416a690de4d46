"""The first sync: every store's orders of the last N days, in windows on the immutable createDate.

A closed window in the past never gains or loses orders, and the default sort (ascending
orderId) is unique, so offset paging inside it is stable and a checkpoint of (window, page)
resumes exactly where an interrupted backfill stopped.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import structlog

from shoprelay.mapping.values import from_sortable_utc, sortable_utc
from shoprelay.sources.shipstation.labels import LabelIndex
from shoprelay.sources.shipstation.pacific import since_filter, until_filter
from shoprelay.sources.shipstation.session import SyncSession

log = structlog.get_logger(__name__)
# Consecutive windows share a second: whether ShipStation's bounds are inclusive is undocumented.
WINDOW_OVERLAP = timedelta(seconds=1)


def new_plan(now: datetime, days: int) -> dict[str, Any]:
    """The backfill's range and checkpoint, fixed when it starts."""
    start = now - timedelta(days=days)
    return {
        "from": sortable_utc(start),
        "to": sortable_utc(now),
        "next": sortable_utc(start),
        "window_end": None,
        "page": 0,
        "size_seconds": (now - start).total_seconds(),
    }


async def run_backfill(session: SyncSession) -> None:
    """Walk the windows from the oldest; the cursor moves with every page's transaction."""
    plan = session.cursor["backfill"]
    session.report.phase = "backfill"
    labels = session.labels(from_sortable_utc(plan["from"]))
    while from_sortable_utc(plan["next"]) < from_sortable_utc(plan["to"]):
        await _window(session, plan, labels)
    session.cursor["phase"] = "incremental"
    session.cursor["watermark"] = plan["to"]
    session.report.backfill_done = 1.0
    await session.save_cursor()
    log.info("shipstation.backfill_done", orders=session.report.orders_seen)


async def _orders(
    session: SyncSession, start: datetime, end: datetime, page: int
) -> dict[str, Any]:
    params: dict[str, str | int] = {
        "createDateStart": since_filter(start),
        "createDateEnd": until_filter(end),
        "pageSize": session.options.page_size,
        "page": page,
    }
    return await session.client.page("/orders", params)


async def _open_window(session: SyncSession, plan: dict[str, Any]) -> dict[str, Any]:
    """Page 1 of the next window, halving the window while it holds too many orders."""
    options = session.options
    start, end = from_sortable_utc(plan["next"]), from_sortable_utc(plan["to"])
    size = timedelta(seconds=plan["size_seconds"])
    while True:
        window_end = min(start + size, end)
        envelope = await _orders(session, start, window_end, 1)
        if int(envelope.get("total") or 0) <= options.window_max_orders:
            break
        if size <= options.min_window:
            break
        size = max(size / 2, options.min_window)
    plan.update(window_end=sortable_utc(window_end), page=0, size_seconds=size.total_seconds())
    return envelope


def _close_window(session: SyncSession, plan: dict[str, Any], total: int) -> None:
    """Move past the window, and size the next one for about the target number of orders."""
    options = session.options
    window_end, end = from_sortable_utc(plan["window_end"]), from_sortable_utc(plan["to"])
    span = end - from_sortable_utc(plan["from"])
    size = timedelta(seconds=plan["size_seconds"]) * options.window_target_orders / max(total, 1)
    plan.update(
        next=sortable_utc(end if window_end >= end else window_end - WINDOW_OVERLAP),
        window_end=None,
        page=0,
        size_seconds=min(max(size, options.min_window), span).total_seconds(),
    )


def _share_done(plan: dict[str, Any], page: int, pages: int) -> float:
    start, end = from_sortable_utc(plan["from"]), from_sortable_utc(plan["to"])
    window_start = from_sortable_utc(plan["next"])
    window_end = from_sortable_utc(plan["window_end"]) if plan["window_end"] else window_start
    within = (window_end - window_start) * (page / max(pages, 1))
    return min(1.0, (window_start - start + within) / max(end - start, timedelta(seconds=1)))


async def _window(session: SyncSession, plan: dict[str, Any], labels: LabelIndex) -> None:
    """Every page of one window, each recorded with the checkpoint that follows it."""
    first = await _open_window(session, plan) if plan["window_end"] is None else None
    start, window_end = from_sortable_utc(plan["next"]), from_sortable_utc(plan["window_end"])
    page = int(plan["page"]) + 1
    while True:
        envelope = first if first is not None and page == 1 else None
        envelope = envelope or await _orders(session, start, window_end, page)
        orders = envelope.get("orders") or []
        pages = int(envelope.get("pages") or 0)
        session.report.backfill_done = _share_done(plan, page, pages)
        last = len(orders) < session.options.page_size or (pages >= 1 and page >= pages)
        plan["page"] = page
        if last:
            _close_window(session, plan, int(envelope.get("total") or len(orders)))
        await session.record_page(orders, labels, backfill=True)
        if last:
            return
        page += 1
