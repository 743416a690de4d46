"""Request bodies for the endpoints we call, and where each item sits inside a bulk body."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

MAX_BULK_EVENTS = 1_000
MAX_BULK_PROFILES = 10_000
# Klaviyo says 5 MB; staying under the decimal reading keeps us clear of either meaning.
MAX_BULK_BYTES = 5_000_000
IDENTIFIERS = ("email", "phone_number", "external_id", "anonymous_id", "_kx")
_EVENTS_AT = "/data/attributes/events-bulk-create/data"
_PROFILES_AT = "/data/attributes/profiles/data"
# Bytes around each event and each profile entry in the bulk body, with commas: at least the
# real ones, so a batch never outgrows MAX_BULK_BYTES (the unit test checks the encoded size).
_EVENT_WRAPPER = 40
_ENTRY_WRAPPER = 120


def event_request(attributes: dict[str, Any]) -> dict[str, Any]:
    """`POST /api/events`."""
    return {"data": {"type": "event", "attributes": attributes}}


def profile_request(attributes: dict[str, Any]) -> dict[str, Any]:
    """`POST /api/profile-import`."""
    return {"data": {"type": "profile", "attributes": attributes}}


def deletion_request(identifier: dict[str, Any]) -> dict[str, Any]:
    """`POST /api/data-privacy-deletion-jobs`: exactly one of email, phone_number or id."""
    profile = {"data": {"type": "profile", "attributes": identifier}}
    return {"data": {"type": "data-privacy-deletion-job", "attributes": {"profile": profile}}}


@dataclass(frozen=True)
class BulkRequest:
    """One bulk body, encoded, and for each JSON pointer inside it the ids of the items there."""

    body: bytes
    item_ids: tuple[int, ...]
    pointers: dict[str, tuple[int, ...]] = field(default_factory=dict)

    def items_at(self, pointer: str | None) -> tuple[int, ...]:
        """The items an error's `source.pointer` names; empty when it names none in particular."""
        if not pointer:
            return ()
        parts = pointer.rstrip("/").split("/")
        while len(parts) > 1:
            found = self.pointers.get("/".join(parts))
            if found is not None:
                return found
            parts.pop()
        return ()


@dataclass(frozen=True)
class BulkPlan:
    """The requests to send now, and the items held back for a later request."""

    requests: list[BulkRequest]
    deferred: list[int]


def profile_keys(profile: dict[str, Any]) -> list[str]:
    """Each identifier of a profile resource; two profiles sharing one may be the same person."""
    attributes = profile.get("attributes") or {}
    keys = [f"{name}:{attributes[name]}" for name in IDENTIFIERS if attributes.get(name)]
    return keys + ([f"id:{profile['id']}"] if profile.get("id") else [])


def _size(value: Any) -> int:
    return len(orjson.dumps(value))


class _EventBatch:
    """Events grouped by profile, for one `event-bulk-create-job`."""

    def __init__(self) -> None:
        # Profile resource → its events, each kept as encoded to measure it: the body splices
        # those bytes instead of encoding every event a second time.
        self.entries: dict[bytes, list[tuple[int, bytes]]] = {}
        self.seen: set[tuple[str, str, str]] = set()
        self.count = 0
        self.bytes = _size(bulk_events_request([]))

    def cost(self, profile_key: bytes, event_size: int) -> int:
        """Encoded bytes this event adds: its resource, plus a new entry if its profile is new."""
        added = event_size + _EVENT_WRAPPER
        return added if profile_key in self.entries else added + len(profile_key) + _ENTRY_WRAPPER

    def fits(self, profile_key: bytes, event_size: int) -> bool:
        room = self.bytes + self.cost(profile_key, event_size) <= MAX_BULK_BYTES
        return self.count < MAX_BULK_EVENTS and room

    def repeats(self, keys: list[tuple[str, str, str]]) -> bool:
        return any(key in self.seen for key in keys)

    def add(self, item_id: int, profile_key: bytes, event: bytes) -> None:
        """Add an event under its profile, both given encoded."""
        self.bytes += self.cost(profile_key, len(event))
        self.entries.setdefault(profile_key, []).append((item_id, event))
        self.count += 1

    def build(self) -> BulkRequest:
        entries = list(self.entries.items())
        body = bulk_events_request(
            [
                (orjson.Fragment(profile), [orjson.Fragment(event) for _, event in events])
                for profile, events in entries
            ]
        )
        pointers: dict[str, tuple[int, ...]] = {}
        for i, (_, events) in enumerate(entries):
            pointers[f"{_EVENTS_AT}/{i}"] = tuple(item_id for item_id, _ in events)
            for j, (item_id, _) in enumerate(events):
                pointers[f"{_EVENTS_AT}/{i}/attributes/events/data/{j}"] = (item_id,)
        ids = tuple(item_id for _, events in entries for item_id, _ in events)
        return BulkRequest(orjson.dumps(body), ids, pointers)


