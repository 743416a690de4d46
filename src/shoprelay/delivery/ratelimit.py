"""Burst and steady windows per (account, endpoint): pure arithmetic, plus a sleeping wrapper.

Klaviyo counts requests in fixed windows whose edges we cannot see. A sliding window of the
same length never holds fewer requests than any fixed window inside it, so pacing to a sliding
window (counting each request until its response, plus a small margin) causes no 429.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from shoprelay.delivery.outcome import Quota

SAFETY_FRACTION = 0.02
SAFETY_SECONDS = 0.05  # the least extra length: 2 % of one second is less than loop jitter
IN_FLIGHT_POLL_SECONDS = 0.01


@dataclass(frozen=True)
class EndpointLimit:
    """Requests allowed per 1-second burst window and per 60-second steady window."""

    burst: int
    steady: int
    burst_seconds: float = 1.0
    steady_seconds: float = 60.0


# From the spec's `x-klaviyo-ratelimit`, keyed by operationId (our endpoint names).
SPEC_LIMITS = {
    "create_event": EndpointLimit(350, 3500),
    "bulk_create_events": EndpointLimit(10, 150),
    "create_or_update_profile": EndpointLimit(75, 750),
    "bulk_import_profiles": EndpointLimit(10, 150),
    "get_bulk_import_profiles_job": EndpointLimit(10, 150),
    "get_errors_for_bulk_import_profiles_job": EndpointLimit(10, 150),
    "bulk_subscribe_profiles": EndpointLimit(75, 750),
    "bulk_unsubscribe_profiles": EndpointLimit(75, 750),
    "request_profile_deletion": EndpointLimit(3, 60),
}


def padded(seconds: float) -> float:
    """A window length with the safety margin added."""
    return max(seconds * (1 + SAFETY_FRACTION), seconds + SAFETY_SECONDS)


def steady_spacing(limit: EndpointLimit) -> float:
    """The mean time between requests that the steady window allows without ever filling."""
    return padded(limit.steady_seconds) / limit.steady


class SlidingWindow:
    """At most `limit` requests in any interval of `seconds`, wherever Klaviyo saw them.

    Klaviyo counts a request when it arrives, somewhere between our send and its response.
    So a request holds its place from the send until `seconds` after its response.
    """

    def __init__(self, limit: int, seconds: float) -> None:
        self.limit = limit
        self.seconds = seconds
        self.in_flight = 0
        self.answered: deque[float] = deque()

    def wait(self, now: float) -> float:
        """Seconds until one more request fits (a short poll while all places are in flight)."""
        while self.answered and self.answered[0] <= now - self.seconds:
            self.answered.popleft()
        free = self.limit - self.in_flight - len(self.answered)
        if free > 0:
            return 0.0
        # The (1 - free)-th oldest answer must leave the window; unanswered ones never do.
        leaving = -free
        if leaving >= len(self.answered):
            return IN_FLIGHT_POLL_SECONDS
        return self.answered[leaving] + self.seconds - now

    def record(self) -> None:
        self.in_flight += 1

    def used(self, now: float) -> int:
        """Places taken now: requests in flight and answers still inside the window."""
        return self.in_flight + sum(1 for at in self.answered if at > now - self.seconds)

    def answer(self, now: float) -> None:
        """The response to one in-flight request came back at `now`."""
        self.in_flight = max(0, self.in_flight - 1)
        self.answered.append(now)


class EndpointPace:
    """Both windows of one (account, endpoint), and a hold from Klaviyo's own counters."""

    def __init__(self, limit: EndpointLimit) -> None:
        self.windows = (
            SlidingWindow(limit.burst, padded(limit.burst_seconds)),
            SlidingWindow(limit.steady, padded(limit.steady_seconds)),
        )
        self.hold_until = 0.0

    def acquire(self, now: float) -> float:
        """0 and the request is counted, or the seconds to wait before asking again."""
        wait = max(self.hold_until - now, *(window.wait(now) for window in self.windows))
        if wait > 0:
            return wait
        for window in self.windows:
            window.record()
        return 0.0

    def answer(self, now: float) -> None:
        for window in self.windows:
            window.answer(now)

    def cancel(self) -> None:
        """A request counted by `acquire` will not be sent after all: give its place back."""
        for window in self.windows:
            window.in_flight = max(0, window.in_flight - 1)


