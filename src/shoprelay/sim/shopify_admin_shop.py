"""The simulated shop's orders and customers, and what happens to them over time.

Each resource is kept once, as its latest webhook payload (compressed: 20,000 orders take tens
of megabytes), with the times and number that searches sort and filter on beside it. Every change
goes out through `emit(topic, payload)` as the webhooks Shopify would send for it, and reads the
same afterwards through the GraphQL view (`shopify_admin_records`).
"""

from __future__ import annotations

import random
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson

from shoprelay.sim.shopify_admin_order_records import order_record
from shoprelay.sim.shopify_admin_records import Record, customer_record
from shoprelay.sim.shopify_orders import cancel_order, fake_order, fake_refund, fulfill_order
from shoprelay.sim.shopify_orders import refund_order as with_refund
from shoprelay.sim.shopify_payloads import fake_cart, fake_customer, stamp

Payload = dict[str, Any]
Emit = Callable[[str, Payload], None]
ORDER_ACTIONS = ("update", "fulfill", "cancel", "refund")


@dataclass(slots=True)
class Stored:
    """One resource: its payload compressed, and the keys searches use."""

    id: int
    created: float
    updated: float
    number: int
    blob: bytes

    def payload(self) -> Payload:
        loaded: Payload = orjson.loads(zlib.decompress(self.blob))
        return loaded


def _pack(payload: Payload, number: int = 0) -> Stored:
    return Stored(
        id=payload["id"],
        created=datetime.fromisoformat(payload["created_at"]).timestamp(),
        updated=datetime.fromisoformat(payload["updated_at"]).timestamp(),
        number=number,
        blob=zlib.compress(orjson.dumps(payload), 1),
    )


class ActionRefused(Exception):
    """The order cannot take that action now (already cancelled, nothing left to refund)."""


