"""Request bodies: spec-valid, split by count and size, no repeats, pointers back to items."""

from __future__ import annotations

from typing import Any

import orjson
from tests.support.klaviyo_schema import validate_request

from shoprelay.delivery.requests import (
    MAX_BULK_BYTES,
    event_request,
    plan_bulk_events,
    plan_bulk_profiles,
    profile_request,
)


def event(
    n: int, email: str | None = None, metric: str = "Placed Order", **extra: Any
) -> dict[str, Any]:
    """Event attributes as the outbox stores them, with the profile inline."""
    return {
        "metric": {"data": {"type": "metric", "attributes": {"name": metric}}},
        "profile": {
            "data": {"type": "profile", "attributes": {"email": email or f"p{n}@example.com"}}
        },
        "properties": {"OrderId": str(n), **extra},
        "time": "2026-01-02T10:00:00Z",
        "unique_id": f"order:{n}",
    }


def test_single_bodies_validate() -> None:
    """create_event and create_or_update_profile bodies match the spec."""
    assert validate_request("create_event", event_request(event(1))) == []
    body = profile_request({"email": "a@example.com", "first_name": "A"})
    assert validate_request("create_or_update_profile", body) == []


def test_bulk_groups_by_profile_and_validates() -> None:
    """Events of one profile share an entry; the body matches the spec."""
    items = [(i, event(i, email=f"p{i % 3}@example.com")) for i in range(9)]
    plan = plan_bulk_events(items)
    assert plan.deferred == []
    [request] = plan.requests
    body = orjson.loads(request.body)
    entries = body["data"]["attributes"]["events-bulk-create"]["data"]
    assert len(entries) == 3
    assert validate_request("bulk_create_events", body) == []
    assert sorted(request.item_ids) == list(range(9))


def test_bulk_splits_at_a_thousand_events() -> None:
    """2,500 events become requests of at most 1,000."""
    plan = plan_bulk_events([(i, event(i)) for i in range(2500)])
    assert [len(r.item_ids) for r in plan.requests] == [1000, 1000, 500]


def test_bulk_splits_by_encoded_size() -> None:
    """Large events split so that no request body exceeds 5 MB when encoded."""
    big = "x" * 60_000
    plan = plan_bulk_events([(i, event(i, blob=big)) for i in range(200)])
    assert len(plan.requests) >= 3
    assert all(len(r.body) <= MAX_BULK_BYTES for r in plan.requests)
    assert sum(len(r.item_ids) for r in plan.requests) == 200


def test_repeated_unique_id_for_a_profile_and_metric_is_deferred() -> None:
    """A second (profile, metric, unique_id) waits for a later request; other metrics do not."""
    first = event(1, email="a@example.com")
    again = event(1, email="a@example.com")
    other_metric = event(1, email="a@example.com", metric="Fulfilled Order")
    plan = plan_bulk_events([(1, first), (2, again), (3, other_metric)])
    assert plan.deferred == [2]
    assert sorted(plan.requests[0].item_ids) == [1, 3]


def test_pointers_find_the_item() -> None:
    """An error pointer deep inside an event names that event; one at the profile, its entry."""
    items = [(10 + i, event(i, email=f"p{i % 2}@example.com")) for i in range(4)]
    [request] = plan_bulk_events(items).requests
    base = "/data/attributes/events-bulk-create/data"
    assert request.items_at(f"{base}/1/attributes/events/data/0/time") == (11,)
    assert request.items_at(f"{base}/0/attributes/profile/data/attributes/email") == (10, 12)
    assert request.items_at("/data") == ()
    assert request.items_at(None) == ()


def test_bulk_profiles_validate_and_defer_repeats() -> None:
    """Profile import jobs match the spec; a second update of one person waits."""
    items = [(i, {"email": f"p{i % 5}@example.com", "first_name": str(i)}) for i in range(8)]
    plan = plan_bulk_profiles(items)
    assert plan.deferred == [5, 6, 7]
    [request] = plan.requests
    assert validate_request("bulk_import_profiles", orjson.loads(request.body)) == []
    assert request.items_at("/data/attributes/profiles/data/2") == (2,)
