"""Delivery heals itself: a store call that fails, or a lane that ends, never stops delivery."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.exc import OperationalError
from tests.integration.delivery.harness import (
    FAST,
    STREAM,
    enqueue,
    event_body,
    event_item,
    recorded_keys,
    running,
)
from tests.support.harness import eventually

from shoprelay.delivery.report import FAULTS, LANE_RESTARTS
from shoprelay.sim.klaviyo import KlaviyoSimConfig
from shoprelay.store import outbox
from shoprelay.store.database import Store
from shoprelay.store.schema import dead_letters
from shoprelay.store.schema import outbox as outbox_table

EVENTS = 60
# Short leases: an item whose outcome could not be written is taken back within the test.
# In bulk, partial batches wait for their turn and are given back (a release) meanwhile;
# one by one, the simulator's 503s are retried (a schedule_retry) request by request.
BULK = dataclasses.replace(STREAM, lease_seconds=2.0, max_attempts=50)
SINGLE = dataclasses.replace(BULK, bulk=False)


class FailingCall:
    """A store call that raises the first `times` times, as a database that went away does."""

    def __init__(self, real: Callable[..., Awaitable[Any]], times: int) -> None:
        self.real = real
        self.left = times

    async def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self.left > 0:
            self.left -= 1
            raise OperationalError("UPDATE outbox", {}, ConnectionError("server closed"))
        return await self.real(*args, **kwargs)


class TurnsAfterAWait:
    """Another process has the first turns: a partial batch is given back before it goes."""

    def __init__(self, refusals: int) -> None:
        self.refusals = refusals

    async def take_turn(self, account: str, endpoint: str, seconds: float, now: float) -> float:
        if self.refusals > 0:
            self.refusals -= 1
            return 0.2
        return 0.0


def faults(where: str) -> float:
    return FAULTS.labels(where)._value.get()


@pytest.mark.parametrize(
    "call", ["claim", "release", "mark_delivered", "schedule_retry", "dead_letter"]
)
async def test_delivery_resumes_after_each_store_call_of_a_lane_fails(
    store: Store, monkeypatch: pytest.MonkeyPatch, call: str
) -> None:
    """Each store call a lane makes fails three times; every event still reaches Klaviyo
    exactly once, and the refused one is dead-lettered."""
    failing = FailingCall(getattr(outbox, call), times=3)
    monkeypatch.setattr(outbox, call, failing)
    refused = event_body(EVENTS)
    refused["profile"]["data"]["attributes"]["phone_number"] = "12345"  # Klaviyo answers 400
    await enqueue(store, [event_item(n) for n in range(EVENTS)] + [event_item(EVENTS, refused)])
    lane_faults_before = faults("lane") + faults("send")
    sim_config = KlaviyoSimConfig(rate_503=0.3)
    async with running(store, sim_config, BULK if call == "release" else SINGLE) as harness:
        harness.dispatcher.send_slots = TurnsAfterAWait(refusals=3)  # before any lane starts
        counts = await harness.settled(within=90)
    assert failing.left == 0, f"{call} was never called three times"
    assert (counts["delivered"], counts["dead_lettered"]) == (EVENTS, 1)
    keys = recorded_keys(harness.sim)
    assert sorted(keys) == sorted(("Placed Order", f"order:{n}") for n in range(EVENTS))
    if call in {"claim", "release"}:
        assert faults("lane") + faults("send") > lane_faults_before


async def test_a_lane_that_ends_is_started_again(store: Store) -> None:
    """Whatever ends a lane's task, the dispatcher starts the lane again and counts it."""
    restarts = LANE_RESTARTS._value.get()
    async with running(store, config=FAST) as harness:
        await enqueue(store, [event_item(n) for n in range(3)])
        harness.dispatcher.wake()
        await harness.settled()
        (task,) = harness.dispatcher.lane_tasks.values()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await enqueue(store, [event_item(n) for n in range(3, 6)])
        harness.dispatcher.wake()
        await harness.settled()
        assert harness.dispatcher.lane_tasks[("default", "event")] is not task
    assert LANE_RESTARTS._value.get() == restarts + 1
    assert len(recorded_keys(harness.sim)) == 6


async def test_a_send_cut_off_by_shutdown_goes_back_with_its_attempt(store: Store) -> None:
    """Stopping while requests hang: their items return to the queue at once with the attempt
    given back, not left under a lease that would expire and spend it (a deploy is not a
    failed delivery)."""
    await enqueue(store, [event_item(n) for n in range(3)])
    hanging = KlaviyoSimConfig(rate_slow=1.0, slow_seconds=3.0)
    quick_stop = dataclasses.replace(FAST, stop_grace_seconds=0.2, bulk=False)
    async with running(store, hanging, quick_stop) as harness:
        harness.dispatcher.wake()
        await eventually(lambda: _in_flight(harness), timeout=10)
    async with store.read() as conn:
        counts = await outbox.counts(conn)
        attempts = (await conn.execute(select(outbox_table.c.attempts))).scalars().all()
    assert (counts["pending"], counts["in_flight"]) == (3, 0)
    assert set(attempts) == {0}


async def _in_flight(harness: Any) -> bool:
    return bool((await harness.counts())["in_flight"] == 3)


async def test_an_item_that_breaks_its_batch_costs_only_its_own_attempts(store: Store) -> None:
    """An item whose body makes sending raise fails its whole bulk batch once; then each item
    of the batch goes alone, so the others are delivered and only it runs out of attempts."""
    broken = {"unique_id": "order:30"}  # no profile: packing it into a bulk job raises
    await enqueue(store, [event_item(n) for n in range(30)] + [event_item(30, broken)])
    config = dataclasses.replace(SINGLE, bulk=True, max_attempts=3)
    async with running(store, config=config) as harness:
        counts = await harness.settled(within=60)
    assert (counts["delivered"], counts["dead_lettered"]) == (30, 1)
    assert len(recorded_keys(harness.sim)) == 30
    async with store.read() as conn:
        delivered = select(outbox_table.c.attempts).where(outbox_table.c.status == "delivered")
        attempts = (await conn.execute(delivered)).scalars().all()
        (reason,) = (await conn.execute(select(dead_letters.c.reason))).scalars().all()
    assert max(attempts) == 2  # the failed batch, then alone
    assert reason.startswith("400")  # alone, Klaviyo itself refuses it
