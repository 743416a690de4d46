"""Which orders have a live label: `/shipments` read once per sync, and only when needed."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime, timedelta
from typing import Any

from shoprelay.mapping.shipstation import label_shipment, latest_pacific_to_utc
from shoprelay.sources.shipstation.client import ShipStationClient
from shoprelay.sources.shipstation.pacific import since_filter

PAGE_SIZE = 500


class LabelIndex:
    """Labels created since `since`, by order id; loaded lazily, topped up when orders outrun it.

    `/shipments` lists only labels made in ShipStation (voided ones with `voided: true`); a
    shipped order with no live label here was marked shipped by hand or fulfilled elsewhere.
    """

    def __init__(
        self,
        client: ShipStationClient,
        since: datetime,
        clock: Callable[[], datetime],
        overlap: timedelta,
        *,
        keep_lease: Callable[[], Awaitable[None]],
    ) -> None:
        self._client, self._since, self._clock, self._overlap = client, since, clock, overlap
        # A 90-day backfill's labels can take many requests at 40 a minute: renew per page.
        self._keep_lease = keep_lease
        self._by_order: defaultdict[int, dict[int, dict[str, Any]]] = defaultdict(dict)
        self._loaded_at: datetime | None = None

    def label_for(self, order_id: int) -> dict[str, Any] | None:
        """The order's newest live label, if one is known."""
        return label_shipment(list(self._by_order.get(order_id, {}).values()))

    async def prepare(self, shipped: Iterable[dict[str, Any]]) -> None:
        """Make sure labels are known for these newly shipped orders."""
        orders = list(shipped)
        if not orders:
            return
        if self._loaded_at is None:
            await self._load(self._since)
        elif any(self._newer_than_index(order) for order in orders):
            # A label made after we read /shipments: read what was added since, once.
            await self._load(self._loaded_at - self._overlap)

    def _newer_than_index(self, order: dict[str, Any]) -> bool:
        assert self._loaded_at is not None
        # A stamp in the repeated fall-back hour may be an hour later than it reads (fold=0):
        # judge by the latest it can be, so a label made after our read is never missed.
        modified = latest_pacific_to_utc(order.get("modifyDate"))
        missing = self.label_for(int(order["orderId"])) is None
        return missing and modified is not None and modified >= self._loaded_at - self._overlap

    async def _load(self, since: datetime) -> None:
        started = self._clock()
        page = 1
        while True:
            # Ascending createDate with an open end: new labels join at the end, so no row shifts.
            params: dict[str, str | int] = {
                "createDateStart": since_filter(since),
                "pageSize": PAGE_SIZE,
                "page": page,
            }
            envelope = await self._client.page("/shipments", params)
            await self._keep_lease()
            shipments = envelope.get("shipments") or []
            for shipment in shipments:
                self._by_order[int(shipment["orderId"])][int(shipment["shipmentId"])] = shipment
            if len(shipments) < PAGE_SIZE or page >= int(envelope.get("pages") or page + 1):
                break
            page += 1
        self._loaded_at = started
