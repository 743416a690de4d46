"""A group of webhook deliveries written together: a receipt each, and for each new one its
outbox items, its resource's state and its dead letter."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, bindparam, select

from shoprelay.store.database import Store
from shoprelay.store.outbox import NewItem, new_rows
from shoprelay.store.plans import CustomerLink
from shoprelay.store.schema import customer_identifiers, dead_letters, outbox, webhook_receipts
from shoprelay.store.states import newer_state_upsert


@dataclass(frozen=True)
class ResourceVersion:
    """The version of a source resource a delivery applies, and the state stored with it."""

    kind: str
    resource_id: str
    version: str
    state: str | None  # JSON


@dataclass(frozen=True)
class WebhookWrite:
    """What one delivery writes. Only a new delivery (no receipt yet) writes more than its
    receipt."""

    shop: str
    webhook_id: str
    topic: str
    outcome: str
    source: str
    items: Sequence[NewItem] = ()
    resource: ResourceVersion | None = None
    # Kept for a person to read and replay: the reason and the raw bytes.
    letter: tuple[str, bytes] | None = None
    # A customer's identifiers, kept for a later customers/delete (store/privacy.py).
    links: Sequence[CustomerLink] = ()

    @property
    def key(self) -> tuple[str, str]:
        return (self.shop, self.webhook_id)


class WebhookWriter:
    """Writes groups of deliveries; statements are built once and kept, as dialects cache
    what they derive from each."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._one_statement = store.dialect.webhooks_statement()
        self._receipts_insert = store.insert_ignore(webhook_receipts)
        self._receipts_lookup = store.dialect.each_by_key(
            select(webhook_receipts.c.webhook_id).where(
                webhook_receipts.c.shop == bindparam("shop")
            ),
            webhook_receipts.c.webhook_id,
            "ids",
        )
        self._outbox_insert = store.insert_ignore(outbox)
        self._states_upsert = newer_state_upsert(store)
        self._links_insert = store.insert_ignore(customer_identifiers)

    @property
    def one_statement(self) -> bool:
        """Whether a group's writes are one statement, atomic without a transaction."""
        return self._one_statement is not None

    def write(self, conn: Connection, writes: Sequence[WebhookWrite], now: float) -> list[bool]:
        """Write the group; for each delivery, whether it was new. A delivery whose receipt is
        stored, or that repeats one earlier in the group, writes nothing."""
        firsts: dict[tuple[str, str], WebhookWrite] = {}
        for write in writes:
            firsts.setdefault(write.key, write)
        unique = list(firsts.values())
        if self._one_statement is not None:
            parameters = _statement_parameters(unique, now)
            fresh = {
                (row.shop, row.webhook_id) for row in conn.execute(self._one_statement, parameters)
            }
        else:
            fresh = self._write_one_by_one(conn, unique, now)
        return [firsts[write.key] is write and write.key in fresh for write in writes]

    def _write_one_by_one(
        self, conn: Connection, writes: Sequence[WebhookWrite], now: float
    ) -> set[tuple[str, str]]:
        """Statement by statement, for a dialect with one writer (BEGIN IMMEDIATE made this
        transaction it): what is not stored yet is new."""
        rows = sorted((_receipt(write, now) for write in writes), key=_receipt_key)
        # The lookup usually finds nothing, one step, where RETURNING steps (and on SQLite
        # retakes the GIL) per row.
        stored = self._stored_receipts(conn, rows)
        dialect = self._store.dialect
        dialect.insert_rows(conn, self._receipts_insert, rows)
        fresh = [write for write in writes if write.key not in stored]
        items = [item for write in fresh for item in write.items]
        if items:
            dialect.insert_rows(conn, self._outbox_insert, new_rows(items, now))
        if states := _newest_states(fresh, now):
            dialect.insert_rows(conn, self._states_upsert, states)
        if letters := [_letter(write, now) for write in fresh if write.letter]:
            conn.execute(dead_letters.insert(), letters)
        if links := _links(fresh, now):
            dialect.insert_rows(conn, self._links_insert, links)
        return {write.key for write in fresh}

    def _stored_receipts(
        self, conn: Connection, rows: Sequence[dict[str, Any]]
    ) -> set[tuple[str, str]]:
        """Which of these deliveries already have a receipt: one lookup per shop."""
        ids_by_shop: dict[str, list[str]] = {}
        for row in rows:
            ids_by_shop.setdefault(row["shop"], []).append(row["webhook_id"])
        stored: set[tuple[str, str]] = set()
        for shop, ids in ids_by_shop.items():
            found = conn.execute(self._receipts_lookup, {"shop": shop, "ids": ids}).scalars()
            stored.update((shop, webhook_id) for webhook_id in found)
        return stored


