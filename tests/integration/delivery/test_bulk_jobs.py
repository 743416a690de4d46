"""Bulk batches in flight and import jobs slower than the lease, on both store dialects."""

from __future__ import annotations

import asyncio
import dataclasses
import math
import time

import pytest
from sqlalchemy import select
from tests.integration.delivery.harness import (
    FAST,
    STREAM,
    STREAM_BULK_LIMIT,
    Harness,
    enqueue,
    event_item,
    profile_item,
    recorded_keys,
    running,
)
from tests.support.harness import eventually

from shoprelay.delivery import bulk
from shoprelay.delivery.ratelimit import EndpointLimit, steady_spacing
from shoprelay.delivery.requests import BulkRequest
from shoprelay.sim.klaviyo import KlaviyoSimConfig
from shoprelay.store.database import Store
from shoprelay.store.schema import dead_letters, outbox

# A lease short enough that an import job outlives it three times over, long enough that a
# stalled lease extension on a loaded machine does not let it lapse.
SHORT_LEASE = dataclasses.replace(FAST, lease_seconds=2.0, job_poll_seconds=0.1)


async def test_an_import_job_slower_than_the_lease_is_submitted_once(store: Store) -> None:
    """Items stay leased while a slow job runs: one job, every profile delivered once."""
    await enqueue(store, [profile_item(n) for n in range(60)])
    sim_config = KlaviyoSimConfig(bulk_job_delay_seconds=6.0)
    async with running(store, sim_config, SHORT_LEASE) as harness:
        counts = await harness.settled(within=30.0)
    assert counts["delivered"] == 60
    assert harness.sim.stats()["requests"]["bulk_import_profiles"] == {"202": 1}
    assert len(harness.sim.all_profiles()) == 60


async def test_an_import_job_past_its_timeout_spends_attempts_then_dead_letters(
    store: Store,
) -> None:
    """A job that outlasts the job timeout goes through retries, and is dead-lettered at the end."""
    await enqueue(store, [profile_item(n) for n in range(30)])
    # The lease outlasts the job timeout, so only the timeout ends each attempt.
    config = dataclasses.replace(
        SHORT_LEASE, lease_seconds=10.0, max_attempts=2, job_timeout_seconds=1.5
    )
    sim_config = KlaviyoSimConfig(bulk_job_delay_seconds=60.0)
    async with running(store, sim_config, config) as harness:
        counts = await harness.settled(within=30.0)
    assert counts["dead_lettered"] == 30
    assert harness.sim.stats()["requests"]["bulk_import_profiles"] == {"202": 2}
    async with store.read() as conn:
        attempts = (await conn.execute(select(outbox.c.attempts))).scalars().all()
        reasons = (await conn.execute(select(dead_letters.c.reason))).scalars().all()
    assert set(attempts) == {2}
    assert all("import job did not complete in time" in reason for reason in reasons)


async def test_a_backlog_keeps_four_bulk_batches_in_flight(store: Store) -> None:
    """While Klaviyo answers slowly, a lane has four bulk requests out at once, not two."""
    config = dataclasses.replace(FAST, bulk_batch_size=10, bulk_threshold=5, max_in_flight=2)
    await enqueue(store, [event_item(n) for n in range(40)])
    # Every request waits 1.5 s after it is counted, so all in flight share one burst window.
    sim_config = KlaviyoSimConfig(rate_slow=1.0, slow_seconds=1.5)
    async with running(store, sim_config, config) as harness:
        counts = await harness.settled()
    assert counts["delivered"] == 40
    assert harness.sim.stats()["max_in_window"]["bulk_create_events"]["burst"] == 4


async def test_a_stream_that_outruns_single_requests_goes_out_in_bulk(store: Store) -> None:
    """Items committed a few at a time gather while single requests are busy, then go in bulk."""
    config = dataclasses.replace(FAST, bulk_batch_size=50, bulk_threshold=5, max_in_flight=2)
    # Each single request takes a second, far longer than the stream's commits are apart.
    sim_config = KlaviyoSimConfig(rate_slow=1.0, slow_seconds=1.0)
    async with running(store, sim_config, config) as harness:
        for commit in range(40):
            await enqueue(store, [event_item(2 * commit), event_item(2 * commit + 1)])
            harness.dispatcher.wake()
            await asyncio.sleep(0.02)
        counts = await harness.settled()
    assert counts["delivered"] == 80
    assert sorted(recorded_keys(harness.sim)) == sorted(
        ("Placed Order", f"order:{n}") for n in range(80)
    )
    requests = harness.sim.stats()["requests"]
    # Claimed as they came, all 80 would have gone singly, two at a time.
    assert requests["bulk_create_events"]["202"] >= 1
    assert requests["create_event"]["202"] < 40


