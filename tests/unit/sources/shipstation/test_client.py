"""The client's pacing arithmetic: header-driven rate window with a margin, full-jitter backoff."""

from __future__ import annotations

import random

from shoprelay.sources.shipstation.client import RateWindow, ShipStationRetry


def headers(remaining: int, reset: int) -> dict[str, str]:
    return {
        "X-Rate-Limit-Limit": "40",
        "X-Rate-Limit-Remaining": str(remaining),
        "X-Rate-Limit-Reset": str(reset),
    }


def test_no_wait_while_the_window_has_room() -> None:
    """Above the margin, requests go out at once."""
    window = RateWindow(margin=2, padding=1.0)
    window.observe(headers(remaining=3, reset=20), now=100.0)
    assert window.wait_seconds(101.0) == 0.0


def test_wait_for_the_reset_at_the_margin() -> None:
    """At the margin, the next request waits for the window to reset, plus the padding."""
    window = RateWindow(margin=2, padding=1.0)
    window.observe(headers(remaining=2, reset=20), now=100.0)
    assert window.wait_seconds(105.0) == 16.0
    assert window.wait_seconds(120.0) == 0.0
    assert window.limit == 40


def test_throttled_waits_for_the_reset_or_a_minute() -> None:
    """After a 429 the wait is the header's reset; without headers, a whole minute."""
    window = RateWindow(margin=2, padding=0.5)
    assert window.throttled_seconds(0.0) == 60.0
    window.observe(headers(remaining=0, reset=7), now=10.0)
    assert window.throttled_seconds(12.0) == 5.5


def test_unreadable_headers_are_ignored() -> None:
    """A response without limit headers leaves the window as it was."""
    window = RateWindow(margin=2, padding=1.0)
    window.observe({"X-Rate-Limit-Remaining": "soon"}, now=0.0)
    assert window.remaining is None
    assert window.wait_seconds(0.0) == 0.0


def test_full_jitter_stays_under_the_capped_step() -> None:
    """Backoff delays are uniform between zero and min(cap, base·(2^n - 1)) after n failures."""
    retry = ShipStationRetry(backoff_cap=10.0)
    rng = random.Random(1)
    delays = [retry.wait(attempt + 1, rng) for attempt in range(8) for _ in range(50)]
    assert all(0 <= d <= 10.0 for d in delays)
    assert max(retry.wait(1, rng) for _ in range(50)) <= 1.0
