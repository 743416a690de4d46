"""Scenario 5, Shopify backfill: orders a second, GraphQL cost per order, and flat memory.

The Shopify Admin simulator runs in this process on a real socket, seeded with N orders over
90 days; each backfill runs in a spawned process of its own (as `shoprelay shopify backfill`
does), so that its peak memory is its own. Two sizes show whether memory grows with the
number of orders (it should not: the JSONL result is streamed).
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import uvloop

from bench import databases, report
from bench.processes import status_kib
from bench.report import Row
from shoprelay import logs
from shoprelay.mapping.shopify_fields import ShopifyMetrics
from shoprelay.sim.shopify_admin import create_app
from shoprelay.sim.shopify_admin_state import ShopifyAdminSimConfig
from shoprelay.sources.shopify.admin.backfill import run_backfill
from shoprelay.sources.shopify.admin.client import AdminClient
from shoprelay.store.database import Store
from shoprelay.web.serving import serving

SHOP = "sim-shop.myshopify.com"
TOKEN = "shpat_sim_token"  # noqa: S105 - the simulator's demo token
# Shopify Plus's restore rate (Standard: 100 a second): a refunded order costs one query.
RESTORE_RATE = 1000.0


@dataclass(frozen=True)
class ShopifySize:
    orders: tuple[int, ...] = (5_000, 20_000)
    days: int = 90


def backfill_in_this_process(url: str, database_url: str) -> Row:
    return uvloop.run(_backfill(url, database_url))


async def _backfill(url: str, database_url: str) -> Row:
    logs.configure("WARNING")
    rss_at_start = status_kib(os.getpid(), "VmHWM") / 1024
    store = await Store.open(database_url)
    try:
        async with AdminClient(url, TOKEN, "2026-10") as client:
            started = time.perf_counter()
            done = await run_backfill(
                store, client, SHOP, ShopifyMetrics(), days=90, poll_seconds=0.2
            )
            seconds = time.perf_counter() - started
            tally = client.tally
    finally:
        await store.close()
    return {
        "orders_read": done.orders,
        "customers_read": done.customers,
        "items_queued": done.outcomes.get("items", 0),
        "backfill_s": round(seconds, 1),
        "orders_per_s": round(done.orders / seconds, 1) if seconds else None,
        "queries": tally.queries,
        "cost_actual": round(tally.actual),
        "cost_requested": round(tally.requested),
        "throttled": tally.throttled,
        "rss_at_start_mib": round(rss_at_start, 1),
        "peak_rss_mib": round(status_kib(os.getpid(), "VmHWM") / 1024, 1),
    }


async def measured(backend: str, orders: int, size: ShopifySize, work: Path) -> Row:
    config = ShopifyAdminSimConfig(
        seed_orders=orders, seed_days=size.days - 1, restore_rate=RESTORE_RATE
    )
    app = create_app(config)
    sim = app.state.sim
    refunded = sum(1 for order in sim.shop.orders.values() if order.payload().get("refunds"))
    spawn = multiprocessing.get_context("spawn")
    async with serving(app) as url, databases.fresh(backend, work) as database_url:
        with ProcessPoolExecutor(max_workers=1, mp_context=spawn) as pool:
            loop = asyncio.get_running_loop()
            found: Row = await loop.run_in_executor(
                pool, backfill_in_this_process, url, database_url
            )
        stats = sim.stats()
    per_order = found["cost_actual"] / max(found["orders_read"], 1)
    # The least: the two bulk queries and one poll each (10 points a mutation, 1 a poll), and
    # one OrderRefunds per refunded order at what Shopify charges for it when nothing repeats.
    polls = found["queries"] - 2 - refunded
    refunds_cost = found["cost_actual"] - 2 * 10 - polls
    least = (2 * 10 + 2 + refunds_cost) / max(found["orders_read"], 1)
    return (
        {"backend": backend, "orders_seeded": orders, "refunded_orders": refunded}
        | found
        | {
            "cost_per_order": round(per_order, 2),
            "least_cost_per_order": round(least, 2),
            "cost_vs_least": report.ratio(per_order, least),
            "sim_throttled": stats["throttled"],
        }
    )


async def run(backends: tuple[str, ...], size: ShopifySize, work: Path) -> list[Row]:
    rows = []
    for backend in backends:
        measured_rows = [await measured(backend, orders, size, work) for orders in size.orders]
        small, large = measured_rows[0], measured_rows[-1]
        large["rss_vs_small"] = report.ratio(large["peak_rss_mib"], small["peak_rss_mib"])
        rows += measured_rows
    notes = [
        f"backfill of {size.days} days through bulk operations, in a spawned process; the "
        "simulator serves the JSONL result from a file",
        f"simulator bucket restore rate {RESTORE_RATE:g} points/s (Shopify Plus; Standard is "
        "100/s): bulk queries cost almost nothing, each refunded order one OrderRefunds query",
        "cost_per_order: points Shopify charged (actualQueryCost) per order read; "
        "least_cost_per_order: the bulk queries, one poll each and one OrderRefunds per "
        "refunded order; the difference is the polls while the operation runs",
        "peak_rss_mib: the backfilling process's VmHWM; rss_vs_small: the larger backfill's "
        "over the smaller's (1.0 = flat)",
    ]
    report.show("Shopify: backfill", rows, notes)
    report.save("shopify_backfill", asdict(size), rows, notes)
    return rows
