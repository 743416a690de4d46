"""WriteTurns: webhook commits go before delivery's writes, and delivery still moves."""

from __future__ import annotations

import asyncio

import pytest

from shoprelay.store.writeturns import WriteTurns


async def _writer(turns: WriteTurns, name: str, urgent: bool, order: list[str]) -> None:
    async with turns.turn(urgent=urgent):
        order.append(name)
        await asyncio.sleep(0)


async def _queue_behind_holder(turns: WriteTurns, waiters: list[tuple[str, bool]]) -> list[str]:
    """Hold the lock, queue `waiters` in this order, release; the order they got it in."""
    order: list[str] = []
    release = asyncio.Event()

    async def holder() -> None:
        async with turns.turn(urgent=False):
            order.append("holder")
            await release.wait()

    tasks = [asyncio.create_task(holder())]
    await asyncio.sleep(0)
    for name, urgent in waiters:
        tasks.append(asyncio.create_task(_writer(turns, name, urgent, order)))
        await asyncio.sleep(0)
    assert turns.waiting == len(waiters)
    release.set()
    await asyncio.gather(*tasks)
    return order


async def test_an_urgent_writer_goes_before_ordinary_ones_that_queued_first() -> None:
    order = await _queue_behind_holder(
        WriteTurns(), [("claim-1", False), ("claim-2", False), ("webhooks", True)]
    )
    assert order == ["holder", "webhooks", "claim-1", "claim-2"]


async def test_after_an_urgent_turn_a_waiting_ordinary_writer_gets_the_next() -> None:
    waiters = [("claim", False), ("webhooks-1", True), ("webhooks-2", True), ("webhooks-3", True)]
    order = await _queue_behind_holder(WriteTurns(), waiters)
    assert order == ["holder", "webhooks-1", "claim", "webhooks-2", "webhooks-3"]


async def test_writers_of_one_kind_keep_their_order() -> None:
    waiters = [("a", False), ("b", False), ("c", False)]
    assert await _queue_behind_holder(WriteTurns(), waiters) == ["holder", "a", "b", "c"]


async def test_only_one_writer_holds_it_at_a_time() -> None:
    turns, inside, most = WriteTurns(), 0, 0

    async def write(urgent: bool) -> None:
        nonlocal inside, most
        async with turns.turn(urgent=urgent):
            inside += 1
            most = max(most, inside)
            await asyncio.sleep(0.001)
            inside -= 1

    await asyncio.gather(*(write(i % 3 == 0) for i in range(30)))
    assert most == 1
    assert turns.waiting == 0


async def test_a_cancelled_waiter_does_not_keep_the_lock() -> None:
    turns, order = WriteTurns(), []
    release = asyncio.Event()

    async def holder() -> None:
        async with turns.turn():
            await release.wait()

    held = asyncio.create_task(holder())
    await asyncio.sleep(0)
    cancelled = asyncio.create_task(_writer(turns, "cancelled", True, order))
    later = asyncio.create_task(_writer(turns, "later", False, order))
    await asyncio.sleep(0)
    cancelled.cancel()
    release.set()
    await asyncio.wait_for(asyncio.gather(held, later), 2)
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    assert order == ["later"]
    async with asyncio.timeout(2), turns.turn():  # free again
        pass
