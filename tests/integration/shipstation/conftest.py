"""Fixtures: the ShipStation simulator on a real socket, and one-call syncs into the store."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from tests.integration.shipstation.harness import START, TEST_LIMIT, Account, SyncOnce

from shoprelay.sim.shipstation import ShipStationSimConfig, SimClock, create_app
from shoprelay.sources.shipstation.poll import run_sync
from shoprelay.sources.shipstation.session import SyncOptions, SyncReport
from shoprelay.store.database import Store
from shoprelay.web.serving import serving


@pytest.fixture
def sim_config() -> ShipStationSimConfig:
    return TEST_LIMIT


@pytest.fixture
def sim_clock() -> SimClock:
    return SimClock(START)


@pytest.fixture
async def account(sim_config: ShipStationSimConfig, sim_clock: SimClock) -> AsyncIterator[Account]:
    app = create_app(sim_config, sim_clock)
    async with serving(app) as url:
        yield Account(app.state.sim, url, sim_clock)


@pytest.fixture
def sync_once(store: Store, account: Account) -> SyncOnce:
    """Run one sync of the account into the store, as `shoprelay shipstation sync` does."""

    async def run(options: SyncOptions | None = None, **kwargs: Any) -> SyncReport:
        async with account.client() as client:
            return await run_sync(
                store, client, options or SyncOptions(), clock=account.clock.now, **kwargs
            )

    return run
