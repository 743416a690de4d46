"""Subscription job bodies: consent changes packed into Klaviyo's bulk subscribe and
unsubscribe jobs, one list, channel and kind of import a job."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from shoprelay.delivery.requests import BulkRequest

SUBSCRIBE_ENDPOINT = "bulk_subscribe_profiles"
UNSUBSCRIBE_ENDPOINT = "bulk_unsubscribe_profiles"
MAX_SUBSCRIBE_PROFILES = 1_000
MAX_UNSUBSCRIBE_PROFILES = 100
# Stored on the consent records of every subscription we send.
CUSTOM_SOURCE = "Shopify (shoprelay)"
_PROFILES_AT = "/data/attributes/profiles/data"


@dataclass(frozen=True)
class SubscriptionJob:
    """One job request and the endpoint it goes to."""

    endpoint: str
    request: BulkRequest


@dataclass(frozen=True)
class SubscriptionPlan:
    """The jobs to send now, the items with nothing to send, and those held for a later job."""

    jobs: list[SubscriptionJob]
    no_request: list[int]
    deferred: list[int]


def subscribe_request(
    profiles: Sequence[Any], list_id: str | None, *, historical: bool
) -> dict[str, Any]:
    """`POST /api/profile-subscription-bulk-create-jobs` for profile entries."""
    attributes: dict[str, Any] = {"custom_source": CUSTOM_SOURCE, "profiles": {"data": profiles}}
    if historical:
        attributes["historical_import"] = True
    return _job("profile-subscription-bulk-create-job", attributes, list_id)


def unsubscribe_request(profiles: Sequence[Any], list_id: str | None) -> dict[str, Any]:
    """`POST /api/profile-subscription-bulk-delete-jobs` for profile entries.

    With a list, the profiles also leave it; Klaviyo unsubscribes the channel either way.
    """
    return _job("profile-subscription-bulk-delete-job", {"profiles": {"data": profiles}}, list_id)


def _job(kind: str, attributes: dict[str, Any], list_id: str | None) -> dict[str, Any]:
    data: dict[str, Any] = {"type": kind, "attributes": attributes}
    if list_id:
        data["relationships"] = {"list": {"data": {"type": "list", "id": list_id}}}
    return {"data": data}


def plan_subscription_jobs(
    items: Sequence[tuple[int, dict[str, Any]]], list_id: str | None
) -> SubscriptionPlan:
    """Group consent changes by (action, channel, historical) and pack each group into jobs
    under the endpoint's profile limit; a second change of one address waits for a later job."""
    groups: dict[tuple[str, str, bool], list[tuple[int, dict[str, Any]]]] = {}
    no_request: list[int] = []
    deferred: list[int] = []
    seen: set[tuple[str, str, str]] = set()
    for item_id, body in items:
        action = body["action"]
        if action not in ("subscribe", "unsubscribe"):
            no_request.append(item_id)
            continue
        address = _address(body)
        if (action, body["channel"], address) in seen:
            deferred.append(item_id)
            continue
        seen.add((action, body["channel"], address))
        key = (action, body["channel"], bool(body.get("historical")))
        groups.setdefault(key, []).append((item_id, body["profile"]))
    jobs = [
        job
        for (action, _, historical), entries in groups.items()
        for job in _jobs(action, historical, entries, list_id)
    ]
    return SubscriptionPlan(jobs, no_request, deferred)


def _jobs(
    action: str, historical: bool, entries: list[tuple[int, dict[str, Any]]], list_id: str | None
) -> list[SubscriptionJob]:
    size = MAX_SUBSCRIBE_PROFILES if action == "subscribe" else MAX_UNSUBSCRIBE_PROFILES
    endpoint = SUBSCRIBE_ENDPOINT if action == "subscribe" else UNSUBSCRIBE_ENDPOINT
    jobs = []
    for start in range(0, len(entries), size):
        chunk = entries[start : start + size]
        profiles = [profile for _, profile in chunk]
        if action == "subscribe":
            body = subscribe_request(profiles, list_id, historical=historical)
        else:
            body = unsubscribe_request(profiles, list_id)
        ids = tuple(item_id for item_id, _ in chunk)
        pointers: dict[str, tuple[int, ...]] = {
            f"{_PROFILES_AT}/{i}": (item_id,) for i, item_id in enumerate(ids)
        }
        jobs.append(SubscriptionJob(endpoint, BulkRequest(orjson.dumps(body), ids, pointers)))
    return jobs


def _address(body: dict[str, Any]) -> str:
    attributes = body["profile"]["attributes"]
    return str(attributes.get("email") or attributes.get("phone_number") or "")
