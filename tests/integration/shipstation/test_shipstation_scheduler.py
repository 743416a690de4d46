"""`serve`'s ShipStation schedule: refused credentials pause it, and it resumes by itself."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import SecretStr
from structlog.testing import capture_logs
from tests.integration.shipstation.harness import Account, queued_events
from tests.support.harness import eventually

from shoprelay.config import Settings
from shoprelay.sources.shipstation import poll
from shoprelay.sources.shipstation.poll import run_scheduler
from shoprelay.sources.shipstation.session import SyncOptions
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


async def test_a_report_that_cannot_be_saved_is_logged_and_the_schedule_goes_on(
    store: Store, account: Account, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first sync's summary write fails: a warning says so, and the next sync still runs."""
    account.clock.set(datetime.now(UTC))
    account.sim.create_order()
    settings = Settings(
        SHIPSTATION_API_URL=account.url,
        SHIPSTATION_API_KEY=SecretStr(account.sim.config.api_key),
        SHIPSTATION_API_SECRET=SecretStr(account.sim.config.api_secret),
        SHIPSTATION_POLL_INTERVAL=INTERVAL,
    )
    update_report, failures = poll._update_report, []

    async def first_summary_fails(store: Store, options: SyncOptions, **values: Any) -> None:
        if "finished_at" in values and not failures:
            failures.append(values)
            raise ConnectionResetError("the database went away")
        await update_report(store, options, **values)

    async def finished() -> bool:
        async with store.read() as conn:
            return (await shipstation_status(conn))["last_sync_finished_at"] is not None

    monkeypatch.setattr(poll, "_update_report", first_summary_fails)
    stop = asyncio.Event()
    with capture_logs() as logged:
        scheduler = asyncio.create_task(run_scheduler(store, settings, stop))
        try:
            await eventually(finished)
            assert not scheduler.done()
        finally:
            stop.set()
            await scheduler
    assert len(failures) == 1
    assert len(await queued_events(store)) == 1  # the failed write lost no event
    warnings = [entry for entry in logged if entry["event"] == "shipstation.report_not_saved"]
    # Ids only: neither the summary's values nor anything of an order.
    assert warnings == [
        {
            "event": "shipstation.report_not_saved",
            "log_level": "warning",
            "account": "default",
            "exc_info": True,
        }
    ]
