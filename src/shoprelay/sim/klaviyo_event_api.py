"""POST /api/events and POST /api/event-bulk-create-jobs: validation, then recording."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from starlette.responses import Response

from shoprelay.sim.klaviyo_errors import ApiError, invalid
from shoprelay.sim.klaviyo_events import EventIntake
from shoprelay.sim.klaviyo_profiles import ProfileStore, identity_keys
from shoprelay.sim.klaviyo_rules import (
    EVENT_IDENTIFIERS,
    MAX_BULK_EVENTS,
    event_errors,
    profile_errors,
    tolerant,
)
from shoprelay.sim.klaviyo_state import KlaviyoSim

EVENT = "/data/attributes"
BULK_ENTRIES = "/data/attributes/events-bulk-create/data"
REPEATED_UNIQUE_ID = (
    "A unique_id is repeated for the same profile and metric; "
    "the request failed and no events were processed."
)


def check_event(sim: KlaviyoSim, body: Any, now: datetime) -> list[ApiError]:
    """The spec's rules for a single event beyond its schema."""
    attributes = body["data"]["attributes"]
    profile = attributes["profile"]["data"]
    return [
        *tolerant(event_errors, attributes, EVENT, now),
        *tolerant(profile_errors, profile, f"{EVENT}/profile/data", EVENT_IDENTIFIERS),
    ]


def create_event(sim: KlaviyoSim, body: Any, now: datetime, base_url: str) -> Response:
    """Record the event (unless it is a duplicate) and answer 202 with no body."""
    attributes = body["data"]["attributes"]
    intake = EventIntake(sim.profiles, sim.event_log, "create_event", now)
    profile = intake.profile(attributes["profile"]["data"])
    intake.accept(attributes, profile, bool(attributes.get("backfill")))
    return Response(status_code=202)


def bulk_entries(body: Any) -> list[dict[str, Any]]:
    """The per-profile entries of a bulk request."""
    entries: list[dict[str, Any]] = body["data"]["attributes"]["events-bulk-create"]["data"]
    return entries


def check_bulk(sim: KlaviyoSim, body: Any, now: datetime) -> list[ApiError]:
    """Every invalid event and profile of a bulk request, and repeated unique_ids."""
    entries = bulk_entries(body)
    total = sum(len(entry["attributes"]["events"]["data"]) for entry in entries)
    if total > MAX_BULK_EVENTS:
        detail = f"At most {MAX_BULK_EVENTS} events are accepted per request; got {total}."
        return [invalid(detail, BULK_ENTRIES)]
    errors: list[ApiError] = []
    for index, entry in enumerate(entries):
        errors += tolerant(entry_errors, entry, index, now)
    errors += tolerant(repeated_unique_ids, sim.profiles, entries)
    return errors


def entry_errors(entry: dict[str, Any], index: int, now: datetime) -> list[ApiError]:
    """Errors of one profile entry and each of its events."""
    pointer = f"{BULK_ENTRIES}/{index}/attributes"
    profile = entry["attributes"]["profile"]["data"]
    errors = tolerant(profile_errors, profile, f"{pointer}/profile/data", EVENT_IDENTIFIERS)
    for position, event in enumerate(entry["attributes"]["events"]["data"]):
        at = f"{pointer}/events/data/{position}/attributes"
        errors += tolerant(bulk_event_errors, event, at, now)
    return errors


def bulk_event_errors(event: dict[str, Any], pointer: str, now: datetime) -> list[ApiError]:
    """Errors of one event resource inside a bulk entry."""
    return event_errors(event["attributes"], pointer, now)


def repeated_unique_ids(profiles: ProfileStore, entries: list[dict[str, Any]]) -> list[ApiError]:
    """An error at each unique_id already used for the same profile and metric in the request."""
    groups = profile_groups(
        [profile_tokens(profiles, e["attributes"]["profile"]["data"]) for e in entries]
    )
    seen: set[tuple[int, str, str]] = set()
    errors: list[ApiError] = []
    for index, entry in enumerate(entries):
        for position, event in enumerate(entry["attributes"]["events"]["data"]):
            attributes = event["attributes"]
            if attributes.get("unique_id") is None:
                continue
            key = (
                groups[index],
                attributes["metric"]["data"]["attributes"]["name"],
                attributes["unique_id"],
            )
            if key in seen:
                pointer = (
                    f"{BULK_ENTRIES}/{index}/attributes/events/data/{position}/attributes/unique_id"
                )
                errors.append(invalid(REPEATED_UNIQUE_ID, pointer))
            seen.add(key)
    return errors


def profile_tokens(profiles: ProfileStore, profile: dict[str, Any]) -> set[str]:
    """Everything that identifies an entry's profile: its identifiers and stored profile ids."""
    attributes = profile.get("attributes") or {}
    stored = profiles.matches(attributes) + ([profile["id"]] if profile.get("id") else [])
    return {*identity_keys(attributes), *(f"id:{profile_id}" for profile_id in stored)}


def profile_groups(token_sets: list[set[str]]) -> list[int]:
    """Group entries that share any token (same profile); returns a group number per entry."""
    parent = list(range(len(token_sets)))

    def root(item: int) -> int:
        while parent[item] != item:
            parent[item] = parent[parent[item]]
            item = parent[item]
        return item

    owner: dict[str, int] = {}
    for index, tokens in enumerate(token_sets):
        for token in tokens:
            if token in owner:
                parent[root(index)] = root(owner[token])
            else:
                owner[token] = index
    return [root(index) for index in range(len(token_sets))]


def bulk_create_events(sim: KlaviyoSim, body: Any, now: datetime, base_url: str) -> Response:
    """Record every event of a valid bulk request and answer 202 with no body."""
    intake = EventIntake(sim.profiles, sim.event_log, "bulk_create_events", now)
    for entry in bulk_entries(body):
        profile = intake.profile(entry["attributes"]["profile"]["data"])
        entry_backfill = entry["attributes"].get("backfill")
        for event in entry["attributes"]["events"]["data"]:
            attributes = event["attributes"]
            backfill = attributes.get("backfill")
            intake.accept(
                attributes, profile, bool(entry_backfill if backfill is None else backfill)
            )
    return Response(status_code=202)
