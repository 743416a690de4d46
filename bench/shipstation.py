"""Scenario 4, ShipStation: API requests a sync uses, against the fewest that could do it.

The simulator runs in this process, on a real socket, so that its clock can jump 30 minutes
between syncs as `serve` would wait them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench import report
from bench.report import Row
from shoprelay.sim.shipstation import ShipStationSimConfig, SimClock, create_app
from shoprelay.sim.shipstation_control import NEXT_ACTIONS
from shoprelay.sim.shipstation_state import ShipStationSim
from shoprelay.sources.shipstation.client import ShipStationClient
from shoprelay.sources.shipstation.poll import run_sync
from shoprelay.sources.shipstation.session import SyncOptions
from shoprelay.store.database import Store
from shoprelay.web.serving import serving

PAGE = 500  # ShipStation's largest pageSize
START = datetime(2025, 4, 15, 17, 0, tzinfo=UTC)  # away from a daylight-saving change


@dataclass(frozen=True)
class ShipStationSize:
    """Orders over the backfill period, then how many change between two syncs."""

    orders: int = 3_000
    days: int = 88
    changes: int = 1_200


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
