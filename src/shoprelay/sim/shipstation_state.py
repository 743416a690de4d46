"""The simulated ShipStation account: stores, orders and their status changes, a clock, counters."""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from shoprelay.sim.shipstation_query import TieKey
from shoprelay.sim.shipstation_records import (
    CARRIERS,
    DEFAULT_STORES,
    SimStore,
    fulfillment_record,
    order_record,
    pacific_date,
    pacific_stamp,
    shipment_record,
    store_record,
)

OPEN_STATUSES = frozenset({"awaiting_payment", "awaiting_shipment", "on_hold"})
# Called before each `GET /orders` page is computed: the place to change orders mid-sync.
OrdersHook = Callable[["ShipStationSim", dict[str, str]], None]


@dataclass
class ShipStationSimConfig:
    """How the simulated account behaves; tests shrink the rate-limit window to stay fast."""

    api_key: str = "ss_sim_key"
    api_secret: str = "ss_sim_secret"  # noqa: S105 - the demo account's public credentials
    rate_limit: int = 40
    window_seconds: float = 60.0
    stores: Sequence[SimStore] = DEFAULT_STORES
    seed: int = 0


class SimClock:
    """The account's 'now': real time moved by an offset, so tests can live in the past."""

    def __init__(self, start: datetime | None = None) -> None:
        self.offset = timedelta(0)
        if start is not None:
            self.set(start)

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def set(self, moment: datetime) -> None:
        self.offset = moment - datetime.now(UTC)

    def advance(self, delta: timedelta) -> None:
        self.offset += delta


@dataclass
class FixedWindow:
    """ShipStation's limiter: a count per window that opens on the first request after the last."""

    limit: int
    seconds: float
    started: float = -math.inf
    count: int = 0
    highest: int = 0

    def hit(self, now: float) -> bool:
        """Count one request; False when it is over the limit (a 429 still counts)."""
        if now - self.started >= self.seconds:
            self.started, self.count = now, 0
        self.count += 1
        self.highest = max(self.highest, min(self.count, self.limit + 1))
        return self.count <= self.limit

    def headers(self, now: float) -> dict[str, str]:
        # Rounded first: (now + 60) - now can come out as 60.000000000002, which ceil makes 61.
        reset = max(0.0, round(self.started + self.seconds - now, 6))
        return {
            "X-Rate-Limit-Limit": str(self.limit),
            "X-Rate-Limit-Remaining": str(max(0, self.limit - self.count)),
            "X-Rate-Limit-Reset": str(math.ceil(reset)),
        }


@dataclass
class Counters:
    """What the account saw: requests per path, responses per status code."""

    requests: Counter[str] = field(default_factory=Counter)
    responses: Counter[int] = field(default_factory=Counter)

    @property
    def total(self) -> int:
        return sum(self.requests.values())


