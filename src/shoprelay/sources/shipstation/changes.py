"""One page's orders: which changed status, what each change records, which cannot be read.

An order that cannot be mapped (no modifyDate, items of odd types...) goes to the dead-letter
queue with its JSON, and the page goes on: one odd order must not stop every later sync.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from shoprelay.mapping.klaviyo import KlaviyoEvent
from shoprelay.mapping.shipstation import SOURCE, order_version, order_version_ceiling
from shoprelay.store import deadletters
from shoprelay.store.database import Store
from shoprelay.store.schema import dead_letters
from shoprelay.store.states import ResourceState, put_newer_state

KIND = "order"
MAX_REASON = 300


@dataclass
class Change:
    """One order whose status differs from the stored one."""

    order: dict[str, Any]
    previous: str | None


@dataclass(frozen=True)
class Mapped:
    """What one change records: the order's new state, and its event if it earns one."""

    order_id: str
    version: str
    ceiling: str
    state: dict[str, Any]
    event: KlaviyoEvent | None


@dataclass(frozen=True)
class Unmappable:
    """An order the mapping refused, with why."""

    order: object
    reason: str

    @classmethod
    def of(cls, order: object, error: Exception) -> Unmappable:
        return cls(order, f"unmappable order: {type(error).__name__}: {error}"[:MAX_REASON])

    @property
    def detail(self) -> str:
        """Names the order and its version, so a re-read of the same order is recorded once."""
        fields = self.order if isinstance(self.order, dict) else {}
        return f"orderId={fields.get('orderId')} modifyDate={fields.get('modifyDate')}"


def order_key(order: object) -> str:
    """The order's id as stored; a malformed order gets a key that matches no stored state."""
    return str(order.get("orderId")) if isinstance(order, dict) else repr(order)


def find_changes(
    orders: Iterable[object], stored: dict[str, ResourceState]
) -> tuple[list[Change], list[Unmappable]]:
    """Orders whose status is new to us, and those too malformed to compare."""
    found: dict[str, Change] = {}
    broken: list[Unmappable] = []
    for order in orders:
        try:
            change = _change(order, stored)
        except Exception as error:  # one odd order is dead-lettered, not the whole page
            broken.append(Unmappable.of(order, error))
            continue
        if change is not None:
            found[order_key(order)] = change
    return list(found.values()), broken


def _change(order: object, stored: dict[str, ResourceState]) -> Change | None:
    """The order's change; None for a re-read with the same status or an older copy."""
    if not isinstance(order, dict):
        raise TypeError("an order that is not a JSON object")
    int(order["orderId"])  # label lookups and paging need an integer id
    order_version(order)  # every order needs a modifyDate to be stored
    known = stored.get(order_key(order))
    if known is not None and known.version > order_version_ceiling(order):
        return None  # an older copy of the order than the one already recorded
    previous = known.state.get("status") if known else None
    return None if previous == order.get("orderStatus") else Change(order, previous)


async def write_states(
    store: Store, conn: AsyncConnection, account: str, mapped: list[Mapped], now: float
) -> None:
    for change in mapped:
        await put_newer_state(
            store,
            conn,
            source=SOURCE,
            scope=account,
            kind=KIND,
            resource_id=change.order_id,
            version=change.version,
            state=change.state,
            now=now,
            ceiling=change.ceiling,
        )


async def record_unmappable(
    conn: AsyncConnection, account: str, broken: list[Unmappable], now: float
) -> int:
    """Dead-letter each unmappable order once per version; returns how many were new."""
    recorded = 0
    for order in broken:
        if await _already_recorded(conn, account, order.detail):
            continue
        await deadletters.record(
            conn,
            origin="source",
            source=SOURCE,
            reason=order.reason,
            detail=order.detail,
            scope=account,
            payload=orjson.dumps(order.order),
            now=now,
        )
        recorded += 1
    return recorded


async def _already_recorded(conn: AsyncConnection, account: str, detail: str) -> bool:
    query = select(dead_letters.c.id).where(
        dead_letters.c.origin == "source",
        dead_letters.c.source == SOURCE,
        dead_letters.c.scope == account,
        dead_letters.c.detail == detail,
        dead_letters.c.replayed_at.is_(None),
    )
    return (await conn.execute(query.limit(1))).first() is not None