def _receipt(write: WebhookWrite, now: float) -> dict[str, Any]:
    return {
        "shop": write.shop,
        "webhook_id": write.webhook_id,
        "topic": write.topic,
        "outcome": write.outcome,
        "items": len(write.items),
        "received_at": now,
    }


def _receipt_key(row: dict[str, Any]) -> tuple[str, str]:
    return (row["shop"], row["webhook_id"])


def _newest_states(writes: Sequence[WebhookWrite], now: float) -> list[dict[str, Any]]:
    """One row per resource, its newest version in the group, sorted by key so concurrent
    writers lock rows in one order and never deadlock."""
    newest: dict[tuple[str, str, str, str], ResourceVersion] = {}
    for write in writes:
        if (resource := write.resource) is None:
            continue
        key = (write.source, write.shop, resource.kind, resource.resource_id)
        if key not in newest or newest[key].version <= resource.version:
            newest[key] = resource
    return [
        {
            "source": key[0],
            "scope": key[1],
            "kind": key[2],
            "resource_id": key[3],
            "version": newest[key].version,
            "state": newest[key].state,
            "updated_at": now,
        }
        for key in sorted(newest)
    ]


def _letter(write: WebhookWrite, now: float) -> dict[str, Any]:
    reason, payload = write.letter or ("unprocessable", b"")
    return {
        "origin": "webhook",
        "source": write.source,
        "reason": reason,
        "topic": write.topic,
        "scope": write.shop,
        "payload": payload,
        "created_at": now,
    }


def _links(writes: Sequence[WebhookWrite], now: float) -> list[dict[str, Any]]:
    """One row per (shop, customer, identifier, value), sorted so writers lock in one order."""
    rows = {
        (write.shop, link.customer_id, link.identifier, link.value)
        for write in writes
        for link in write.links
    }
    return [
        {"shop": shop, "customer_id": customer, "identifier": kind, "value": value, "seen_at": now}
        for shop, customer, kind, value in sorted(rows)
    ]


def _statement_parameters(writes: Sequence[WebhookWrite], now: float) -> dict[str, Any]:
    """The dialect's one statement binds each table's rows as one array per column, every row
    carrying its delivery's (shop, webhook_id): the statement keeps only new deliveries'."""
    receipts = [_receipt(write, now) for write in writes]
    items = [
        {"shop": write.shop, "webhook": write.webhook_id, **row}
        for write in writes
        for row in new_rows(write.items, now)
    ]
    states = [
        {
            "shop": write.shop,
            "webhook": write.webhook_id,
            "source": write.source,
            "kind": resource.kind,
            "resource_id": resource.resource_id,
            "version": resource.version,
            "state": resource.state,
        }
        for write in writes
        if (resource := write.resource) is not None
    ]
    letters = [
        {"shop": write.shop, "webhook": write.webhook_id, **_letter(write, now)}
        for write in writes
        if write.letter
    ]
    links = [
        {"shop": write.shop, "webhook": write.webhook_id, "customer_id": link.customer_id,
         "identifier": link.identifier, "value": link.value}
        for write in writes
        for link in write.links
    ]  # fmt: skip
    return {
        "now": now,
        **_columns("receipt", receipts, shop="shop", id="webhook_id", topic="topic",
                   outcome="outcome", items="items"),
        **_columns("item", items, shop="shop", webhook="webhook", account="account",
                   kind="kind", key="dedup_key", body="body", ordering="ordering_key",
                   version="ordering_version", source="source"),
        **_columns("state", states, shop="shop", webhook="webhook", source="source",
                   kind="kind", id="resource_id", version="version", value="state"),
        **_columns("letter", letters, shop="shop", webhook="webhook", source="source",
                   reason="reason", topic="topic", payload="payload"),
        **_columns("link", links, shop="shop", webhook="webhook", customer="customer_id",
                   identifier="identifier", value="value"),
    }  # fmt: skip


def _columns(table: str, rows: Sequence[dict[str, Any]], **fields: str) -> dict[str, list[Any]]:
    """`{table}_{parameter}`: the array of each row's `fields[parameter]`."""
    return {f"{table}_{name}": [row[key] for row in rows] for name, key in fields.items()}
