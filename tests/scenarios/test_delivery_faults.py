"""Fault storms and a revoked key: everything still arrives exactly once, nothing spent in vain."""

from __future__ import annotations

import asyncio
import dataclasses
import time

import pytest
from sqlalchemy import select
from tests.integration.delivery.harness import (
    FAST,
    Harness,
    enqueue,
    event_item,
    profile_item,
    recorded_keys,
    running,
)
from tests.support.harness import eventually

from shoprelay.sim.klaviyo import KlaviyoSimConfig
from shoprelay.sim.klaviyo_faults import Faults
from shoprelay.store import pauses
from shoprelay.store.database import Store
from shoprelay.store.schema import outbox as outbox_table

STORM = KlaviyoSimConfig(
    rate_429=0.04,
    rate_500=0.04,
    rate_503=0.04,
    rate_timeout=0.02,
    timeout_seconds=1.0,
    rate_error_after_accept=0.05,
    seed=11,
)


async def attempts_spent(store: Store, status: str) -> list[int]:
    """Attempts of the items in one status."""
    query = select(outbox_table.c.attempts).where(outbox_table.c.status == status)
    async with store.read() as conn:
        return list((await conn.execute(query)).scalars())


async def wait_for_auth_pause(store: Store) -> list[pauses.Pause]:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        async with store.read() as conn:
            found = [p for p in await pauses.active_pauses(conn, time.time()) if p.reason == "auth"]
        if found:
            return found
        await asyncio.sleep(0.05)
    raise AssertionError("the account was never paused")


async def pending_count_is(harness: Harness, n: int) -> dict[str, int] | None:
    counts = await harness.counts()
    return counts if counts["pending"] == n else None


def assert_exactly_once(harness: Harness, events: int, profiles: int) -> None:
    keys = recorded_keys(harness.sim)
    assert len(keys) == events
    assert set(keys) == {("Placed Order", f"order:{n}") for n in range(events)}
    assert len(harness.sim.all_profiles()) == events + profiles


@pytest.mark.parametrize("bulk", [False, True], ids=["single", "bulk"])
async def test_fault_storm_delivers_everything_exactly_once(store: Store, bulk: bool) -> None:
    """429s, 5xx, timeouts and errors after accept: all 350 items arrive once, none dead."""
    # Batches of 25 (just over the bulk threshold) need at least 14 requests. Seed 11 draws
    # its first fault, an error after accept, on the 7th, so every run sees one.
    config = dataclasses.replace(FAST, bulk=bulk, bulk_batch_size=25)
    await enqueue(store, [event_item(n) for n in range(300)])
    await enqueue(store, [profile_item(1000 + n) for n in range(50)])
    # Bulk draws no timeout fault with this seed: a short client timeout would only let a
    # stalled request reach the simulator late, outside the window our pacing counted it in.
    timeout_seconds = 5.0 if bulk else 0.5
    async with running(store, STORM, config, timeout_seconds=timeout_seconds) as harness:
        counts = await harness.settled(within=120)
    assert counts == {
        "pending": 0,
        "in_flight": 0,
        "delivered": 350,
        "dead_lettered": 0,
        "superseded": 0,
        "erased": 0,
    }
    assert_exactly_once(harness, 300, 50)
    stats = harness.sim.stats()
    # Every 429 the simulator sent was one it injected: our pacing never exceeded a window.
    assert stats["throttled"] == stats["faults_injected"].get("rate_429", 0)
    assert stats["faults_injected"].get("rate_error_after_accept", 0) > 0


async def test_revoked_key_pauses_then_a_probe_resumes(store: Store) -> None:
    """A 401 pauses the account without spending attempts; once the key works, it resumes."""
    await enqueue(store, [event_item(n) for n in range(30)])
    async with running(store) as harness:
        harness.sim.set_faults(Faults(revoked=True))
        harness.dispatcher.wake()
        [pause] = await wait_for_auth_pause(store)
        assert pause.endpoint == pauses.ALL_ENDPOINTS
        assert pause.until is None
        await asyncio.sleep(1.0)  # several probe intervals, all refused
        assert set(await attempts_spent(store, "pending")) == {0}
        async with store.read() as conn:
            [error] = await pauses.last_errors(conn)
        assert error["status_code"] == 401
        assert "pk_" not in str(error["detail"])
        harness.sim.set_faults(Faults())
        counts = await harness.settled()
    assert counts["delivered"] == 30
    assert set(await attempts_spent(store, "delivered")) == {1}
    assert len(recorded_keys(harness.sim)) == 30
    async with store.read() as conn:
        assert await pauses.active_pauses(conn, time.time()) == []


async def test_clearing_the_pause_resumes_delivery(store: Store) -> None:
    """`shoprelay resume` deletes the pause row; the dispatcher notices and delivers."""
    config = dataclasses.replace(FAST, auth_probe_seconds=3600)
    await enqueue(store, [event_item(n) for n in range(10)])
    async with running(store, config=config) as harness:
        harness.sim.set_faults(Faults(revoked=True))
        await wait_for_auth_pause(store)
        await enqueue(store, [event_item(n) for n in range(10, 15)])
        # Requests refused with the 401 give their items back; none is delivered while paused.
        pending = await eventually(lambda: pending_count_is(harness, 15), timeout=15)
        assert pending["delivered"] == 0
        harness.sim.set_faults(Faults())
        await pauses.clear_pause(store, account="default")
        counts = await harness.settled()
    assert counts["delivered"] == 15
    assert len(recorded_keys(harness.sim)) == 15