class Shop:
    """Orders and customers of one shop, their consent and tags; `now` is the shop's clock."""

    def __init__(self, rng: random.Random, now: Callable[[], datetime], emit: Emit) -> None:
        self.rng, self.now, self.emit = rng, now, emit
        self.orders: dict[int, Stored] = {}
        self.customers: dict[int, Stored] = {}
        self.customer_ids: list[int] = []  # in creation order
        self.email_consent: dict[int, Payload] = {}
        self.sms_consent: dict[int, Payload] = {}
        self.customer_tags: dict[int, list[str]] = {}
        self.order_counts: dict[int, int] = {}
        self.next_number = 1001

    # --- reading -------------------------------------------------------------------------

    def order_payload(self, order_id: int) -> Payload:
        return self.orders[order_id].payload()

    def customer_payload(self, customer_id: int) -> Payload:
        return self.customers[customer_id].payload()

    def order_view(self, order_id: int) -> Record:
        return order_record(self.order_payload(order_id), self.customer_view)

    def customer_view(self, customer_id: int) -> Record | None:
        if customer_id not in self.customers:
            return None
        return customer_record(
            self.customer_payload(customer_id),
            email_consent=self.email_consent.get(customer_id),
            sms_consent=self.sms_consent.get(customer_id),
            tags=self.customer_tags.get(customer_id),
            number_of_orders=self.order_counts.get(customer_id, 0),
        )

    # --- history ---------------------------------------------------------------------------

    def seed(self, n_orders: int, days: float) -> None:
        """`n_orders` spread evenly over the last `days`, each in its final state; no webhooks
        (this is the shop's past, before shoprelay was installed)."""
        end = self.now()
        start, step = end - timedelta(days=days), timedelta(days=days) / max(n_orders, 1)
        for index in range(n_orders):
            placed = start + step * index
            customer = self._customer_for(placed, notify=False)
            order = self._new_order(customer, placed)
            for topic, payload in self._history(order, placed, end):
                if topic.startswith("orders/"):
                    order = payload
            self._store_order(order)

    def _history(
        self, order: Payload, placed: datetime, end: datetime
    ) -> Iterator[tuple[str, Payload]]:
        """What happened to an old order by `end`: mostly shipped, some cancelled or refunded."""
        fate, later = self.rng.random(), placed + timedelta(hours=self.rng.randint(1, 48))
        if later >= end:
            return
        if fate < 0.6:
            shipped = fulfill_order(self.rng, order, at=later)
            yield "orders/fulfilled", shipped
            refund_at = later + timedelta(days=3)
            if self.rng.random() < 0.15 and refund_at < end:
                first_line = {shipped["line_items"][0]["id"]}
                refund = fake_refund(self.rng, shipped, at=refund_at, line_ids=first_line)
                yield "orders/updated", with_refund(shipped, refund)
        elif fate < 0.72:
            cancelled, _refund = cancel_order(self.rng, order, at=later)
            yield "orders/cancelled", cancelled

    # --- changes now, with their webhooks ---------------------------------------------------------

    def create_orders(self, count: int) -> list[int]:
        """New orders placed now, half by new customers: customers/create, orders/create."""
        created = []
        for _ in range(count):
            at = self.now()
            customer = self._customer_for(at, notify=True)
            order = self._new_order(customer, at)
            self._store_order(order)
            self.emit("orders/create", order)
            created.append(order["id"])
        return created

    def apply(self, order_id: int, action: str) -> Payload:
        """update | fulfill | cancel | refund an order now; returns the order's new payload."""
        order, at = self.order_payload(order_id), self.now()
        if order.get("cancelled_at") and action in ("fulfill", "cancel", "refund"):
            raise ActionRefused(f"order {order_id} is cancelled")
        if action == "update":
            tags = [t for t in (order.get("tags") or "").split(", ") if t]
            order |= {
                "tags": ", ".join([*tags, f"touched-{len(tags) + 1}"]),
                "updated_at": stamp(at),
            }
            events: list[tuple[str, Payload]] = [("orders/updated", order)]
        elif action == "fulfill":
            if order.get("fulfillment_status") == "fulfilled":
                raise ActionRefused(f"order {order_id} is fulfilled")
            order = fulfill_order(self.rng, order, at=at)
            events = [("orders/fulfilled", order), ("orders/updated", order)]
        elif action == "cancel":
            order, refund = cancel_order(self.rng, order, at=at)
            events = [
                ("orders/cancelled", order),
                ("refunds/create", refund),
                ("orders/updated", order),
            ]
        elif action == "refund":
            refunded_lines = {
                line["line_item_id"] for r in order["refunds"] for line in r["refund_line_items"]
            }
            left = [line["id"] for line in order["line_items"] if line["id"] not in refunded_lines]
            if not left:
                raise ActionRefused(f"order {order_id} is refunded in full")
            refund = fake_refund(self.rng, order, at=at, line_ids={left[0]})
            order = with_refund(order, refund)
            events = [("refunds/create", refund), ("orders/updated", order)]
        else:
            raise KeyError(action)
        self._store_order(order, number=self.orders[order_id].number)
        for topic, payload in events:
            self.emit(topic, payload)
        return order

    def update_customer(self, customer_id: int) -> Payload:
        """A changed note (and updated_at): customers/update."""
        customer, at = self.customer_payload(customer_id), self.now()
        customer |= {"note": f"changed {stamp(at)}", "updated_at": stamp(at)}
        self.customers[customer_id] = _pack(customer)
        self.emit("customers/update", customer)
        return customer

    def set_consent(
        self, customer_id: int, *, email: str | None = None, sms: str | None = None
    ) -> None:
        """New marketing states (GraphQL enum names, e.g. SUBSCRIBED) and their topics."""
        customer, at = self.customer_payload(customer_id), self.now()
        if email is not None:
            consent = {
                "state": email.lower(),
                "opt_in_level": "single_opt_in",
                "consent_updated_at": stamp(at),
            }
            self.email_consent[customer_id] = consent
            self.emit(
                "customers_email_marketing_consent/update",
                {
                    "customer_id": customer_id,
                    "email_address": customer.get("email"),
                    "email_marketing_consent": consent,
                },
            )
        if sms is not None:
            consent = {
                "state": sms.lower(),
                "opt_in_level": "single_opt_in",
                "consent_updated_at": stamp(at),
                "consent_collected_from": "other",
            }
            self.sms_consent[customer_id] = consent
            self.emit(
                "customers_marketing_consent/update",
                {
                    "id": customer_id,
                    "phone": customer.get("phone"),
                    "sms_marketing_consent": consent,
                },
            )
        customer["updated_at"] = stamp(at)
        self.customers[customer_id] = _pack(customer)
        self.emit("customers/update", customer)

    def activity(self, changes: int) -> list[dict[str, Any]]:
        """`changes` random happenings: new orders; updates, fulfilments, cancels and refunds of
        recent ones; customers' changes and consent."""
        done: list[dict[str, Any]] = []
        ids = list(self.orders)
        for _ in range(changes):
            if self.customers and self.rng.random() < 0.15:
                done.append(self._customer_change())
                continue
            if not ids or self.rng.random() < 0.3:
                (order_id,) = self.create_orders(1)
                ids.append(order_id)
                done.append({"order": order_id, "action": "create"})
                continue
            order_id = self.rng.choice(ids[-500:])
            action = self.rng.choice(ORDER_ACTIONS)
            try:
                self.apply(order_id, action)
            except ActionRefused:
                action = "update"
                self.apply(order_id, action)
            done.append({"order": order_id, "action": action})
        return done

    def _customer_change(self) -> dict[str, Any]:
        """A recent customer's details change, or their email consent flips."""
        customer_id = self.rng.choice(self.customer_ids[-500:])
        if self.rng.random() < 0.5:
            self.update_customer(customer_id)
            return {"customer": customer_id, "action": "update"}
        current = self.email_consent.get(customer_id, {}).get("state")
        state = "UNSUBSCRIBED" if current == "subscribed" else "SUBSCRIBED"
        self.set_consent(customer_id, email=state)
        return {"customer": customer_id, "action": "consent"}

    # --- inside -------------------------------------------------------------------------

    def _customer_for(self, at: datetime, *, notify: bool) -> Payload:
        """Half the orders come from a new customer, the rest from a recent one."""
        if self.customers and self.rng.random() < 0.5:
            return self.customer_payload(self.rng.choice(self.customer_ids[-200:]))
        customer = fake_customer(self.rng, at=at)
        self.customers[customer["id"]] = _pack(customer)
        self.customer_ids.append(customer["id"])
        subscribed = self.rng.random() < 0.5 and customer.get("email")
        consent = {
            "state": "subscribed",
            "opt_in_level": "single_opt_in",
            "consent_updated_at": stamp(at),
        }
        if subscribed:
            self.email_consent[customer["id"]] = consent
        if notify:
            self.emit("customers/create", customer)
            if subscribed:  # ticked at checkout: its own topic since 2025-01
                self.emit(
                    "customers_email_marketing_consent/update",
                    {
                        "customer_id": customer["id"],
                        "email_address": customer["email"],
                        "email_marketing_consent": consent,
                    },
                )
        return customer

    def _new_order(self, customer: Payload, at: datetime) -> Payload:
        number, self.next_number = self.next_number, self.next_number + 1
        self.order_counts[customer["id"]] = self.order_counts.get(customer["id"], 0) + 1
        return fake_order(self.rng, customer, at=at, cart=fake_cart(self.rng), number=number)

    def _store_order(self, order: Payload, number: int | None = None) -> None:
        number = number or int(order.get("order_number") or 0)
        self.orders[order["id"]] = _pack(order, number)