async def test_a_stream_of_bulk_batches_is_paced_to_the_steady_window(store: Store) -> None:
    """Small batches sent as commits arrive would spend the steady window's requests in its
    first second and then wait out the rest of it; paced, the stream never waits."""
    async with running(store, config=STREAM) as harness:
        started = time.monotonic()
        for commit in range(100):
            await enqueue(store, [event_item(10 * commit + n) for n in range(10)])
            harness.dispatcher.wake()
            await asyncio.sleep(0.02)
        streamed = time.monotonic() - started
        # Unpaced, the eleventh request would wait for the first to leave the 10 s window.
        counts = await harness.settled(within=5.0)
    assert counts["delivered"] == 1000
    assert sorted(recorded_keys(harness.sim)) == sorted(
        ("Placed Order", f"order:{n}") for n in range(1000)
    )
    requests = harness.sim.stats()["requests"]["bulk_create_events"]["202"]
    assert requests <= math.ceil(streamed / steady_spacing(STREAM_BULK_LIMIT)) + 2


# Full batches of 10, and a burst window that alone would let them go ten a second.
FULL_BATCHES = dataclasses.replace(
    FAST,
    bulk_batch_size=10,
    bulk_threshold=5,
    limits=dict(FAST.limits)
    | {"bulk_create_events": EndpointLimit(burst=10, steady=60, steady_seconds=60.0)},
)


def _bulk_requests(harness: Harness) -> int:
    return harness.sim.stats()["requests"].get("bulk_create_events", {}).get("202", 0)


async def test_full_batches_go_at_the_steady_pace_while_webhooks_arrive(store: Store) -> None:
    """While commits keep feeding a lane, even full batches go once per steady spacing (1 s
    here): the receivers, sharing the cores, come first. Once the stream stops, what it left
    goes at the burst pace, and nothing is lost."""
    async with running(store, config=FULL_BATCHES) as harness:
        started = time.monotonic()
        for commit in range(30):  # a full batch every 0.1 s for 3 s
            await enqueue(store, [event_item(10 * commit + n) for n in range(10)])
            harness.dispatcher.wake()
            await asyncio.sleep(0.1)
        streamed, during = time.monotonic() - started, _bulk_requests(harness)
        counts = await harness.settled(within=30.0)
    # Unpaced, the burst window would have let each batch go as it came: about 30.
    assert during <= math.ceil(streamed) + 2
    assert counts["delivered"] == 300
    assert len(recorded_keys(harness.sim)) == 300


async def test_a_backlog_with_nothing_arriving_goes_at_the_burst_pace(store: Store) -> None:
    """Queued before delivery starts and fed by no commit, ten full batches go within the
    burst window, not one a second."""
    await enqueue(store, [event_item(n) for n in range(100)])
    async with running(store, config=FULL_BATCHES) as harness:
        started = time.monotonic()
        counts = await harness.settled(within=30.0)
        took = time.monotonic() - started
    assert counts["delivered"] == 100
    assert _bulk_requests(harness) == 10
    assert took < 5.0  # paced at the steady spacing, ten requests take 9 s
    assert harness.sim.stats()["max_in_window"]["bulk_create_events"]["burst"] >= 5


async def test_a_backlog_goes_in_bulk_while_single_requests_wait_out_their_limit(
    store: Store,
) -> None:
    """Single requests stuck behind their steady window do not hold back a bulk batch."""
    limits = dict(FAST.limits) | {"create_event": EndpointLimit(burst=2, steady=2)}
    # A lease long enough that the waiting single requests keep their items, as by default.
    config = dataclasses.replace(
        FAST,
        bulk_batch_size=50,
        bulk_threshold=5,
        max_in_flight=2,
        limits=limits,
        lease_seconds=180.0,
    )
    async with running(store, config=config) as harness:
        # Four trickles: two spend the single requests' burst, two then wait about a minute for it.
        for n in range(4):
            await enqueue(store, [event_item(n)])
            harness.dispatcher.wake()
            await asyncio.sleep(0.3)
        await enqueue(store, [event_item(n) for n in range(4, 44)])
        harness.dispatcher.wake()
        await eventually(lambda: len(recorded_keys(harness.sim)) >= 42, timeout=15, interval=0.1)
    requests = harness.sim.stats()["requests"]
    assert requests["create_event"]["202"] == 2
    assert requests["bulk_create_events"]["202"] >= 1


async def test_an_import_error_no_item_can_be_matched_to_is_found_one_by_one(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Klaviyo reports a failed profile we cannot match to an item (no pointer we know, a
    payload echoed changed): the batch's items go again one by one, so the bad one is
    dead-lettered and the others land, instead of the batch going round for ever."""
    monkeypatch.setattr(BulkRequest, "items_at", lambda self, pointer: ())
    monkeypatch.setattr(bulk, "_by_payload", lambda items, attributes: ())
    good = [profile_item(n) for n in range(30)]
    nobody = profile_item(30, {"first_name": "Nobody"})  # no identifier: an import error
    await enqueue(store, [*good, nobody])
    async with running(store, config=SHORT_LEASE) as harness:
        counts = await harness.settled(within=30.0)
    assert (counts["delivered"], counts["dead_lettered"]) == (30, 1)
    requests = harness.sim.stats()["requests"]
    assert requests["bulk_import_profiles"] == {"202": 1}
    assert requests["create_or_update_profile"].get("400") == 1
    assert len(harness.sim.all_profiles()) == 30
