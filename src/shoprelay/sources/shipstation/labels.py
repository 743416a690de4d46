"""Which orders have a live label: `/shipments` read once per sync, and only when needed."""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from shoprelay.mapping.shipstation import label_shipment, latest_pacific_to_utc
from shoprelay.sources.shipstation.client import ShipStationClient
from shoprelay.sources.shipstation.pacific import since_filter

PAGE_SIZE = 500


@dataclass(frozen=True, slots=True)
class Label:
    """The fields of one shipment that the label check and the Shipped event read, as sent.

    A 90-day backfill holds every label of its range: addresses, items and weights would
    make each one several times larger, so they are dropped as each page is read.
    """

    shipment_id: int
    created: object
    voided: object
    return_label: object
    carrier: object
    service: object
    tracking_number: object
    ship_date: object

    @classmethod
    def of(cls, shipment: dict[str, Any]) -> Label:
        return cls(
            shipment_id=int(shipment["shipmentId"]),
            created=shipment.get("createDate"),
            voided=shipment.get("voided"),
            return_label=shipment.get("isReturnLabel"),
            carrier=_shared(shipment.get("carrierCode")),
            service=_shared(shipment.get("serviceCode")),
            tracking_number=shipment.get("trackingNumber"),
            ship_date=_shared(shipment.get("shipDate")),
        )

    def as_shipment(self) -> dict[str, Any]:
        """The label under ShipStation's field names, as the mapping reads a shipment."""
        return {
            "shipmentId": self.shipment_id,
            "createDate": self.created,
            "voided": self.voided,
            "isReturnLabel": self.return_label,
            "carrierCode": self.carrier,
            "serviceCode": self.service,
            "trackingNumber": self.tracking_number,
            "shipDate": self.ship_date,
        }


def _shared(value: object) -> object:
    # Carriers, services and ship dates repeat across thousands of labels: keep one copy of each.
    return sys.intern(value) if type(value) is str else value


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
        self._by_order: dict[int, tuple[Label, ...]] = {}
        self._loaded_at: datetime | None = None

    def label_for(self, order_id: int) -> dict[str, Any] | None:
        """The order's newest live label, if one is known."""
        return label_shipment([label.as_shipment() for label in self._by_order.get(order_id, ())])

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
        while await self._read_page(since, page):
            page += 1
        self._loaded_at = started

    async def _read_page(self, since: datetime, page: int) -> bool:
        """Keep one page's labels; True when another page follows."""
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
            self._keep(int(shipment["orderId"]), Label.of(shipment))
        return len(shipments) >= PAGE_SIZE and page < int(envelope.get("pages") or page + 1)

    def _keep(self, order_id: int, label: Label) -> None:
        """Add the label to its order's; a copy read again replaces the older one in place."""
        known = self._by_order.get(order_id, ())
        if any(other.shipment_id == label.shipment_id for other in known):
            kept = tuple(
                label if other.shipment_id == label.shipment_id else other for other in known
            )
        else:
            kept = (*known, label)
        self._by_order[order_id] = kept
