"""Full-jitter backoff: base·(2^n - 1), capped, never under Retry-After."""

from __future__ import annotations

import random

from shoprelay.backoff import ceiling, delay


def test_ceiling_follows_the_seed_formula() -> None:
    """The ceiling is (2^n - 1) seconds for base 1: 1, 3, 7, 15 …"""
    assert [ceiling(n, 1.0, 1000) for n in (1, 2, 3, 4)] == [1, 3, 7, 15]


def test_ceiling_is_capped_and_finite_for_huge_attempts() -> None:
    """A cap bounds the wait, even after a thousand attempts."""
    assert ceiling(1000, 1.0, 600) == 600


def test_delay_is_jittered_within_the_ceiling() -> None:
    """Full jitter: every delay is in [0, ceiling], and they differ."""
    rng = random.Random(1)
    delays = [delay(3, rng, 1.0, 600) for _ in range(200)]
    assert all(0 <= d <= 7 for d in delays)
    assert len(set(delays)) > 100


def test_delay_honours_retry_after() -> None:
    """Never less than Retry-After, whatever the draw."""
    rng = random.Random(2)
    assert all(delay(1, rng, 0.5, 600, retry_after=30) >= 30 for _ in range(200))
