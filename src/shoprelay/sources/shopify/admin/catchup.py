"""Catch-up: the orders and customers updated since the durable watermark, newest state only.

Each page is converted to the webhook shape and committed through the webhook path, so what
a webhook already queued is not queued again. The watermark moves to when the run started,
only once every page is committed; the next run starts an overlap earlier, because Shopify's
`updated_at` filter is reported to miss some changes at the edges.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog

from shoprelay.errors import ShoprelayError
from shoprelay.mapping.shopify_fields import ShopifyMetrics
from shoprelay.mapping.values import from_sortable_utc, sortable_utc
from shoprelay.sources.shopify.admin import convert, queries, shopstate
from shoprelay.sources.shopify.admin.client import AdminClient
from shoprelay.sources.shopify.admin.consents import consent_deliveries
from shoprelay.sources.shopify.admin.records import commit_records
from shoprelay.store.database import Store
from shoprelay.store.ingest import IngestWriter
from shoprelay.store.leases import release_lease, try_lease

log = structlog.get_logger(__name__)

OVERLAP = timedelta(minutes=10)
ORDERS_PAGE = 50  # at most; the page size follows from what a record costs
CUSTOMERS_PAGE = 100
# Shopify's single-query limit is 1000 points; a page asks for at most this many.
PAGE_COST = 800.0
# Renewed with every page: a process that died keeps others out this long at most.
LEASE_TTL = 120.0


class RunBusy(ShoprelayError):
    """Another process runs this shop's catch-up or backfill right now."""


@dataclass
class CatchupReport:
    since: str = ""
    orders: int = 0
    customers: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)

    def to_dict(self) -> dict[str, Any]:
        return {
            "since": self.since,
            "orders": self.orders,
            "customers": self.customers,
            "outcomes": dict(self.outcomes),
        }


def utc_now() -> datetime:
    return datetime.now(UTC)


def _search_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


async def run_catchup(
    store: Store,
    client: AdminClient,
    shop: str,
    metrics: ShopifyMetrics,
    *,
    first_since: datetime | None = None,
    clock: Callable[[], datetime] = utc_now,
    overlap: timedelta = OVERLAP,
    lease_ttl: float = LEASE_TTL,
) -> CatchupReport:
    """One catch-up under the shop's lease; raises RunBusy when another process runs one."""
    owner, lease = uuid.uuid4().hex, shopstate.lease_name(shop, "catchup")
    if not await try_lease(store, lease, owner, now=time.time(), ttl=lease_ttl):
        raise RunBusy(f"a catch-up of {shop} is already running")
    try:
        started = clock()
        cursor = await shopstate.read(store, shop, "catchup")
        watermark = cursor.get("watermark")
        since = (
            from_sortable_utc(watermark) - overlap
            if watermark
            else (first_since or started - overlap)
        )
        report = CatchupReport(since=sortable_utc(since))
        run = _Run(
            client,
            IngestWriter(store),
            shop,
            metrics,
            report,
            _renewer(store, lease, owner, lease_ttl),
            started,
            since,
        )
        for kind in ("customer", "order"):
            await run.pull(kind, since)
        await shopstate.merge(store, shop, "catchup", watermark=sortable_utc(started))
        log.info("shopify.catchup_done", shop=shop, **report.to_dict())
        return report
    finally:
        await release_lease(store, lease, owner)


def _renewer(store: Store, lease: str, owner: str, ttl: float) -> Callable[[], Any]:
    async def renew() -> None:
        if not await try_lease(store, lease, owner, now=time.time(), ttl=ttl):
            raise RunBusy("another process took over the catch-up lease")

    return renew


@dataclass
class _Run:
    client: AdminClient
    writer: IngestWriter
    shop: str
    metrics: ShopifyMetrics
    report: CatchupReport
    renew: Callable[[], Any]
    started: datetime
    since: datetime

    async def pull(self, kind: str, since: datetime) -> None:
        """Every page of one kind updated since `since`, each committed as it comes."""
        document, root, most, scope, to_webhook = _KINDS[kind]
        operation = document.split("(", 1)[0].split()[1]
        variables: dict[str, Any] = {
            "first": 1,  # the first page tells what a record costs
            "after": None,
            "query": queries.updated_since(_search_time(since)),
        }
        while True:
            data = await self.client.query(document, variables, scope=scope)
            connection = data[root]
            records = convert.nodes(connection)
            if kind == "order":
                for record in records:
                    await self._complete_lines(record)
            payloads = [to_webhook(record) for record in records]
            # A consent changed within the gap is a missed webhook, sent live as it would have
            # been; an older one is history (consents.py says why).
            consent = [
                found
                for record in (records if kind == "customer" else [])
                for found in consent_deliveries(
                    self.shop, record, origin="catchup", as_of=self.started, live_since=self.since
                )
            ]
            self.report.outcomes += await commit_records(
                self.writer,
                self.shop,
                kind,
                payloads,
                self.metrics,
                origin="catchup",
                consents=consent,
            )
            if kind == "order":
                self.report.orders += len(payloads)
            else:
                self.report.customers += len(payloads)
            await self.renew()
            page = connection.get("pageInfo") or {}
            if not page.get("hasNextPage"):
                return
            variables["after"] = page.get("endCursor")
            variables["first"] = self._page_size(operation, variables["first"], most)

    def _page_size(self, operation: str, asked: int, most: int) -> int:
        requested = self.client.requested_cost(operation)
        if not requested:
            return asked
        per_record = requested / max(asked, 1)
        return max(1, min(most, int(PAGE_COST // per_record)))

    async def _complete_lines(self, record: dict[str, Any]) -> None:
        """An order with more line items than a page holds gets the rest, page by page."""
        lines = record.get("lineItems") or {}
        page = lines.get("pageInfo") or {}
        while page.get("hasNextPage"):
            data = await self.client.query(
                queries.ORDER_LINE_ITEMS,
                {"id": record["id"], "after": page.get("endCursor")},
                scope="read_orders",
            )
            more = (data.get("order") or {}).get("lineItems") or {}
            lines.setdefault("edges", []).extend(more.get("edges") or [])
            page = more.get("pageInfo") or {}


_KINDS: dict[str, tuple[str, str, int, str, Callable[[dict[str, Any]], dict[str, Any]]]] = {
    "order": (queries.ORDERS_UPDATED_SINCE, "orders", ORDERS_PAGE, "read_orders", convert.order),
    "customer": (
        queries.CUSTOMERS_UPDATED_SINCE,
        "customers",
        CUSTOMERS_PAGE,
        "read_customers",
        convert.customer,
    ),
}
