"""Turns at SQLite's one write lock: an acknowledgement waits behind at most one other write."""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator


class WriteTurns:
    """An asyncio lock where urgent writers (webhook commits) go first, but not always.

    A webhook's 200 waits for its commit, while delivery's claims and records can wait a few
    milliseconds unharmed. In plain FIFO order a commit could queue behind every delivery batch
    in flight. Urgent waiters go first, except that after an urgent turn a waiting ordinary
    writer gets the next one: under a stream of webhooks delivery still moves.
    """

    def __init__(self) -> None:
        self._held = False
        self._urgent: deque[asyncio.Future[None]] = deque()
        self._ordinary: deque[asyncio.Future[None]] = deque()
        self._last_was_urgent = False

    @contextlib.asynccontextmanager
    async def turn(self, *, urgent: bool = False) -> AsyncIterator[None]:
        """Hold the lock for the block."""
        await self._acquire(urgent)
        try:
            yield
        finally:
            self._release()

    @property
    def waiting(self) -> int:
        return sum(not f.done() for f in (*self._urgent, *self._ordinary))

    async def _acquire(self, urgent: bool) -> None:
        # A release that finds no live waiter empties both queues before freeing the lock.
        if not self._held:
            self._held = True
            self._last_was_urgent = urgent
            return
        turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        (self._urgent if urgent else self._ordinary).append(turn)
        try:
            await turn
        except asyncio.CancelledError:
            if turn.done() and not turn.cancelled():
                self._release()  # handed the lock as we were cancelled: pass it on
            raise

    def _release(self) -> None:
        first, second = (self._urgent, self._ordinary)
        if self._last_was_urgent and any(not f.done() for f in self._ordinary):
            first, second = second, first
        for queue in (first, second):
            while queue:
                turn = queue.popleft()
                if not turn.done():
                    turn.set_result(None)  # the lock passes on without being free in between
                    self._last_was_urgent = queue is self._urgent
                    return
        self._held = False
