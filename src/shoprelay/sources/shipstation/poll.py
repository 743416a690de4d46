"""Run a ShipStation sync under the account's lease, and run one on `serve`'s schedule."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import structlog

from shoprelay.config import Settings
from shoprelay.errors import ShoprelayError, SourceAuthError
from shoprelay.mapping.values import sortable_utc
from shoprelay.sources.shipstation.backfill import new_plan, run_backfill
from shoprelay.sources.shipstation.client import ShipStationClient
from shoprelay.sources.shipstation.session import SyncOptions, SyncReport, SyncSession
from shoprelay.sources.shipstation.sync import run_incremental
from shoprelay.store.cursors import get_cursor, put_cursor
from shoprelay.store.database import Store
from shoprelay.store.leases import release_lease, try_lease

log = structlog.get_logger(__name__)


class SyncBusy(ShoprelayError):
    """Another process is syncing this ShipStation account right now."""


def utc_now() -> datetime:
    return datetime.now(UTC)


def options_from_settings(settings: Settings, *, backfill_days: int | None = None) -> SyncOptions:
    days = settings.SHIPSTATION_BACKFILL_DAYS if backfill_days is None else backfill_days
    return SyncOptions(
        backfill_days=days,
        poll_interval=settings.SHIPSTATION_POLL_INTERVAL,
        currency=settings.SHIPSTATION_CURRENCY,
    )


def client_from_settings(settings: Settings) -> ShipStationClient:
    """A client for the configured account; raises ConfigError-like text if it is not set."""
    key, secret = settings.SHIPSTATION_API_KEY, settings.SHIPSTATION_API_SECRET
    if key is None or secret is None:
        raise ShoprelayError("ShipStation is not configured: set SHIPSTATION_API_KEY and _SECRET")
    return ShipStationClient(
        settings.SHIPSTATION_API_URL, key.get_secret_value(), secret.get_secret_value()
    )


async def _update_report(store: Store, options: SyncOptions, **values: Any) -> None:
    async with store.transaction() as conn:
        report = await get_cursor(conn, options.report_name) or {}
        await put_cursor(store, conn, options.report_name, report | values, time.time())


def _rate_window(client: ShipStationClient) -> dict[str, Any]:
    window = client.rate_window
    return {
        "limit": window.limit,
        "remaining": window.remaining,
        "reset_seconds": round(window.seconds_to_reset(time.monotonic()), 1),
        "observed_at": sortable_utc(utc_now()),
    }


async def _sync(session: SyncSession) -> None:
    cursor, options = session.cursor, session.options
    if cursor.get("phase") is None:
        cursor.update(phase="backfill", backfill=new_plan(session.clock(), options.backfill_days))
    if cursor["phase"] == "backfill":
        await run_backfill(session)
    await run_incremental(session)


async def run_sync(
    store: Store,
    client: ShipStationClient,
    options: SyncOptions,
    *,
    clock: Callable[[], datetime] = utc_now,
    progress: Callable[[SyncReport], None] | None = None,
) -> SyncReport:
    """One sync now: the backfill first (or its rest), then the changes since the watermark."""
    owner = uuid.uuid4().hex
    if not await try_lease(
        store, options.lease_name, owner, now=time.time(), ttl=options.lease_ttl
    ):
        raise SyncBusy(f"a ShipStation sync of account {options.account!r} is already running")
    try:
        async with store.read() as conn:
            cursor = await get_cursor(conn, options.cursor_name) or {}
        session = SyncSession(
            store, client, options, cursor, clock=clock, owner=owner, progress=progress
        )
        await _update_report(store, options, started_at=sortable_utc(clock()))
        await _run_and_report(store, client, options, session)
        return session.report
    finally:
        await release_lease(store, options.lease_name, owner)


async def _run_and_report(
    store: Store, client: ShipStationClient, options: SyncOptions, session: SyncSession
) -> None:
    """Run the sync; record its summary, the rate-limit window and any error for `status`."""
    error: dict[str, Any] | None = None
    try:
        await _sync(session)
    except Exception as failure:
        kind = "auth" if isinstance(failure, SourceAuthError) else type(failure).__name__
        message = str(failure) if isinstance(failure, ShoprelayError) else repr(failure)[:300]
        error = {"kind": kind, "message": message, "at": sortable_utc(session.clock())}
        log.error("shipstation.sync_failed", kind=kind, error=message)
        raise
    finally:
        session.count_requests()
        values: dict[str, Any] = {
            "finished_at": sortable_utc(session.clock()),
            "last_sync": session.report.to_dict(),
            "last_error": error,
        }
        if client.rate_window.limit is not None:  # a refused request says nothing of it
            # Stored under "budget", status's `api_budget`: keys existing reports already hold.
            values["budget"] = _rate_window(client)
        await _save_report(store, options, values)
    log.info("shipstation.sync_done", **_summary(session.report))


async def _save_report(store: Store, options: SyncOptions, values: dict[str, Any]) -> None:
    """Record the summary for `status`; if that fails, say so and let the sync stand as it ended."""
    try:
        await _update_report(store, options, **values)
    except Exception:  # the database itself may be what failed: the schedule must go on
        log.warning("shipstation.report_not_saved", account=options.account, exc_info=True)


def _summary(report: SyncReport) -> dict[str, Any]:
    return {
        "orders": report.orders_seen,
        "changes": report.status_changes,
        "events": report.events_queued,
        "without_email": report.orders_without_email,
        "dead_lettered": report.orders_dead_lettered,
        "requests": report.requests_used,
    }


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)


async def run_scheduler(store: Store, settings: Settings, stop: asyncio.Event) -> None:
    """Sync now and then every SHIPSTATION_POLL_INTERVAL until `stop`.

    While ShipStation refuses the credentials, the error stays in `status` and they are
    checked again each interval; syncing resumes by itself once they work.
    """
    options = options_from_settings(settings)
    async with client_from_settings(settings) as client:
        while not stop.is_set():
            refused = await _scheduled_sync(store, client, options)
            await _wait(stop, options.poll_interval)
            if refused:
                await _await_credentials(client, options.poll_interval, stop)


async def _scheduled_sync(store: Store, client: ShipStationClient, options: SyncOptions) -> bool:
    """One sync of the schedule; True when ShipStation refused the credentials."""
    try:
        await run_sync(store, client, options)
    except SourceAuthError:
        log.error("shipstation.credentials_refused", check_every_seconds=options.poll_interval)
        return True
    except SyncBusy:
        log.info("shipstation.skipped", reason="another process is syncing")
    except Exception:  # one failed sync must not stop the schedule
        log.exception("shipstation.sync_error")
    return False


async def _await_credentials(
    client: ShipStationClient, interval: float, stop: asyncio.Event
) -> None:
    """One cheap `/stores` request per interval until ShipStation accepts the key again."""
    while not stop.is_set():
        try:
            await client.stores()
        except SourceAuthError:
            log.warning("shipstation.credentials_still_refused")
        except Exception:  # not a refusal: let the next sync try, and report what it finds
            log.exception("shipstation.credentials_check_failed")
            return
        else:
            log.info("shipstation.credentials_accepted")
            return
        await _wait(stop, interval)
