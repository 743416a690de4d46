"""Backfill: the last N days of orders (by creation) and customers, through bulk operations.

Its plan and progress live in the shop's `backfill` cursor: the range (fixed when it starts),
the phase, the bulk operation's id and how many records of its result are committed. A
backfill that was interrupted, even by `kill -9`, polls the same operation and skips what it
committed; a page committed twice is a duplicate by its receipt, so nothing is queued twice.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog

from shoprelay.mapping.shopify_fields import ShopifyMetrics
from shoprelay.mapping.values import from_sortable_utc, sortable_utc
from shoprelay.sources.shopify.admin import bulk, convert, queries, shopstate
from shoprelay.sources.shopify.admin.catchup import LEASE_TTL, RunBusy, utc_now
from shoprelay.sources.shopify.admin.client import (
    AdminClient,
    ShopifyAdminError,
    ShopifyAuthError,
)
from shoprelay.sources.shopify.admin.consents import consent_deliveries
from shoprelay.sources.shopify.admin.records import commit_records
from shoprelay.store.database import Store
from shoprelay.store.ingest import IngestWriter, WebhookDelivery
from shoprelay.store.leases import release_lease, try_lease

log = structlog.get_logger(__name__)

# Without read_all_orders, Shopify shows only the orders of the last 60 days.
DAYS_WITHOUT_READ_ALL_ORDERS = 60
BATCH = 250
PHASES = ("customers", "orders")


@dataclass
class BackfillReport:
    days_asked: int = 0
    days_reached: int = 0
    note: str | None = None
    phase: str = ""
    done: int = 0  # records of the current phase committed
    total: int | None = None  # records in the current phase's result, once known
    orders: int = 0
    customers: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    resumed: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "days_asked": self.days_asked,
            "days_reached": self.days_reached,
            "note": self.note,
            "orders": self.orders,
            "customers": self.customers,
            "outcomes": dict(self.outcomes),
            "resumed": self.resumed,
        }


async def granted_scopes(client: AdminClient) -> tuple[dict[str, Any], set[str]]:
    """The shop and the scopes this token was granted."""
    data = await client.query(queries.SHOP)
    scopes = {scope["handle"] for scope in data["currentAppInstallation"]["accessScopes"]}
    return data["shop"], scopes


def reach(days: int, scopes: set[str]) -> tuple[int, str | None]:
    """How many days of orders the token can see, and what to tell the user if fewer."""
    if days <= DAYS_WITHOUT_READ_ALL_ORDERS or "read_all_orders" in scopes:
        return days, None
    return DAYS_WITHOUT_READ_ALL_ORDERS, (
        f"the token lacks read_all_orders, so Shopify shows only the last "
        f"{DAYS_WITHOUT_READ_ALL_ORDERS} days of orders: importing {DAYS_WITHOUT_READ_ALL_ORDERS} "
        f"days, not {days}. Add read_all_orders to the app's scopes to reach further."
    )


@dataclass
class BackfillRun:
    """A running backfill of one shop: holds the lease and the cursor."""

    store: Store
    client: AdminClient
    shop: str
    metrics: ShopifyMetrics
    owner: str
    cursor: dict[str, Any]
    report: BackfillReport
    progress: Callable[[BackfillReport], None] | None = None
    poll_seconds: float = 2.0
    lease_ttl: float = LEASE_TTL
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    renewed_at: float = 0.0

    async def keep_lease(self, *, now: float | None = None) -> None:
        """Renew the lease; raises RunBusy once another process has taken it."""
        now = time.time() if now is None else now
        lease = shopstate.lease_name(self.shop, "backfill")
        if not await try_lease(self.store, lease, self.owner, now=now, ttl=self.lease_ttl):
            raise RunBusy("another process took over the backfill lease")
        self.renewed_at = now

    async def keep_lease_now_and_then(self) -> None:
        """Between writes (polls, downloads), renew once a quarter of the lease has passed."""
        if time.time() - self.renewed_at > self.lease_ttl / 4:
            await self.keep_lease()

    async def save(self) -> None:
        await self.keep_lease()
        await shopstate.write(self.store, self.shop, "backfill", self.cursor)

    def _inner_query(self, phase: str) -> tuple[str, str]:
        since = from_sortable_utc(self.cursor["from"]).strftime("%Y-%m-%dT%H:%M:%SZ")
        if phase == "orders":
            return queries.bulk_orders_query(queries.created_since(since)), "read_orders"
        return queries.bulk_customers_query(queries.updated_since(since)), "read_customers"

    async def run_phase(self, phase: str) -> None:
        self.report.phase, self.report.done, self.report.total = phase, 0, None
        inner, scope = self._inner_query(phase)
        if not self.cursor.get("operation"):
            self.cursor.update(operation=await bulk.start(self.client, inner, scope), done=0)
            await self.save()
        operation = await self._finished_operation(inner, scope)
        self.report.total = int(operation.get("rootObjectCount") or 0)
        url = operation.get("url")
        if url:
            await self._read(phase, str(url))
        self._notify()

    async def _finished_operation(self, inner: str, scope: str) -> dict[str, Any]:
        """Wait for the cursor's operation; one that expired or failed is started again once."""
        for _ in range(2):
            operation = await bulk.wait(
                self.client,
                self.cursor["operation"],
                poll_seconds=self.poll_seconds,
                sleep=self.sleep,
                keep=self.keep_lease_now_and_then,
            )
            if operation.get("status") == "COMPLETED":
                return operation
            log.warning(
                "shopify.bulk_operation_unfinished",
                status=operation.get("status"),
                error=operation.get("errorCode"),
            )
            if operation.get("errorCode") == "ACCESS_DENIED":
                raise ShopifyAuthError(
                    f"Shopify refused the bulk query (ACCESS_DENIED): it needs the {scope} "
                    "scope; add it to the custom app's Admin API access scopes"
                )
            self.cursor.update(operation=await bulk.start(self.client, inner, scope), done=0)
            await self.save()
        raise ShopifyAdminError(
            f"the bulk operation ended {operation.get('status')} "
            f"({operation.get('errorCode') or 'no error code'})"
        )

    async def _read(self, phase: str, url: str) -> None:
        kind, to_webhook = (
            ("order", convert.order)
            if phase == "orders"
            else (
                "customer",
                convert.customer,
            )
        )
        skip = int(self.cursor.get("done") or 0)
        self.report.done = skip
        writer = IngestWriter(self.store)
        batch: list[dict[str, Any]] = []
        consent: list[WebhookDelivery] = []
        # The consent time Klaviyo records must be in the past: the range's end, fixed when
        # the backfill started, so a resumed run plans the very same items.
        as_of = from_sortable_utc(self.cursor["to"])
        seen = 0
        async for record in bulk.records(self.client, url):
            seen += 1
            await self.keep_lease_now_and_then()
            if seen <= skip:
                continue
            if record.get("refunds"):
                record["refunds"] = await self._refunds(record["id"])
            if kind == "customer":
                consent += consent_deliveries(self.shop, record, origin="backfill", as_of=as_of)
            batch.append(to_webhook(record))
            if len(batch) >= BATCH:
                await self._commit(writer, kind, batch, consent)
                batch, consent = [], []
        await self._commit(writer, kind, batch, consent)

    async def _refunds(self, order_id: str) -> list[dict[str, Any]]:
        """A refunded order's refunds in full: a bulk query cannot nest them."""
        data = await self.client.query(queries.ORDER_REFUNDS, {"id": order_id}, scope="read_orders")
        refunds = (data.get("order") or {}).get("refunds") or []
        return [refund for refund in refunds if isinstance(refund, dict)]

    async def _commit(
        self,
        writer: IngestWriter,
        kind: str,
        batch: list[dict[str, Any]],
        consent: list[WebhookDelivery],
    ) -> None:
        if not batch:
            return
        self.report.outcomes += await commit_records(
            writer, self.shop, kind, batch, self.metrics, origin="backfill", consents=consent
        )
        if kind == "order":
            self.report.orders += len(batch)
        else:
            self.report.customers += len(batch)
        self.report.done += len(batch)
        self.cursor["done"] = self.report.done
        await self.save()
        self._notify()

    def _notify(self) -> None:
        if self.progress is not None:
            self.progress(self.report)


