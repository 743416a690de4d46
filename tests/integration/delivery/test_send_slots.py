"""Klaviyo's rate limits shared by several processes on one PostgreSQL database."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import math
import time
from collections.abc import AsyncIterator

import pytest
from pydantic import SecretStr
from tests.integration.delivery.harness import (
    FAST,
    KEY,
    REVISION,
    STREAM,
    STREAM_BULK_LIMIT,
    enqueue,
    event_item,
    recorded_keys,
)

from shoprelay.delivery.dispatcher import DeliveryConfig, Dispatcher
from shoprelay.delivery.klaviyo import KlaviyoClient
from shoprelay.delivery.ratelimit import SPEC_LIMITS, EndpointLimit, steady_spacing
from shoprelay.delivery.sendslots import SharedSendSlots, shared_send_slots
from shoprelay.sim.klaviyo import KlaviyoSim, KlaviyoSimConfig, RateLimit, create_app
from shoprelay.store import outbox
from shoprelay.store.database import Store
from shoprelay.web.serving import serving

BURST = 3
EVENTS = 24


def require_postgresql(store: Store) -> None:
    if store.backend != "postgresql":
        pytest.skip("SQLite runs a single process by design: nothing to share")


@contextlib.asynccontextmanager
async def two_processes(
    stores: list[Store], sim_config: KlaviyoSimConfig, config: DeliveryConfig
) -> AsyncIterator[KlaviyoSim]:
    """One simulator; a dispatcher with its own store and client per simulated process."""
    app = create_app(sim_config)
    async with serving(app) as base_url:
        clients = [KlaviyoClient(base_url, SecretStr(KEY), REVISION) for _ in stores]
        stop = asyncio.Event()
        tasks = [
            asyncio.create_task(Dispatcher(s, c, config, owner=f"process-{n}").run(stop))
            for n, (s, c) in enumerate(zip(stores, clients, strict=True))
        ]
        try:
            yield app.state.sim
        finally:
            stop.set()
            await asyncio.wait_for(asyncio.gather(*tasks), timeout=15)
            for client in clients:
                await client.close()


async def settled(store: Store, within: float = 60.0) -> dict[str, int]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while loop.time() < deadline:
        async with store.read() as conn:
            found = await outbox.counts(conn)
        if found["pending"] == 0 and found["in_flight"] == 0:
            return found
        await asyncio.sleep(0.1)
    raise AssertionError(f"delivery did not settle: {found}")


async def test_two_processes_share_the_burst_limit(store: Store, database_url: str) -> None:
    """Two dispatchers on one database stay within one account's limit together: no 429."""
    require_postgresql(store)
    # Our burst window is half a second longer than the simulator's, so a loop stalled on this
    # loaded machine cannot push a request into the next window: sharing is what is tested.
    limits = dict(SPEC_LIMITS) | {"create_event": EndpointLimit(BURST, 1000, burst_seconds=1.5)}
    # Few in flight per process, so that both processes claim a share of the backlog.
    config = dataclasses.replace(FAST, limits=limits, bulk=False, max_in_flight=2)
    sim_config = KlaviyoSimConfig(limits={"create_event": RateLimit(BURST, 1000)})
    await enqueue(store, [event_item(n) for n in range(EVENTS)])
    other = await Store.open(database_url)
    try:
        async with two_processes([store, other], sim_config, config) as sim:
            counts = await settled(store)
    finally:
        await other.close()
    stats = sim.stats()
    assert counts["delivered"] == EVENTS
    assert len(recorded_keys(sim)) == EVENTS
    assert stats["throttled"] == 0
    assert stats["max_in_window"]["create_event"]["burst"] <= BURST


async def test_two_processes_share_the_steady_limit(store: Store, database_url: str) -> None:
    """Slots taken by one process count against the other, and free again a window later."""
    require_postgresql(store)
    limits = {"create_event": EndpointLimit(100, 3)}
    other = await Store.open(database_url)
    try:
        slots = [SharedSendSlots(store, limits), SharedSendSlots(other, limits)]
        waits = [await slots[n % 2].take("default", "create_event", 1000.0) for n in range(5)]
        later = await slots[1].take("default", "create_event", 1000.0 + 61.5)
    finally:
        await other.close()
    assert [wait == 0 for wait in waits] == [True, True, True, False, False]
    assert all(60 < wait < 62 for wait in waits[3:])
    assert later == 0


async def test_sqlite_has_no_shared_send_slots(store: Store) -> None:
    """Only PostgreSQL shares send slots; SQLite's one process paces in memory."""
    slots = shared_send_slots(store, dict(SPEC_LIMITS))
    assert (slots is None) == (store.backend == "sqlite")


async def test_two_processes_take_turns_at_a_streams_partial_batches(
    store: Store, database_url: str
) -> None:
    """Each process alone sends a bulk batch that is not full at most once per steady spacing;
    two doing so would send twice as many, spend the steady window early and then wait out
    the rest of it. They take turns: together, one such batch per spacing."""
    require_postgresql(store)
    other = await Store.open(database_url)
    try:
        async with two_processes([store, other], KlaviyoSimConfig(), STREAM) as sim:
            started = time.monotonic()
            for commit in range(100):
                await enqueue(store, [event_item(10 * commit + n) for n in range(10)])
                await asyncio.sleep(0.05)
            streamed = time.monotonic() - started
            counts = await settled(store, within=10.0)
    finally:
        await other.close()
    assert counts["delivered"] == 1000
    assert len(set(recorded_keys(sim))) == 1000
    requests = sim.stats()["requests"]["bulk_create_events"]["202"]
    assert requests <= math.ceil(streamed / steady_spacing(STREAM_BULK_LIMIT)) + 2


async def test_the_turn_passes_between_processes_and_leaves_send_slots_alone(
    store: Store, database_url: str
) -> None:
    require_postgresql(store)
    limits = {"bulk_create_events": EndpointLimit(100, 1)}
    other = await Store.open(database_url)
    try:
        slots = [SharedSendSlots(store, limits), SharedSendSlots(other, limits)]
        first = await slots[0].take_turn("default", "bulk_create_events", 5.0, 1000.0)
        second = await slots[1].take_turn("default", "bulk_create_events", 5.0, 1001.0)
        # Taken for long: its row must not count as a busy send slot.
        later = await slots[1].take_turn("default", "bulk_create_events", 500.0, 1005.0)
        elsewhere = await slots[1].take_turn("other", "bulk_create_events", 5.0, 1001.0)
        # The turn is not a send slot: the one steady slot is free, then busy a window.
        sent = await slots[0].take("default", "bulk_create_events", 1005.0)
        waits = await slots[1].take("default", "bulk_create_events", 1005.0)
    finally:
        await other.close()
    assert (first, elsewhere, later, sent) == (0, 0, 0, 0)
    assert second == pytest.approx(4.0)
    assert 60 < waits < 62
