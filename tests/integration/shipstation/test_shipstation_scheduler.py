"""`serve`'s ShipStation schedule: refused credentials pause it, and it resumes by itself."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from pydantic import SecretStr
from tests.integration.shipstation.harness import Account, queued_events
from tests.support.harness import eventually

from shoprelay.config import Settings
from shoprelay.sources.shipstation.poll import run_scheduler
from shoprelay.sources.shipstation.status import shipstation_status
from shoprelay.store.database import Store

INTERVAL = 0.1  # seconds between syncs and between credential checks


async def test_refused_credentials_are_checked_again_until_they_work(
    store: Store, account: Account
) -> None:
    """After a 401 the scheduler keeps the error in status, re-checks, and syncs once accepted."""
    sim = account.sim
    account.clock.set(datetime.now(UTC))  # the scheduler syncs up to the real now
    sim.create_order()
    accepted_secret = sim.config.api_secret
    sim.config.api_secret = "rotated-secret"  # the sync's secret is refused now
    settings = Settings(
        SHIPSTATION_API_URL=account.url,
        SHIPSTATION_API_KEY=SecretStr(sim.config.api_key),
        SHIPSTATION_API_SECRET=SecretStr(accepted_secret),
        SHIPSTATION_POLL_INTERVAL=INTERVAL,
    )

    async def status() -> dict[str, object]:
        async with store.read() as conn:
            return await shipstation_status(conn)

    async def checked_twice() -> bool:
        return sim.counters.requests["/stores"] >= 2

    async def synced() -> bool:
        return len(await queued_events(store)) == 1 and (await status())["last_error"] is None

    stop = asyncio.Event()
    scheduler = asyncio.create_task(run_scheduler(store, settings, stop))
    try:
        await eventually(checked_twice)
        assert (await status())["last_error"]["kind"] == "auth"  # type: ignore[index]
        assert sim.counters.responses[401] >= 3  # the sync, then each check
        sim.config.api_secret = accepted_secret
        await eventually(synced)
    finally:
        stop.set()
        await scheduler
