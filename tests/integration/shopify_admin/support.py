"""The Shopify Admin simulator on a real socket, shoprelay on a fixed port, and what to expect."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
from tests.support.harness import WEBHOOK_SECRET, KlaviyoSimServer, RunningService, service_settings

from shoprelay.config import Settings
from shoprelay.mapping.shopify_fields import ShopifyMetrics
from shoprelay.service import Service
from shoprelay.sim.shopify_admin import create_app as create_admin_sim
from shoprelay.sim.shopify_admin_state import ShopifyAdminSim, ShopifyAdminSimConfig
from shoprelay.sources.shopify.topics import plan
from shoprelay.web.admin import create_admin_app
from shoprelay.web.app import create_app
from shoprelay.web.serving import serving

SHOP = "sim-shop.myshopify.com"
TOKEN = "shpat_sim_token"


@dataclass
class AdminSimServer:
    url: str
    sim: ShopifyAdminSim
    http: httpx.AsyncClient

    async def control(self, method: str, path: str, body: Any = None) -> Any:
        response = await self.http.request(method, f"{self.url}/_sim{path}", json=body)
        response.raise_for_status()
        return response.json()


@asynccontextmanager
async def admin_sim(**config: Any) -> AsyncIterator[AdminSimServer]:
    settings = {"webhook_secret": WEBHOOK_SECRET, "retry_delays": (0.02,) * 8} | config
    app = create_admin_sim(ShopifyAdminSimConfig(**settings))
    async with serving(app) as url, httpx.AsyncClient(timeout=30) as http:
        yield AdminSimServer(url, app.state.sim, http)


def relay_settings(
    database_url: str, klaviyo: KlaviyoSimServer, shop: AdminSimServer, **overrides: Any
) -> Settings:
    return service_settings(
        database_url,
        klaviyo.url,
        SHOPIFY_SHOP=SHOP,
        SHOPIFY_API_KEY=TOKEN,
        SHOPIFY_ADMIN_URL=shop.url,
        **overrides,
    )


@asynccontextmanager
async def relay_on(settings: Settings, port: int) -> AsyncIterator[RunningService]:
    """shoprelay serving on `port`: a restart comes back at the address Shopify knows."""
    service = await Service.open(settings)
    try:
        async with (
            serving(create_app(service), port=port) as url,  # its lifespan starts it
            serving(create_admin_app(service)) as admin,
        ):
            yield RunningService(url, service, admin)
    finally:
        await service.close()


async def expected_events(
    shop: AdminSimServer, ids: list[int] | None = None
) -> set[tuple[str, str]]:
    """(metric, unique_id) of every event the shop's orders (or `ids`) imply now, by the
    webhook path."""
    if ids is None:
        ids = (await shop.control("GET", "/orders"))["order_ids"]
    wanted: set[tuple[str, str]] = set()
    for order_id in ids:
        order = (await shop.control("GET", f"/orders/{order_id}"))["webhook"]
        planned = plan("orders/updated", SHOP, order, ShopifyMetrics())
        for item in planned.items:
            body = item.body
            wanted.add((body["metric"]["data"]["attributes"]["name"], body["unique_id"]))
    return wanted


async def ours(shop: AdminSimServer) -> list[dict[str, Any]]:
    """The shop's webhook subscriptions that shoprelay made."""
    found = (await shop.control("GET", "/subscriptions"))["subscriptions"]
    return [sub for sub in found if str(sub.get("name") or "").startswith("shoprelay-")]


def klaviyo_events(klaviyo: KlaviyoSimServer) -> list[tuple[str, str]]:
    return [(event.metric, str(event.unique_id)) for event in klaviyo.sim.events]
