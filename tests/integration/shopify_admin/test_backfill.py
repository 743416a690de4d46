"""`shoprelay shopify backfill` against the simulator: every event once, `backfill: true`, no
double with webhooks arriving meanwhile, resumed after `kill -9`, never THROTTLED."""

from __future__ import annotations

import asyncio
import collections
import os
import signal
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from tests.integration.shopify_admin.support import (
    SHOP,
    TOKEN,
    AdminSimServer,
    admin_sim,
    expected_events,
    klaviyo_events,
    relay_on,
    relay_settings,
)
from tests.support.harness import eventually, free_port, klaviyo_sim

from shoprelay.mapping.shopify_fields import ShopifyMetrics
from shoprelay.mapping.values import from_sortable_utc
from shoprelay.sources.shopify.admin import shopstate
from shoprelay.sources.shopify.admin.backfill import run_backfill
from shoprelay.sources.shopify.admin.client import AdminClient
from shoprelay.sources.shopify.admin.subscriptions import ensure_subscriptions
from shoprelay.store.database import Store

# 800 in the suite; SHOPRELAY_TEST_BACKFILL_ORDERS=20000 runs the full size by hand
# (`python -m bench shopify` measures speed, cost and memory at that size).
ORDERS = int(os.environ.get("SHOPRELAY_TEST_BACKFILL_ORDERS", "800"))
PATIENCE = 60 * max(1.0, ORDERS / 800)  # seconds for a phase: a larger shop takes longer


async def _backfill_process(database_url: str, shop: AdminSimServer) -> asyncio.subprocess.Process:
    env = os.environ | {
        "DATABASE_URL": database_url,
        "SHOPIFY_SHOP": SHOP,
        "SHOPIFY_API_KEY": TOKEN,
        "SHOPIFY_ADMIN_URL": shop.url,
        "LOG_LEVEL": "WARNING",
        "SHOPIFY_LEASE_SECONDS": "5",  # after kill -9, the next run may start this soon
    }
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "shoprelay",
        "shopify",
        "backfill",
        "--days",
        "90",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )


async def _committed(store: Store) -> dict[str, Any]:
    return await shopstate.read(store, SHOP, "backfill")


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_backfill_resumes_after_kill_9_and_sends_every_event_once(database_url: str) -> None:
    async with (
        klaviyo_sim() as klaviyo,
        admin_sim(seed_orders=ORDERS, seed_days=90, bulk_rows_per_tick=100) as shop,
    ):
        settings = relay_settings(
            database_url,
            klaviyo,
            shop,
            SHOPIFY_CATCHUP_INTERVAL=3600,
            SHOPIFY_BACKFILL_ON_FIRST_START="false",
        )
        caught_up_since = datetime.now(UTC) - timedelta(seconds=3600)  # the first catch-up's reach
        async with relay_on(settings, free_port()) as relay:
            async with AdminClient(shop.url, TOKEN, "2026-10") as client:
                await ensure_subscriptions(client, f"{relay.url}/webhooks/shopify")
            order_ids = (await shop.control("GET", "/orders"))["order_ids"]
            touched = order_ids[-40:]

            first = await _backfill_process(database_url, shop)

            async def well_into_orders() -> bool:
                cursor = await _committed(relay.store)
                return cursor.get("phase") == "orders" and int(cursor.get("done") or 0) >= 250

            try:
                await eventually(well_into_orders, timeout=PATIENCE, interval=0.01)
            finally:
                if first.returncode is not None:  # it ended by itself: say why
                    print((await first.communicate())[0].decode())
            first.send_signal(signal.SIGKILL)
            await first.wait()
            interrupted = await _committed(relay.store)
            assert interrupted["phase"] == "orders"

            # Webhooks for orders the backfill reads, arriving while it runs.
            for order_id in touched[:20]:
                await shop.control("POST", f"/orders/{order_id}/update")
            await asyncio.sleep(5)  # the killed run's lease runs out
            second = await _backfill_process(database_url, shop)
            for order_id in touched[20:]:
                await shop.control("POST", f"/orders/{order_id}/update")
            output, _ = await second.communicate()
            assert second.returncode == 0, output.decode()
            assert b"Resumed" in output
            assert (await _committed(relay.store))["phase"] == "done"

            # The orders placed within the 90 days (a seeded one can sit just past the edge).
            since = from_sortable_utc((await _committed(relay.store))["from"]).timestamp()
            inside = [i for i, order in shop.sim.shop.orders.items() if order.created >= since]
            assert len(inside) >= ORDERS - 5
            expected = await expected_events(shop, inside)
            await eventually(lambda: expected <= set(klaviyo_events(klaviyo)), timeout=PATIENCE)

        sent = collections.Counter(klaviyo_events(klaviyo))
        assert set(sent) == expected
        assert max(sent.values()) == 1
        assert klaviyo.sim.event_log.duplicates_ignored == 0
        # Orders updated within the catch-up's first window may reach Klaviyo live by catch-up
        # before the backfill reads them (a 20,000-order shop has some in its last hour).
        caught_up = caught_up_since.timestamp()
        untouched = {
            f"shopify:{SHOP}:order:{i}"
            for i in order_ids[:-40]
            if shop.sim.shop.orders[i].updated < caught_up
        }
        events = klaviyo.sim.events
        assert all(e.backfill for e in events if e.unique_id in untouched)
        assert (await shop.control("GET", "/stats"))["throttled"] == 0


async def test_without_read_all_orders_it_reaches_sixty_days(store: Store) -> None:
    async with admin_sim(
        seed_orders=120, seed_days=90, scopes=("read_orders", "read_customers")
    ) as shop:
        visible = len(await expected_orders(shop))
        async with AdminClient(shop.url, TOKEN, "2026-10") as client:
            report = await run_backfill(
                store, client, SHOP, ShopifyMetrics(), days=90, poll_seconds=0.05
            )
    assert report.days_reached == 60
    assert report.note is not None
    assert "read_all_orders" in report.note
    assert 0 < report.orders == visible < 120


async def expected_orders(shop: AdminSimServer) -> list[int]:
    """The orders a token without read_all_orders can see: the last 60 days'."""
    visible = shop.sim.order_visibility()
    return [order_id for order_id, stored in shop.sim.shop.orders.items() if visible(stored)]