def new_cursor(now: datetime, days: int) -> dict[str, Any]:
    return {
        "from": sortable_utc(now - timedelta(days=days)),
        "to": sortable_utc(now),
        "days": days,
        "phase": PHASES[0],
        "operation": None,
        "done": 0,
    }


async def run_backfill(
    store: Store,
    client: AdminClient,
    shop: str,
    metrics: ShopifyMetrics,
    *,
    days: int,
    clock: Callable[[], datetime] = utc_now,
    progress: Callable[[BackfillReport], None] | None = None,
    poll_seconds: float = 2.0,
    lease_ttl: float = LEASE_TTL,
) -> BackfillReport:
    """Run a backfill, or finish the interrupted one; raises RunBusy if one runs elsewhere."""
    owner, lease = uuid.uuid4().hex, shopstate.lease_name(shop, "backfill")
    if not await try_lease(store, lease, owner, now=time.time(), ttl=lease_ttl):
        raise RunBusy(f"a backfill of {shop} is already running")
    try:
        cursor = await shopstate.read(store, shop, "backfill")
        report = BackfillReport(days_asked=days)
        if cursor.get("phase") in PHASES:
            report.resumed = True
            report.days_asked = int(cursor.get("days_asked") or cursor["days"])
        else:
            _, scopes = await granted_scopes(client)
            reached, note = reach(days, scopes)
            cursor = new_cursor(clock(), reached) | {"days_asked": days, "note": note}
        report.days_reached, report.note = int(cursor["days"]), cursor.get("note")
        if report.note:
            log.warning("shopify.backfill_shortened", shop=shop, note=report.note)
        run = BackfillRun(
            store, client, shop, metrics, owner, cursor, report, progress, poll_seconds, lease_ttl
        )
        await run.save()
        for phase in PHASES[PHASES.index(cursor["phase"]) :]:
            cursor["phase"] = phase
            await run.run_phase(phase)
            cursor.update(operation=None, done=0)
        cursor.update(phase="done", finished_at=sortable_utc(datetime.now(UTC)))
        await run.save()
        await _start_catchup_from(store, shop, cursor["to"])
        log.info("shopify.backfill_done", shop=shop, **report.to_dict())
        return report
    finally:
        await release_lease(store, lease, owner)


async def _start_catchup_from(store: Store, shop: str, moment: str) -> None:
    """Catch-up goes on from where the backfill's range ended, unless it has run already."""
    if not (await shopstate.read(store, shop, "catchup")).get("watermark"):
        await shopstate.merge(store, shop, "catchup", watermark=moment)


async def backfill_state(store: Store, shop: str) -> dict[str, Any]:
    return await shopstate.read(store, shop, "backfill")
