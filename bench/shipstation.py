"""Scenario 4, ShipStation: API requests a sync uses, and the memory a backfill takes.

The simulator runs in this process, on a real socket, so that its clock can jump 30 minutes
between syncs as `serve` would wait them. A backfill whose memory is measured runs in a
process of its own, so that the simulator's records are not counted with it.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import time
import tracemalloc
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import uvloop

from bench import databases, report
from bench.processes import status_kib
from bench.report import Row
from shoprelay import logs
from shoprelay.sim.shipstation import ShipStationSimConfig, SimClock, create_app
from shoprelay.sim.shipstation_control import NEXT_ACTIONS
from shoprelay.sim.shipstation_state import ShipStationSim
from shoprelay.sources.shipstation.client import ShipStationClient
from shoprelay.sources.shipstation.poll import run_sync
from shoprelay.sources.shipstation.session import SyncOptions, SyncReport
from shoprelay.store.database import Store
from shoprelay.web.serving import serving

PAGE = 500  # ShipStation's largest pageSize
START = datetime(2025, 4, 15, 17, 0, tzinfo=UTC)  # away from a daylight-saving change
# The memory backfills measure memory, not pacing: no wait for ShipStation's 40 a minute.
UNLIMITED = ShipStationSimConfig(rate_limit=1_000_000)
MIB = 1024 * 1024


@dataclass(frozen=True)
class ShipStationSize:
    """Orders and changes for the request counts; labels and orders for the memory backfills."""

    orders: int = 3_000
    days: int = 88
    changes: int = 1_200
    backfill_labels: tuple[int, ...] = (10_000, 50_000)
    backfill_orders: int = 1_000


def pages(count: int) -> int:
    return -(-count // PAGE)


async def sync(store: Store, sim: ShipStationSim, url: str, name: str, fewest: int) -> Row:
    """One sync as `shoprelay shipstation sync` runs it; requests counted on both sides."""
    before = sim.counters.total
    config = sim.config
    async with ShipStationClient(url, config.api_key, config.api_secret) as client:
        synced = await run_sync(store, client, SyncOptions(), clock=sim.clock.now)
    return {
        "sync": name,
        "orders_seen": synced.orders_seen,
        "events_queued": synced.events_queued,
        "requests_used": synced.requests_used,
        "requests_seen_by_sim": sim.counters.total - before,
        "fewest_possible": fewest,
        "ratio": report.ratio(synced.requests_used, fewest),
        "throttled_429": sim.counters.responses.get(429, 0),
    }


def change(sim: ShipStationSim, order_ids: list[int], at: datetime) -> None:
    """Move each order one step along its life, as the simulator's demo activity does."""
    for order_id in order_ids:
        status = str(sim.orders[order_id]["orderStatus"])
        sim.apply(order_id, sim.rng.choice(NEXT_ACTIONS[status]), at)


def still_open(sim: ShipStationSim, order_ids: list[int]) -> list[int]:
    return [i for i in order_ids if str(sim.orders[i]["orderStatus"]) in NEXT_ACTIONS]


async def run(size: ShipStationSize, work: Path) -> list[Row]:
    """API requests per sync, then the memory of backfills holding more and more labels."""
    rows = await requests_per_sync(size, work)
    return rows + await backfill_memory(size, work)


