"""Send one request for some claimed items: honour pauses, pace, call, classify, report."""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from shoprelay.delivery.klaviyo import KlaviyoClient, KlaviyoResponse, Reply
from shoprelay.delivery.outcome import Outcome, classify, transport_failure
from shoprelay.delivery.pauseboard import PauseBoard
from shoprelay.delivery.ratelimit import Pacer
from shoprelay.delivery.record import Recorder
from shoprelay.delivery.report import Attempt, report
from shoprelay.delivery.requests import deletion_request, event_request, profile_request
from shoprelay.store.outbox import Item

SINGLE_ENDPOINT = {
    "event": "create_event",
    "profile": "create_or_update_profile",
    "deletion": "request_profile_deletion",
}
BULK_ENDPOINT = {
    "event": "bulk_create_events",
    "profile": "bulk_import_profiles",
    "consent": "bulk_subscribe_profiles",
}
# Kinds with no single-item endpoint: one item goes as a job of one.
JOB_ONLY_KINDS = frozenset({"consent"})
# Stop sending a lease's items well before it ends, so no other worker takes them too.
SEND_WITHIN_LEASE = 0.8


@dataclass(frozen=True)
class Sent:
    """A request that went out, and what came of it."""

    outcome: Outcome
    reply: Reply


def outcome_of(reply: Reply, now: float) -> Outcome:
    """Classify a reply, including the ones that never got an HTTP status."""
    if isinstance(reply, KlaviyoResponse):
        return classify(reply.status, reply.headers, reply.body, now)
    return transport_failure(reply.reason)


class Sender:
    """The only place a request leaves for Klaviyo."""

    def __init__(
        self,
        client: KlaviyoClient,
        pacer: Pacer,
        board: PauseBoard,
        recorder: Recorder,
        clock: Callable[[], float],
    ) -> None:
        self.client = client
        self.pacer = pacer
        self.board = board
        self.recorder = recorder
        self.clock = clock

    async def send(
        self,
        endpoint: str,
        items: Sequence[Item],
        call: Callable[[], Awaitable[Reply]],
        deadline: float,
        *,
        probe: bool = False,
    ) -> Sent | None:
        """Send unless paused or out of lease time; None means the items went back unsent."""
        account = items[0].account
        if not await self._cleared(account, endpoint, items, deadline, probe):
            return None
        try:
            reply = await call()
        finally:
            self.pacer.limiter.answer(account, endpoint, self.clock())
        outcome = outcome_of(reply, self.clock())
        status = reply.status if isinstance(reply, KlaviyoResponse) else None
        ids = tuple(item.id for item in items)
        report(Attempt(account, endpoint, ids, outcome, reply.seconds, status))
        return Sent(outcome, reply)

    async def send_single(self, item: Item, deadline: float, *, probe: bool = False) -> Sent | None:
        """`POST /api/events` or `POST /api/profile-import` for one item."""
        if item.kind == "event":
            body: dict[str, Any] = event_request(item.body)
            call = self.client.create_event
        elif item.kind == "deletion":
            body = deletion_request(item.body)
            call = self.client.request_profile_deletion
        else:
            body = profile_request(item.body)
            call = self.client.import_profile
        return await self.send(
            SINGLE_ENDPOINT[item.kind], [item], lambda: call(body), deadline, probe=probe
        )

    async def _cleared(
        self, account: str, endpoint: str, items: Sequence[Item], deadline: float, probe: bool
    ) -> bool:
        """Wait for the rate limiter; give the items back if paused or past the lease deadline."""
        paused_until = None if probe else self.board.until(account, endpoint, self.clock())
        in_time = self.clock() < deadline
        if (
            in_time
            and paused_until is None
            and await self.pacer.acquire(account, endpoint, deadline)
        ):
            paused_until = None if probe else self.board.until(account, endpoint, self.clock())
            if paused_until is None:
                return True
            self.pacer.limiter.answer(account, endpoint, self.clock())
        # An open-ended (auth) pause returns items at once; the lane stops claiming meanwhile.
        finite = paused_until is not None and math.isfinite(paused_until)
        await self.recorder.release(items, paused_until if finite else None)
        return False
