"""Every order and customer of a simulated shop, read by GraphQL and converted, makes the
Klaviyo requests its webhook JSON makes: metric, profile, properties, value, time, unique_id."""

from __future__ import annotations

from typing import Any

from tests.integration.shopify_admin.support import SHOP, TOKEN, admin_sim

from shoprelay.mapping.shopify_fields import ShopifyMetrics
from shoprelay.sources.shopify.admin import convert, queries
from shoprelay.sources.shopify.admin.client import AdminClient
from shoprelay.sources.shopify.topics import plan

METRICS = ShopifyMetrics()
EVERYTHING = queries.updated_since("2000-01-01T00:00:00Z")


def _requests(topic: str, payload: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    planned = plan(topic, SHOP, payload, METRICS)
    assert planned.outcome == "processed", planned.reason
    return [(item.kind, item.dedup_key, item.body) for item in planned.items]


async def _all(client: AdminClient, document: str, root: str, first: int) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    variables: dict[str, Any] = {"first": first, "after": None, "query": EVERYTHING}
    while True:
        connection = (await client.query(document, variables))[root]
        found += convert.nodes(connection)
        if not connection["pageInfo"]["hasNextPage"]:
            return found
        variables["after"] = connection["pageInfo"]["endCursor"]


async def test_graphql_and_webhook_json_make_the_same_requests() -> None:
    # A fast bucket: pacing is not what this test is about.
    async with admin_sim(seed_orders=80, seed_days=30, restore_rate=10_000.0) as shop:
        await shop.control("POST", "/activity", {"changes": 40})  # fulfilments, refunds…
        async with AdminClient(shop.url, TOKEN, "2026-10") as client:
            orders = await _all(client, queries.ORDERS_UPDATED_SINCE, "orders", 2)
            customers = await _all(client, queries.CUSTOMERS_UPDATED_SINCE, "customers", 50)
        kinds = set()
        for record in orders:
            webhook = await shop.control("GET", f"/orders/{record['legacyResourceId']}")
            by_webhook = _requests("orders/updated", webhook["webhook"])
            assert _requests("orders/updated", convert.order(record)) == by_webhook
            kinds |= {body["metric"]["data"]["attributes"]["name"] for _, _, body in by_webhook}
        for record in customers:
            webhook = await shop.control("GET", f"/customers/{record['legacyResourceId']}")
            by_webhook = _requests("customers/update", webhook["webhook"])
            assert _requests("customers/update", convert.customer(record)) == by_webhook
    assert len(orders) >= 80
    assert customers
    assert {"Placed Order", "Fulfilled Order", "Cancelled Order", "Refunded Order"} <= kinds
