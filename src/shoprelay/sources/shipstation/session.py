"""One sync's shared state, and the transaction that records a page: events, states, cursor."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncConnection

from shoprelay.mapping.shipstation import (
    SHIPPED,
    SOURCE,
    ShipStationMetrics,
    customer_email,
    order_version,
    order_version_ceiling,
    status_change_to_event,
)
from shoprelay.sources.items import event_item
from shoprelay.sources.shipstation.changes import (
    KIND,
    Change,
    Mapped,
    Unmappable,
    find_changes,
    order_key,
    record_unmappable,
    write_states,
)
from shoprelay.sources.shipstation.client import ShipStationClient, ShipStationError
from shoprelay.sources.shipstation.labels import LabelIndex
from shoprelay.store.cursors import put_cursor
from shoprelay.store.database import Store
from shoprelay.store.leases import hold_lease, try_lease
from shoprelay.store.outbox import enqueue
from shoprelay.store.states import get_states

log = structlog.get_logger(__name__)
__all__ = ["KIND", "LeaseLost", "SyncOptions", "SyncReport", "SyncSession"]


class LeaseLost(ShipStationError):
    """Another process holds the account's sync lease now: this sync must stop writing."""


@dataclass(frozen=True)
class SyncOptions:
    """How one ShipStation account is synced; `poll.options_from_settings` builds it."""

    account: str = "default"
    backfill_days: int = 90
    poll_interval: float = 1800.0
    overlap: timedelta = timedelta(minutes=5)
    page_size: int = 500
    window_max_orders: int = 5000  # a backfill window larger than this is halved
    window_target_orders: int = 2500  # the next window is sized to hold about this many
    min_window: timedelta = timedelta(hours=1)
    currency: str = "USD"  # V1 orders carry no currency: it is the account's
    metrics: ShipStationMetrics = field(default_factory=ShipStationMetrics)
    lease_ttl: float = 600.0  # longer than the worst wait between pages (429s, backoff)

    @property
    def cursor_name(self) -> str:
        return f"shipstation:{self.account}:sync"

    @property
    def report_name(self) -> str:
        return f"shipstation:{self.account}:report"

    @property
    def lease_name(self) -> str:
        return f"shipstation:{self.account}"


@dataclass
class SyncReport:
    """What one sync did, for the CLI summary, the progress bar and `status`."""

    phase: str = "incremental"
    orders_seen: int = 0
    status_changes: int = 0
    events_queued: int = 0
    events_by_metric: Counter[str] = field(default_factory=Counter)
    orders_without_email: int = 0
    orders_dead_lettered: int = 0  # unmappable orders put in the dead-letter queue
    requests_used: int = 0
    pages: int = 0
    backfill_done: float = 1.0  # share of the backfill range covered, 0..1

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"events_by_metric": dict(self.events_by_metric)}


