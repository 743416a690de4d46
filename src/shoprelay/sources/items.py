"""Turn mapped Klaviyo values into outbox items; shared by every source."""

from __future__ import annotations

import hashlib
from typing import Any

from shoprelay.mapping.klaviyo import KlaviyoEvent, KlaviyoProfile, dedup_key
from shoprelay.store.outbox import NewItem


def event_item(event: KlaviyoEvent, source: str) -> NewItem:
    """One event; its dedup key makes a second enqueue of the same event a no-op."""
    return _item("event", dedup_key(event.unique_id, event.metric), event.to_attributes(), source)


def _item(
    kind: str,
    key: str,
    body: dict[str, Any],
    source: str,
    ordering: tuple[str, str] | None = None,
) -> NewItem:
    # NewItem encodes its body at construction, before any transaction: a body JSON cannot
    # carry fails its own webhook only.
    ordering_key, ordering_version = ordering or (None, None)
    return NewItem(
        kind, key, body, source, ordering_key=ordering_key, ordering_version=ordering_version
    )


def profile_item(profile: KlaviyoProfile, source: str, identity: str, version: str) -> NewItem:
    """One profile upsert per (identity, version): a redelivered update queues nothing."""
    digest = hashlib.sha256(f"{identity}\x00{version}".encode()).hexdigest()[:32]
    # One customer's versions, newest last: an older one must not land after a newer one,
    # whichever was committed first.
    ordering = (f"profile:{source}:{identity}", version)
    return _item("profile", f"profile:{digest}", profile.to_attributes(), source, ordering)
