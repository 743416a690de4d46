"""Full-jitter exponential backoff, for every retry shoprelay makes (pure: the random source
is an argument)."""

from __future__ import annotations

import random

# 2**60 seconds is far past any cap; clamping keeps the float arithmetic finite.
_MAX_EXPONENT = 60


def ceiling(attempt: int, base: float, cap: float) -> float:
    """The longest wait after `attempt` failures: base·(2^n - 1), capped."""
    exponent = min(max(attempt, 1), _MAX_EXPONENT)
    return min(cap, base * float(2**exponent - 1))


def delay(
    attempt: int,
    rng: random.Random,
    base: float,
    cap: float,
    retry_after: float | None = None,
) -> float:
    """Seconds to wait before the next try; never less than the server's Retry-After."""
    jittered = rng.uniform(0.0, ceiling(attempt, base, cap))
    if retry_after is None:
        return jittered
    # Spread the waiters over one base interval so they do not all return at the same instant.
    return max(jittered, retry_after + rng.uniform(0.0, base))
