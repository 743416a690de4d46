"""Fixed-window rate limiting per (account, operation), as Klaviyo counts it."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from shoprelay.sim.klaviyo_config import RateLimit

BURST_SECONDS = 1.0
STEADY_SECONDS = 60.0


@dataclass
class FixedWindow:
    """A counter that restarts when its window has elapsed; the window opens on first use."""

    seconds: float
    started: float = -math.inf
    count: int = 0
    highest: int = 0

    def hit(self, now: float) -> int:
        """Count one request at `now` and return the count in the current window."""
        if now - self.started >= self.seconds:
            self.started, self.count = now, 0
        self.count += 1
        self.highest = max(self.highest, self.count)
        return self.count

    def reset_in(self, now: float) -> float:
        """Seconds until this window restarts."""
        return max(0.0, self.started + self.seconds - now)


@dataclass
class OperationWindows:
    """The burst and steady windows of one (account, operation)."""

    burst: FixedWindow = field(default_factory=lambda: FixedWindow(BURST_SECONDS))
    steady: FixedWindow = field(default_factory=lambda: FixedWindow(STEADY_SECONDS))


@dataclass(frozen=True)
class Admission:
    """The limiter's answer for one request: allowed or not, and the headers to send."""

    allowed: bool
    retry_after: int
    limit: int
    remaining: int
    reset: int

    def headers(self) -> dict[str, str]:
        """RateLimit-* headers describing the steady window (sent on non-429 responses)."""
        return {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(self.reset),
        }


class RateLimiter:
    """Counts every request that reaches it; throttled ones count too, as they used the window."""

    def __init__(self) -> None:
        self.windows: dict[tuple[str, str], OperationWindows] = {}

    def admit(self, account: str, operation_id: str, limit: RateLimit, now: float) -> Admission:
        """Count a request at `now` and say whether it is within both windows."""
        windows = self.windows.setdefault((account, operation_id), OperationWindows())
        in_burst = windows.burst.hit(now)
        in_steady = windows.steady.hit(now)
        blocking = [
            window.reset_in(now)
            for window, count, allowed in (
                (windows.burst, in_burst, limit.burst),
                (windows.steady, in_steady, limit.steady),
            )
            if count > allowed
        ]
        return Admission(
            allowed=not blocking,
            retry_after=max(1, math.ceil(max(blocking, default=0.0))),
            limit=limit.steady,
            remaining=max(0, limit.steady - in_steady),
            reset=math.ceil(windows.steady.reset_in(now)),
        )

    def highest_counts(self) -> dict[str, dict[str, int]]:
        """The most requests seen in any burst and any steady window, per operation."""
        highest: dict[str, dict[str, int]] = {}
        for (_account, operation_id), windows in self.windows.items():
            seen = highest.setdefault(operation_id, {"burst": 0, "steady": 0})
            seen["burst"] = max(seen["burst"], windows.burst.highest)
            seen["steady"] = max(seen["steady"], windows.steady.highest)
        return highest
