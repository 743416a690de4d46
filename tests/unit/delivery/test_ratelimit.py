"""Sliding burst and steady windows: no fixed window is ever exceeded, and ≥95 % is used."""

from __future__ import annotations

import bisect
import heapq
import random

import pytest

from shoprelay.delivery.outcome import Quota
from shoprelay.delivery.ratelimit import EndpointLimit, RateLimiter, SlidingWindow


def drive(limiter: RateLimiter, endpoint: str, seconds: float, latency: float = 0.0) -> list[float]:
    """Send as fast as the limiter allows for `seconds` of simulated time.

    Each request arrives at Klaviyo at a random point of its round trip; returns arrival times.
    """
    rng = random.Random(5)
    now, arrived, answers = 0.0, [], []
    while now < seconds:
        while answers and answers[0] <= now:
            limiter.answer("a", endpoint, heapq.heappop(answers))
        wait = limiter.acquire("a", endpoint, now)
        if wait == 0:
            arrived.append(now + rng.uniform(0, latency))
            heapq.heappush(answers, now + latency)
        else:
            now += min(wait, answers[0] - now) if answers else wait
    return sorted(arrived)


def most_in_any_window(sent: list[float], length: float) -> int:
    """The most requests in any fixed window of `length`, whatever its start."""
    return max(bisect.bisect_left(sent, t + length) - i for i, t in enumerate(sent))


def test_sliding_window_waits_for_the_oldest_request() -> None:
    """When full, the wait is until the oldest request leaves the window."""
    window = SlidingWindow(2, 1.0)
    window.record()
    window.answer(0.0)
    window.record()
    window.answer(0.5)
    assert window.wait(0.6) == pytest.approx(0.4)
    assert window.wait(1.0) == 0.0


def test_events_never_exceed_either_window_and_use_the_ceiling() -> None:
    """Five simulated minutes of create_event: ≤350 in any second, ≤3500 in any minute, ≥95 %."""
    sent = drive(RateLimiter(), "create_event", 300.0)
    assert most_in_any_window(sent, 1.0) <= 350
    assert most_in_any_window(sent, 60.0) <= 3500
    assert len(sent) >= 0.95 * 3500 * 5


def test_arrival_anywhere_in_the_round_trip_never_exceeds_a_window() -> None:
    """With 300 ms round trips, arrivals still fit every window, and ≥95 % of the steady limit."""
    sent = drive(RateLimiter(), "create_event", 300.0, latency=0.3)
    assert most_in_any_window(sent, 1.0) <= 350
    assert most_in_any_window(sent, 60.0) <= 3500
    assert len(sent) >= 0.95 * 3500 * 5


def test_a_request_in_flight_holds_its_place() -> None:
    """Until answered, a request counts: a full burst window waits for an answer."""
    limiter = RateLimiter({"create_event": EndpointLimit(1, 10)})
    assert limiter.acquire("a", "create_event", 0.0) == 0.0
    assert limiter.acquire("a", "create_event", 5.0) > 0
    limiter.answer("a", "create_event", 5.0)
    assert limiter.acquire("a", "create_event", 5.5) > 0
    assert limiter.acquire("a", "create_event", 6.1) == 0.0


def test_bulk_endpoint_windows() -> None:
    """Bulk create: ≤10 per second, ≤150 per minute, ≥95 % of 150/min."""
    sent = drive(RateLimiter(), "bulk_create_events", 600.0)
    assert most_in_any_window(sent, 1.0) <= 10
    assert most_in_any_window(sent, 60.0) <= 150
    assert len(sent) >= 0.95 * 150 * 10


def test_scaled_limits() -> None:
    """Custom limits apply per endpoint, with window lengths of their own."""
    limiter = RateLimiter({"create_event": EndpointLimit(5, 20, 1.0, 10.0)})
    sent = drive(limiter, "create_event", 100.0)
    assert most_in_any_window(sent, 1.0) <= 5
    assert most_in_any_window(sent, 10.0) <= 20
    assert len(sent) >= 0.95 * 20 * 10


def test_exhausted_quota_waits_for_reset() -> None:
    """RateLimit-Remaining 0 (another tool used the quota) holds until Reset."""
    limiter = RateLimiter()
    limiter.observe("a", "create_event", Quota(remaining=0, reset_at=40.0))
    assert limiter.acquire("a", "create_event", 10.0) == 30.0
    assert limiter.acquire("a", "create_event", 40.0) == 0.0


def test_remaining_quota_does_not_hold() -> None:
    """A quota with room left changes nothing."""
    limiter = RateLimiter()
    limiter.observe("a", "create_event", Quota(remaining=5, reset_at=40.0))
    assert limiter.acquire("a", "create_event", 10.0) == 0.0


def test_hold_after_429_applies_to_one_endpoint_of_one_account() -> None:
    """A hold pauses that (account, endpoint) only."""
    limiter = RateLimiter()
    limiter.hold("a", "create_event", 5.0)
    assert limiter.acquire("a", "create_event", 1.0) == 4.0
    assert limiter.acquire("b", "create_event", 1.0) == 0.0
    assert limiter.acquire("a", "create_or_update_profile", 1.0) == 0.0
