"""Klaviyo's metric aggregates: a query's time range from its filter, events cut into
intervals at local midnight (or hour, week, month) of the requested time zone (pure)."""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from shoprelay.sim.klaviyo_errors import ApiError, invalid
from shoprelay.sim.klaviyo_events import AcceptedEvent

# The spec: "validated against a list of common timezones … exceptions are Factory,
# Europe/Kyiv and Pacific/Kanton. This field is case-sensitive."
UNSUPPORTED_ZONES = frozenset({"Factory", "Europe/Kyiv", "Pacific/Kanton"})
# Klaviyo's docs: "The time range may span a maximum of one year."
LONGEST_RANGE = timedelta(days=366)
BOUND = re.compile(r"^(greater-or-equal|less-than)\(datetime,([^)]+)\)$")
FILTER_POINTER = "/data/attributes/filter"


@dataclass(frozen=True)
class AggregateQuery:
    """What a valid query asks: one metric, over [start, end), in intervals of `zone`."""

    metric_id: str
    measurements: tuple[str, ...]
    interval: str
    zone: ZoneInfo
    start: datetime
    end: datetime


def zone_named(name: str) -> ZoneInfo | None:
    """The IANA zone Klaviyo would accept under this exact name, or None."""
    if name in UNSUPPORTED_ZONES or name != name.strip():
        return None
    try:
        zone = ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None
    # zoneinfo finds "america/new_york" on a case-insensitive disk; Klaviyo does not.
    return zone if zone.key == name else None


def parse_query(attributes: dict[str, Any]) -> AggregateQuery | list[ApiError]:
    """The query in a schema-valid body's attributes, or the errors Klaviyo would give."""
    errors: list[ApiError] = []
    zone = zone_named(attributes.get("timezone") or "UTC")
    if zone is None:
        errors.append(invalid("Invalid timezone.", "/data/attributes/timezone"))
        zone = ZoneInfo("UTC")
    if attributes.get("by"):
        detail = "The simulator answers queries without `by` dimensions only."
        errors.append(invalid(detail, "/data/attributes/by"))
    bounds, bound_errors = _bounds(attributes["filter"], zone)
    errors += bound_errors
    if errors:
        return errors
    start, end = bounds["greater-or-equal"], bounds["less-than"]
    return AggregateQuery(
        metric_id=attributes["metric_id"],
        measurements=tuple(attributes["measurements"]),
        interval=attributes.get("interval") or "day",
        zone=zone,
        start=start,
        end=end,
    )


def _bounds(filters: Sequence[str], zone: ZoneInfo) -> tuple[dict[str, datetime], list[ApiError]]:
    bounds: dict[str, datetime] = {}
    for text in filters:
        match = BOUND.match(text.replace(" ", ""))
        if match is None:
            detail = f"Unsupported filter: {text!r}; filter the datetime field by range."
            return bounds, [invalid(detail, FILTER_POINTER)]
        try:
            moment = datetime.fromisoformat(match.group(2))
        except ValueError:
            return bounds, [invalid(f"Invalid datetime in {text!r}.", FILTER_POINTER)]
        # A time without an offset is read in the query's time zone.
        bounds[match.group(1)] = moment if moment.tzinfo else moment.replace(tzinfo=zone)
    if len(bounds) != 2:
        detail = "The filter must include a greater-or-equal and a less-than datetime filter."
        return bounds, [invalid(detail, FILTER_POINTER)]
    span = bounds["less-than"] - bounds["greater-or-equal"]
    if span <= timedelta(0) or span > LONGEST_RANGE:
        detail = "The time range must be positive and may span a maximum of one year."
        return bounds, [invalid(detail, FILTER_POINTER)]
    return bounds, []


def interval_starts(query: AggregateQuery) -> list[datetime]:
    """The local start of each interval the range touches, in order."""
    first = query.start.astimezone(query.zone)
    starts = []
    moment = _floor(first, query.interval, query.zone)
    while moment < query.end:
        starts.append(moment)
        moment = _next(moment, query.interval, query.zone)
    return starts


def _floor(moment: datetime, interval: str, zone: ZoneInfo) -> datetime:
    if interval == "hour":
        utc = moment.astimezone(UTC)
        return utc.replace(minute=0, second=0, microsecond=0).astimezone(zone)
    day = moment.date()
    if interval == "week":
        day -= timedelta(days=day.weekday())
    elif interval == "month":
        day = day.replace(day=1)
    return datetime.combine(day, time(), zone)


def _next(start: datetime, interval: str, zone: ZoneInfo) -> datetime:
    if interval == "hour":
        return (start.astimezone(UTC) + timedelta(hours=1)).astimezone(zone)
    day: date = start.date()
    if interval == "day":
        day += timedelta(days=1)
    elif interval == "week":
        day += timedelta(days=7)
    else:
        day = (day.replace(day=28) + timedelta(days=4)).replace(day=1)
    return datetime.combine(day, time(), zone)


def aggregate(
    query: AggregateQuery, events: Iterable[AcceptedEvent]
) -> tuple[list[datetime], dict[str, list[float]]]:
    """Interval starts, and each measurement's value per interval, in the same order."""
    starts = interval_starts(query)
    counts = [0.0] * len(starts)
    sums = [0.0] * len(starts)
    profiles: list[set[str]] = [set() for _ in starts]
    for event in events:
        if not query.start <= event.time < query.end:
            continue
        local = event.time.astimezone(query.zone)
        index = _index(starts, local)
        if index is None:
            continue
        counts[index] += 1
        sums[index] += event.value or 0.0
        profiles[index].add(event.profile_id)
    values = {
        "count": counts,
        "sum_value": sums,
        "unique": [float(len(seen)) for seen in profiles],
    }
    return starts, {name: values[name] for name in query.measurements}


def _index(starts: list[datetime], moment: datetime) -> int | None:
    index = bisect.bisect_right(starts, moment) - 1
    return index if index >= 0 else None