class ShipStationSim:
    """State of one ShipStation account, shared by every request (one event loop)."""

    def __init__(self, config: ShipStationSimConfig, clock: SimClock | None = None) -> None:
        self.config = config
        self.clock = clock or SimClock()
        self.rng = random.Random(config.seed)
        self.window = FixedWindow(config.rate_limit, config.window_seconds)
        self.counters = Counters()
        self.on_orders_request: OrdersHook | None = None
        # How `GET /orders` orders equal sort values (None: by orderId); a hook may change it
        # between page requests, as ShipStation's undocumented tie order may.
        self.order_ties: TieKey | None = None
        # Status codes to answer the next requests with (500, 503...), for retry tests.
        self.fail_next: list[int] = []
        self.stores = {store.store_id: store for store in config.stores}
        created = self.clock.now() - timedelta(days=400)
        self.store_records = [store_record(store, created) for store in config.stores]
        self.orders: dict[int, dict[str, Any]] = {}
        self.shipments: list[dict[str, Any]] = []
        self.fulfillments: list[dict[str, Any]] = []
        self._next_id = 100_000_001

    def _new_id(self) -> int:
        self._next_id += 1
        return self._next_id

    def create_order(
        self, *, store_id: int | None = None, at: datetime | None = None, email: str | None = None
    ) -> dict[str, Any]:
        """A new order awaiting shipment, created `at` (default: now)."""
        store = self.stores[store_id] if store_id else self.rng.choice(list(self.stores.values()))
        order_id = self._new_id()
        address = f"buyer{order_id}@example.com" if email is None else email
        number = f"{store.store_id % 1000}-{order_id % 1_000_000}"
        order = order_record(
            self.rng, order_id, number, store, created=at or self.clock.now(), email=address
        )
        self.orders[order_id] = order
        return order

    def create_orders(
        self, count: int, *, start: datetime, end: datetime, store_ids: Sequence[int] = ()
    ) -> list[dict[str, Any]]:
        """`count` orders spread evenly from `start` to `end`, round-robin over the stores."""
        stores = list(store_ids) or list(self.stores)
        step = (end - start) / max(count, 1)
        return [
            self.create_order(store_id=stores[n % len(stores)], at=start + step * n)
            for n in range(count)
        ]

    def _touch(self, order_id: int, status: str, at: datetime | None) -> dict[str, Any]:
        order = self.orders[order_id]
        order["orderStatus"] = status
        order["modifyDate"] = pacific_stamp(at or self.clock.now())
        return order

    def await_payment(self, order_id: int, at: datetime | None = None) -> None:
        self._touch(order_id, "awaiting_payment", at)["paymentDate"] = None

    def pay(self, order_id: int, at: datetime | None = None) -> None:
        order = self._touch(order_id, "awaiting_shipment", at)
        order["paymentDate"] = order["modifyDate"]

    def hold(self, order_id: int, until: datetime, at: datetime | None = None) -> None:
        self._touch(order_id, "on_hold", at)["holdUntilDate"] = pacific_date(until)

    def restore(self, order_id: int, at: datetime | None = None) -> None:
        self._touch(order_id, "awaiting_shipment", at)["holdUntilDate"] = None

    def cancel(self, order_id: int, at: datetime | None = None) -> None:
        self._touch(order_id, "cancelled", at)

    def ship_label(self, order_id: int, at: datetime | None = None) -> dict[str, Any]:
        """Create a label: the order is shipped and `/shipments` lists it."""
        moment = at or self.clock.now()
        carrier = self.rng.choice(CARRIERS)
        order = self._touch(order_id, "shipped", moment)
        order |= {"carrierCode": carrier[0], "serviceCode": carrier[1]}
        order["shipDate"] = pacific_date(moment)
        tracking = f"9400{self.rng.randrange(10**17):017d}"
        shipment = shipment_record(order, self._new_id(), moment, carrier, tracking)
        self.shipments.append(shipment)
        return shipment

    def mark_shipped(self, order_id: int, at: datetime | None = None) -> dict[str, Any]:
        """Mark as shipped without a label: only `/fulfillments` lists it."""
        moment = at or self.clock.now()
        order = self._touch(order_id, "shipped", moment)
        order["shipDate"] = pacific_date(moment)
        fulfillment = fulfillment_record(order, self._new_id(), moment, "usps", None)
        self.fulfillments.append(fulfillment)
        return fulfillment

    def void_label(self, order_id: int, at: datetime | None = None) -> None:
        """Void the order's labels: the order returns to awaiting shipment."""
        moment = at or self.clock.now()
        for shipment in self.shipments:
            if shipment["orderId"] == order_id and not shipment["voided"]:
                shipment |= {"voided": True, "voidDate": pacific_stamp(moment)}
        order = self._touch(order_id, "awaiting_shipment", moment)
        order["shipDate"] = None

    def apply(self, order_id: int, action: str, at: datetime | None = None) -> None:
        """Apply a named status change (the control API's vocabulary)."""
        actions: dict[str, Callable[[], object]] = {
            "await_payment": lambda: self.await_payment(order_id, at),
            "pay": lambda: self.pay(order_id, at),
            "hold": lambda: self.hold(order_id, (at or self.clock.now()) + timedelta(days=3), at),
            "restore": lambda: self.restore(order_id, at),
            "cancel": lambda: self.cancel(order_id, at),
            "ship_label": lambda: self.ship_label(order_id, at),
            "mark_shipped": lambda: self.mark_shipped(order_id, at),
            "void_label": lambda: self.void_label(order_id, at),
        }
        if action not in actions:
            raise KeyError(action)
        actions[action]()

    def stats(self) -> dict[str, Any]:
        """Counts for the demo and for tests."""
        statuses = Counter(str(order["orderStatus"]) for order in self.orders.values())
        return {
            "orders": len(self.orders),
            "statuses": dict(statuses),
            "shipments": len(self.shipments),
            "fulfillments": len(self.fulfillments),
            "requests": dict(self.counters.requests),
            "responses": {str(code): n for code, n in self.counters.responses.items()},
            "highest_in_window": self.window.highest,
        }
