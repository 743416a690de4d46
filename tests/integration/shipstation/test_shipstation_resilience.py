"""Paging drift, daylight saving, interrupted backfills, bad keys and concurrent syncs."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from tests.integration.shipstation.harness import Account, SyncOnce, by_order, queued_events

from shoprelay.errors import SourceAuthError
from shoprelay.sim.shipstation import ShipStationSim, SimClock
from shoprelay.sources.shipstation.poll import SyncBusy, run_sync
from shoprelay.sources.shipstation.session import SyncOptions, SyncReport
from shoprelay.sources.shipstation.status import shipstation_status
from shoprelay.store.database import Store
from shoprelay.store.leases import try_lease

# 2025-11-02 09:00 UTC is 02:00 PDT, when Pacific clocks fall back to 01:00 PST.
FIRST_PASS = datetime(2025, 11, 2, 8, 40, tzinfo=UTC)  # 01:40 PDT


async def test_order_changed_while_paging_is_neither_skipped_nor_doubled(
    store: Store, account: Account, sync_once: SyncOnce
) -> None:
    """Orders changed between page requests are read once more, with no event twice."""
    sim, clock = account.sim, account.clock
    orders = sim.create_orders(300, start=clock.now() - timedelta(days=2), end=clock.now())
    ids = [order["orderId"] for order in orders]
    options = SyncOptions(page_size=50)
    await sync_once(options)
    clock.advance(timedelta(minutes=30))
    for n, order_id in enumerate(ids):
        sim.hold(order_id, clock.now() + timedelta(days=3), clock.now() - timedelta(seconds=n))
    not_yet_read, already_read = ids[260], ids[10]  # newest first: page 6 and page 1

    def ship_during_page_three(sim: ShipStationSim, params: dict[str, str]) -> None:
        if params.get("page") == "3" and "modifyDateStart" in params:
            sim.ship_label(not_yet_read)
            sim.ship_label(already_read)
            sim.on_orders_request = None

    sim.on_orders_request = ship_during_page_three
    report = await sync_once(options)
    found = by_order(await queued_events(store))
    assert found[str(not_yet_read)] == ["Order Awaiting Shipment", "Order Shipped"]
    # Read on hold on page 1, then shipped by the catch-up read of changes made while paging.
    assert found[str(already_read)] == [
        "Order Awaiting Shipment",
        "Order On Hold",
        "Order Shipped",
    ]
    others = [
        found[str(order_id)] for order_id in ids if order_id not in (not_yet_read, already_read)
    ]
    assert all(metrics == ["Order Awaiting Shipment", "Order On Hold"] for metrics in others)
    assert report.status_changes == 301
    clock.advance(timedelta(minutes=30))
    before = len(await queued_events(store))
    await sync_once(options)
    assert len(await queued_events(store)) == before


@pytest.fixture
def sim_clock() -> SimClock:
    return SimClock(FIRST_PASS)


async def test_change_in_the_repeated_fall_back_hour_is_read(
    store: Store, account: Account, sync_once: SyncOnce
) -> None:
    """A change at 01:10 PST, after a sync at 01:40 PDT, is found despite its smaller clock time."""
    order = account.sim.create_order(at=FIRST_PASS - timedelta(days=1))
    await sync_once()
    account.clock.set(datetime(2025, 11, 2, 9, 10, tzinfo=UTC))  # 01:10 PST
    account.sim.cancel(order["orderId"])
    await sync_once()
    assert by_order(await queued_events(store))[str(order["orderId"])] == [
        "Order Awaiting Shipment",
        "Order Cancelled",
    ]


async def test_label_made_in_the_repeated_hour_after_labels_were_read_is_shipped(
    store: Store, account: Account, sync_once: SyncOnce
) -> None:
    """A label at 01:30 PST, made after the sync read /shipments at 01:20 PST, still ships."""
    sim, clock = account.sim, account.clock
    orders = sim.create_orders(4, start=FIRST_PASS - timedelta(days=3), end=FIRST_PASS)
    first_pass_ids, late = [order["orderId"] for order in orders[:3]], orders[3]["orderId"]
    await sync_once()
    for minutes, order_id in zip((45, 50, 55), first_pass_ids, strict=True):  # 01:45-01:55 PDT
        sim.ship_label(order_id, datetime(2025, 11, 2, 8, minutes, tzinfo=UTC))
    clock.set(datetime(2025, 11, 2, 9, 20, tzinfo=UTC))  # 01:20 PST

    def label_at_0130_pst_before_page_two(sim: ShipStationSim, params: dict[str, str]) -> None:
        if params.get("page") == "2":
            clock.set(datetime(2025, 11, 2, 9, 30, tzinfo=UTC))
            sim.ship_label(late)  # stamped 01:30, sorted after the 01:45-01:55 PDT labels
            sim.on_orders_request = None

    sim.on_orders_request = label_at_0130_pst_before_page_two
    await sync_once(SyncOptions(page_size=2))
    found = by_order(await queued_events(store))
    assert found[str(late)] == ["Order Awaiting Shipment", "Order Shipped"]
    assert all(
        found[str(i)] == ["Order Awaiting Shipment", "Order Shipped"] for i in first_pass_ids
    )


async def test_event_times_are_utc_on_both_sides_of_daylight_saving(
    store: Store, account: Account, sync_once: SyncOnce
) -> None:
    """Pacific stamps become the right UTC instant in PDT, in PST and just after spring forward."""
    moments = [
        datetime(2025, 3, 9, 9, 59, 30, tzinfo=UTC),  # 01:59:30 PST, before the jump
        datetime(2025, 3, 9, 10, 0, 30, tzinfo=UTC),  # 03:00:30 PDT, just after
        datetime(2025, 7, 1, 19, 0, tzinfo=UTC),  # 12:00 PDT
        datetime(2025, 11, 2, 8, 59, 59, tzinfo=UTC),  # 01:59:59 PDT, last second before fall-back
    ]
    for moment in moments:
        account.sim.create_order(at=moment)
    await sync_once(SyncOptions(backfill_days=250))
    times = sorted(event["time"] for event in await queued_events(store))
    assert times == [m.strftime("%Y-%m-%dT%H:%M:%SZ") for m in moments]


async def test_interrupted_backfill_resumes_without_resending(
    store: Store, account: Account, sync_once: SyncOnce
) -> None:
    """A backfill stopped after some pages resumes from its checkpoint; no event is queued twice."""
    now = account.clock.now()
    orders = account.sim.create_orders(1000, start=now - timedelta(days=80), end=now)
    options = SyncOptions(page_size=100, window_max_orders=300, window_target_orders=250)
    queued: list[int] = []

    def crash_after_four_pages(report: SyncReport) -> None:
        queued.append(report.events_queued)
        if report.pages == 4:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        await sync_once(options, progress=crash_after_four_pages)
    assert 0 < len(await queued_events(store)) == queued[-1]
    report = await sync_once(options)
    found = by_order(await queued_events(store))
    assert found == {str(o["orderId"]): ["Order Awaiting Shipment"] for o in orders}
    assert report.orders_seen < 700


async def test_bad_credentials_stop_the_sync_with_a_clear_error(
    store: Store, account: Account
) -> None:
    """A 401 raises SourceAuthError, and status shows it without the secret."""
    async with account.client(secret="wrong-secret-value") as client:
        with pytest.raises(SourceAuthError, match="SHIPSTATION_API_KEY"):
            await run_sync(store, client, SyncOptions(), clock=account.clock.now)
    async with store.read() as conn:
        status = await shipstation_status(conn)
    assert status["last_error"]["kind"] == "auth"
    assert "wrong-secret-value" not in str(status)


async def test_one_sync_at_a_time_per_account(
    store: Store, account: Account, sync_once: SyncOnce
) -> None:
    """While another process holds the account's lease, a sync refuses to start."""
    assert await try_lease(store, "shipstation:default", "other", now=time.time(), ttl=60)
    with pytest.raises(SyncBusy):
        await sync_once()
    assert account.sim.counters.total == 0


async def test_status_reports_the_sync(store: Store, account: Account, sync_once: SyncOnce) -> None:
    """Status shows times, watermark, orders tracked, events per metric and the API budget."""
    now = account.clock.now()
    for order in account.sim.create_orders(4, start=now - timedelta(days=2), end=now):
        account.sim.cancel(order["orderId"], now - timedelta(hours=1))
    await sync_once()
    async with store.read() as conn:
        status: dict[str, Any] = await shipstation_status(conn)
    assert status["phase"] == "incremental"
    assert status["orders_tracked"] == 4
    assert status["events_queued"] == {"Order Cancelled": 4}
    assert status["api_budget"]["limit"] == 40
    assert status["last_sync_finished_at"] is not None
    assert status["watermark"] is not None
    assert status["last_error"] is None
