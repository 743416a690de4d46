"""Claim → send → record: the delivery loop over every lane, with pauses and auth probes."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import structlog

from shoprelay.delivery.bulk import BulkDelivery, JobPolling
from shoprelay.delivery.klaviyo import KlaviyoClient
from shoprelay.delivery.lane import Lane, LaneSettings, LaneWorkers
from shoprelay.delivery.outcome import PauseAccount, RetryLater
from shoprelay.delivery.pauseboard import PauseBoard
from shoprelay.delivery.ratelimit import (
    SPEC_LIMITS,
    EndpointLimit,
    Pacer,
    RateLimiter,
    steady_spacing,
)
from shoprelay.delivery.record import DeliveryRetry, Recorder
from shoprelay.delivery.report import LANE_RESTARTS, report_fault, report_pause
from shoprelay.delivery.sender import BULK_ENDPOINT, SEND_WITHIN_LEASE, SINGLE_ENDPOINT, Sender
from shoprelay.delivery.sendslots import shared_send_slots
from shoprelay.store import outbox, pauses
from shoprelay.store.database import Store

if TYPE_CHECKING:
    from shoprelay.config import Settings

log = structlog.get_logger("shoprelay.delivery")


@dataclass(frozen=True)
class DeliveryConfig:
    """Everything delivery needs to know, built from Settings or directly in tests."""

    max_attempts: int = 8
    max_age_seconds: float = 72 * 3600
    backoff_base_seconds: float = 1.0
    backoff_cap_seconds: float = 600.0
    lease_seconds: float = 60.0
    auth_probe_seconds: float = 60.0
    bulk: bool = True
    bulk_threshold: int = 20
    bulk_batch_size: int = 1000
    # A batch's claim, send and record take over a second on PostgreSQL, and Klaviyo allows
    # 2.5 bulk requests a second (150/min): two batches in flight left the quota a third unused.
    bulk_batches_in_flight: int = 4
    max_in_flight: int = 32
    poll_seconds: float = 0.5
    job_poll_seconds: float = 0.5
    # Klaviyo may queue an import job for minutes; past this its items spend an attempt.
    job_timeout_seconds: float = 900.0
    stop_grace_seconds: float = 5.0
    list_id: str | None = None  # KLAVIYO_LIST_ID
    limits: dict[str, EndpointLimit] = field(default_factory=lambda: dict(SPEC_LIMITS))

    @classmethod
    def from_settings(cls, settings: Settings) -> DeliveryConfig:
        return cls(
            max_attempts=settings.DELIVERY_MAX_ATTEMPTS,
            max_age_seconds=settings.DELIVERY_MAX_AGE_SECONDS,
            backoff_base_seconds=settings.DELIVERY_BACKOFF_BASE_SECONDS,
            backoff_cap_seconds=settings.DELIVERY_BACKOFF_CAP_SECONDS,
            lease_seconds=settings.DELIVERY_LEASE_SECONDS,
            auth_probe_seconds=settings.DELIVERY_AUTH_PROBE_SECONDS,
            bulk=settings.KLAVIYO_BULK,
            bulk_threshold=settings.KLAVIYO_BULK_THRESHOLD,
            list_id=settings.KLAVIYO_LIST_ID or None,
        )

    def retry(self) -> DeliveryRetry:
        return DeliveryRetry(
            self.max_attempts,
            self.max_age_seconds,
            self.backoff_base_seconds,
            self.backoff_cap_seconds,
        )

    def lane_settings(self, owner: str, kind: str) -> LaneSettings:
        return LaneSettings(
            owner=owner,
            # A kind without a bulk endpoint (deletion jobs) goes one request an item.
            bulk_spacing_seconds=steady_spacing(
                self.limits[BULK_ENDPOINT.get(kind) or SINGLE_ENDPOINT[kind]]
            ),
            lease_seconds=self.lease_seconds,
            poll_seconds=self.poll_seconds,
            bulk=self.bulk and kind in BULK_ENDPOINT,
            bulk_threshold=self.bulk_threshold,
            bulk_batch_size=self.bulk_batch_size,
            bulk_batches_in_flight=self.bulk_batches_in_flight,
            max_in_flight=self.max_in_flight,
            stop_grace_seconds=self.stop_grace_seconds,
        )


KINDS = ("event", "profile", "deletion")


class Dispatcher:
    """Delivers the outbox to Klaviyo: one Lane per (account, kind), sharing one rate limiter."""

    def __init__(
        self,
        store: Store,
        client: KlaviyoClient,
        config: DeliveryConfig,
        *,
        owner: str,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> None:
        self.store = store
        self.config = config
        self.owner = owner
        self.clock = clock
        self.board = PauseBoard()
        self.limiter = RateLimiter(config.limits)
        self.send_slots = shared_send_slots(store, config.limits)
        pacer = Pacer(self.limiter, clock, self.send_slots)
        rng = rng or random.Random()  # noqa: S311 - jitter, not security
        self.recorder = Recorder(store, config.retry(), self.board, self.limiter, clock, rng)
        self.sender = Sender(client, pacer, self.board, self.recorder, clock)
        polling = JobPolling(
            config.job_poll_seconds, config.lease_seconds, config.job_timeout_seconds
        )
        bulk = BulkDelivery(
            client, self.sender, pacer, self.recorder, polling, list_id=config.list_id
        )
        self.workers = LaneWorkers(self.sender, bulk, self.recorder, self.board)
        self.attempt_limits = outbox.AttemptLimits(config.max_attempts, config.max_age_seconds)
        self.lanes: dict[tuple[str, str], Lane] = {}
        self.lane_tasks: dict[tuple[str, str], asyncio.Task[None]] = {}
        self.next_probe: dict[str, float] = {}
        self._wakeup = asyncio.Event()

    def wake(self, lanes: Collection[tuple[str, str]] | None = None) -> None:
        """New items were committed (to `lanes`, or anywhere): look for work now."""
        for key, lane in self.lanes.items():
            if lanes is None or key in lanes:
                lane.fed()
        # Only a lane not yet running needs the main loop: under load every commit wakes us,
        # and the main loop's reads (lanes, pauses) are not worth repeating per commit.
        if lanes is None or any(key not in self.lanes for key in lanes):
            self._wakeup.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Deliver until `stop` is set."""
        next_reclaim = 0.0
        while not stop.is_set():
            self._forget_ended_lanes()
            try:
                if self.clock() >= next_reclaim:
                    await outbox.reclaim_expired(self.store, self.clock(), self.attempt_limits)
                    next_reclaim = self.clock() + self.config.lease_seconds / 4
                await self._refresh_pauses()
                await self._probe_paused_accounts()
                await self._start_new_lanes(stop)
            except Exception:
                # A database that is briefly away must not end delivery for good.
                report_fault("dispatcher")
            await self._idle(stop)
        await asyncio.gather(*self.lane_tasks.values(), return_exceptions=True)

    def _forget_ended_lanes(self) -> None:
        """A lane survives its errors, so one that ended was cancelled or hit a bug: forget
        it, and the next look for work starts it again if it has items."""
        for key, task in list(self.lane_tasks.items()):
            if not task.done():
                continue
            del self.lane_tasks[key], self.lanes[key]
            LANE_RESTARTS.inc()
            error = None if task.cancelled() else task.exception()
            log.error(
                "delivery.lane_ended",
                account=key[0],
                kind=key[1],
                error=type(error).__name__ if error else "cancelled",
            )

    async def _start_new_lanes(self, stop: asyncio.Event) -> None:
        async with self.store.read() as conn:
            found = await outbox.lanes(conn)
        for account, kind in found:
            if (account, kind) in self.lanes:
                continue
            lane = Lane(
                account,
                kind,
                self.store,
                self.config.lane_settings(self.owner, kind),
                self.workers,
                clock=self.clock,
                turns=self.send_slots,
            )
            self.lanes[(account, kind)] = lane
            self.lane_tasks[(account, kind)] = asyncio.create_task(
                lane.run(stop), name=f"lane {account}/{kind}"
            )

    async def _refresh_pauses(self) -> None:
        """Re-read the shared pauses: others may have set one, or `shoprelay resume` lifted one."""
        read_started = self.clock()
        async with self.store.read() as conn:
            rows = await pauses.active_pauses(conn, read_started)
        for account, endpoint in self.board.refresh(rows, read_started):
            if endpoint == pauses.ALL_ENDPOINTS:
                report_pause(account, endpoint, "cleared", paused=False)
                self.wake()
        paused = set(self.board.paused_accounts())
        self.next_probe = {a: t for a, t in self.next_probe.items() if a in paused}
        for account in paused:
            self.next_probe.setdefault(account, read_started + self.config.auth_probe_seconds)

    async def _probe_paused_accounts(self) -> None:
        for account, due in list(self.next_probe.items()):
            if self.clock() >= due:
                self.next_probe[account] = self.clock() + self.config.auth_probe_seconds
                await self._probe(account)

    async def _probe(self, account: str) -> None:
        """Send one item with the paused key; if it gets through, resume the account."""
        for kind in KINDS:
            items = await outbox.claim(
                self.store,
                account=account,
                kind=kind,
                limit=1,
                owner=self.owner,
                now=self.clock(),
                lease_seconds=self.config.lease_seconds,
            )
            if items:
                break
        else:
            return
        deadline = self.clock() + SEND_WITHIN_LEASE * self.config.lease_seconds
        sent = await self.sender.send_single(items[0], deadline, probe=True)
        if sent is None:
            return
        key_works = not isinstance(sent.outcome, RetryLater | PauseAccount)
        if key_works and self.board.account_paused(account):
            await self.recorder.resume_account(account)
            self.wake()
        await self.recorder.apply(SINGLE_ENDPOINT[items[0].kind], items, sent.outcome)

    async def _idle(self, stop: asyncio.Event) -> None:
        waiters = [asyncio.ensure_future(e.wait()) for e in (self._wakeup, stop)]
        await asyncio.wait(
            waiters, timeout=self.config.poll_seconds, return_when=asyncio.FIRST_COMPLETED
        )
        for waiter in waiters:
            waiter.cancel()
        self._wakeup.clear()