@dataclass(frozen=True)
class EndpointUse:
    """How much of one endpoint's budget this process holds now, for the dashboard."""

    account: str
    endpoint: str
    burst_used: int
    burst_limit: int
    steady_used: int
    steady_limit: int
    held_until: float | None  # a 429's Retry-After or an exhausted quota, if still ahead

    def as_json(self) -> dict[str, object]:
        return {
            "account": self.account,
            "endpoint": self.endpoint,
            "burst": {"used": self.burst_used, "limit": self.burst_limit},
            "steady": {"used": self.steady_used, "limit": self.steady_limit},
            "held_until": self.held_until,
        }


class RateLimiter:
    """Pacing for every (account, endpoint) this process sends to."""

    def __init__(self, limits: dict[str, EndpointLimit] | None = None) -> None:
        self.limits = SPEC_LIMITS if limits is None else limits
        self.paces: dict[tuple[str, str], EndpointPace] = {}

    def pace(self, account: str, endpoint: str) -> EndpointPace:
        key = (account, endpoint)
        if key not in self.paces:
            self.paces[key] = EndpointPace(self.limits[endpoint])
        return self.paces[key]

    def acquire(self, account: str, endpoint: str, now: float) -> float:
        """0 when a request may go now (and it is counted); else how long to wait."""
        return self.pace(account, endpoint).acquire(now)

    def answer(self, account: str, endpoint: str, now: float) -> None:
        """A request counted by `acquire` got its response (or was never sent) at `now`."""
        self.pace(account, endpoint).answer(now)

    def cancel(self, account: str, endpoint: str) -> None:
        """A request counted by `acquire` was refused elsewhere and is not sent."""
        self.pace(account, endpoint).cancel()

    def hold(self, account: str, endpoint: str, until: float) -> None:
        """Send nothing to this endpoint before `until` (a 429, or an exhausted quota)."""
        pace = self.pace(account, endpoint)
        pace.hold_until = max(pace.hold_until, until)

    def usage(self, now: float) -> list[EndpointUse]:
        """Each paced endpoint's windows as they stand at `now`."""
        found = []
        for (account, endpoint), pace in sorted(self.paces.items()):
            burst, steady = pace.windows
            held = pace.hold_until if pace.hold_until > now else None
            found.append(
                EndpointUse(
                    account,
                    endpoint,
                    burst.used(now),
                    burst.limit,
                    steady.used(now),
                    steady.limit,
                    held,
                )
            )
        return found

    def observe(self, account: str, endpoint: str, quota: Quota | None) -> None:
        """Another tool on the account may share the quota: when none is left, wait for reset."""
        if quota is not None and quota.remaining <= 0:
            self.hold(account, endpoint, quota.reset_at)


class SendSlots(Protocol):
    """Send slots shared with other processes (sendslots.py): 0 or the seconds to wait."""

    async def take(self, account: str, endpoint: str, now: float) -> float: ...


class Pacer:
    """The async face of a RateLimiter: sleeps until a request may go.

    The in-process windows answer first and cheaply; shared send slots, if any, are asked
    only for a request they would let go.
    """

    def __init__(
        self,
        limiter: RateLimiter,
        clock: Callable[[], float],
        send_slots: SendSlots | None = None,
    ) -> None:
        self.limiter = limiter
        self.clock = clock
        self.send_slots = send_slots

    async def acquire(self, account: str, endpoint: str, deadline: float | None = None) -> bool:
        """Wait for a slot; False if it would come after `deadline` (nothing is counted then)."""
        while True:
            now = self.clock()
            wait = self.limiter.acquire(account, endpoint, now)
            if wait <= 0 and self.send_slots is not None:
                wait = await self._take_send_slot(self.send_slots, account, endpoint, now)
            if wait <= 0:
                return True
            if deadline is not None and now + wait > deadline:
                return False
            await asyncio.sleep(wait)

    async def _take_send_slot(
        self, send_slots: SendSlots, account: str, endpoint: str, now: float
    ) -> float:
        wait = 1.0
        try:
            wait = await send_slots.take(account, endpoint, now)
        finally:
            if wait > 0:
                self.limiter.cancel(account, endpoint)
        return wait
