"""The dispatcher against the Klaviyo simulator over real sockets, on both store dialects."""

from __future__ import annotations

import dataclasses

import pytest
from sqlalchemy import event, select
from tests.integration.delivery.harness import (
    FAST,
    enqueue,
    event_body,
    event_item,
    profile_item,
    recorded_keys,
    running,
)

from shoprelay.sim.klaviyo import KlaviyoSimConfig
from shoprelay.store.database import Store
from shoprelay.store.schema import dead_letters, outbox


async def dead_letter_rows(store: Store) -> list[dict[str, object]]:
    query = select(dead_letters, outbox.c.dedup_key).join(
        outbox, outbox.c.id == dead_letters.c.outbox_id
    )
    async with store.read() as conn:
        rows = (await conn.execute(query)).mappings().all()
    return [dict(row) for row in rows]


async def test_trickle_is_delivered_singly(store: Store) -> None:
    """A few events and profiles go through the single endpoints, once each."""
    await enqueue(store, [event_item(n) for n in range(5)] + [profile_item(n) for n in range(3)])
    async with running(store) as harness:
        counts = await harness.settled()
    assert counts["delivered"] == 8
    assert sorted(recorded_keys(harness.sim)) == sorted(
        ("Placed Order", f"order:{n}") for n in range(5)
    )
    requests = harness.sim.stats()["requests"]
    assert requests["create_event"]["202"] == 5
    assert "bulk_create_events" not in requests


async def test_wake_starts_delivery_without_waiting_for_a_poll(store: Store) -> None:
    """Items committed while running are delivered after wake()."""
    config = dataclasses.replace(FAST, poll_seconds=0.2)
    async with running(store, config=config) as harness:
        await enqueue(store, [event_item(1)])
        harness.dispatcher.wake()
        await harness.settled()
    assert recorded_keys(harness.sim) == [("Placed Order", "order:1")]


async def test_bad_request_dead_letters_with_klaviyo_detail_and_pointer(store: Store) -> None:
    """A 400 dead-letters at once, keeping Klaviyo's detail and source.pointer."""
    bad = event_body(1)
    bad["profile"]["data"]["attributes"]["phone_number"] = "12345"
    await enqueue(store, [event_item(1, bad), event_item(2)])
    async with running(store) as harness:
        counts = await harness.settled()
    assert counts == {
        "pending": 0,
        "in_flight": 0,
        "delivered": 1,
        "dead_lettered": 1,
        "superseded": 0,
        "erased": 0,
    }
    [row] = await dead_letter_rows(store)
    assert row["status_code"] == 400
    assert "phone" in str(row["detail"]).lower()
    assert str(row["pointer"]).endswith("/phone_number")


async def test_duplicate_profile_is_resolved_not_dead_lettered(store: Store) -> None:
    """A 409 drops the conflicting phone and the profile is imported."""
    await enqueue(store, [profile_item(1, {"email": "a@example.com"})])
    await enqueue(store, [profile_item(2, {"phone_number": "+15005550006"})])
    async with running(store) as harness:
        await harness.settled()
        conflict = {"email": "a@example.com", "phone_number": "+15005550006", "first_name": "A"}
        await enqueue(store, [profile_item(3, conflict)])
        harness.dispatcher.wake()
        counts = await harness.settled()
    assert counts["delivered"] == 3
    assert counts["dead_lettered"] == 0
    assert harness.sim.stats()["requests"]["create_or_update_profile"].get("409") == 1


async def test_bulk_isolates_three_bad_events_among_500(store: Store) -> None:
    """Only the three events Klaviyo points at are dead-lettered; the other 497 arrive."""
    items = []
    for n in range(500):
        body = event_body(n)
        if n in (7, 250, 499):
            body["time"] = "1980-01-01T00:00:00Z"
        items.append(event_item(n, body))
    await enqueue(store, items)
    async with running(store) as harness:
        counts = await harness.settled()
    assert counts["delivered"] == 497
    assert counts["dead_lettered"] == 3
    rows = await dead_letter_rows(store)
    assert sorted(str(r["dedup_key"]) for r in rows) == ["event:250", "event:499", "event:7"]
    assert all(str(r["pointer"]).endswith("/time") for r in rows)
    assert len(recorded_keys(harness.sim)) == 497


async def test_bulk_respects_the_rules_and_defers_repeats(store: Store) -> None:
    """2,100 events with repeats per profile+metric arrive once each, in ≤1,000-event requests."""
    items = [
        event_item(n, event_body(n % 2000, email=f"c{n % 50}@example.com")) for n in range(2100)
    ]
    # Items 2000..2099 repeat the (profile, metric, unique_id) of items 0..99 under new keys.
    await enqueue(store, items)
    async with running(store, KlaviyoSimConfig(seed=3)) as harness:
        counts = await harness.settled()
    assert counts["delivered"] == 2100
    assert len(recorded_keys(harness.sim)) == 2000
    # Several batches are in flight at once, so a repeat may wait for one more request.
    requests = harness.sim.stats()["requests"]["bulk_create_events"]
    assert set(requests) == {"202"}
    assert 3 <= requests["202"] <= 4


async def test_bulk_profile_import_job(store: Store) -> None:
    """A profile backlog goes through an import job; the one bad profile is dead-lettered."""
    items = [profile_item(n) for n in range(60)]
    items[10] = profile_item(10, {"email": "not-an-email", "first_name": "X"})
    await enqueue(store, items)
    async with running(store) as harness:
        counts = await harness.settled()
    assert counts["delivered"] == 59
    assert counts["dead_lettered"] == 1
    assert len(harness.sim.all_profiles()) == 59
    assert "bulk_import_profiles" in harness.sim.stats()["requests"]


@pytest.mark.parametrize("bulk", [False, True])
async def test_scaled_limits_cause_no_429(store: Store, bulk: bool) -> None:
    """With the same small limits on both sides, a burst meets zero 429s and fills the window."""
    from shoprelay.delivery.ratelimit import SPEC_LIMITS, EndpointLimit
    from shoprelay.sim.klaviyo import RateLimit

    sim_limits = {"create_event": RateLimit(20, 60), "bulk_create_events": RateLimit(2, 60)}
    ours = dict(SPEC_LIMITS) | {
        "create_event": EndpointLimit(20, 60),
        "bulk_create_events": EndpointLimit(2, 60),
    }
    config = dataclasses.replace(FAST, limits=ours, bulk=bulk, bulk_batch_size=10, bulk_threshold=5)
    await enqueue(store, [event_item(n) for n in range(60 if not bulk else 40)])
    async with running(store, KlaviyoSimConfig(limits=sim_limits), config) as harness:
        await harness.settled()
    stats = harness.sim.stats()
    assert stats["throttled"] == 0
    endpoint = "bulk_create_events" if bulk else "create_event"
    peak = stats["max_in_window"][endpoint]
    assert peak["burst"] == (2 if bulk else 20)
    assert len(recorded_keys(harness.sim)) == (40 if bulk else 60)


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_single_requests_in_flight_reuse_pooled_connections(store: Store) -> None:
    """32 requests in flight each record their outcome. In a pool too small for them, every
    overflow connection is closed at check-in and opened again for a later record."""
    opened: list[object] = []
    event.listen(store.engine.sync_engine, "connect", lambda *_: opened.append(1))
    await enqueue(store, [event_item(n) for n in range(400)])
    config = dataclasses.replace(FAST, bulk=False)
    async with running(store, config=config) as harness:
        counts = await harness.settled()
    assert counts["delivered"] == 400
    assert len(opened) <= store.dialect.engine_options()["pool_size"]