async def requests_per_sync(size: ShipStationSize, work: Path) -> list[Row]:
    """A first sync of `orders`, a sync 30 min later after `changes` changes, a quiet one."""
    clock = SimClock(START)
    app = create_app(ShipStationSimConfig(), clock)
    sim: ShipStationSim = app.state.sim
    store = await Store.open(f"sqlite+aiosqlite:///{work / 'shipstation.db'}")
    try:
        async with serving(app) as url:
            now = clock.now()
            orders = sim.create_orders(size.orders, start=now - timedelta(days=size.days), end=now)
            ids = [order["orderId"] for order in orders]
            change(sim, ids[: size.orders // 2], now - timedelta(hours=1))
            labels = len(sim.shipments)
            first = pages(size.orders) + pages(labels) + 1  # orders, labels, stores once
            rows = [await sync(store, sim, url, "first (backfill)", first)]
            clock.advance(timedelta(minutes=10))
            change(sim, sim.rng.sample(still_open(sim, ids), size.changes), clock.now())
            new_labels = len(sim.shipments) - labels
            clock.advance(timedelta(minutes=20))
            changed = pages(size.changes) + (pages(new_labels) if new_labels else 0)
            rows.append(await sync(store, sim, url, f"{size.changes:,} changes later", changed))
            clock.advance(timedelta(minutes=30))
            rows.append(await sync(store, sim, url, "nothing changed", 1))
    finally:
        await store.close()
    notes = [
        f"fewest_possible: one request per {PAGE} orders, one per {PAGE} new labels, and the "
        "stores once",
        "syncs 30 minutes apart on the simulator's clock; ShipStation's limit of 40 a minute",
    ]
    report.show("ShipStation: API requests per sync", rows, notes)
    report.save("shipstation", asdict(size), rows, notes)
    return rows


def labelled_orders(
    sim: ShipStationSim, count: int, start: datetime, end: datetime, shipped_after: timedelta
) -> None:
    """`count` orders created evenly from `start` to `end`, each labelled `shipped_after` later."""
    step = (end - start) / max(count, 1)
    for n, order in enumerate(sim.create_orders(count, start=start, end=end)):
        sim.ship_label(order["orderId"], start + step * n + shipped_after)


def label_history(sim: ShipStationSim, labels: int, orders: int) -> None:
    """`labels` labels made in the last 88 days, `orders` of them for orders of those days."""
    now = sim.clock.now()
    recent = now - timedelta(days=88), now - timedelta(days=1)
    labelled_orders(sim, orders, *recent, timedelta(hours=12))
    # The rest are for orders created before the 90-day backfill: it reads none of those
    # orders, yet its index holds every label of the range, theirs too.
    early = now - timedelta(days=150), now - timedelta(days=93)
    labelled_orders(sim, labels - orders, *early, timedelta(days=62))


def backfills_in_this_process(url: str, plain: str, traced: str, offset: timedelta) -> Row:
    """Two first syncs in a fresh process, into the databases `plain` and `traced`.

    The first gives the peak RSS; the second runs under tracemalloc for Python's peak memory
    during a sync. tracemalloc slows a sync and its records take memory of their own, so the
    traced sync comes second, its RSS never counted.
    """
    return uvloop.run(_backfills(url, plain, traced, offset))


async def _backfills(url: str, plain: str, traced: str, offset: timedelta) -> Row:
    logs.configure("WARNING")
    clock = SimClock()
    clock.offset = offset
    rss_at_start = status_kib(os.getpid(), "VmHWM") / 1024
    synced, seconds, _ = await _backfill(url, plain, clock, trace=False)
    peak_rss = status_kib(os.getpid(), "VmHWM") / 1024
    _, _, traced_peak = await _backfill(url, traced, clock, trace=True)
    return {
        "orders_read": synced.orders_seen,
        "events_queued": synced.events_queued,
        "requests": synced.requests_used,
        "sync_s": round(seconds, 1),
        "rss_at_start_mib": round(rss_at_start, 1),
        "peak_rss_mib": round(peak_rss, 1),
        "traced_peak_mib": round(traced_peak, 1),
    }


async def _backfill(
    url: str, database_url: str, clock: SimClock, *, trace: bool
) -> tuple[SyncReport, float, float]:
    """One first sync: its report, its seconds, and Python's peak memory in it (MiB) if traced."""
    store = await Store.open(database_url)
    try:
        async with ShipStationClient(url, UNLIMITED.api_key, UNLIMITED.api_secret) as client:
            if trace:
                tracemalloc.start()
            try:
                started = time.perf_counter()
                synced = await run_sync(store, client, SyncOptions(), clock=clock.now)
                seconds = time.perf_counter() - started
                traced_peak = tracemalloc.get_traced_memory()[1] / MIB
            finally:
                tracemalloc.stop()
    finally:
        await store.close()
    return synced, seconds, traced_peak


async def measured_backfill(labels: int, orders: int, work: Path) -> Row:
    """Seed the simulator with `labels` labels in the range, then backfill in a new process."""
    clock = SimClock(START)
    app = create_app(UNLIMITED, clock)
    label_history(app.state.sim, labels, orders)
    # Spawned, not forked: the child must not start with the simulator's records in memory.
    spawn = multiprocessing.get_context("spawn")
    async with (
        serving(app) as url,
        databases.fresh("sqlite", work) as plain,
        databases.fresh("sqlite", work) as traced,
    ):
        with ProcessPoolExecutor(max_workers=1, mp_context=spawn) as pool:
            loop = asyncio.get_running_loop()
            found: Row = await loop.run_in_executor(
                pool, backfills_in_this_process, url, plain, traced, clock.offset
            )
    return {"labels_in_range": labels} | found


async def backfill_memory(size: ShipStationSize, work: Path) -> list[Row]:
    """The same backfill of `backfill_orders` orders, with each count of labels in its range."""
    rows = [
        await measured_backfill(labels, size.backfill_orders, work)
        for labels in size.backfill_labels
    ]
    small, large = rows[0], rows[-1]
    added = large["labels_in_range"] - small["labels_in_range"]
    large["rss_vs_small"] = report.ratio(large["peak_rss_mib"], small["peak_rss_mib"])
    large["traced_vs_small"] = report.ratio(large["traced_peak_mib"], small["traced_peak_mib"])
    traced_added = (large["traced_peak_mib"] - small["traced_peak_mib"]) * MIB
    large["bytes_per_added_label"] = round(traced_added / added) if added else None
    notes = [
        f"each backfill reads the same {size.backfill_orders:,} orders, each with a label; the "
        "range's other labels are of older orders: the index holds every label of the range",
        "peak_rss_mib: the syncing process's VmHWM, imports included (rss_at_start_mib: once "
        "imported); traced_peak_mib: Python's peak memory during the same sync run again "
        "under tracemalloc, into a new database",
        "*_vs_small: the larger backfill's figure over the smaller's (1.0 = flat); "
        "bytes_per_added_label: traced peak added per label",
        "SQLite; the simulator's rate limit lifted, as requests are not what is measured",
    ]
    report.show("ShipStation: memory of a backfill by labels in its range", rows, notes)
    settings = {"labels": list(size.backfill_labels), "orders": size.backfill_orders}
    report.save("shipstation_memory", settings, rows, notes)
    return rows
