"""One lane, (account, kind): claim batches and keep several requests in flight."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from shoprelay.delivery.bulk import BulkDelivery
from shoprelay.delivery.pauseboard import PauseBoard
from shoprelay.delivery.record import Recorder
from shoprelay.delivery.report import LANES_FAILING, report_fault
from shoprelay.delivery.sender import (
    BULK_ENDPOINT,
    JOB_ONLY_KINDS,
    SEND_WITHIN_LEASE,
    SINGLE_ENDPOINT,
    Sender,
)
from shoprelay.store import outbox
from shoprelay.store.database import Store
from shoprelay.store.outbox import Item

# A lane fed by a commit this recently has a stream still arriving: webhooks are coming in.
FEEDING_SECONDS = 1.0
# After a round fails (the database away, a bug), wait before the next, doubling to this.
MAX_FAULT_PAUSE_SECONDS = 30.0
# Ids remembered to be sent alone after their batch's send failed; past it, batches as usual.
MAX_SEND_ALONE = 10_000
MAX_FAULT_DOUBLINGS = 16  # past the cap already; a float would overflow after 1,024
# A lane this many rounds failed in a row counts as failing, for /readyz: one blip does not.
FAILING_AFTER_FAULTS = 3


@dataclass(frozen=True)
class LaneSettings:
    """How a lane claims and how much it keeps in flight."""

    owner: str
    # The least time between two bulk batches that are not full: the steady window's pace.
    bulk_spacing_seconds: float
    lease_seconds: float
    poll_seconds: float
    bulk: bool
    bulk_threshold: int
    bulk_batch_size: int
    bulk_batches_in_flight: int
    max_in_flight: int
    stop_grace_seconds: float


class BatchTurns(Protocol):
    """Turns to send a bulk batch that is not full, shared by every process of an account."""

    async def take_turn(self, account: str, endpoint: str, seconds: float, now: float) -> float:
        """0 when this process may send one now and no other for `seconds`; else the wait."""
        ...


@dataclass(frozen=True)
class LaneWorkers:
    """What every lane shares: who sends, who records, and who knows the pauses."""

    sender: Sender
    bulk: BulkDelivery
    recorder: Recorder
    board: PauseBoard


class Lane:
    """Claims the lane's ready items and hands them to single or bulk delivery."""

    def __init__(
        self,
        account: str,
        kind: str,
        store: Store,
        settings: LaneSettings,
        workers: LaneWorkers,
        *,
        clock: Callable[[], float],
        turns: BatchTurns | None = None,
    ) -> None:
        self.account = account
        self.kind = kind
        self.store = store
        self.settings = settings
        self.sender, self.bulk = workers.sender, workers.bulk
        self.recorder, self.board = workers.recorder, workers.board
        self.clock = clock
        self.wakeup = asyncio.Event()
        self.slots = asyncio.Semaphore(settings.max_in_flight)
        self.claimed = 0
        self.singles = 0  # of `claimed`, the items going out one request each
        self.single_done = asyncio.Event()
        self.tasks: set[asyncio.Task[None]] = set()
        self.partial_batch_after = 0.0  # before this, only a full bulk batch is claimed
        self.next_bulk_at = 0.0  # while fed, no claim before this: bulk at the steady pace
        self.fed_at = float("-inf")
        self.turns = turns
        self.faults = 0  # rounds failed in a row
        self.send_alone: set[int] = set()  # ids of items whose batch's send failed

    @property
    def max_claimed(self) -> int:
        """Leased but unsettled items allowed at once: two rounds of single requests, or
        enough bulk batches to keep Klaviyo's bulk rate busy while each one is recorded."""
        rounds = 2 * self.settings.max_in_flight
        if not self.settings.bulk:
            return rounds
        return max(self.settings.bulk_batches_in_flight * self.settings.bulk_batch_size, rounds)

    @property
    def failing(self) -> bool:
        return self.faults >= FAILING_AFTER_FAULTS

    async def run(self, stop: asyncio.Event) -> None:
        """Claim and dispatch until `stop`; then let in-flight work finish for a short grace.

        No error ends the lane: a failed round is reported, and the next one comes after a
        pause that grows while the failures go on.
        """
        try:
            while not stop.is_set():
                try:
                    await self._round(stop)
                except Exception:
                    await self._after_fault(stop)
                else:
                    self._recovered()
        finally:
            self._recovered()
            await self._drain()

    async def _round(self, stop: asyncio.Event) -> None:
        """One claim, or one wait: for a pause, a pace, a turn or new items."""
        if self.board.account_paused(self.account) or self.claimed >= self.max_claimed:
            await self._idle()
            return
        if (paced := self._paced_for()) > 0:
            await self._wait_unless_stopped(paced, stop)
            return
        items = await self._claim()
        if items and (wait := await self._turn_for(items)) > 0:
            await self._give_back(items, wait)
        elif items:
            self._dispatch(items)
        elif (spacing := self.partial_batch_after - self.clock()) > 0:
            await self._wait_unless_stopped(spacing, stop)
        elif self._singles_busy():
            await self._gather()
        else:
            await self._idle()

    async def _after_fault(self, stop: asyncio.Event) -> None:
        was_failing = self.failing
        self.faults += 1
        report_fault("lane", account=self.account, kind=self.kind)
        if self.failing and not was_failing:
            LANES_FAILING.inc()
        doublings = min(self.faults - 1, MAX_FAULT_DOUBLINGS)
        pause = min(self.settings.poll_seconds * 2**doublings, MAX_FAULT_PAUSE_SECONDS)
        await self._wait_unless_stopped(pause, stop)

    def _recovered(self) -> None:
        if self.failing:
            LANES_FAILING.dec()
        self.faults = 0

    def fed(self) -> None:
        """A commit added items to this lane."""
        self.fed_at = self.clock()
        self.wakeup.set()

    def _paced_for(self) -> float:
        """0, or how long to wait before claiming: while webhooks keep arriving, bulk batches,
        full ones too, go at most once per steady spacing.

        The receivers share these cores with delivery, and a webhook's acknowledgement is
        waited for; a delivery is not. Klaviyo's burst window would let a backlog go at four
        times the steady pace for a while, and the minute's window no more than its 150
        requests: at the steady pace those still all go within the minute. When nothing has
        been committed for a second, a backlog goes at the burst pace again.
        """
        now = self.clock()
        if not self.settings.bulk or now - self.fed_at > FEEDING_SECONDS:
            return 0.0
        return self.next_bulk_at - now

    def _singles_busy(self) -> bool:
        """With bulk on, every single request is taken: only a bulk batch is worth claiming.

        Under a steady stream, each commit wakes the lane with a few new items. Claimed at
        once they would queue as single requests, capped at Klaviyo's single-event rate;
        left to gather, they go out as one bulk batch. A backlog still goes in bulk at once,
        even while the single requests wait out their rate limit.
        """
        return self.settings.bulk and self.singles >= self.settings.max_in_flight

    async def _claim(self) -> list[Item]:
        limit = self.settings.bulk_batch_size if self.settings.bulk else self.settings.max_in_flight
        return await outbox.claim(
            self.store,
            account=self.account,
            kind=self.kind,
            limit=min(limit, self.max_claimed - self.claimed),
            owner=self.settings.owner,
            now=self.clock(),
            lease_seconds=self.settings.lease_seconds,
            at_least=self._at_least(),
        )

    def _at_least(self) -> int:
        if self.settings.bulk and self.clock() < self.partial_batch_after:
            return self.settings.bulk_batch_size
        return self.settings.bulk_threshold + 1 if self._singles_busy() else 1

    def _partial_bulk(self, count: int) -> bool:
        """Whether `count` claimed items go out as a bulk batch that is not full."""
        settings = self.settings
        return settings.bulk and settings.bulk_threshold < count < settings.bulk_batch_size

    async def _turn_for(self, items: Sequence[Item]) -> float:
        """0, or how long until `items` may go as a bulk batch that is not full.

        Each process sends such a batch at most once per steady spacing; several processes
        delivering for one account would together send one each, and spend the steady window
        early. On PostgreSQL they take turns instead.
        """
        if self.turns is None or not self._partial_bulk(len(items)):
            return 0.0
        endpoint, now = BULK_ENDPOINT[self.kind], self.clock()
        try:
            return await self.turns.take_turn(
                self.account, endpoint, self.settings.bulk_spacing_seconds, now
            )
        except Exception:
            # Send anyway: the shared send slots still keep every process within the limits.
            report_fault("turn", account=self.account, kind=self.kind)
            return 0.0

    async def _give_back(self, items: Sequence[Item], wait: float) -> None:
        """Another process has the turn: return the items and gather until ours."""
        now = self.clock()
        self.partial_batch_after = now + wait
        await outbox.release(self.store, items, available_at=now)

    def _dispatch(self, items: list[Item]) -> None:
        now = self.clock()
        deadline = now + SEND_WITHIN_LEASE * self.settings.lease_seconds
        if alone := self.send_alone & {item.id for item in items}:
            self.send_alone -= alone
            for item in items:
                if item.id in alone:
                    self._start([item], self._deliver_single(item, deadline), single=True)
            items = [item for item in items if item.id not in alone]
        if self.kind in JOB_ONLY_KINDS:
            self._start(items, self.bulk.send_subscriptions(items, deadline))
            # While webhooks stream in, a job per commit would spend the steady window early.
            self.next_bulk_at = now + self.settings.bulk_spacing_seconds
            return
        if self.settings.bulk and len(items) > self.settings.bulk_threshold:
            send_bulk = self.bulk.send_events if self.kind == "event" else self.bulk.send_profiles
            self._start(items, send_bulk(items, deadline))
            self.next_bulk_at = now + self.settings.bulk_spacing_seconds
            if self._partial_bulk(len(items)):
                self.partial_batch_after = now + self.settings.bulk_spacing_seconds
            return
        for item in items:
            self._start([item], self._deliver_single(item, deadline), single=True)

    async def _deliver_single(self, item: Item, deadline: float) -> None:
        async with self.slots:
            if item.kind in JOB_ONLY_KINDS:
                await self.bulk.send_subscriptions([item], deadline)
                return
            sent = await self.sender.send_single(item, deadline)
            if sent is not None:
                await self.recorder.apply(SINGLE_ENDPOINT[item.kind], [item], sent.outcome)

    def _start(self, items: Sequence[Item], work: Awaitable[None], *, single: bool = False) -> None:
        self.claimed += len(items)
        self.singles += single
        task = asyncio.create_task(self._guard(items, work, single))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _guard(self, items: Sequence[Item], work: Awaitable[None], single: bool) -> None:
        """Run one unit of work. If it fails, its items not yet settled are retried later,
        their claim's attempt spent: an item that makes sending fail runs out of attempts."""
        try:
            await work
        except asyncio.CancelledError:
            # Stopped mid-send (shutdown): back to the queue with the attempt given back, not
            # left to a lease that expires and spends it.
            with contextlib.suppress(Exception):
                await asyncio.shield(self.recorder.release(items))
            raise
        except Exception as exc:
            report_fault("send", account=self.account, kind=self.kind)
            if len(items) > 1 and len(self.send_alone) < MAX_SEND_ALONE:
                # One bad item must not spend its batch-mates' attempts: next time each goes
                # alone, and only the one that fails again runs out of attempts.
                self.send_alone.update(item.id for item in items)
            with contextlib.suppress(Exception):
                # If the store is what failed, the leases expire and are taken back instead.
                await self.recorder.retry(items, f"the sender failed: {type(exc).__name__}", None)
        finally:
            was_full = self.claimed >= self.max_claimed or self._singles_busy()
            self.claimed -= len(items)
            self.singles -= single
            if single:
                self.single_done.set()
            if was_full:
                self.wakeup.set()

    async def _gather(self) -> None:
        """Too few items for a batch, every single request busy: let a poll's worth of commits
        gather, rather than look again (a write transaction) on each commit's wake-up."""
        self.single_done.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.single_done.wait(), self.settings.poll_seconds)
        self.wakeup.clear()

    async def _wait_unless_stopped(self, seconds: float, stop: asyncio.Event) -> None:
        """Wait, deaf to commits' wake-ups: for a pace, or after a failed round.

        While a stream runs, this lets it fill the next bulk batch. Klaviyo allows 10 bulk
        requests a second but 150 a minute. Sent as each few commits arrive, a stream's small
        batches would spend the minute's requests early and then wait out the rest of it,
        delivering a fraction of the ceiling. One partial batch per steady-window spacing
        never fills the window; a backlog's full batches go at once.
        """
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), seconds)

    async def _idle(self) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.wakeup.wait(), self.settings.poll_seconds)
        self.wakeup.clear()

    async def _drain(self) -> None:
        if not self.tasks:
            return
        _, pending = await asyncio.wait(self.tasks, timeout=self.settings.stop_grace_seconds)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