def bulk_events_request(entries: Sequence[tuple[Any, Sequence[Any]]]) -> dict[str, Any]:
    """`POST /api/event-bulk-create-jobs` for (profile resource, event attributes) entries,
    each a dict or already encoded (`orjson.Fragment`)."""
    data = [
        {
            "type": "event-bulk-create",
            "attributes": {
                "profile": {"data": profile},
                "events": {"data": [{"type": "event", "attributes": e} for e in events]},
            },
        }
        for profile, events in entries
    ]
    return {
        "data": {
            "type": "event-bulk-create-job",
            "attributes": {"events-bulk-create": {"data": data}},
        }
    }


def _split_event(attributes: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The inline profile resource, and the event attributes without it."""
    profile = dict(attributes["profile"]["data"])
    profile.setdefault("type", "profile")
    event = {name: value for name, value in attributes.items() if name != "profile"}
    return profile, event


def _event_keys(profile: dict[str, Any], event: dict[str, Any]) -> list[tuple[str, str, str]]:
    metric = str(event["metric"]["data"]["attributes"]["name"])
    unique_id = str(event.get("unique_id") or f"time:{event.get('time')}")
    return [(key, metric, unique_id) for key in profile_keys(profile)]


def plan_bulk_events(items: Sequence[tuple[int, dict[str, Any]]]) -> BulkPlan:
    """Pack events into bulk requests under the count and size limits.

    A repeated (profile, metric, unique_id) fails a whole bulk request, so a repeat is deferred
    to a later request rather than dropped.
    """
    batches: list[_EventBatch] = [_EventBatch()]
    deferred: list[int] = []
    for item_id, attributes in items:
        profile, event = _split_event(attributes)
        keys = _event_keys(profile, event)
        if batches[-1].repeats(keys):
            deferred.append(item_id)
            continue
        # Each encoded once: the size check, the grouping and the body all use the bytes.
        profile_key, encoded = orjson.dumps(profile), orjson.dumps(event)
        if not batches[-1].fits(profile_key, len(encoded)) and batches[-1].count:
            batches.append(_EventBatch())
        batches[-1].add(item_id, profile_key, encoded)
        batches[-1].seen.update(keys)
    return BulkPlan([batch.build() for batch in batches if batch.count], deferred)


def bulk_profiles_request(profiles: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """`POST /api/profile-bulk-import-jobs` for profile-import attributes."""
    data = [{"type": "profile", "attributes": attributes} for attributes in profiles]
    return {"data": {"type": "profile-bulk-import-job", "attributes": {"profiles": {"data": data}}}}


def plan_bulk_profiles(items: Sequence[tuple[int, dict[str, Any]]]) -> BulkPlan:
    """Pack profiles into import jobs; a second update of the same person waits for a later job."""
    requests: list[BulkRequest] = []
    deferred: list[int] = []
    for chunk in _profile_chunks(items, deferred):
        body = orjson.dumps(bulk_profiles_request([attributes for _, attributes in chunk]))
        ids = tuple(item_id for item_id, _ in chunk)
        pointers: dict[str, tuple[int, ...]] = {
            f"{_PROFILES_AT}/{i}": (item_id,) for i, item_id in enumerate(ids)
        }
        requests.append(BulkRequest(body, ids, pointers))
    return BulkPlan(requests, deferred)


def _profile_chunks(
    items: Sequence[tuple[int, dict[str, Any]]], deferred: list[int]
) -> Iterator[list[tuple[int, dict[str, Any]]]]:
    chunk: list[tuple[int, dict[str, Any]]] = []
    seen: set[str] = set()
    size = _size(bulk_profiles_request([]))
    for item_id, attributes in items:
        keys = profile_keys({"attributes": attributes})
        if any(key in seen for key in keys):
            deferred.append(item_id)
            continue
        extra = _size(attributes) + 40
        if chunk and (len(chunk) >= MAX_BULK_PROFILES or size + extra > MAX_BULK_BYTES):
            yield chunk
            chunk, seen, size = [], set(), _size(bulk_profiles_request([]))
        chunk.append((item_id, attributes))
        seen.update(keys)
        size += extra
    if chunk:
        yield chunk
