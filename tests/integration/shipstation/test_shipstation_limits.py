"""The 40-per-window limit, shared keys, 429s and server errors, with a small window for speed."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from tests.integration.shipstation.harness import Account, SyncOnce, queued_events

from shoprelay.sim.shipstation import ShipStationSimConfig
from shoprelay.sources.shipstation.client import ShipStationError
from shoprelay.sources.shipstation.session import SyncOptions
from shoprelay.store.database import Store

LIMIT = 8
# A window the test fills before the sync starts: long enough that the sync's first request
# still lands in it on a stalled machine; the sync waits it out, so the test costs about this.
FILLED_WINDOW_SECONDS = 5.0


@pytest.fixture
def sim_config() -> ShipStationSimConfig:
    return ShipStationSimConfig(rate_limit=LIMIT, window_seconds=1.0)


def spread_orders(account: Account, count: int) -> None:
    now = account.clock.now()
    account.sim.create_orders(count, start=now - timedelta(days=30), end=now)


async def test_sync_never_exceeds_the_limit(account: Account, sync_once: SyncOnce) -> None:
    """A sync needing several windows of requests paces itself by the headers: no 429."""
    spread_orders(account, 1500)
    report = await sync_once(SyncOptions(page_size=100))
    assert report.requests_used > 2 * LIMIT
    assert account.sim.counters.responses.get(429, 0) == 0
    assert account.sim.window.highest <= LIMIT


@pytest.mark.parametrize(
    "sim_config",
    [ShipStationSimConfig(rate_limit=LIMIT, window_seconds=FILLED_WINDOW_SECONDS)],
    ids=["filled-window"],
)
async def test_throttled_request_waits_for_the_reset(
    store: Store, account: Account, sync_once: SyncOnce
) -> None:
    """When another app used up the window, the 429 is waited out and the sync completes."""
    spread_orders(account, 30)
    for _ in range(LIMIT):
        account.sim.window.hit(time.monotonic())
    await sync_once()
    # One 429: the first request found the window full, and the retry waited for its reset
    # (a retry before the reset would have been refused too).
    assert account.sim.counters.responses[429] == 1
    assert len(await queued_events(store)) == 30


async def test_server_errors_are_retried(
    store: Store, account: Account, sync_once: SyncOnce
) -> None:
    """500 and 503 answers are retried with backoff until one succeeds."""
    spread_orders(account, 30)
    account.sim.fail_next = [500, 503]
    await sync_once()
    assert len(await queued_events(store)) == 30


async def test_persistent_server_errors_fail_the_sync(
    account: Account, sync_once: SyncOnce
) -> None:
    """A ShipStation that keeps failing ends the sync with an error naming the endpoint."""
    account.sim.fail_next = [500] * 10
    with pytest.raises(ShipStationError, match="GET /orders"):
        await sync_once()
