"""Wake-ups from receivers to the delivery process, through a real pipe."""

from __future__ import annotations

import asyncio
import os
import select
from collections.abc import Iterator

import pytest

from shoprelay.delivery.wakeups import Lanes, WakeSender, listen


@pytest.fixture
def pipe() -> Iterator[tuple[int, int]]:
    reader, writer = os.pipe()
    yield reader, writer
    os.close(reader)
    os.close(writer)


async def woken_by(reader: int) -> list[Lanes | None]:
    """What `listen` passes on once it has read what was sent."""
    woken: list[Lanes | None] = []
    arrived = asyncio.Event()

    def wake(lanes: Lanes | None) -> None:
        woken.append(lanes)
        arrived.set()

    stop = listen(reader, wake)
    try:
        await asyncio.wait_for(arrived.wait(), timeout=5)
    finally:
        stop()
    return woken


async def test_the_lanes_of_several_commits_wake_once_together(pipe: tuple[int, int]) -> None:
    reader, writer = pipe
    sender = WakeSender(writer)
    sender(frozenset({("default", "event")}))
    sender(frozenset({("default", "profile"), ("default", "event")}))
    sender(frozenset({("eu-store", "event")}))
    woken = await woken_by(reader)
    assert woken == [{("default", "event"), ("default", "profile"), ("eu-store", "event")}]


async def test_a_list_too_long_to_write_whole_wakes_every_lane(pipe: tuple[int, int]) -> None:
    reader, writer = pipe
    many = frozenset((f"account-{n:04d}", "event") for n in range(select.PIPE_BUF // 10))
    WakeSender(writer)(many)
    assert await woken_by(reader) == [None]


async def test_a_full_pipe_drops_the_hint_without_blocking_the_receiver(
    pipe: tuple[int, int],
) -> None:
    reader, writer = pipe
    sender = WakeSender(writer)
    os.set_blocking(writer, False)
    while True:  # fill the pipe as a busy delivery process would leave it
        try:
            os.write(writer, b"x" * 4096)
        except BlockingIOError:
            break
    sender(frozenset({("default", "event")}))  # neither blocks nor raises
    leftover = 0
    os.set_blocking(reader, False)
    while True:
        try:
            leftover += len(os.read(reader, 65_536))
        except BlockingIOError:
            break
    assert leftover % 4096 == 0  # nothing partial was written after the filler
