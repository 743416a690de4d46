"""Events the outbox holds, counted per metric and day of event time in a given time zone.

The metric and the time live inside each item's JSON body; the dialect reads them out in SQL,
so only those two short strings travel. Items are found by queue time through
ix_outbox_events_by_queue_time: an event is queued after it happens, so every event of the
window was queued after its first moment (less a day's slack for a source clock ahead).
The days are counted in Python: SQLite knows no time zones, and one rule serves both.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Select, and_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from shoprelay.store.dialects import Dialect, of
from shoprelay.store.outbox import Status
from shoprelay.store.schema import dead_letters, outbox

METRIC_PATH = ("metric", "data", "attributes", "name")
TIME_PATH = ("time",)
CLOCK_SLACK_SECONDS = 86_400


@dataclass
class DayTally:
    """One (day, metric): items queued, and where they are now."""

    source: int = 0
    delivered: int = 0
    pending: int = 0  # pending or in flight
    dead_letters: int = 0  # dead-lettered after retries ran out, or for no recorded answer
    refused: int = 0  # dead-lettered because Klaviyo answered 4xx


@dataclass
class EventDays:
    """Tallies by (day, metric), and the window's items whose body retention has cleared."""

    tallies: dict[tuple[date, str], DayTally] = field(default_factory=dict)
    cleared: int = 0


def day_bounds(first: date, last: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """The UTC instants of `first`'s local midnight and of the midnight after `last`."""
    start = datetime.combine(first, time(), zone).astimezone(UTC)
    end = datetime.combine(last + timedelta(days=1), time(), zone).astimezone(UTC)
    return start, end


async def count_event_days(
    conn: AsyncConnection,
    zone: ZoneInfo,
    first: date,
    last: date,
    metrics: Collection[str] | None = None,
) -> EventDays:
    """Event items whose event time falls on `first` … `last` in `zone`, by day and metric."""
    start, end = day_bounds(first, last, zone)
    query = window_query(of(conn), start.timestamp() - CLOCK_SLACK_SECONDS)
    found = EventDays()
    seen: set[int] = set()
    result = await conn.stream(query)
    async for item_id, status, metric, moment, status_code in result:
        if item_id in seen:
            continue
        seen.add(item_id)
        if metric is None or moment is None:
            found.cleared += 1
            continue
        happened = datetime.fromisoformat(moment)
        if happened.tzinfo is None:
            happened = happened.replace(tzinfo=UTC)
        if not start <= happened < end or (metrics is not None and metric not in metrics):
            continue
        key = (happened.astimezone(zone).date(), metric)
        tally = found.tallies.setdefault(key, DayTally())
        _add(tally, status, status_code)
    return found


def window_query(dialect: Dialect, queued_since: float) -> Select[Any]:
    """Each event item queued since then: its id, status, metric, time and any open letter's
    HTTP status."""
    letter = dead_letters.alias("letter")
    return (
        select(
            outbox.c.id,
            outbox.c.status,
            dialect.json_text(outbox.c.body, METRIC_PATH),
            dialect.json_text(outbox.c.body, TIME_PATH),
            letter.c.status_code,
        )
        .select_from(
            outbox.outerjoin(
                letter, and_(letter.c.outbox_id == outbox.c.id, letter.c.replayed_at.is_(None))
            )
        )
        .where(outbox.c.kind == "event", outbox.c.created_at >= queued_since)
    )


def _add(tally: DayTally, status: str, status_code: int | None) -> None:
    tally.source += 1
    if status == Status.DELIVERED:
        tally.delivered += 1
    elif status in (Status.PENDING, Status.IN_FLIGHT):
        tally.pending += 1
    elif status == Status.DEAD_LETTERED:
        if status_code is not None and 400 <= status_code < 500:
            tally.refused += 1
        else:
            tally.dead_letters += 1
