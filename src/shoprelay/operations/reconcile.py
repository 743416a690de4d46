"""`shoprelay reconcile`: each day's events at the source, delivered, and as Klaviyo counts them.

The days are the Klaviyo account's, in its time zone: the check Klaviyo's ShipStation guide
asks a person to make by hand ("compare yesterday's count, mind the time zone").
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from shoprelay.config import Settings
from shoprelay.delivery.klaviyo import KlaviyoClient
from shoprelay.delivery.klaviyo_reads import KlaviyoReadError, KlaviyoReads
from shoprelay.mapping.shipstation import ShipStationMetrics
from shoprelay.service import shopify_metrics
from shoprelay.store.database import Store
from shoprelay.store.event_days import DayTally, EventDays, count_event_days

# Klaviyo's aggregates span at most a year; the query reaches a day past each end.
MAX_DAYS = 360
FALLBACK_ZONE = "UTC"


@dataclasses.dataclass
class Window:
    """The days asked about, in the zone they are cut in, and what Klaviyo said or could not."""

    zone: str
    zone_source: str  # "klaviyo", or "utc" when the account's could not be read
    first: date
    last: date
    problems: list[str] = dataclasses.field(default_factory=list)


async def reconcile(
    store: Store,
    settings: Settings,
    *,
    days: int = 7,
    metrics: Sequence[str] = (),
    ask_klaviyo: bool = True,
    now: float | None = None,
) -> dict[str, Any]:
    """The document `reconcile --json` prints: one row per day (today and the `days` - 1
    before it, in the account's time zone) and metric shoprelay sends."""
    days = max(1, min(days, MAX_DAYS))
    now = time.time() if now is None else now
    reads = _reads(settings)
    try:
        window = await _window(reads, days, now)
        zone = ZoneInfo(window.zone)
        async with store.read() as conn:
            found = await count_event_days(conn, zone, window.first, window.last, metrics or None)
        names = list(metrics) or _metrics_sent(settings, found)
        klaviyo = await _klaviyo_counts(reads, window, names) if ask_klaviyo else None
    finally:
        if reads is not None:
            await reads.close()
    if reads is None and ask_klaviyo:
        window.problems.append("KLAVIYO_PRIVATE_API_KEY is not set: Klaviyo was not asked")
    rows = _rows(window, names, found, klaviyo)
    explain_differences(rows)
    return {
        "timezone": window.zone,
        "timezone_source": window.zone_source,
        "klaviyo_error": "; ".join(window.problems) or None,
        "bodies_cleared": found.cleared,
        "days": rows,
    }


def _reads(settings: Settings) -> KlaviyoReads | None:
    if settings.KLAVIYO_PRIVATE_API_KEY is None:
        return None
    return KlaviyoReads(KlaviyoClient.from_settings(settings))


async def _window(reads: KlaviyoReads | None, days: int, now: float) -> Window:
    zone, source, problems = FALLBACK_ZONE, "utc", []
    if reads is not None:
        try:
            zone, source = await reads.account_timezone(), "klaviyo"
            ZoneInfo(zone)
        except KlaviyoReadError as problem:
            zone, source = FALLBACK_ZONE, "utc"
            problems.append(f"{problem}; days are cut in UTC")
        except (ZoneInfoNotFoundError, ValueError):
            problems.append(f"Klaviyo's time zone {zone!r} is unknown here; days are cut in UTC")
            zone, source = FALLBACK_ZONE, "utc"
    last = datetime.fromtimestamp(now, ZoneInfo(zone)).date()
    return Window(zone, source, last - timedelta(days=days - 1), last, problems)


def _metrics_sent(settings: Settings, found: EventDays) -> list[str]:
    """The metrics shoprelay is set up to send, and any other the window holds."""
    names = list(dataclasses.astuple(shopify_metrics(settings)))
    if settings.shipstation_enabled:
        names += dataclasses.astuple(ShipStationMetrics())
    names += sorted({metric for _day, metric in found.tallies} - set(names))
    return names


async def _klaviyo_counts(
    reads: KlaviyoReads | None, window: Window, names: list[str]
) -> dict[str, dict[date, int]] | None:
    if reads is None:
        return None
    try:
        ids = await reads.metric_ids(names)
        counts: dict[str, dict[date, int]] = {}
        for name in names:
            metric_id = ids.get(name)
            # A metric Klaviyo has no id for has never received an event: 0 every day.
            counts[name] = (
                {}
                if metric_id is None
                else await reads.daily_counts(metric_id, window.zone, window.first, window.last)
            )
    except KlaviyoReadError as problem:
        window.problems.append(str(problem))
        return None
    return counts


def _rows(
    window: Window,
    names: list[str],
    found: EventDays,
    klaviyo: dict[str, dict[date, int]] | None,
) -> list[dict[str, Any]]:
    rows = []
    day = window.first
    while day <= window.last:
        for name in names:
            tally = found.tallies.get((day, name), DayTally())
            counted = None if klaviyo is None else klaviyo[name].get(day, 0)
            rows.append(
                {
                    "date": day.isoformat(),
                    "metric": name,
                    "source": tally.source,
                    "delivered": tally.delivered,
                    "klaviyo": counted,
                    "explained": {
                        key: n
                        for key, n in (
                            ("pending", tally.pending),
                            ("dead_letters", tally.dead_letters),
                            ("refused", tally.refused),
                        )
                        if n
                    },
                }
            )
        day += timedelta(days=1)
    return rows


def explain_differences(rows: list[dict[str, Any]]) -> None:
    """Explain Klaviyo's differences from what was delivered, in place.

    Klaviyo counting more on one day and as many fewer on the next (or the day before) is
    events cut into days by another clock or zone: `clock`. What is left is `unexplained`,
    positive when Klaviyo counts more (another sender of the metric, say).
    """
    by_metric: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        if row["klaviyo"] is not None:
            by_metric.setdefault(row["metric"], []).append(row)
    for series in by_metric.values():
        series.sort(key=lambda row: str(row["date"]))
        gaps = [row["klaviyo"] - row["delivered"] for row in series]
        for n in range(len(series) - 1):
            if gaps[n] * gaps[n + 1] < 0:
                moved = min(abs(gaps[n]), abs(gaps[n + 1]))
                for index in (n, n + 1):
                    explained = series[index]["explained"]
                    explained["clock"] = explained.get("clock", 0) + moved
                    gaps[index] -= moved if gaps[index] > 0 else -moved
        for row, gap in zip(series, gaps, strict=True):
            if gap:
                row["explained"]["unexplained"] = gap
