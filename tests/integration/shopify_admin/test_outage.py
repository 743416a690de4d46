"""Done means: shoprelay down while the shop changes and Shopify deletes its subscriptions;
after a restart, within one catch-up interval, Klaviyo has every event once and the
subscriptions are back."""

from __future__ import annotations

import collections

from sqlalchemy import select
from tests.integration.shopify_admin.support import (
    SHOP,
    TOKEN,
    admin_sim,
    expected_events,
    klaviyo_events,
    ours,
    relay_on,
    relay_settings,
)
from tests.support.harness import eventually, free_port, klaviyo_sim

from shoprelay.sources.shopify.admin import shopstate
from shoprelay.sources.shopify.admin.client import AdminClient
from shoprelay.sources.shopify.admin.subscriptions import ensure_subscriptions, wanted_topics
from shoprelay.store.database import Store
from shoprelay.store.schema import webhook_receipts

INTERVAL = 2.0  # SHOPIFY_CATCHUP_INTERVAL, seconds


async def test_an_outage_is_closed_within_one_catch_up_interval(database_url: str) -> None:
    async with klaviyo_sim() as klaviyo, admin_sim() as shop:
        settings = relay_settings(
            database_url,
            klaviyo,
            shop,
            SHOPIFY_CATCHUP_INTERVAL=INTERVAL,
            SHOPIFY_BACKFILL_ON_FIRST_START="false",
        )
        port = free_port()
        async with relay_on(settings, port) as relay:
            url = f"{relay.url}/webhooks/shopify"
            async with AdminClient(shop.url, TOKEN, "2026-10") as client:
                await ensure_subscriptions(client, url)
            await shopstate.write(relay.store, SHOP, "webhook_url", {"url": url})
            created = (await shop.control("POST", "/orders", {"count": 4}))["order_ids"]
            # Up and running: the webhooks bring them.
            await eventually(lambda: len(klaviyo_events(klaviyo)) >= 4, timeout=30)

        # shoprelay is down: the shop goes on, and Shopify gives up on every subscription.
        await shop.control("POST", "/orders", {"count": 3})
        for order_id, action in zip(
            created, ["fulfill", "cancel", "refund", "update"], strict=True
        ):
            await shop.control("POST", f"/orders/{order_id}/{action}")
        await shop.control("POST", "/activity", {"changes": 12})
        customer_ids = (await shop.control("GET", "/customers"))["customer_ids"]
        await shop.control("POST", f"/customers/{customer_ids[0]}/update")

        async def given_up() -> bool:
            # Every retry spent, and the subscriptions that had deliveries deleted.
            return shop.sim.webhooks.pending == 0 and len(await ours(shop)) < len(wanted_topics())

        await eventually(given_up, timeout=30)
        deleted = (await shop.control("GET", "/subscriptions"))["deleted"]
        assert {"ORDERS_CREATE", "ORDERS_UPDATED"} <= {str(d.get("topic")) for d in deleted}
        expected = await expected_events(shop)
        assert not expected <= set(klaviyo_events(klaviyo))  # the gap is real

        async with relay_on(settings, port) as relay:
            # Within one interval of the restart (the first round runs at once), plus delivery.
            await eventually(
                lambda: expected <= set(klaviyo_events(klaviyo)), timeout=INTERVAL + 20
            )

            async def subscribed_again() -> bool:
                topics = {sub["topic"] for sub in await ours(shop)}
                return len(topics) == len(wanted_topics())

            await eventually(subscribed_again, timeout=INTERVAL + 10)
            # The log, status and /metrics say so.
            document = (await shop.http.get(f"{relay.admin_url}/status")).json()
            status = document["shopify_admin"]
            # What catch-up read is counted apart from the webhooks.
            assert status["records"]["catchup"]["processed"] > 0
            assert sum(document["webhooks"].values()) == await _webhook_receipts(relay.store)
            assert status["subscriptions"]["recreated_total"] >= 2
            assert {"orders/create", "orders/updated"} <= set(status["subscriptions"]["recreated"])
            metrics = (await shop.http.get(f"{relay.admin_url}/metrics")).text
            assert "shoprelay_shopify_subscriptions_recreated_total" in metrics

        sent = collections.Counter(klaviyo_events(klaviyo))
        assert set(sent) == expected
        assert [event for event, n in sent.items() if n > 1] == []
        # Nothing was sent twice for Klaviyo to drop either.
        assert klaviyo.sim.event_log.duplicates_ignored == 0


async def test_serve_backfills_on_first_start_once(database_url: str) -> None:
    async with klaviyo_sim() as klaviyo, admin_sim(seed_orders=30, seed_days=80) as shop:
        settings = relay_settings(database_url, klaviyo, shop, SHOPIFY_CATCHUP_INTERVAL=3600)
        expected = await expected_events(shop)
        async with relay_on(settings, free_port()) as relay:
            await eventually(lambda: expected <= set(klaviyo_events(klaviyo)), timeout=30)
            assert (await shopstate.read(relay.store, SHOP, "backfill"))["phase"] == "done"
            await eventually(lambda: _last_catchup(relay.store), timeout=30)
            first_round = await _last_catchup(relay.store)
        assert all(event.backfill for event in klaviyo.sim.events)
        operations = len((await shop.control("GET", "/stats"))["bulk_operations"])
        async with relay_on(settings, free_port()) as relay:

            async def next_round() -> bool:
                return await _last_catchup(relay.store) not in {None, first_round}

            await eventually(next_round, timeout=30)
        # The second start caught up; it did not import the history again.
        assert len((await shop.control("GET", "/stats"))["bulk_operations"]) == operations


async def _webhook_receipts(store: Store) -> int:
    async with store.read() as conn:
        rows = await conn.execute(select(webhook_receipts.c.webhook_id))
        return sum(1 for (webhook_id,) in rows if not webhook_id.startswith("catchup:"))


async def _last_catchup(store: Store) -> str | None:
    """When the last catch-up round finished."""
    report = await shopstate.read(store, SHOP, "report")
    return (report.get("last_catchup") or {}).get("at")