class SyncSession:
    """A running sync of one account: holds the lease, the cursor, the report and the stores."""

    def __init__(
        self,
        store: Store,
        client: ShipStationClient,
        options: SyncOptions,
        cursor: dict[str, Any],
        *,
        clock: Callable[[], datetime],
        owner: str,
        progress: Callable[[SyncReport], None] | None = None,
    ) -> None:
        self.store, self.client, self.options, self.cursor = store, client, options, cursor
        self.clock, self.owner, self.progress = clock, owner, progress
        self.report = SyncReport()
        self._requests_at_start = client.requests_used
        self._stores_read = False

    @property
    def stores(self) -> dict[str, dict[str, Any]]:
        """Store names by id, kept in the cursor: stores rarely change, requests are scarce."""
        found: dict[str, dict[str, Any]] = self.cursor.setdefault("stores", {})
        return found

    async def know_stores(self, orders: list[dict[str, Any]]) -> None:
        """Read `/stores` once for the first sync, and again only when an order names a new one."""
        known = self.stores and all(_store_id(order) in self.stores for order in orders)
        if known or self._stores_read:
            return
        self._stores_read = True
        fresh = {
            str(store["storeId"]): {
                "storeName": store.get("storeName"),
                "marketplaceName": store.get("marketplaceName"),
            }
            for store in await self.client.stores()
        }
        self.cursor["stores"] = self.stores | fresh

    def labels(self, since: datetime) -> LabelIndex:
        return LabelIndex(
            self.client, since, self.clock, self.options.overlap, keep_lease=self.keep_lease
        )

    async def record_page(
        self, orders: list[dict[str, Any]], labels: LabelIndex, *, backfill: bool
    ) -> None:
        """Events, order states, dead letters and the cursor of one page, in one transaction."""
        account = self.options.account
        async with self.store.read() as conn:
            stored = await get_states(conn, SOURCE, account, KIND, map(order_key, orders))
        changes, broken = find_changes(orders, stored)
        await self.know_stores([change.order for change in changes])
        await labels.prepare(c.order for c in changes if c.order.get("orderStatus") == SHIPPED)
        mapped = self._map_all(changes, labels, backfill, broken)
        async with self.store.transaction() as conn:
            await self._hold_lease(conn)
            await write_states(self.store, conn, account, mapped, time.time())
            items = [event_item(change.event, SOURCE) for change in mapped if change.event]
            queued = await enqueue(self.store, conn, items, time.time())
            letters = await record_unmappable(conn, account, broken, time.time())
            self._count(orders, len(mapped), queued, letters)
            await put_cursor(self.store, conn, self.options.cursor_name, self.cursor, time.time())
        await self.after_page()

    def _map_all(
        self, changes: list[Change], labels: LabelIndex, backfill: bool, broken: list[Unmappable]
    ) -> list[Mapped]:
        """Map each change; an order the mapping refuses joins `broken` and the rest go on."""
        mapped = []
        for change in changes:
            try:
                mapped.append(self._map(change, labels, backfill))
            except Exception as error:  # one odd order is dead-lettered, not the whole page
                broken.append(Unmappable.of(change.order, error))
        return mapped

    def _map(self, change: Change, labels: LabelIndex, backfill: bool) -> Mapped:
        order, options = change.order, self.options
        event = status_change_to_event(
            order,
            self.stores.get(_store_id(order), {}),
            labels.label_for(int(order["orderId"])),
            change.previous,
            options.metrics,
            account=options.account,
            currency=options.currency,
            backfill=backfill,
        )
        if change.previous is None and customer_email(order) is None:
            self.report.orders_without_email += 1
            self._add_total("orders_without_email", 1)
        if event is not None:
            self.report.events_by_metric[event.metric] += 1
            self._add_total(f"events:{event.metric}", 1)
        state = {"status": order["orderStatus"], "metric": event.metric if event else None}
        version, ceiling = order_version(order), order_version_ceiling(order)
        return Mapped(order_key(order), version, ceiling, state, event)

    def _add_total(self, key: str, n: int) -> None:
        totals = self.cursor.setdefault("totals", {})
        totals[key] = totals.get(key, 0) + n

    def _count(self, orders: list[dict[str, Any]], changes: int, queued: int, letters: int) -> None:
        self.report.orders_seen += len(orders)
        self.report.status_changes += changes
        self.report.events_queued += queued
        self.report.orders_dead_lettered += letters
        if letters:
            self._add_total("orders_dead_lettered", letters)
        self.report.pages += 1

    def count_requests(self) -> None:
        self.report.requests_used = self.client.requests_used - self._requests_at_start

    async def after_page(self) -> None:
        """Tell the progress bar; the page's transaction has renewed the lease."""
        self.count_requests()
        if self.progress is not None:
            self.progress(self.report)

    async def keep_lease(self) -> None:
        """Renew the lease between requests that write nothing, such as label pages."""
        options = self.options
        if not await try_lease(
            self.store, options.lease_name, self.owner, now=time.time(), ttl=options.lease_ttl
        ):
            raise LeaseLost("another process took over the ShipStation sync lease")

    async def _hold_lease(self, conn: AsyncConnection) -> None:
        """Renew the lease in the writing transaction: a sync that lost it writes nothing."""
        options = self.options
        if not await hold_lease(
            conn, options.lease_name, self.owner, now=time.time(), ttl=options.lease_ttl
        ):
            raise LeaseLost("another process took over the ShipStation sync lease")

    async def save_cursor(self) -> None:
        async with self.store.transaction() as conn:
            await self._hold_lease(conn)
            await put_cursor(self.store, conn, self.options.cursor_name, self.cursor, time.time())


def _store_id(order: dict[str, Any]) -> str:
    options = order.get("advancedOptions")
    return str(options.get("storeId") if isinstance(options, dict) else None)
