"""What `serve` does with an Admin API token, now and every SHOPIFY_CATCHUP_INTERVAL.

Each round: re-create any of shoprelay's webhook subscriptions Shopify removed (it deletes
them after 8 failed deliveries), run the first-start backfill if it has not finished, then
catch up from the watermark. A refused token stops the round with a clear error in the log
and `status`; the webhook path keeps running, and the next round tries again.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta
from typing import Any

import structlog
from prometheus_client import Counter, Gauge

from shoprelay.config import Settings
from shoprelay.errors import ShoprelayError
from shoprelay.mapping.shopify_fields import ShopifyMetrics
from shoprelay.mapping.values import sortable_utc
from shoprelay.sources.shopify.admin import shopstate
from shoprelay.sources.shopify.admin.backfill import PHASES, run_backfill
from shoprelay.sources.shopify.admin.catchup import RunBusy, run_catchup, utc_now
from shoprelay.sources.shopify.admin.client import AdminClient, ShopifyAuthError
from shoprelay.sources.shopify.admin.connect import client_from_settings
from shoprelay.sources.shopify.admin.subscriptions import ensure_subscriptions
from shoprelay.store.database import Store

log = structlog.get_logger(__name__)

SUBSCRIPTIONS_RECREATED = Counter(
    "shoprelay_shopify_subscriptions_recreated",
    "Webhook subscriptions serve found missing (or repointed) and made again",
)
CATCHUP_RUNS = Counter("shoprelay_shopify_catchup_runs", "Catch-up rounds by outcome", ["outcome"])
CATCHUP_RECORDS = Counter(
    "shoprelay_shopify_catchup_records", "Orders and customers read by catch-up", ["kind"]
)
CATCHUP_LAST_SUCCESS = Gauge(
    "shoprelay_shopify_catchup_last_success_timestamp_seconds",
    "When the last catch-up finished",
    multiprocess_mode="max",
)


async def run_scheduler(
    store: Store, settings: Settings, metrics: ShopifyMetrics, stop: asyncio.Event
) -> None:
    """Rounds until `stop`; the first runs at once, so a restart closes any gap."""
    shop = settings.SHOPIFY_SHOP
    assert shop is not None
    async with client_from_settings(settings) as client:
        while not stop.is_set():
            await one_round(store, client, shop, settings, metrics)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=settings.SHOPIFY_CATCHUP_INTERVAL)


async def one_round(
    store: Store,
    client: AdminClient,
    shop: str,
    settings: Settings,
    metrics: ShopifyMetrics,
) -> None:
    """Subscriptions, the first-start backfill, then catch-up; every failure is recorded."""
    error: dict[str, Any] | None = None
    try:
        await _recheck_subscriptions(store, client, shop)
        if settings.SHOPIFY_BACKFILL_ON_FIRST_START and await _backfill_due(store, shop):
            await run_backfill(
                store,
                client,
                shop,
                metrics,
                days=settings.SHOPIFY_BACKFILL_DAYS,
                lease_ttl=settings.SHOPIFY_LEASE_SECONDS,
            )
        report = await run_catchup(
            store,
            client,
            shop,
            metrics,
            first_since=utc_now() - timedelta(seconds=settings.SHOPIFY_CATCHUP_INTERVAL),
            lease_ttl=settings.SHOPIFY_LEASE_SECONDS,
        )
    except RunBusy as busy:
        log.info("shopify.catchup_skipped", reason=str(busy))
        CATCHUP_RUNS.labels("skipped").inc()
        return
    except ShopifyAuthError as refused:
        error = {"kind": "auth", "message": str(refused)}
        log.error("shopify.admin_refused", error=str(refused))
    except ShoprelayError as failure:
        error = {"kind": type(failure).__name__, "message": str(failure)}
        log.error("shopify.catchup_failed", error=str(failure))
    except Exception as failure:  # one failed round must not stop the schedule
        error = {"kind": type(failure).__name__, "message": repr(failure)[:300]}
        log.exception("shopify.catchup_error")
    else:
        CATCHUP_RUNS.labels("done").inc()
        CATCHUP_RECORDS.labels("order").inc(report.orders)
        CATCHUP_RECORDS.labels("customer").inc(report.customers)
        CATCHUP_LAST_SUCCESS.set_to_current_time()
        await _record(
            store,
            shop,
            last_catchup=report.to_dict() | {"at": _now()},
            last_error=None,
            api_budget=_budget(client),
        )
        return
    CATCHUP_RUNS.labels("failed").inc()
    await _record(store, shop, last_error=error | {"at": _now()}, api_budget=_budget(client))


def _budget(client: AdminClient) -> dict[str, float]:
    """The cost bucket as Shopify's last answer left it, for status and the dashboard."""
    bucket = client.bucket
    return {
        "remaining": round(bucket.available),
        "limit": round(bucket.maximum),
        "restore_rate": bucket.restore_rate,
    }


def _now() -> str:
    return sortable_utc(utc_now())


async def _record(store: Store, shop: str, **values: Any) -> None:
    try:
        await shopstate.merge(store, shop, "report", **values)
    except Exception:  # the database may be what failed: the schedule goes on
        log.warning("shopify.report_not_saved", exc_info=True)


async def _backfill_due(store: Store, shop: str) -> bool:
    """Never run, or interrupted: a finished backfill is not run again by serve."""
    phase = (await shopstate.read(store, shop, "backfill")).get("phase")
    return phase is None or phase in PHASES


async def _recheck_subscriptions(store: Store, client: AdminClient, shop: str) -> None:
    url = await shopstate.webhook_url(store, shop)
    if url is None:
        return  # `shoprelay shopify register` has not been run: nothing to keep
    planned = await ensure_subscriptions(client, url)
    if planned.changes:
        SUBSCRIPTIONS_RECREATED.inc(planned.changes)
        log.warning(
            "shopify.subscriptions_recreated",
            created=planned.create,
            repointed=[topic for topic, _ in planned.repoint],
        )
    summary = {
        "checked_at": _now(),
        "in_place": len(planned.in_place),
        "recreated": planned.create + [topic for topic, _ in planned.repoint],
    }
    report = await shopstate.read(store, shop, "report")
    total = int((report.get("subscriptions") or {}).get("recreated_total") or 0) + planned.changes
    await _record(store, shop, subscriptions=summary | {"recreated_total": total})
