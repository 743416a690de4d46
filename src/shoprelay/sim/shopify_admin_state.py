"""The simulated shop behind the Admin API: its settings, data, bucket, webhooks and bulk work."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from shoprelay.sim.shipstation_state import SimClock
from shoprelay.sim.shopify_admin_bulk import BulkOperation, BulkOperations
from shoprelay.sim.shopify_admin_cost import CostBucket
from shoprelay.sim.shopify_admin_shop import Shop, Stored
from shoprelay.sim.shopify_admin_webhooks import SHOPIFY_RETRY_DELAYS, Webhooks

DEMO_TOKEN = "shpat_sim_token"  # noqa: S105 - the demo shop's public credentials
ALL_SCOPES = ("read_orders", "read_customers", "read_all_orders")
ORDER_WINDOW = timedelta(days=60)


@dataclass
class ShopifyAdminSimConfig:
    """How the simulated shop behaves; tests shrink retries and bulk pacing."""

    shop: str = "sim-shop.myshopify.com"
    shop_name: str = "Shoprelay Sim Shop"
    access_token: str = DEMO_TOKEN
    scopes: tuple[str, ...] = ALL_SCOPES
    webhook_secret: str = "sim-webhook-secret"  # noqa: S105
    api_version: str = "2026-10"
    bucket_size: float = 2000.0
    restore_rate: float = 100.0
    retry_delays: tuple[float, ...] = SHOPIFY_RETRY_DELAYS
    delete_after_failures: int = 8
    # API 2026-01 and later: up to five bulk queries at a time per shop (1 before).
    concurrent_bulk_queries: int = 5
    bulk_rows_per_tick: int = 200
    bulk_pause: float = 0.0
    seed: int = 0
    seed_orders: int = 0
    seed_days: float = 90.0


@dataclass
class Counters:
    requests: Counter[int] = field(default_factory=Counter)
    throttled: int = 0
    cost_requested: int = 0
    versions: Counter[str] = field(default_factory=Counter)


class ShopifyAdminSim:
    """Everything one simulated shop holds; the app and the control routes share it."""

    def __init__(self, config: ShopifyAdminSimConfig, clock: SimClock | None = None) -> None:
        self.config = config
        self.clock = clock or SimClock()
        self.scopes = set(config.scopes)
        self.bucket = CostBucket(config.bucket_size, config.restore_rate)
        self.counters = Counters()
        self.fail_next: list[int] = []
        self.webhooks = Webhooks(
            config.shop,
            config.webhook_secret.encode(),
            config.api_version,
            retry_delays=config.retry_delays,
            delete_after_failures=config.delete_after_failures,
        )
        self.shop = Shop(random.Random(config.seed), self.clock.now, self._emit)
        self.bulk = BulkOperations(
            config.concurrent_bulk_queries, config.bulk_rows_per_tick, config.bulk_pause
        )
        self.bulk.on_finish = self._bulk_finished
        if config.seed_orders:
            self.shop.seed(config.seed_orders, config.seed_days)

    def _emit(self, topic: str, payload: dict[str, Any]) -> None:
        self.webhooks.emit(topic, payload, self.clock.now())

    def _bulk_finished(self, operation: BulkOperation) -> None:
        """bulk_operations/finish, as Shopify sends it: no URL, fetch the operation by id."""
        payload = {
            "admin_graphql_api_id": operation.gid,
            "completed_at": operation.completed_at,
            "created_at": operation.created_at,
            "error_code": operation.error_code.lower() if operation.error_code else None,
            "status": operation.status.lower(),
            "type": "query",
        }
        self._emit("bulk_operations/finish", payload)

    def order_visibility(self) -> Callable[[Stored], bool]:
        """Without read_all_orders, orders placed more than 60 days ago do not exist."""
        if "read_all_orders" in self.scopes:
            return lambda _stored: True
        oldest = (self.clock.now() - ORDER_WINDOW).timestamp()
        return lambda stored: stored.created >= oldest

    def now_stamp(self) -> str:
        return self.clock.now().astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    def stats(self) -> dict[str, Any]:
        return {
            "requests": sum(self.counters.requests.values()),
            "responses": {str(k): v for k, v in self.counters.requests.items()},
            "throttled": self.bucket.throttled,
            "cost_requested": self.counters.cost_requested,
            "cost_spent": self.bucket.spent,
            "bucket": self.bucket.status(),
            "api_versions": dict(self.counters.versions),
            "orders": len(self.shop.orders),
            "customers": len(self.shop.customers),
            "scopes": sorted(self.scopes),
            "subscriptions": len(self.webhooks.subscriptions),
            "deleted_subscriptions": len(self.webhooks.deleted),
            "deliveries": dict(self.webhooks.counts) | {"pending": self.webhooks.pending},
            "bulk_operations": [op.record() for op in self.bulk.operations.values()],
        }

    def now(self) -> datetime:
        return self.clock.now()
