"""Incremental syncs: orders modified since the last sync's start, newest first.

`sortBy=ModifyDate&sortDir=DESC` with no `modifyDateEnd`: an order modified while we page
jumps to the front, so the rows behind it shift back (a re-read, deduplicated against stored
state) and none shifts past us; the moved order itself is newer than this sync's start, so
the next sync reads it. Ascending order, or a closed window, could skip an order for good.

Orders with the same modifyDate may also come back in another order from one page request to
the next, and those can be older than this sync's start. So when fewer orders were read than
the first page counted, the whole range is read again; if even both reads together miss some,
the watermark stays where it was and the next sync reads the range once more.
"""

from __future__ import annotations

from datetime import datetime

import structlog

from shoprelay.mapping.values import from_sortable_utc, sortable_utc
from shoprelay.sources.shipstation.changes import order_key
from shoprelay.sources.shipstation.pacific import since_filter
from shoprelay.sources.shipstation.session import SyncSession

log = structlog.get_logger(__name__)


async def run_incremental(session: SyncSession) -> None:
    """Read every order changed since the watermark, then move the watermark to our start."""
    started = session.clock()
    since = from_sortable_utc(session.cursor["watermark"]) - session.options.overlap
    session.report.phase = "incremental"
    if await _read_range(session, since):
        session.cursor["watermark"] = sortable_utc(started)
    await session.save_cursor()
    log.info(
        "shipstation.incremental_done", orders=session.report.orders_seen, since=sortable_utc(since)
    )


async def _read_range(session: SyncSession, since: datetime) -> bool:
    """Read the range, twice if the first pass came up short; False if orders are still missed."""
    seen, expected = await _read_changes(session, since)
    if len(seen) >= expected:
        return True
    log.info("shipstation.catch_up", seen=len(seen), expected=expected)
    again, expected = await _read_changes(session, since)
    # The range only grows (a modifyDate never goes back), so every order either pass read
    # is among the second pass's `expected`: together they must account for all of them.
    missed = expected - len(seen | again)
    if missed > 0:
        log.warning("shipstation.range_kept", missed=missed, since=sortable_utc(since))
    return missed <= 0


async def _read_changes(session: SyncSession, since: datetime) -> tuple[set[str], int]:
    """Page through the changes; returns the order ids read and the first page's total."""
    labels = session.labels(since)
    seen: set[str] = set()
    expected: int | None = None
    page = 1
    while True:
        params: dict[str, str | int] = {
            "modifyDateStart": since_filter(since),
            "sortBy": "ModifyDate",
            "sortDir": "DESC",
            "pageSize": session.options.page_size,
            "page": page,
        }
        envelope = await session.client.page("/orders", params)
        orders = envelope.get("orders") or []
        expected = int(envelope.get("total") or 0) if expected is None else expected
        seen.update(map(order_key, orders))
        await session.record_page(orders, labels, backfill=False)
        pages = int(envelope.get("pages") or 0)
        if len(orders) < session.options.page_size or (pages >= 1 and page >= pages):
            return seen, expected
        page += 1
