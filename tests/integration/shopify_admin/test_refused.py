"""A refused token or a missing scope stops the round with a clear error in `status`; a
catch-up another process runs is left to it."""

from __future__ import annotations

import time

from tests.integration.shopify_admin.support import SHOP, TOKEN, admin_sim

from shoprelay.config import load_settings
from shoprelay.service import shopify_metrics
from shoprelay.sources.shopify.admin import shopstate
from shoprelay.sources.shopify.admin.client import AdminClient
from shoprelay.sources.shopify.admin.schedule import one_round
from shoprelay.sources.shopify.admin.status import shopify_admin_status
from shoprelay.store.database import Store
from shoprelay.store.leases import try_lease

SETTINGS = load_settings(
    {"SHOPIFY_SHOP": SHOP, "SHOPIFY_API_KEY": TOKEN, "SHOPIFY_BACKFILL_ON_FIRST_START": "false"}
)


async def _status(store: Store) -> dict[str, object]:
    async with store.read() as conn:
        return await shopify_admin_status(conn, SHOP)


async def test_a_refused_token_is_reported_and_the_next_round_recovers(store: Store) -> None:
    async with admin_sim() as shop:
        async with AdminClient(shop.url, "shpat_revoked", "2026-10", max_attempts=1) as client:
            await one_round(store, client, SHOP, SETTINGS, shopify_metrics(SETTINGS))
        error = (await _status(store))["last_error"]
        assert isinstance(error, dict)
        assert error["kind"] == "auth"
        assert "SHOPIFY_API_KEY" in error["message"]
        assert "shpat_revoked" not in str(error)

        await shop.control("POST", "/scopes", {"scopes": ["read_customers"]})
        async with AdminClient(shop.url, TOKEN, "2026-10", max_attempts=1) as client:
            await one_round(store, client, SHOP, SETTINGS, shopify_metrics(SETTINGS))
        error = (await _status(store))["last_error"]
        assert isinstance(error, dict)
        assert "read_orders" in error["message"]

        await shop.control("POST", "/scopes", {"scopes": ["read_orders", "read_customers"]})
        async with AdminClient(shop.url, TOKEN, "2026-10") as client:
            await one_round(store, client, SHOP, SETTINGS, shopify_metrics(SETTINGS))
        status = await _status(store)
        assert status["last_error"] is None
        assert status["last_catchup"] is not None


async def test_one_catch_up_at_a_time_per_shop(store: Store) -> None:
    lease = shopstate.lease_name(SHOP, "catchup")
    assert await try_lease(store, lease, "another-process", now=time.time(), ttl=60)
    async with admin_sim() as shop, AdminClient(shop.url, TOKEN, "2026-10") as client:
        await one_round(store, client, SHOP, SETTINGS, shopify_metrics(SETTINGS))
    status = await _status(store)
    assert status["watermark"] is None  # it did not run
    assert status["last_error"] is None  # and that is no error


async def test_status_without_a_token_says_catch_up_is_off(store: Store) -> None:
    async with store.read() as conn:
        status = await shopify_admin_status(conn, None)
    assert status["catchup"] == "off"
