"""Recording events: Klaviyo's dedup by (profile, metric, unique_id or time to the second)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shoprelay.sim.klaviyo_profiles import IDENTIFIERS, Profile, ProfileStore
from shoprelay.sim.klaviyo_rules import parse_event_time


@dataclass(frozen=True)
class AcceptedEvent:
    """One recorded event, as a test or the demo wants to read it back."""

    metric: str
    profile_id: str
    profile: dict[str, str]
    properties: dict[str, Any]
    time: datetime
    value: float | None
    value_currency: str | None
    unique_id: str | None
    backfill: bool
    received_at: datetime
    endpoint: str

    def dedup_key(self) -> tuple[str, str, str]:
        """What Klaviyo deduplicates on: unique_id if given, else the time to the second."""
        marker = f"id:{self.unique_id}" if self.unique_id is not None else f"t:{self.time}"
        return (self.profile_id, self.metric, marker)

    def to_json(self) -> dict[str, Any]:
        """The event as the control API lists it."""
        return {
            "metric": self.metric,
            "profile_id": self.profile_id,
            "profile": self.profile,
            "properties": self.properties,
            "time": self.time.isoformat(),
            "value": self.value,
            "value_currency": self.value_currency,
            "unique_id": self.unique_id,
            "backfill": self.backfill,
            "received_at": self.received_at.isoformat(),
            "endpoint": self.endpoint,
        }


class EventLog:
    """Accepted events in arrival order, keeping only the first of each dedup key."""

    def __init__(self) -> None:
        self.events: list[AcceptedEvent] = []
        self.seen: set[tuple[str, str, str]] = set()
        self.duplicates_ignored = 0

    def record(self, event: AcceptedEvent) -> bool:
        """Keep `event` unless its key was seen; returns whether it was kept."""
        key = event.dedup_key()
        if key in self.seen:
            self.duplicates_ignored += 1
            return False
        self.seen.add(key)
        self.events.append(event)
        return True


@dataclass(frozen=True)
class EventProfile:
    """The stored profile an event belongs to, and the identifiers the request sent."""

    stored: Profile
    identifiers: dict[str, str]


@dataclass(frozen=True)
class EventIntake:
    """Turns validated event attributes into recorded events, upserting their profile."""

    profiles: ProfileStore
    log: EventLog
    endpoint: str
    received_at: datetime

    def profile(self, resource: Mapping[str, Any]) -> EventProfile:
        """Upsert an event's inline profile (leniently: events never fail on identity clashes)."""
        # The single-event schema nests `meta` inside attributes; the bulk one beside them.
        sent = resource.get("attributes") or {}
        attributes = {name: value for name, value in sent.items() if name != "meta"}
        stored, _created = self.profiles.upsert(
            attributes,
            self.received_at,
            profile_id=resource.get("id"),
            patch=resource.get("meta") or sent.get("meta"),
            strict=False,
        )
        identifiers = {name: attributes[name] for name in IDENTIFIERS if attributes.get(name)}
        return EventProfile(stored, identifiers)

    def accept(self, attributes: Mapping[str, Any], profile: EventProfile, backfill: bool) -> bool:
        """Record one event for `profile`; False if it was a duplicate."""
        time = parse_event_time(attributes.get("time"), self.received_at)
        stored = profile.stored
        stored.last_event_date = max(filter(None, (stored.last_event_date, time)))
        event = AcceptedEvent(
            metric=attributes["metric"]["data"]["attributes"]["name"],
            profile_id=stored.id,
            profile=profile.identifiers,
            properties=attributes["properties"],
            time=time,
            value=attributes.get("value"),
            value_currency=attributes.get("value_currency"),
            unique_id=attributes.get("unique_id"),
            backfill=backfill,
            received_at=self.received_at,
            endpoint=self.endpoint,
        )
        return self.log.record(event)
